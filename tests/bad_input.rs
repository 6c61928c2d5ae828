//! Bad settings and arguments get typed errors at the call, never a panic.

mod common;

use std::time::Duration;

use common::started;
use taskmanager::{ConfigError, Module, Recurrence, SubmitError, TaskManager};

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
    assert_eq!(zero.to_string(), "a recurring task needs an interval greater than zero");
    let long = manager.schedule_task(Duration::MAX, || ()).unwrap_err();
    assert!(long.to_string().contains("beyond the clock's range"), "{long}");
    manager.shutdown();
    let shut = manager.add_task(|| ()).unwrap_err();
    assert!(matches!(shut, SubmitError::ShutDown));
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
