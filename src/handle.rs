//! Handles: what every submission returns, to wait for, inspect and cancel
//! the task.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::err::{SubmitError, TaskError};
use crate::event::{Event, TaskRef};
use crate::job::{Control, Core, Outcome};
use crate::pool::Pool;
use crate::schedule::to_nanos;
use crate::timer::driver::Timer;

/// The handle of a one-shot task ([`add_task`](crate::Module::add_task) or
/// [`schedule_task`](crate::Module::schedule_task)).
///
/// `Send + Sync` and three words in size (a pointer to the task's cell, with
/// its vtable, and one to the manager, for scheduled tasks; a test holds
/// this line to the truth). Dropping it does not cancel the task; the task
/// runs and its value is dropped. Share it between threads with an `Arc`.
pub struct TaskHandle<T> {
    cell: Arc<dyn Outcome<T>>,
    /// The manager, for scheduled tasks: cancel removes them from its timer.
    timer: Option<Arc<Timer<Pool>>>,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(cell: Arc<dyn Outcome<T>>, timer: Option<Arc<Timer<Pool>>>) -> Self {
        TaskHandle { cell, timer }
    }

    /// Whether the task has finished: returned, failed or been cancelled.
    pub fn is_done(&self) -> bool {
        self.cell.core().is_finished()
    }

    /// The task's number, unique in the process.
    pub fn id(&self) -> u64 {
        self.cell.core().id()
    }

    /// For a task sent through a broker, its id there: any process sharing
    /// the broker can look it up with
    /// [`TaskManager::lookup`](crate::TaskManager::lookup). None for a task
    /// run in this process.
    pub fn broker_id(&self) -> Option<String> {
        self.cell.broker_id()
    }

    /// The task's [name](crate::Task::name), or `task-<id>` if it has none.
    pub fn name(&self) -> String {
        self.cell.core().name()
    }

    /// Whether the task was cancelled before it ran.
    pub fn is_cancelled(&self) -> bool {
        self.cell.core().is_cancelled()
    }

    /// Whether a worker is running the task right now.
    ///
    /// For a task sent through a broker, whether a worker (in any process)
    /// has claimed it and its result has not arrived: each call asks Redis
    /// (one script call, within the broker timeout; false if Redis cannot
    /// answer). False while it waits in its queue, its delay or a retry's
    /// backoff, as for a task run here.
    pub fn is_running(&self) -> bool {
        self.cell.is_running()
    }

    /// Cancels the task if it has not started; returns whether it did. A
    /// scheduled task leaves the timer at once, and its method and callbacks
    /// (with everything they captured) are dropped at once. A task that has
    /// started runs to the end; cancelling it returns `false`.
    pub fn cancel(&self) -> bool {
        cancel_cell(self.cell.core(), || self.cell.cancel(), self.timer.as_deref())
    }

    /// Blocks until the task has finished (returned, failed or cancelled).
    ///
    /// Waiting inside a task for a task of the same module can deadlock if
    /// every worker of that module is waiting the same way: give waits inside
    /// tasks their own module, or use [`wait_timeout`](Self::wait_timeout).
    pub fn wait(&self) {
        self.cell.wait_until(None);
    }

    /// Blocks until the task has finished or `timeout` passes; returns
    /// whether it finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.cell.wait_until(deadline(timeout))
    }

    /// Waits for the task and returns its value, or how it failed.
    pub fn join(self) -> Result<T, TaskError> {
        self.cell.wait_until(None);
        self.cell.take()
    }

    /// Like [`join`](Self::join) but gives up after `timeout`, handing the
    /// handle back to wait again or cancel.
    pub fn join_timeout(self, timeout: Duration) -> Result<T, JoinTimeoutError<T>> {
        if self.cell.wait_until(deadline(timeout)) {
            self.cell.take().map_err(JoinTimeoutError::Failed)
        } else {
            Err(JoinTimeoutError::Timeout(self))
        }
    }
}

