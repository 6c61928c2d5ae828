//! Task cells: one allocation per submission, shared by the place that will
//! run it (module queue or timer, as a [`JobRef`]) and the user's handle.
//!
//! See `PROTOCOL.md` for the state machine and who may move it.
//!
//! One concept per file:
//!
//! - this file: what every cell shares and what the rest of the crate sees
//!   of one: the [`Job`] a queue or the timer runs (held as a [`JobRef`])
//!   against a worker's [`RunContext`], what a run came to ([`Ran`]), the
//!   traits handles use ([`Waitable`], [`Outcome`], [`Control`]), the
//!   callbacks and how a run invokes the method and them;
//! - `core.rs`: [`Core`], the state word (phase and flags), id and name,
//!   timer slot, and the waiting every final move wakes;
//! - `oneshot.rs`: [`OneShot`], a task that runs once;
//! - `recurring.rs`: [`Recurring`], a task that runs every interval until
//!   cancelled.

mod core;
mod oneshot;
mod plan;
mod recurring;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::err::TaskError;
use crate::event::{Event, Events};
use crate::schedule::Nanos;
use crate::sync::{lock, Mutex};
use crate::task::{panicked, Attempt, Callback, Method};
use crate::timer::Slotted;
use crate::unwind::panic_message;

pub(crate) use self::core::Core;
#[cfg(feature = "redis")]
pub(crate) use self::core::Label;
pub(crate) use self::oneshot::OneShot;
pub(crate) use self::plan::{Plan, Rule, Times};
pub(crate) use self::recurring::Recurring;

/// A task's callbacks, one word wide: most tasks have none, and every word
/// of a cell counts a million times over in the timer.
// A boxed Vec is the point: one word in the cell, against three for a Vec.
#[allow(clippy::box_collection)]
pub(crate) struct Callbacks<T>(Option<Box<Vec<Callback<T>>>>);

impl<T> Callbacks<T> {
    pub(crate) fn new(callbacks: Vec<Callback<T>>) -> Self {
        Callbacks((!callbacks.is_empty()).then(|| Box::new(callbacks)))
    }

    fn as_mut_slice(&mut self) -> &mut [Callback<T>] {
        self.0.as_deref_mut().map_or(&mut [], Vec::as_mut_slice)
    }
}

/// What a worker's call to [`Job::run`] came to, for the module's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ran {
    /// The method ran and returned (callbacks included).
    pub(crate) completed: bool,
    /// The method or a callback panicked.
    pub(crate) failed: bool,
    /// The task was cancelled before it ran, or (recurring) ended by a
    /// cancel that came during this run.
    pub(crate) cancelled: bool,
    /// The run failed and the task waits in the timer to run again.
    pub(crate) retried: bool,
    /// Why it failed.
    pub(crate) error: Option<TaskError>,
}

/// What a job needs from the place that runs it (a module's worker), so
/// that cells depend on no module: the inversion tokio's `Schedule` trait
/// makes between a task and its scheduler.
pub(crate) trait RunContext {
    /// Where the run's events go.
    fn events(&self) -> &Events;
    /// The manager's clock.
    fn now(&self) -> Nanos;
    /// The wall clock, in nanoseconds since the Unix epoch (see
    /// `Clock::wall`).
    fn wall(&self) -> u64;
    /// The run's start: the worker's last reading of the clock, if it took
    /// one just before the run (a timer's tick), else [`now`](Self::now).
    fn started(&self) -> Nanos;
    /// The task `core` has won its start (see `module::mark_running`);
    /// `due`, a recurring tick's due time (for its lateness).
    fn mark_running(&self, core: &Core, due: Option<Nanos>);
    /// The run's method and callbacks are over (see `module::count_run`),
    /// before its handle says so.
    fn count_run(&self, failed: bool);
    /// The run failed and the task will run again (see
    /// [`Task::retry`](crate::Task::retry)): counted as retried, not failed.
    fn count_retry(&self);
    /// A recurring task's `ticks` passed without a run (for metrics; its
    /// own count and event are its own).
    fn count_skipped(&self, core: &Core, ticks: u64);
    /// Puts a recurring job (or a one-shot one to retry) back in the timer at `due`; false (the job then
    /// retires) if it was cancelled meanwhile, has no next due time, or the
    /// manager is shutting down.
    fn reschedule(&self, job: Arc<dyn Job>, due: Option<Nanos>) -> bool;
}

