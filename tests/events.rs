//! Events: what happens to tasks, told to a listener (and the `log` crate).

mod common;

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{eventually, ms, SOON};
use taskmanager::{Event, ManualClock, Module, Recurrence, Task, TaskError, TaskManager};

/// A started manager whose events are collected.
fn listening(clock: Option<&ManualClock>) -> (TaskManager, Arc<Mutex<Vec<Event>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let mut builder = TaskManager::builder().listener(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    if let Some(clock) = clock {
        builder = builder.clock(clock);
    }
    let manager = builder.build().unwrap();
    manager.start_thread().unwrap();
    (manager, seen)
}

fn kinds(seen: &Mutex<Vec<Event>>, id: u64) -> Vec<&'static str> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|e| e.task().is_some_and(|t| t.id == id))
        .map(|e| match e {
            Event::Started { .. } => "started",
            Event::Finished { .. } => "finished",
            Event::Failed { .. } => "failed",
            Event::Skipped { .. } => "skipped",
            Event::Cancelled { .. } => "cancelled",
            Event::Paused { .. } => "paused",
            Event::Resumed { .. } => "resumed",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_run_is_started_then_finished_with_its_duration() {
    let (manager, seen) = listening(None);
    let h = manager.add_task(Task::new(|| std::thread::sleep(ms(20))).name("slow")).unwrap();
    let id = h.id();
    h.join().unwrap();
    assert!(eventually(|| kinds(&seen, id) == ["started", "finished"]), "{:?}", kinds(&seen, id));
    let events = seen.lock().unwrap();
    let finished = events.iter().find(|e| matches!(e, Event::Finished { .. })).unwrap();
    assert_eq!(finished.task().unwrap().name, "slow");
    assert!(matches!(finished, Event::Finished { duration, .. } if *duration >= ms(20)));
    assert_eq!(finished.level(), log::Level::Debug);
    assert!(finished.to_string().contains("task slow"), "{finished}");
    drop(events);
    manager.shutdown();
}

#[test]
fn a_failure_carries_its_error() {
    let (manager, seen) = listening(None);
    let h = manager.add_task(|| -> () { panic!("told") }).unwrap();
    let id = h.id();
    let _ = h.join();
    assert!(eventually(|| kinds(&seen, id) == ["started", "failed"]));
    let events = seen.lock().unwrap();
    assert!(events.iter().any(|e| matches!(e,
        Event::Failed { error: Some(TaskError::Panicked { message }), .. } if message == "told")));
    drop(events);
    manager.shutdown();
}

#[test]
fn cancels_pauses_resumes_and_skipped_ticks_are_told() {
    let clock = ManualClock::new();
    let (manager, seen) = listening(Some(&clock));
    let one_shot = manager.schedule_task(Duration::from_secs(60), || ()).unwrap();
    let id = one_shot.id();
    assert!(one_shot.cancel());
    assert_eq!(kinds(&seen, id), ["cancelled"]);

    let every = manager.schedule_recurring(Recurrence::every(Duration::from_secs(1)), || ()).unwrap();
    let rid = every.id();
    clock.advance(Duration::from_secs(1));
    assert!(eventually(|| every.runs() == 1));
    every.pause();
    clock.advance(Duration::from_secs(1));
    assert!(eventually(|| every.skipped_ticks() == 1));
    every.resume();
    assert!(
        eventually(|| kinds(&seen, rid) == ["started", "finished", "paused", "skipped", "resumed"]
            || kinds(&seen, rid) == ["started", "finished", "paused", "resumed", "skipped"]),
        "{:?}",
        kinds(&seen, rid)
    );
    assert!(seen.lock().unwrap().iter().any(|e| matches!(e, Event::Skipped { ticks: 1, .. })));
    // Shutdown cancels the recurring task waiting in the timer: told too.
    manager.shutdown();
    assert_eq!(kinds(&seen, rid).last(), Some(&"cancelled"));
}

#[test]
fn a_panicking_listener_is_contained() {
    let manager = TaskManager::builder().listener(|_: &Event| panic!("listener bug")).build().unwrap();
    manager.start_thread().unwrap();
    let module = Module::new(&manager, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        let tx = tx.clone();
        module.add_task(move || tx.send(i).unwrap()).unwrap();
    }
    let got: Vec<i32> = (0..3).map(|_| rx.recv_timeout(SOON).unwrap()).collect();
    assert_eq!(got, [0, 1, 2], "tasks still run, in order");
    manager.shutdown();
}

#[test]
fn a_queued_task_cancelled_by_its_handle_is_told_once_its_worker_passes_it() {
    let (manager, seen) = listening(None);
    let module = Module::new(&manager, 1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let blocker = module.add_task(move || gate.recv().unwrap()).unwrap();
    let queued = module.add_task(|| ()).unwrap();
    assert!(queued.cancel());
    release.send(()).unwrap();
    blocker.join().unwrap();
    assert!(eventually(|| kinds(&seen, queued.id()) == ["cancelled"]), "{:?}", kinds(&seen, queued.id()));
    manager.shutdown();
    assert_eq!(kinds(&seen, queued.id()), ["cancelled"], "told once");
}
