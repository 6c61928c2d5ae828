//! One-shot tasks: [`OneShot`], a cell that runs once (`add_task`, or
//! `schedule_task` without recurrence), and the [`Outcome`] its
//! [`TaskHandle`](crate::TaskHandle) takes the result through.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::core::{Core, Label, CANCELLED, DONE, QUEUED, RUNNING, WAITERS};
use super::{attempt, tell_started, Callbacks, Job, Outcome, Ran, RunContext, Staged};
use crate::err::TaskError;
use crate::event::Event;
use crate::limit::{set_run, Run};
use crate::schedule::{due_after, Nanos};
use crate::sync::{lock, Mutex};
use crate::task::{AbandonHook, Attempt};
use crate::task::{Callback, Method};
use crate::unwind::drop_quietly;

enum Stage<F, T> {
    Pending(F, Callbacks<T>),
    Running,
    // The error is boxed: it is rare, and inline it would widen every cell.
    Done(Result<T, Box<TaskError>>),
    Cancelled,
    Taken,
}

/// A task that runs once: `add_task`, or `schedule_task` without recurrence.
pub(crate) struct OneShot<F, T> {
    core: Core,
    stage: Mutex<Slot<F, T>>,
}

/// A one-shot task's stage, and the waker of the `Future` awaiting it, if
/// one is: both under the stage lock, which every final move holds.
pub(crate) struct Slot<F, T> {
    stage: Stage<F, T>,
    /// Boxed, one word in the cell: few tasks are awaited as futures.
    waker: Option<Box<Waker>>,
}

impl<F, T> OneShot<F, T> {
    pub(crate) fn new(method: F, callbacks: Vec<Callback<T>>, name: Option<Arc<str>>) -> Self {
        Self::labelled(method, callbacks, name.map(|name| Label { name, broker_id: None }))
    }

    /// A cell whose events tell `label` (a broker's task: its id there).
    pub(crate) fn labelled(method: F, callbacks: Vec<Callback<T>>, label: Option<Label>) -> Self {
        OneShot {
            core: Core::new(label),
            stage: Mutex::new(Slot { stage: Stage::Pending(method, Callbacks::new(callbacks)), waker: None }),
        }
    }
}