/// Awaiting a handle gives what [`join`](TaskHandle::join) gives, without
/// blocking a thread: any executor can drive it (the crate depends on
/// none). The task runs on its module's workers either way; dropping the
/// future does not cancel it.
///
/// ```
/// use std::future::Future;
/// use std::pin::pin;
/// use std::sync::Arc;
/// use std::task::{Context, Poll, Wake, Waker};
/// use taskmanager::TaskManager;
///
/// // The smallest executor: park the thread until woken.
/// struct Unpark(std::thread::Thread);
/// impl Wake for Unpark {
///     fn wake(self: Arc<Self>) {
///         self.0.unpark();
///     }
/// }
/// fn block_on<F: Future>(future: F) -> F::Output {
///     let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
///     let mut future = pin!(future);
///     loop {
///         if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
///             return out;
///         }
///         std::thread::park();
///     }
/// }
///
/// let manager = TaskManager::new();
/// manager.start_thread()?;
/// let handle = manager.add_task(|| 6 * 7)?;
/// assert_eq!(block_on(async { handle.await })?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_take(cx)
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.cell.core();
        f.debug_struct("TaskHandle").field("name", &core.name()).field("state", &state_name(core)).finish()
    }
}

/// The handle of a recurring task
/// ([`schedule_recurring`](crate::Module::schedule_recurring)).
///
/// Cheap to clone, `Send + Sync`. Dropping it does not stop the task: call
/// [`cancel`](Self::cancel), or shut the manager down.
#[derive(Clone)]
pub struct RecurringHandle {
    cell: Arc<dyn Control>,
    timer: Arc<Timer<Pool>>,
}

impl RecurringHandle {
    pub(crate) fn new(cell: Arc<dyn Control>, timer: Arc<Timer<Pool>>) -> Self {
        RecurringHandle { cell, timer }
    }

    /// Stops all future runs; returns whether this call stopped it. A run in
    /// progress finishes first (see [`wait`](Self::wait)); a pending run
    /// leaves the timer at once, freeing its method and callbacks.
    pub fn cancel(&self) -> bool {
        cancel_cell(self.cell.core(), || self.cell.cancel(), Some(&self.timer))
    }

    /// Whether the task has been cancelled (by [`cancel`](Self::cancel) or
    /// by shutdown). No run starts after this returns true, though one that
    /// started before may still be finishing.
    pub fn is_cancelled(&self) -> bool {
        self.cell.core().is_cancelled() || self.cell.cancel_requested()
    }

    /// Whether the task is over: cancelled and no run in progress.
    pub fn is_done(&self) -> bool {
        self.cell.core().is_finished()
    }

    /// The task's number, unique in the process.
    pub fn id(&self) -> u64 {
        self.cell.core().id()
    }

    /// The task's [name](crate::Task::name), or `task-<id>` if it has none.
    pub fn name(&self) -> String {
        self.cell.core().name()
    }

    /// Pauses the task: its ticks keep their times but skip the method
    /// (each counts in [`skipped_ticks`](Self::skipped_ticks)) until
    /// [`resume`](Self::resume). A run in progress finishes. Returns false
    /// if it was already paused or has ended.
    pub fn pause(&self) -> bool {
        self.set_paused(true, |task| Event::Paused { task })
    }

    /// Resumes a paused task. Its next run is at its next tick on the
    /// original grid: no burst for the ticks it missed. Returns false if it
    /// was not paused or has ended.
    pub fn resume(&self) -> bool {
        self.set_paused(false, |task| Event::Resumed { task })
    }

    /// Pauses or resumes; if that changed anything, tells `event`.
    fn set_paused(&self, paused: bool, event: impl FnOnce(TaskRef) -> Event) -> bool {
        let changed = !self.is_done() && self.cell.set_paused(paused);
        if changed {
            self.timer.runtime().events.emit(log::Level::Info, || event(self.cell.core().task_ref()));
        }
        changed
    }

    /// Whether the task is paused.
    pub fn is_paused(&self) -> bool {
        self.cell.is_paused()
    }

