//! Time limits of Rust tasks (`Task::time_limit`): the cooperative
//! `Deadline` a task reads, a run that ends late failing, and a run that
//! does not return given up: its handle settles at once, its worker's place
//! goes to a new thread (the module's capacity holds), and what it returns
//! later is dropped. Real time (the watchdog's clock), generous bounds.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, ms, started, SOON};
use taskmanager::{Deadline, Module, Recurrence, Retry, Task, TaskError, STUCK_AFTER};

const LIMIT: Duration = Duration::from_millis(50);

/// Counts its drops: a value the library drops unseen still drops.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_task_reads_its_deadline_and_one_that_ends_in_time_is_untouched() {
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let seen = module
        .add_task(Task::new(|| Deadline::current().map(|d| (d.limit(), d.expired()))).time_limit(SOON))
        .unwrap();
    let (limit, expired) = seen.join().unwrap().expect("a deadline inside a limited task");
    assert_eq!(limit, SOON);
    assert!(!expired);
    let called = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&called);
    let plain = module.add_task(Task::new(Deadline::current).callback(move |_| {
        c.fetch_add(1, SeqCst);
    }));
    assert_eq!(plain.unwrap().join().unwrap(), None, "no deadline without a limit");
    assert_eq!(Deadline::current(), None, "none outside a task");
    assert_eq!(called.load(SeqCst), 1);
    manager.shutdown();
}

#[test]
fn a_task_that_checks_its_deadline_stops_and_fails_with_the_limit() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let steps = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&steps);
    let handle = module
        .add_task(
            Task::new(move || {
                let deadline = Deadline::current().unwrap();
                while !deadline.expired() {
                    s.fetch_add(1, SeqCst);
                    std::thread::sleep(ms(5));
                }
                "stopped"
            })
            .time_limit(LIMIT),
        )
        .unwrap();
    assert!(handle.wait_timeout(SOON));
    assert_eq!(handle.join(), Err(TaskError::TimeLimitExceeded { limit: LIMIT, abandoned: false }));
    assert!(steps.load(SeqCst) >= 2, "it ran until its deadline");
    let stats = module.stats();
    assert_eq!((stats.failed, stats.abandoned, stats.completed), (1, 0, 0));
    manager.shutdown();
}

#[test]
fn a_run_that_returns_late_fails_its_value_dropped_and_no_callback_called() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (dropped, called) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (d, c) = (Arc::clone(&dropped), Arc::clone(&called));
    let handle = module
        .add_task(
            Task::new(move || {
                std::thread::sleep(LIMIT * 4); // ignores its deadline
                Tracked(d)
            })
            .callback(move |_| {
                c.fetch_add(1, SeqCst);
            })
            .time_limit(LIMIT),
        )
        .unwrap();
    assert!(matches!(handle.join(), Err(TaskError::TimeLimitExceeded { abandoned: false, .. })));
    assert_eq!(dropped.load(SeqCst), 1);
    assert_eq!(called.load(SeqCst), 0);
    manager.shutdown();
}

#[test]
fn a_run_that_does_not_return_is_given_up_and_its_place_goes_to_a_new_thread() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (release, stuck) = mpsc::channel::<()>();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = Arc::clone(&dropped);
    let started_at = Instant::now();
    let blocked = module
        .add_task(
            Task::new(move || {
                stuck.recv().ok(); // blocks, deadline or not
                Tracked(d)
            })
            .time_limit(LIMIT),
        )
        .unwrap();
    // Queued behind it on a module of one worker.
    let next = module.add_task(|| "ran").unwrap();
    assert!(blocked.wait_timeout(SOON), "the stuck run was not given up");
    let settled_after = started_at.elapsed();
    assert!(settled_after >= LIMIT + STUCK_AFTER, "given up too soon: {settled_after:?}");
    assert!(matches!(blocked.join(), Err(TaskError::TimeLimitExceeded { limit: LIMIT, abandoned: true })));
    // The module's one place went to a new thread, which runs the next task
    // while the first is still stuck.
    assert!(next.wait_timeout(SOON), "the module's capacity was not given back");
    assert_eq!(next.join(), Ok("ran"));
    let stats = module.stats();
    assert_eq!((stats.failed, stats.abandoned, stats.completed), (1, 1, 1), "{stats:?}");
    assert!(stats.workers <= 1, "{stats:?}");
    assert_eq!(dropped.load(SeqCst), 0, "still running");
    // It returns at last: its value is dropped, nothing counted twice, and
    // its thread exits (the shutdown below joins every worker).
    release.send(()).unwrap();
    assert!(eventually(|| dropped.load(SeqCst) == 1));
    let stats = module.stats();
    assert_eq!((stats.failed, stats.abandoned, stats.completed), (1, 1, 1), "{stats:?}");
    manager.shutdown();
}

#[test]
fn each_recurring_run_is_limited_and_the_schedule_goes_on() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let recurring = module
        .schedule_recurring(
            Recurrence::every(ms(10)),
            Task::new(move || {
                // Every other run is too slow.
                if r.fetch_add(1, SeqCst) % 2 == 0 {
                    std::thread::sleep(LIMIT * 3);
                }
            })
            .time_limit(LIMIT),
        )
        .unwrap();
    assert!(eventually(|| recurring.runs() >= 4));
    recurring.cancel();
    assert!(recurring.failures() >= 2);
    assert!(matches!(recurring.last_failure(), Some(TaskError::TimeLimitExceeded { abandoned: false, .. })));
    manager.shutdown();
}

#[test]
fn a_late_attempt_is_retried_but_an_abandoned_one_is_not() {
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let retry = || Retry::new(3).backoff(ms(1), ms(1)).jitter(0.0);
    let late_once = module
        .add_task(
            Task::new(move || {
                if c.fetch_add(1, SeqCst) == 0 {
                    std::thread::sleep(LIMIT * 3);
                }
                "second"
            })
            .time_limit(LIMIT)
            .retry(retry()),
        )
        .unwrap();
    assert_eq!(late_once.join(), Ok("second"));
    assert_eq!(calls.load(SeqCst), 2);

    let (release, stuck) = mpsc::channel::<()>();
    let stuck = Arc::new(std::sync::Mutex::new(stuck));
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    let abandoned = module
        .add_task(
            Task::new(move || {
                a.fetch_add(1, SeqCst);
                stuck.lock().unwrap().recv().ok();
            })
            .time_limit(LIMIT)
            .retry(retry()),
        )
        .unwrap();
    assert!(abandoned.wait_timeout(SOON));
    assert!(matches!(abandoned.join(), Err(TaskError::TimeLimitExceeded { abandoned: true, .. })));
    release.send(()).unwrap();
    std::thread::sleep(ms(100));
    assert_eq!(attempts.load(SeqCst), 1, "an abandoned attempt may still run: never retried beside it");
    assert_eq!(module.stats().retried, 1, "only the late attempt above");
    manager.shutdown();
}
