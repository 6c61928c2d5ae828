//! [`Limited`]: the method of a task made with [`Task::time_limit`], each
//! run of it watched by the time-limit watchdog (`limit.rs`).

use std::time::Duration;

use crate::err::TaskError;
use crate::limit::{watch, watch_error};
use crate::task::{Attempt, Method, MethodMut, Task};

/// The method of a task made with [`Task::time_limit`]: see there.
pub struct Limited<F> {
    method: F,
    limit: Duration,
}

impl<F> std::fmt::Debug for Limited<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited").field("limit", &self.limit).finish()
    }
}

impl<F, T> Task<F, T> {
    /// Gives each run of the method `limit`: the method reads its
    /// [`Deadline`](crate::Deadline) (`Deadline::current()`) and should return once it
    /// has passed. A run that ends past its deadline fails with
    /// [`TaskError::TimeLimitExceeded`] (its value is dropped; callbacks
    /// do not run); one still running [`STUCK_AFTER`](crate::STUCK_AFTER) after it is given
    /// up: its worker's place goes to a new thread, so the module's
    /// capacity holds, a one-shot task's handle settles failed at once
    /// (`abandoned: true`; counted in [`Stats::abandoned`](crate::Stats::abandoned)),
    /// and what the call returns later is dropped. For every kind of
    /// task: one-shot, recurring (each run), and with
    /// [`retry`](Self::retry) (each attempt; an abandoned one is not
    /// retried).
    pub fn time_limit(self, limit: Duration) -> Task<Limited<F>, T> {
        Task { method: Limited { method: self.method, limit }, callbacks: self.callbacks, name: self.name }
    }
}

/// Runs `call` (a run of the method) watched for `limit`: its outcome, or,
/// past the limit, what `failed` makes of it and the limit's failure.
fn within<R>(limit: Duration, call: impl FnOnce() -> R, failed: impl FnOnce(R, TaskError) -> R) -> R {
    let watch = watch(limit, format!("a task (time_limit {} s)", limit.as_secs_f64()), None);
    let outcome = call();
    match watch_error(limit, watch.end()) {
        None => outcome,
        Some(error) => failed(outcome, error),
    }
}

impl<F: Method<T>, T> Method<T> for Limited<F> {
    fn call(self) -> Result<T, TaskError> {
        let Limited { method, limit } = self;
        within(limit, || method.call(), |_, error| Err(error))
    }

    fn attempt(self) -> Attempt<Self, T> {
        let Limited { method, limit } = self;
        let attempt = within(
            limit,
            || method.attempt(),
            |attempt, error| match attempt {
                // A retry of the inner method's own is still a retry.
                Attempt::Again { method, retry, after, .. } if !is_abandoned(&error) => {
                    Attempt::Again { method, error, retry, after }
                }
                _ => Attempt::Done(Err(error)),
            },
        );
        match attempt {
            Attempt::Done(result) => Attempt::Done(result),
            Attempt::Again { method, error, retry, after } => {
                Attempt::Again { method: Limited { method, limit }, error, retry, after }
            }
            Attempt::RetriedElsewhere { error, retry, after } => {
                Attempt::RetriedElsewhere { error, retry, after }
            }
        }
    }

    const RETRIES: bool = F::RETRIES;

    fn escapes(&self) -> bool {
        true
    }
}

impl<F: MethodMut<T>, T> MethodMut<T> for Limited<F> {
    fn call_mut(&mut self) -> Result<T, TaskError> {
        let method = &mut self.method;
        within(self.limit, || method.call_mut(), |_, error| Err(error))
    }

    fn escapes(&self) -> bool {
        true
    }
}

fn is_abandoned(error: &TaskError) -> bool {
    matches!(error, TaskError::TimeLimitExceeded { abandoned: true, .. })
}