    /// Changes the interval, at once: the next run moves to one new
    /// interval after the previous tick (or to now, if that has passed),
    /// and the grid goes on from there. A run in progress, or one already
    /// handed to a worker, keeps its time; the new interval applies from
    /// its end.
    ///
    /// # Errors
    /// [`SubmitError::IntervalTooShort`] for an interval shorter than
    /// [`Recurrence::MIN_INTERVAL`](crate::Recurrence::MIN_INTERVAL) (1 ms),
    /// zero included; [`SubmitError::DelayTooLong`] for one beyond the
    /// clock's range; [`SubmitError::InvalidSchedule`] for a calendar task.
    /// The interval is unchanged then.
    pub fn set_interval(&self, interval: Duration) -> Result<(), SubmitError> {
        if self.cell.is_calendar() {
            return Err(SubmitError::InvalidSchedule {
                reason: "a calendar (cron) task has no interval to change; cancel it and schedule another"
                    .to_owned(),
            });
        }
        if interval < crate::Recurrence::MIN_INTERVAL {
            return Err(SubmitError::IntervalTooShort { interval });
        }
        let nanos = to_nanos(interval).ok_or(SubmitError::DelayTooLong { delay: interval })?;
        let old = self.cell.set_interval(nanos);
        let now = self.timer.runtime().now();
        self.timer.move_pending(&*self.cell, |due| due.saturating_sub(old).saturating_add(nanos).max(now));
        log::info!("recurring task {}: interval now {interval:?}", self.name());
        Ok(())
    }

    /// Blocks until the task is over: cancelled, with no run in progress.
    pub fn wait(&self) {
        self.cell.wait_until(None);
    }

    /// Like [`wait`](Self::wait) with a time limit; returns whether it is
    /// over.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.cell.wait_until(deadline(timeout))
    }

    /// How many runs have finished, failed ones included.
    pub fn runs(&self) -> u64 {
        self.cell.runs()
    }

    /// How many runs failed (the method or a callback panicked).
    pub fn failures(&self) -> u64 {
        self.cell.failures()
    }

    /// How many ticks were skipped, and will never run: a run overran
    /// them (fixed-rate pacing only), the task was [paused](Self::pause),
    /// or they misfired (see [`Misfire`](crate::Misfire)).
    pub fn skipped_ticks(&self) -> u64 {
        self.cell.skipped()
    }

    /// How many ticks were folded into a late run and did not run on their
    /// own ([`Misfire::Coalesce`](crate::Misfire::Coalesce)).
    pub fn coalesced_ticks(&self) -> u64 {
        self.cell.coalesced()
    }

    /// How the latest failed run failed, if any run failed.
    pub fn last_failure(&self) -> Option<TaskError> {
        self.cell.last_failure()
    }
}

impl fmt::Debug for RecurringHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecurringHandle")
            .field("name", &self.name())
            .field("state", &state_name(self.cell.core()))
            .field("runs", &self.runs())
            .field("failures", &self.failures())
            .field("paused", &self.is_paused())
            .finish()
    }
}

fn cancel_cell(core: &Core, cancel: impl FnOnce() -> bool, timer: Option<&Timer<Pool>>) -> bool {
    let cancelled = cancel();
    if cancelled {
        if let Some(timer) = timer {
            // Tells the event if it was there; else its worker will.
            timer.remove(core);
        }
    }
    cancelled
}

fn deadline(timeout: Duration) -> Option<Instant> {
    // A timeout too long for the clock is a wait without one.
    Instant::now().checked_add(timeout)
}

fn state_name(core: &Core) -> &'static str {
    if core.is_cancelled() {
        "cancelled"
    } else if core.is_finished() {
        "done"
    } else if core.is_running() {
        "running"
    } else {
        "pending"
    }
}

/// [`TaskHandle::join_timeout`] did not get a value.
pub enum JoinTimeoutError<T> {
    /// The task did not finish in time; here is its handle back to wait again
    /// or to cancel.
    Timeout(TaskHandle<T>),
    /// The task finished without a value.
    Failed(TaskError),
}

impl<T> fmt::Debug for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            JoinTimeoutError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for JoinTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinTimeoutError::Timeout(_) => f.write_str("timed out waiting for the task"),
            JoinTimeoutError::Failed(e) => e.fmt(f),
        }
    }
}

impl<T> std::error::Error for JoinTimeoutError<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// `TaskHandle`'s docs say "three words in size": keep them right.
    #[test]
    fn a_task_handle_is_three_words() {
        assert_eq!(size_of::<TaskHandle<()>>(), 3 * size_of::<usize>());
        assert_eq!(size_of::<TaskHandle<String>>(), 3 * size_of::<usize>());
        assert_eq!(size_of::<Option<TaskHandle<()>>>(), 3 * size_of::<usize>(), "the niche is kept");
    }
}
