//! `stats()`: a snapshot of what a module and a manager hold and have done.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{eventually, ms, started, SOON};
use taskmanager::{ManualClock, Module, Recurrence, Stats, Task, TaskError, TaskManager};

#[test]
fn a_new_module_has_all_zero_stats() {
    let manager = started();
    let module = Module::new(&manager, 3).unwrap();
    assert_eq!(module.stats(), Stats::default());
}

#[test]
fn counts_queued_running_completed_failed_and_cancelled() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (entered_tx, entered) = mpsc::channel();
    let blocker = module
        .add_task(move || {
            entered_tx.send(()).unwrap();
            gate.recv().unwrap();
        })
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    let ok: Vec<_> = (0..3).map(|i| module.add_task(move || i).unwrap()).collect();
    let bad = module.add_task(|| -> () { panic!("counted") }).unwrap();
    let cb = module.add_task(Task::new(|| 1).callback(|_: &i32| panic!("callback"))).unwrap();
    let doomed = module.add_task(|| 9).unwrap();
    assert!(doomed.cancel());
    let timer = module.schedule_task(Duration::from_secs(3600), || 0).unwrap();

    let s = module.stats();
    assert_eq!((s.running, s.queued, s.workers, s.pending_timers), (1, 6, 1, 1), "{s:?}");
    assert_eq!((s.completed, s.failed, s.cancelled), (0, 0, 0), "{s:?}");
    assert_eq!(s.peak_concurrency, 1);

    assert!(timer.cancel());
    release.send(()).unwrap();
    blocker.join().unwrap();
    for h in ok {
        h.join().unwrap();
    }
    let _ = bad.join();
    let _ = cb.join();
    // A worker counts a run just after its handle says done, and the
    // cancelled task when it passes it in the queue: wait for the counts.
    // blocker + 3 ok; a panicking task and a panicking callback; the
    // cancelled queued task and the cancelled timer.
    let counts = |s: Stats| (s.queued, s.running, s.pending_timers, s.completed, s.failed, s.cancelled);
    assert!(eventually(|| counts(module.stats()) == (0, 0, 0, 4, 2, 2)), "{:?}", module.stats());
    manager.shutdown();
}

#[test]
fn counts_survive_workers_retiring() {
    let manager = TaskManager::builder().keep_alive(ms(20)).build().unwrap();
    manager.start_thread().unwrap();
    let module = Module::new(&manager, 2).unwrap();
    for _ in 0..10 {
        module.add_task(|| ()).unwrap().join().unwrap();
    }
    assert!(eventually(|| module.stats().workers == 0), "workers retire");
    let s = module.stats();
    assert_eq!(s.completed, 10, "counted before the worker left: {s:?}");
    assert!(s.peak_concurrency >= 1 && s.peak_concurrency <= 2);
    manager.shutdown();
}

#[test]
fn recurring_runs_paused_ticks_and_the_final_cancel_are_counted() {
    let clock = ManualClock::new();
    let manager = TaskManager::builder().clock(&clock).build().unwrap();
    manager.start_thread().unwrap();
    let module = Module::new(&manager, 1).unwrap();
    let handle = module.schedule_recurring(Recurrence::every(Duration::from_secs(1)), || ()).unwrap();
    assert_eq!(module.stats().pending_timers, 1);
    for k in 1..=3 {
        clock.advance(Duration::from_secs(1));
        assert!(eventually(|| handle.runs() == k));
    }
    handle.pause();
    clock.advance(Duration::from_secs(1));
    assert!(eventually(|| handle.skipped_ticks() == 1));
    assert!(eventually(|| module.stats().pending_timers == 1));
    let s = module.stats();
    assert_eq!((s.completed, s.failed, s.cancelled), (3, 0, 0), "{s:?}");
    handle.cancel();
    handle.wait();
    assert!(eventually(|| module.stats().cancelled == 1), "{:?}", module.stats());
    let s = module.stats();
    assert_eq!((s.completed, s.cancelled, s.pending_timers), (3, 1, 0), "{s:?}");
    manager.shutdown();
}

