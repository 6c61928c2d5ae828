//! User code never kills a worker: panics in tasks and callbacks are caught,
//! reported through the handle and logged.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{eventually, started};
use taskmanager::{Module, Recurrence, Task, TaskError};

#[test]
fn a_panicking_task_reports_its_message_and_skips_callbacks() {
    let manager = started();
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let handle = manager
        .add_task(Task::new(|| -> i32 { panic!("bad input {}", 42) }).callback(move |_: &i32| {
            c.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    assert_eq!(handle.join(), Err(TaskError::Panicked { message: "bad input 42".into() }));
    assert_eq!(called.load(Ordering::SeqCst), 0, "no value, so no callback");
}

#[test]
fn a_panicking_callback_is_reported_and_later_callbacks_still_run() {
    let manager = started();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s3) = (seen.clone(), seen.clone());
    let handle = manager
        .add_task(
            Task::new(|| 1)
                .callback(move |v: &i32| s1.lock().unwrap().push(("first", *v)))
                .callback(|_: &i32| panic!("callback broke"))
                .callback(move |v: &i32| s3.lock().unwrap().push(("third", *v))),
        )
        .unwrap();
    assert_eq!(
        handle.join(),
        Err(TaskError::CallbackPanicked { index: 1, message: "callback broke".into() })
    );
    assert_eq!(*seen.lock().unwrap(), [("first", 1), ("third", 1)]);
}

#[test]
fn workers_survive_panics_and_keep_running_tasks() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    for i in 0..50 {
        let failed = module.add_task(move || -> () { panic!("panic {i}") }).unwrap();
        assert!(matches!(failed.join(), Err(TaskError::Panicked { .. })));
    }
    assert_eq!(module.add_task(|| "alive").unwrap().join().unwrap(), "alive");
    assert!(module.worker_count() <= 1);
}

#[test]
fn non_string_panic_payloads_are_reported_too() {
    let manager = started();
    let handle = manager.add_task(|| std::panic::panic_any(17u8)).unwrap();
    assert_eq!(handle.join(), Err(TaskError::Panicked { message: "non-string panic payload".into() }));
}

/// A logger that keeps error records, to check panics are logged.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Error {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_recurring_task_that_panics_every_run_keeps_its_schedule_and_leaks_nothing() {
    let manager = started();
    let held = Arc::new(());
    let captured = held.clone();
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(common::ms(2)), move || -> () {
            let _keep = &captured;
            let n = a.fetch_add(1, Ordering::SeqCst);
            panic!("run {n} failed")
        })
        .unwrap();
    assert!(eventually(|| handle.runs() >= 20), "runs: {}", handle.runs());
    handle.cancel();
    handle.wait();
    // Every run failed, every failure was counted, the latest is kept.
    assert_eq!(handle.failures(), handle.runs());
    assert_eq!(handle.runs() as usize, attempts.load(Ordering::SeqCst));
    let last = format!("run {} failed", handle.runs() - 1);
    assert!(matches!(handle.last_failure(), Some(TaskError::Panicked { message }) if message == last));
    // Cancelled: the closure, and everything it captured, is gone.
    assert!(eventually(|| Arc::strong_count(&held) == 1));
    manager.shutdown();
}

#[test]
fn panics_are_logged_through_the_log_crate() {
    static LOGGER: Capture = Capture(Mutex::new(Vec::new()));
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Error);
    let manager = started();
    let handle = manager.add_task(|| -> () { panic!("logged panic") }).unwrap();
    let _ = handle.join();
    let cb = manager.add_task(Task::new(|| ()).callback(|_: &()| panic!("logged callback"))).unwrap();
    let _ = cb.join();
    assert!(eventually(|| {
        let lines = LOGGER.0.lock().unwrap();
        lines.iter().any(|l| l.contains("logged panic"))
            && lines.iter().any(|l| l.contains("logged callback"))
    }));
}
