//! `TaskManager::tasks()`: what is scheduled and recurring, with names,
//! modules, next due times, intervals, counts and states.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{eventually, started, SOON};
use taskmanager::{ManualClock, Module, Recurrence, Task, TaskManager, TaskState};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn lists_scheduled_and_recurring_tasks_soonest_first() {
    let clock = ManualClock::new();
    let manager = TaskManager::builder().clock(&clock).build().unwrap();
    manager.start_thread().unwrap();
    let pollers = Module::builder(&manager).name("pollers").max_workers(2).build().unwrap();
    assert_eq!(pollers.name(), "pollers");
    let report = manager.schedule_task(30 * SEC, Task::new(|| ()).name("nightly-report")).unwrap();
    let poll =
        pollers.schedule_recurring(Recurrence::every(10 * SEC), Task::new(|| ()).name("poll")).unwrap();
    let unnamed = Module::new(&manager, 1).unwrap();
    let tick = unnamed.schedule_recurring(Recurrence::every(20 * SEC), || ()).unwrap();
    // Immediate tasks are not listed: they are queued or done at once.
    manager.add_task(|| ()).unwrap().join().unwrap();

    let tasks = manager.tasks();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["poll", tick.name().as_str(), "nightly-report"]);
    let poll_info = &tasks[0];
    assert_eq!(poll_info.id, poll.id());
    assert_eq!(poll_info.module, "pollers");
    assert_eq!((poll_info.next_due, poll_info.interval), (Some(10 * SEC), Some(10 * SEC)));
    assert_eq!((poll_info.runs, poll_info.failures, poll_info.state), (0, 0, TaskState::Scheduled));
    assert!(tasks[1].module.starts_with("module-"), "{}", tasks[1].module);
    let report_info = &tasks[2];
    assert_eq!((report_info.id, report_info.module.as_str()), (report.id(), "default"));
    assert_eq!((report_info.next_due, report_info.interval), (Some(30 * SEC), None));

    // Time passes: counts and due times follow.
    clock.advance(10 * SEC);
    assert!(eventually(|| poll.runs() == 1));
    assert!(eventually(|| manager.tasks()[0].next_due == Some(10 * SEC)));
    poll.pause();
    let tasks = manager.tasks();
    let poll_info = tasks.iter().find(|t| t.id == poll.id()).unwrap();
    assert_eq!((poll_info.runs, poll_info.state), (1, TaskState::Paused));

    // Ended tasks leave the listing.
    assert!(report.cancel() && tick.cancel() && poll.cancel());
    poll.wait();
    assert!(manager.tasks().is_empty(), "{:?}", manager.tasks());
    manager.shutdown();
}

#[test]
fn a_running_recurring_task_is_listed_as_running() {
    let manager = started();
    let (entered_tx, entered) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let gate = std::sync::Mutex::new(gate);
    let handle = manager
        .schedule_recurring(Recurrence::every(SEC).run_now(true), move || {
            let _ = entered_tx.send(());
            let _ = gate.lock().unwrap().recv();
        })
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    let tasks = manager.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!((tasks[0].id, tasks[0].state), (handle.id(), TaskState::Running));
    handle.cancel();
    release.send(()).unwrap();
    handle.wait();
    manager.shutdown();
}
