//! Worker starts that failed: the timer retries them (see
//! [`Timer::retry_spawn`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::driver::{Target, Timer};
use crate::sync::lock;

impl<T: Target> Timer<T> {
    /// A worker could not be started for `target`, which has queued work and
    /// no worker: try again at `at` (the timer thread does, or a shutdown
    /// waiting for the end; see [`run_retries`](Self::run_retries)).
    pub(crate) fn retry_spawn(&self, target: &Arc<T>, at: Instant) {
        let mut state = lock(&self.state);
        if state.retries.iter().any(|(_, t)| Arc::ptr_eq(t, target)) {
            return;
        }
        state.retries.push((at, Arc::clone(target)));
        drop(state);
        // Rare: no need to tell whether it is the earliest.
        self.wake.notify_all();
        self.rt.threads.notify();
    }

    /// Retries the worker starts that are due, for a shutdown waiting for
    /// the end (the timer thread, which does it while the manager runs, has
    /// ended); returns how long until the next one, if any is left.
    pub(crate) fn run_retries(&self) -> Option<Duration> {
        let due = lock(&self.state).due_retries();
        for target in due {
            target.kick(); // a failure here schedules the next retry
        }
        lock(&self.state).retry_wait()
    }
}