impl<F, T> OneShot<F, T>
where
    F: Method<T>,
    T: Send + 'static,
{
    /// Ends a cell whose method runs elsewhere (another process, for a task
    /// sent through a broker) with that run's result; its own method and
    /// callbacks are dropped unrun. Returns false if the cell had ended
    /// already (cancelled, or settled before).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn settle(&self, result: Result<T, TaskError>) -> bool {
        if !self.core.begin_run() {
            return false;
        }
        let pending = std::mem::replace(&mut lock(&self.stage).stage, Stage::Running);
        drop_quietly(pending);
        self.complete(result, || {}, None)
    }

    /// A failed attempt that runs again `after` from now: counted and told
    /// as a retry (before the next attempt can start), then the method and
    /// callbacks go back in the cell, and the cell back in the timer (see
    /// [`Task::retry`](crate::Task::retry)). If the timer refuses it (the
    /// manager is shutting down), the task is cancelled, as the shutdown
    /// cancels every task waiting in the timer. Without `again`, the retry
    /// was scheduled elsewhere (Redis): this cell ends with the error, and
    /// wakes the run's `done` (see [`Method::on_done`]).
    fn retry_later(
        self: &Arc<Self>,
        cx: &dyn RunContext,
        again: Option<(F, Callbacks<T>)>,
        error: TaskError,
        (retry, after): (u32, std::time::Duration),
        done: Option<&Waker>,
    ) -> Ran {
        let Some((method, callbacks)) = again else {
            cx.count_retry();
            self.tell_retry(cx, &error, retry, after);
            self.complete(Err(error.clone()), || {}, done);
            return Ran { retried: true, error: Some(error), ..Ran::default() };
        };
        {
            // Back in the cell, unless the run was given up meanwhile
            // (`abandon`): then the attempt is dropped.
            let mut slot = lock(&self.stage);
            if !matches!(slot.stage, Stage::Running) {
                drop(slot);
                drop_quietly((method, callbacks));
                return Ran::default();
            }
            slot.stage = Stage::Pending(method, callbacks);
        }
        cx.count_retry();
        self.tell_retry(cx, &error, retry, after);
        let due = due_after(cx.now(), after).unwrap_or(Nanos::MAX);
        let job: Arc<dyn Job> = self.clone();
        if cx.reschedule(job, Some(due)) {
            return Ran { retried: true, error: Some(error), ..Ran::default() };
        }
        self.end_cancelled(RUNNING);
        Ran { cancelled: true, ..Ran::default() }
    }

    fn tell_retry(&self, cx: &dyn RunContext, error: &TaskError, retry: u32, after: std::time::Duration) {
        cx.events().emit(log::Level::Warn, || Event::Retrying {
            task: self.core.task_ref(),
            retry,
            after,
            error: error.clone(),
        });
    }

    /// Moves `from` -> CANCELLED, dropping the method and callbacks, and
    /// wakes whoever waits, the method's `on_done` last; false if the
    /// phase was not `from`.
    fn end_cancelled(&self, from: u32) -> bool {
        let mut slot = lock(&self.stage);
        let Some(old) = self.core.shift(from, CANCELLED, 0) else {
            return false;
        };
        let payload = std::mem::replace(&mut slot.stage, Stage::Cancelled);
        let waker = slot.waker.take();
        drop(slot);
        self.core.notify(old & WAITERS != 0);
        if let Some(waker) = waker {
            waker.wake();
        }
        let done = match &payload {
            Stage::Pending(method, _) => method.on_done(),
            _ => None,
        };
        drop_quietly(payload);
        if let Some(done) = done {
            done.wake();
        }
        true
    }

    /// Ends the run with `result`, `count`ing it first (so whoever waited
    /// sees it counted), then wakes the handle's waker and the run's `done`
    /// (see [`Method::on_done`]); false, and `result` is dropped, if the
    /// run was given up meanwhile (`abandon`).
    fn complete(&self, result: Result<T, TaskError>, count: impl FnOnce(), done: Option<&Waker>) -> bool {
        let mut slot = lock(&self.stage);
        if !matches!(slot.stage, Stage::Running) {
            drop(slot);
            drop_quietly(result);
            return false;
        }
        count();
        slot.stage = Stage::Done(result.map_err(Box::new));
        let waiters = self.core.finish_locked(RUNNING, DONE).unwrap_or(false);
        let waker = slot.waker.take();
        drop(slot);
        self.core.notify(waiters);
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Some(done) = done {
            done.wake_by_ref();
        }
        true
    }
}

/// A one-shot run the time-limit watchdog may give up (see `limit.rs`):
/// its cell, what its method does besides (`Method::on_abandon`), and the
/// run's `done` (`Method::on_done`).
struct Escaping<F, T> {
    cell: Arc<OneShot<F, T>>,
    hook: std::sync::Mutex<Option<AbandonHook>>,
    done: Option<Waker>,
}

impl<F, T> Run for Escaping<F, T>
where
    F: Method<T>,
    T: Send + 'static,
{
    fn abandon(&self, error: TaskError, count: &dyn Fn()) -> bool {
        if !self.cell.complete(Err(error.clone()), count, self.done.as_ref()) {
            return false;
        }
        let hook = self.hook.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(hook) = hook {
            hook(&error);
        }
        true
    }
}