/// What the module queue and the timer hold: something to run.
pub(crate) trait Job: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// Runs the task on a worker (its context `cx`), if it was not
    /// cancelled.
    fn run(self: Arc<Self>, cx: &dyn RunContext) -> Ran;
    /// Cancels if not started (recurring: also stops a running one from
    /// running again). Frees the method and callbacks at once. Returns
    /// whether this call cancelled it.
    fn cancel(&self) -> bool;
    /// What a listing shows of a recurring task; None for one-shot ones.
    fn recurring_info(&self) -> Option<RecurringInfo> {
        None
    }
    /// A calendar task's pending key again, the wall clock having stepped
    /// (see `plan.rs`); None for any other task.
    fn wall_rekey(&self, _now: Times) -> Option<Nanos> {
        None
    }
}

/// A recurring task's schedule and counts, for listings.
pub(crate) struct RecurringInfo {
    /// Zero for a calendar task.
    pub(crate) interval: Nanos,
    pub(crate) next_due: Nanos,
    /// A calendar task's next tick, on the wall clock.
    pub(crate) next_wall: Option<std::time::SystemTime>,
    /// A calendar task's rule.
    pub(crate) calendar: Option<Arc<crate::calendar::Cron>>,
    pub(crate) runs: u64,
    pub(crate) failures: u64,
    pub(crate) paused: bool,
}

/// An owned reference from a queue or the timer to a job that has yet to
/// run. Dropping it unrun cancels the job, so a task can never be lost
/// silently: its handle then says cancelled.
pub(crate) struct JobRef(Option<Arc<dyn Job>>);

impl JobRef {
    pub(crate) fn new(job: Arc<dyn Job>) -> Self {
        JobRef(Some(job))
    }

    /// The job, to look at.
    pub(crate) fn job(&self) -> Option<&dyn Job> {
        self.0.as_deref()
    }

    /// Another reference to the job, which does not cancel it when dropped.
    pub(crate) fn share(&self) -> Option<Arc<dyn Job>> {
        self.0.clone()
    }

    /// The job's id, and whether it has a name of its own.
    pub(crate) fn label(&self) -> Option<(u64, bool)> {
        self.core().map(|core| (core.id(), core.is_named()))
    }

    pub(crate) fn core(&self) -> Option<&Core> {
        self.0.as_deref().map(Job::core)
    }

    pub(crate) fn run(mut self, cx: &dyn RunContext) -> Ran {
        self.0.take().map(|job| job.run(cx)).unwrap_or_default()
    }

    /// Cancels now; returns whether it was still waiting.
    pub(crate) fn cancel(mut self) -> bool {
        self.0.take().is_some_and(|job| job.cancel())
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.cancel();
        }
    }
}

impl Slotted for JobRef {
    fn set_slot(&self, slot: u32) {
        if let Some(core) = self.core() {
            core.slot.store(slot, Ordering::Relaxed);
        }
    }
}

/// What every handle does with its cell, whatever the cell's kind.
pub(crate) trait Waitable: Send + Sync {
    fn core(&self) -> &Core;
    fn cancel(&self) -> bool;
    /// Whether a worker runs the task now (a task sent through a broker:
    /// asks Redis, see `broker/remote.rs`).
    fn is_running(&self) -> bool {
        self.core().is_running()
    }
    /// Blocks until the phase is final or `deadline` passes; true if final.
    fn wait_until(&self, deadline: Option<Instant>) -> bool;
    /// The task's id in a broker, if it was sent through one.
    fn broker_id(&self) -> Option<String> {
        None
    }
}

