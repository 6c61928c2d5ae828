//! A recurring task between runs, kept by the worker that ran it: the
//! worker sleeps until the next due time and runs it itself (one wake-up a
//! run instead of the timer thread's and then a worker's). Everything a
//! user can do with a task waiting in the timer must work the same while a
//! worker holds it: cancel, change the interval, list it, count it, shut
//! down, and submit other work to the same module.
//!
//! Each test first lets the task run once (`run_now`) with a long interval,
//! so that it is held for the rest of the test, on a module with a single
//! worker.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, ms, started, SOON};
use taskmanager::{Module, Recurrence, RecurringHandle, TaskManager};

/// A long interval: a test that waited for it would time out first.
const LONG: Duration = Duration::from_secs(600);

/// A recurring task on a one-worker module that has run once and now waits
/// (held) for a next run `interval` away; its run count and a payload whose
/// strong count tells whether the method was dropped.
fn held_task(
    manager: &TaskManager,
    interval: Duration,
) -> (Module, RecurringHandle, Arc<AtomicUsize>, Arc<()>) {
    let module = Module::new(manager, 1).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let payload = Arc::new(());
    let (r, p) = (runs.clone(), payload.clone());
    let handle = module
        .schedule_recurring(Recurrence::every(interval).run_now(true), move || {
            let _keep = &p;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(eventually(|| handle.runs() == 1));
    // The run has ended and the task is pending again.
    assert!(eventually(|| module.stats().running == 0 && module.stats().pending_timers == 1));
    (module, handle, runs, payload)
}

#[test]
fn a_held_task_is_counted_and_listed_as_pending() {
    let manager = started();
    let (module, handle, _, _) = held_task(&manager, LONG);
    assert_eq!(module.stats().pending_timers, 1);
    assert_eq!(manager.stats().pending_timers, 1);
    let listed = manager.tasks();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].interval, Some(LONG));
    let next = listed[0].next_due.unwrap();
    assert!(next > LONG - SOON && next <= LONG, "next due in {next:?}");
    handle.cancel();
}

#[test]
fn cancelling_a_held_task_ends_it_at_once_and_frees_its_method() {
    let manager = started();
    let (module, handle, runs, payload) = held_task(&manager, LONG);
    let cancelled_at = Instant::now();
    assert!(handle.cancel());
    assert!(handle.wait_timeout(SOON), "a cancelled held task finishes at once");
    assert!(cancelled_at.elapsed() < SOON);
    assert_eq!(Arc::strong_count(&payload), 1, "method dropped once cancelled");
    assert_eq!(module.stats().pending_timers, 0);
    assert_eq!(module.stats().cancelled, 1);
    assert!(manager.tasks().is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The worker that held it is free for other work.
    let other = module.add_task(|| 7).unwrap();
    assert_eq!(other.join_timeout(SOON).unwrap(), 7);
}

#[test]
fn a_new_interval_applies_to_a_held_task_at_once() {
    let manager = started();
    let (_module, handle, runs, _) = held_task(&manager, LONG);
    handle.set_interval(ms(20)).unwrap();
    // The next run moves from ten minutes away to now (its tick has
    // passed), then every 20 ms.
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 4), "runs: {}", runs.load(Ordering::SeqCst));
    handle.cancel();
}

#[test]
fn other_work_on_the_module_runs_at_once_and_the_held_task_keeps_its_schedule() {
    let manager = started();
    let (module, handle, runs, _) = held_task(&manager, ms(200));
    let started_at = Instant::now();
    let quick = module.add_task(|| 1).unwrap();
    assert_eq!(quick.join_timeout(SOON).unwrap(), 1);
    assert!(started_at.elapsed() < ms(150), "the lone worker ran other work at once, not after the tick");
    // The task went back to the timer and goes on running.
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 3));
    assert!(module.stats().workers <= 1);
    handle.cancel();
}

#[test]
fn a_held_task_runs_again_when_due() {
    let manager = started();
    let (_module, handle, runs, _) = held_task(&manager, ms(30));
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 5));
    handle.cancel();
    assert!(handle.wait_timeout(SOON));
}

#[test]
fn shutdown_does_not_wait_for_a_held_tasks_next_run_and_cancels_it() {
    let manager = started();
    let (module, handle, runs, payload) = held_task(&manager, LONG);
    let began = Instant::now();
    manager.shutdown_timeout(SOON).expect("shutdown ends without waiting ten minutes");
    assert!(began.elapsed() < SOON);
    assert!(handle.is_cancelled());
    assert!(handle.wait_timeout(SOON));
    assert_eq!(Arc::strong_count(&payload), 1, "method dropped at shutdown");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(module.stats().pending_timers, 0);
    assert_eq!(module.stats().workers, 0);
}

#[test]
fn cancel_pending_takes_held_tasks_too() {
    let manager = started();
    let (module, handle, _, payload) = held_task(&manager, LONG);
    assert_eq!(manager.cancel_pending(), 1);
    assert!(handle.wait_timeout(SOON));
    assert!(handle.is_cancelled());
    assert_eq!(Arc::strong_count(&payload), 1);
    assert_eq!(module.stats().pending_timers, 0);
}

#[test]
fn held_or_not_by_the_keep_alive_a_task_runs_on_time() {
    let manager = TaskManager::builder().keep_alive(ms(50)).build().unwrap();
    manager.start_thread().unwrap();
    // Due 100 ms apart: beyond the keep-alive, so never held; the task
    // must still run on time through the timer.
    let (_module, handle, runs, _) = held_task(&manager, ms(100));
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 3));
    handle.cancel();
    // Due 20 ms apart: held, within the keep-alive.
    let (module, handle, runs, _) = held_task(&manager, ms(20));
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 5));
    assert_eq!(module.stats().workers, 1);
    handle.cancel();
}

#[test]
fn races_between_holding_cancel_new_intervals_other_work_and_shutdown_lose_nothing() {
    for round in 0..100u64 {
        let manager = started();
        let module = Module::new(&manager, 1 + (round % 2) as usize).unwrap();
        let handle = module.schedule_recurring(Recurrence::every(ms(1)).run_now(true), || ()).unwrap();
        let submitter = {
            let module = module.clone();
            std::thread::spawn(move || {
                (0..50u64).map(|i| module.add_task(move || i).unwrap()).collect::<Vec<_>>()
            })
        };
        let steerer = {
            let handle = handle.clone();
            std::thread::spawn(move || {
                for i in 0..20u64 {
                    handle.set_interval(ms(1 + i % 3)).unwrap();
                    std::thread::sleep(Duration::from_micros(100 * (round % 7)));
                }
            })
        };
        std::thread::sleep(Duration::from_micros(300 * (round % 5)));
        if round % 3 == 0 {
            assert!(handle.cancel(), "round {round}");
        }
        steerer.join().unwrap();
        for (i, task) in submitter.join().unwrap().into_iter().enumerate() {
            assert_eq!(task.join_timeout(SOON).unwrap(), i as u64, "round {round}: other work ran");
        }
        manager.shutdown_timeout(SOON).unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        assert!(handle.wait_timeout(SOON), "round {round}: the task ended");
        assert!(handle.is_cancelled(), "round {round}");
        let stats = module.stats();
        assert_eq!((stats.pending_timers, stats.queued, stats.workers), (0, 0, 0), "round {round}");
    }
}