impl<F, T> Job for OneShot<F, T>
where
    F: Method<T>,
    T: Send + 'static,
{
    fn core(&self) -> &Core {
        &self.core
    }

    fn run(self: Arc<Self>, cx: &dyn RunContext) -> Ran {
        if !self.core.begin_run() {
            return Ran { cancelled: self.core.is_cancelled(), ..Ran::default() };
        }
        let Stage::Pending(method, mut callbacks) =
            std::mem::replace(&mut lock(&self.stage).stage, Stage::Running)
        else {
            self.complete(Err(TaskError::Cancelled), || {}, None);
            return Ran { cancelled: true, ..Ran::default() };
        };
        let done = method.on_done();
        cx.mark_running(&self.core, None);
        tell_started(cx, &self.core);
        // A method with a time limit may be given up while it runs: the
        // watchdog learns how from this thread (see `limit.rs`).
        let outer = method.escapes().then(|| {
            let hook = std::sync::Mutex::new(method.on_abandon());
            set_run(Some(Arc::new(Escaping { cell: Arc::clone(&self), hook, done: done.clone() })))
        });
        let attempt = attempt(method, callbacks.as_mut_slice());
        if let Some(outer) = outer {
            set_run(outer);
        }
        let result = match attempt {
            Attempt::Done(result) => result,
            Attempt::Again { method, error, retry, after } => {
                return self.retry_later(cx, Some((method, callbacks)), error, (retry, after), None);
            }
            Attempt::RetriedElsewhere { error, retry, after } => {
                drop_quietly(callbacks);
                return self.retry_later(cx, None, error, (retry, after), done.as_ref());
            }
        };
        // Release what the callbacks hold before the handle says done.
        drop_quietly(callbacks);
        let ran = Ran {
            completed: result.is_ok(),
            failed: result.is_err(),
            error: result.as_ref().err().cloned(),
            ..Ran::default()
        };
        // Counted before the handle says done: whoever waited sees it.
        if !self.complete(result, || cx.count_run(ran.failed), done.as_ref()) {
            // Given up past its time limit, and counted then.
            log::warn!(
                "taskmanager: task {} returned after it was given up; its outcome is dropped",
                self.core.name()
            );
            return Ran::default();
        }
        // If the handle is gone this drops the value, whose `Drop` is user
        // code.
        drop_quietly(self);
        ran
    }

    fn cancel(&self) -> bool {
        self.end_cancelled(QUEUED)
    }
}

impl<F, T> Staged for OneShot<F, T>
where
    F: Method<T>,
    T: Send + 'static,
{
    type Stage = Slot<F, T>;
    fn stage(&self) -> &Mutex<Slot<F, T>> {
        &self.stage
    }
}

impl<F, T> Outcome<T> for OneShot<F, T>
where
    F: Method<T>,
    T: Send + 'static,
{
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        let mut slot = lock(&self.stage);
        if self.core.is_finished() {
            drop(slot);
            return Poll::Ready(self.take());
        }
        // Checked and stored under the stage lock, which the final move
        // holds: the finisher sees this waker, or this poll saw the end.
        match &mut slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            other => *other = Some(Box::new(cx.waker().clone())),
        }
        Poll::Pending
    }

    fn take(&self) -> Result<T, TaskError> {
        match std::mem::replace(&mut lock(&self.stage).stage, Stage::Taken) {
            Stage::Done(result) => result.map_err(|e| *e),
            Stage::Cancelled => Err(TaskError::Cancelled),
            // Unreachable through the public API (join consumes the only
            // handle after waiting); answer without panicking all the same.
            Stage::Pending(..) | Stage::Running | Stage::Taken => Err(TaskError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// A pending timer costs its cell, a million times over for a million
    /// of them (timers-1m): a task whose method is one word wide (a closure
    /// holding one reference) makes a cell of nine words, its name and the
    /// waker of a future awaiting it one word each (boxed: few tasks have
    /// them).
    #[cfg(all(not(loom), target_pointer_width = "64"))]
    #[test]
    fn a_one_shot_cell_is_nine_words() {
        assert_eq!(size_of::<OneShot<fn() -> usize, usize>>(), 9 * size_of::<usize>());
    }
}