/// A job with a stage lock, which every final move holds.
trait Staged: Job {
    type Stage;
    fn stage(&self) -> &Mutex<Self::Stage>;
}

impl<C: Staged> Waitable for C {
    fn core(&self) -> &Core {
        Job::core(self)
    }

    fn cancel(&self) -> bool {
        Job::cancel(self)
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        Job::core(self).wait_final(lock(self.stage()), deadline)
    }
}

/// What a [`TaskHandle`](crate::TaskHandle) can do with a one-shot cell
/// without knowing the method's type.
pub(crate) trait Outcome<T>: Waitable {
    /// The result; call once, after `wait_until` returned true.
    fn take(&self) -> Result<T, TaskError>;
    /// The result if the task has finished; otherwise keeps `cx`'s waker
    /// to wake when it does.
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>>;
}

/// What a [`RecurringHandle`](crate::RecurringHandle) can do with a
/// recurring cell without knowing its types.
pub(crate) trait Control: Waitable {
    fn runs(&self) -> u64;
    fn failures(&self) -> u64;
    fn skipped(&self) -> u64;
    fn coalesced(&self) -> u64;
    /// Whether its ticks follow a calendar rule (it has no interval).
    fn is_calendar(&self) -> bool;
    fn last_failure(&self) -> Option<TaskError>;
    fn cancel_requested(&self) -> bool;
    /// Sets whether ticks run the method; returns whether this changed it.
    fn set_paused(&self, paused: bool) -> bool;
    /// Sets the interval, used from the end of the next run on; returns
    /// the old one.
    fn set_interval(&self, interval: Nanos) -> Nanos;
    /// The pending (or running) run's due time.
    fn due(&self) -> Nanos;
    /// Sets the pending run's due time (under the timer lock, while the
    /// task waits in the timer).
    fn set_due(&self, due: Nanos);
    fn is_paused(&self) -> bool;
}

/// Tells the `Started` event of a run.
fn tell_started(cx: &dyn RunContext, core: &Core) {
    cx.events().emit(log::Level::Trace, || Event::Started { task: core.task_ref() });
}

/// Runs the method, then every callback in order, each under `catch_unwind`.
/// A panicking method skips the callbacks (there is no value to give them);
/// a panicking callback does not stop the ones after it.
/// A method that returned a failure (see [`Method`](crate::task::Method))
/// skips them too.
fn invoke<T>(
    method: impl FnOnce() -> Result<T, TaskError>,
    callbacks: &mut [Callback<T>],
) -> Result<T, TaskError> {
    let value = catch_unwind(AssertUnwindSafe(method)).unwrap_or_else(|payload| Err(panicked(payload)))?;
    call_back(value, callbacks)
}

/// One attempt of a one-shot method ([`Method::attempt`]), then, if that
/// was the last, its callbacks as [`invoke`] runs them.
fn attempt<M: Method<T>, T>(method: M, callbacks: &mut [Callback<T>]) -> Attempt<M, T> {
    let attempt = catch_unwind(AssertUnwindSafe(|| method.attempt()))
        .unwrap_or_else(|payload| Attempt::Done(Err(panicked(payload))));
    match attempt {
        Attempt::Done(Ok(value)) => Attempt::Done(call_back(value, callbacks)),
        other => other,
    }
}

/// Gives `value` to every callback in order (see [`invoke`]).
fn call_back<T>(value: T, callbacks: &mut [Callback<T>]) -> Result<T, TaskError> {
    let mut first_failure = None;
    for (index, callback) in callbacks.iter_mut().enumerate() {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| callback(&value))) {
            let message = panic_message(payload);
            log::error!("task callback {index} panicked: {message}");
            first_failure.get_or_insert(TaskError::CallbackPanicked { index, message });
        }
    }
    match first_failure {
        None => Ok(value),
        Some(e) => Err(e),
    }
}
