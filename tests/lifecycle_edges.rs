//! The edges of a manager's life: dropping it after a bounded shutdown gave
//! up, a bounded shutdown called from inside a task, what `join` promises
//! about `stats().running`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{ms, started, SOON};
use taskmanager::{Module, TaskHandle};

/// Starts, on `module`, a task that blocks until the returned flag is set
/// (or 30 s pass, so a failing test still ends); returns once it runs.
fn blocked(module: &Module) -> (TaskHandle<()>, Arc<AtomicBool>) {
    let (started, running) = mpsc::channel();
    let release = Arc::new(AtomicBool::new(false));
    let flag = release.clone();
    let handle = module
        .add_task(move || {
            started.send(()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(ms(2));
            }
        })
        .unwrap();
    running.recv_timeout(SOON).unwrap();
    (handle, release)
}

#[test]
fn drop_after_a_timed_out_shutdown_does_not_wait_for_the_stragglers() {
    let manager = started();
    let (stuck, release) = blocked(manager.default_module());

    let t = Instant::now();
    let err = manager.shutdown_timeout(ms(100)).unwrap_err();
    assert_eq!(err.still_running, 1);
    assert!(t.elapsed() < SOON);

    // Before the fix, this drop waited for the blocked task without end.
    let t = Instant::now();
    drop(manager);
    assert!(t.elapsed() < ms(1_000), "drop waited {:?} for a task already reported", t.elapsed());

    // The straggler still finishes in the background and reports.
    assert!(!stuck.is_done());
    release.store(true, Ordering::SeqCst);
    stuck.join_timeout(SOON).map_err(|_| "the straggler never finished").unwrap();
}

#[test]
fn shutdown_timeout_inside_a_task_waits_for_other_modules_work() {
    let manager = started();
    let slow = Module::new(&manager, 1).unwrap();
    let (slow_task, release) = blocked(&slow);

    let inner = manager.clone();
    let caller = manager
        .add_task(move || {
            let t = Instant::now();
            let result = inner.shutdown_timeout(ms(200));
            (result, t.elapsed())
        })
        .unwrap();
    let (result, took) =
        caller.join_timeout(SOON).map_err(|_| "shutdown_timeout inside a task hung").unwrap();
    // Another module's task is still running: that is not a success.
    let err = result.expect_err("shutdown_timeout reported success while a task was still running");
    assert_eq!(err.still_running, 1, "{err}");
    assert_eq!(err.running[0].id, slow_task.id(), "the caller itself is not listed: {err}");
    assert!(took >= ms(150), "gave up after {took:?}, before its deadline");

    release.store(true, Ordering::SeqCst);
    slow_task.join_timeout(SOON).map_err(|_| "blocked task").unwrap();
}

#[test]
fn shutdown_timeout_inside_a_task_succeeds_once_only_the_caller_is_left() {
    let manager = started();
    let other = Module::new(&manager, 2).unwrap();
    let short = other.add_task(|| std::thread::sleep(ms(50))).unwrap();
    let inner = manager.clone();
    let caller = manager.add_task(move || inner.shutdown_timeout(SOON)).unwrap();
    let result = caller.join_timeout(SOON * 2).map_err(|_| "hung").unwrap();
    assert_eq!(result, Ok(()));
    assert!(short.is_done(), "Ok(()) came before the other task ended");
}

#[test]
fn after_join_a_task_is_not_running_anywhere_the_api_can_see() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    for i in 0..2_000 {
        module.add_task(|| ()).unwrap().join().unwrap();
        let stats = module.stats();
        assert_eq!(stats.running, 0, "try {i}: joined task still counted running: {stats:?}");
        assert!(manager.running_tasks().is_empty(), "try {i}: {:?}", manager.running_tasks());
    }
}

#[test]
fn a_cancelled_task_is_never_counted_running() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (first, release) = blocked(&module);
    let queued: Vec<_> = (0..50).map(|_| module.add_task(|| ()).unwrap()).collect();
    for handle in &queued {
        assert!(handle.cancel());
    }
    release.store(true, Ordering::SeqCst);
    first.join().unwrap();
    // The worker passes the 50 cancelled cells: none of them is "running".
    for _ in 0..200 {
        assert!(module.stats().running <= 1);
        let running = manager.running_tasks();
        assert!(running.iter().all(|t| queued.iter().all(|h| h.id() != t.id)), "{running:?}");
    }
}
