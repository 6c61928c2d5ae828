//! Bad settings and arguments get typed errors at the call, never a panic.

mod common;

use std::io;
use std::time::Duration;

use common::started;
use taskmanager::{ConfigError, Module, Recurrence, StartError, SubmitError, TaskManager};

#[test]
fn zero_max_workers_is_refused_for_modules_and_the_default_module() {
    let manager = TaskManager::new();
    assert_eq!(Module::new(&manager, 0).unwrap_err(), ConfigError::ZeroMaxWorkers);
    let err = TaskManager::builder().default_max_workers(0).build().unwrap_err();
    assert_eq!(err, ConfigError::ZeroMaxWorkers);
    assert_eq!(err.to_string(), "max_workers must be at least 1, got 0");
}

#[test]
fn errors_say_what_went_wrong() {
    let manager = started();
    let zero = manager.schedule_recurring(Recurrence::every(Duration::ZERO), || ()).unwrap_err();
    assert_eq!(zero.to_string(), "a recurring task's interval must be at least 1ms, got 0ns");
    let short = manager.schedule_recurring(Recurrence::every(Duration::from_micros(999)), || ()).unwrap_err();
    assert_eq!(short.to_string(), "a recurring task's interval must be at least 1ms, got 999µs");
    let long = manager.schedule_task(Duration::MAX, || ()).unwrap_err();
    assert!(long.to_string().contains("beyond the clock's range"), "{long}");
    manager.shutdown();
    let shut = manager.add_task(|| ()).unwrap_err();
    assert_eq!(shut, SubmitError::ShutDown);
    assert_eq!(shut.to_string(), "task manager is shut down; task not accepted");
}

#[test]
fn the_largest_valid_delays_are_accepted() {
    let manager = started();
    let year = Duration::from_secs(365 * 24 * 3600);
    let h = manager.schedule_task(100 * year, || ()).unwrap();
    let r = manager.schedule_recurring(Recurrence::every(100 * year), || ()).unwrap();
    assert!(h.cancel() && r.cancel());
}

#[test]
fn errors_compare_equal_by_variant_and_fields_and_io_errors_by_kind() {
    let ms = Duration::from_millis;
    assert_eq!(SubmitError::QueueFull { capacity: 3 }, SubmitError::QueueFull { capacity: 3 });
    assert_ne!(SubmitError::QueueFull { capacity: 3 }, SubmitError::QueueFull { capacity: 4 });
    assert_eq!(
        SubmitError::IntervalTooShort { interval: ms(0) },
        SubmitError::IntervalTooShort { interval: ms(0) }
    );
    assert_ne!(SubmitError::DelayTooLong { delay: ms(1) }, SubmitError::IntervalTooShort { interval: ms(1) });
    assert_ne!(SubmitError::ShutDown, SubmitError::Forked);
    // io::Error is not comparable: Spawn errors compare by kind, whatever
    // their message or source.
    let spawn = |kind, msg: &str| SubmitError::Spawn(io::Error::new(kind, msg.to_owned()));
    assert_eq!(spawn(io::ErrorKind::WouldBlock, "a"), spawn(io::ErrorKind::WouldBlock, "b"));
    assert_eq!(spawn(io::ErrorKind::OutOfMemory, "a"), SubmitError::Spawn(io::ErrorKind::OutOfMemory.into()));
    assert_ne!(spawn(io::ErrorKind::WouldBlock, "a"), spawn(io::ErrorKind::OutOfMemory, "a"));
    assert_ne!(spawn(io::ErrorKind::WouldBlock, "a"), SubmitError::ShutDown);
    let start = |kind, msg: &str| StartError::Spawn(io::Error::new(kind, msg.to_owned()));
    assert_eq!(start(io::ErrorKind::WouldBlock, "a"), start(io::ErrorKind::WouldBlock, "b"));
    assert_ne!(start(io::ErrorKind::WouldBlock, "a"), start(io::ErrorKind::Other, "a"));
    assert_ne!(start(io::ErrorKind::WouldBlock, "a"), StartError::ShutDown);
    assert_eq!(StartError::Forked, StartError::Forked);
}

#[test]
fn results_compare_with_assert_eq() {
    let manager = TaskManager::new();
    manager.shutdown();
    assert_eq!(manager.start_thread(), Err(StartError::ShutDown));
    assert_eq!(manager.add_task(|| ()).err(), Some(SubmitError::ShutDown));
    let module = Module::new(&manager, 1).unwrap();
    assert_eq!(
        module.schedule_task(Duration::MAX, || ()).err(),
        Some(SubmitError::DelayTooLong { delay: Duration::MAX })
    );
}
