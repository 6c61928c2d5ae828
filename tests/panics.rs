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

/// A panic payload whose own `Drop` panics: dropping it carelessly lets a
/// second panic out of the place that caught the first.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("boom");
    }
}

/// A placeholder, since the payload is not a string.
fn bomb_error() -> TaskError {
    TaskError::Panicked { message: "non-string panic payload".into() }
}

#[test]
fn a_panic_payload_whose_drop_panics_is_reported_and_the_worker_goes_on() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let handle = module.add_task(|| -> i32 { std::panic::panic_any(Bomb) }).unwrap();
    assert!(handle.wait_timeout(common::SOON), "the handle finishes");
    assert!(!handle.is_running());
    assert_eq!(handle.join(), Err(bomb_error()));
    // The same worker serves the next task.
    assert_eq!(module.add_task(|| "next").unwrap().join(), Ok("next"));
    assert_eq!(module.worker_count(), 1);
    let stats = module.stats();
    assert_eq!((stats.failed, stats.completed), (1, 1), "{stats:?}");
}

#[test]
fn a_callback_panicking_with_such_a_payload_is_reported_and_later_callbacks_run() {
    let manager = started();
    let later = Arc::new(AtomicUsize::new(0));
    let l = later.clone();
    let handle = manager
        .add_task(Task::new(|| 5).callback(|_: &i32| std::panic::panic_any(Bomb)).callback(move |v: &i32| {
            l.fetch_add(*v as usize, Ordering::SeqCst);
        }))
        .unwrap();
    assert!(handle.wait_timeout(common::SOON), "the handle finishes");
    assert_eq!(
        handle.join(),
        Err(TaskError::CallbackPanicked { index: 0, message: "non-string panic payload".into() })
    );
    assert_eq!(later.load(Ordering::SeqCst), 5);
}

#[test]
fn a_recurring_task_panicking_with_such_a_payload_keeps_firing() {
    let manager = started();
    let handle = manager
        .schedule_recurring(Recurrence::every(common::ms(2)), || -> () { std::panic::panic_any(Bomb) })
        .unwrap();
    assert!(eventually(|| handle.failures() >= 5), "runs: {}", handle.runs());
    assert_eq!(handle.last_failure(), Some(bomb_error()));
    handle.cancel();
    assert!(handle.wait_timeout(common::SOON));
    assert_eq!(handle.runs(), handle.failures());
}

/// A task's value whose `Drop` panics (with a string, or with a `Bomb`).
struct PanicsOnDrop(bool);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if self.0 {
            std::panic::panic_any(Bomb);
        }
        panic!("value dropped");
    }
}

#[test]
fn a_return_value_whose_drop_panics_does_not_harm_the_worker() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    for bomb in [false, true] {
        // Its handle dropped first, so the worker drops the value.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let handle = module
            .add_task(move || {
                let _ = rx.recv();
                PanicsOnDrop(bomb)
            })
            .unwrap();
        drop(handle);
        tx.send(()).unwrap();
        assert_eq!(module.add_task(|| "next").unwrap().join(), Ok("next"));
        // Recurring: each run's value is dropped by the worker.
        let recurring =
            module.schedule_recurring(Recurrence::every(common::ms(2)), move || PanicsOnDrop(bomb)).unwrap();
        assert!(eventually(|| recurring.runs() >= 5), "runs: {}", recurring.runs());
        assert_eq!(recurring.failures(), 0, "the method returned; only its value's drop panicked");
        recurring.cancel();
        assert!(recurring.wait_timeout(common::SOON));
    }
    assert_eq!(module.add_task(|| "alive").unwrap().join(), Ok("alive"));
    assert_eq!(module.worker_count(), 1);
    let stats = module.stats();
    assert_eq!(stats.failed, 0, "{stats:?}");
}
