//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use taskmanager::TaskManager;

/// A generous bound for "soon": these tests prove semantics, not speed.
pub const SOON: Duration = Duration::from_secs(5);

/// A started manager with default settings.
pub fn started() -> TaskManager {
    let manager = TaskManager::new();
    manager.start_thread().expect("start");
    manager
}

/// Polls `cond` until it holds or `SOON` passes; returns whether it held.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + SOON;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