#[test]
fn the_manager_sums_its_modules_and_shutdown_cancels_are_counted() {
    let manager = started();
    let a = Module::new(&manager, 1).unwrap();
    let b = Module::new(&manager, 2).unwrap();
    a.add_task(|| ()).unwrap().join().unwrap();
    b.add_task(|| ()).unwrap().join().unwrap();
    manager.add_task(|| ()).unwrap().join().unwrap();
    let far: Vec<_> = (0..4).map(|_| b.schedule_task(Duration::from_secs(3600), || ()).unwrap()).collect();
    assert!(eventually(|| manager.stats().completed == 3));
    let s = manager.stats();
    assert_eq!((s.completed, s.pending_timers), (3, 4), "{s:?}");
    assert_eq!(s, {
        let mut sum = a.stats();
        sum += b.stats();
        sum += manager.default_module().stats();
        sum
    });
    manager.shutdown();
    assert!(far.iter().all(|h| h.is_cancelled()));
    let s = manager.stats();
    assert_eq!((s.cancelled, s.pending_timers, s.workers), (4, 0, 0), "{s:?}");
}

#[test]
fn a_fallible_task_that_returns_err_counts_as_failed_everywhere_and_skips_its_callbacks() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let called = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&called);
    let h = module
        .add_task(Task::fallible(|| "x".parse::<u32>()).callback(move |_: &u32| {
            seen.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    match h.join() {
        Err(TaskError::Failed { message }) => assert_eq!(message, "invalid digit found in string"),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(module.add_task(Task::fallible(|| "7".parse::<u32>())).unwrap().join(), Ok(7));
    let s = module.stats();
    assert_eq!((s.completed, s.failed), (1, 1), "{s:?}");
    assert_eq!(called.load(Ordering::SeqCst), 0, "no value, no callback");
    // A recurring one: each Err is a failure of the handle, the stats and
    // the listing alike.
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let every = module
        .schedule_recurring(
            Recurrence::every(Duration::from_millis(2)).run_now(true),
            Task::fallible(move || match counted.fetch_add(1, Ordering::SeqCst) % 2 {
                0 => Err("odd run"),
                _ => Ok(()),
            }),
        )
        .unwrap();
    assert!(eventually(|| every.runs() >= 6));
    every.cancel();
    every.wait();
    let (runs, failures) = (every.runs(), every.failures());
    assert_eq!(failures, runs.div_ceil(2), "every other run fails");
    assert_eq!(every.last_failure(), Some(TaskError::Failed { message: "odd run".into() }));
    let s = module.stats();
    assert_eq!(s.failed, 1 + failures, "{s:?}");
    manager.shutdown();
}

#[test]
fn a_run_is_counted_before_its_handle_says_done() {
    // No waiting: whoever joined a task sees it in the stats at once.
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    for n in 1..=200u64 {
        if n % 10 == 0 {
            let _ = module.add_task(|| -> () { panic!("counted at once") }).unwrap().join();
        } else {
            module.add_task(|| ()).unwrap().join().unwrap();
        }
        let s = module.stats();
        assert_eq!(s.completed + s.failed, n, "{s:?}");
    }
    assert_eq!(module.stats().failed, 20);
    manager.shutdown();
}

/// A method whose `on_done` waker tells what the module had counted when
/// it was woken (the Python binding settles its handles this way).
struct Told {
    module: Module,
    seen: mpsc::Sender<u64>,
}

struct Tell(Module, std::sync::Mutex<mpsc::Sender<u64>>);

impl std::task::Wake for Tell {
    fn wake(self: Arc<Self>) {
        let s = self.0.stats();
        let _ = self.1.lock().unwrap().send(s.completed);
    }
}

impl taskmanager::Method<()> for Told {
    fn call(self) -> Result<(), TaskError> {
        Ok(())
    }

    fn on_done(&self) -> Option<std::task::Waker> {
        let tell = Tell(self.module.clone(), std::sync::Mutex::new(self.seen.clone()));
        Some(Arc::new(tell).into())
    }
}

#[test]
fn a_methods_on_done_is_woken_once_after_the_count_or_when_cancelled_unrun() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (seen, told) = mpsc::channel();
    for n in 1..=50u64 {
        module.add_task(Task::new(Told { module: module.clone(), seen: seen.clone() })).unwrap();
        assert_eq!(told.recv_timeout(SOON).unwrap(), n, "woken after its run was counted");
    }
    // Cancelled before it ran: woken once, as the method is dropped.
    let (release, gate) = mpsc::channel::<()>();
    let blocker = module.add_task(move || gate.recv().unwrap()).unwrap();
    let doomed = module.add_task(Task::new(Told { module: module.clone(), seen: seen.clone() })).unwrap();
    assert!(doomed.cancel());
    told.recv_timeout(SOON).expect("woken when cancelled");
    release.send(()).unwrap();
    blocker.join().unwrap();
    manager.shutdown();
    assert!(told.try_recv().is_err(), "woken once each");
}
