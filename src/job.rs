//! Task cells: one allocation per submission, shared by the place that will
//! run it (module queue or timer, as a [`JobRef`]) and the user's handle.
//!
//! See `PROTOCOL.md` for the state machine and who may move it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::err::TaskError;
use crate::event::{Event, Events, TaskRef};
use crate::schedule::{next_run, Nanos, Pacing};
use crate::sync::{lock, AtomicU32, AtomicU64, Condvar, Mutex, MutexGuard};
use crate::task::Callback;
use crate::timer::{Slotted, NO_SLOT};
use crate::unwind::{drop_quietly, panic_message};

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

// Phases, in the low two bits of `Core::state`.
/// Waiting in a module queue or in the timer (recurring: between runs).
const QUEUED: u32 = 0;
/// A worker is running the method and callbacks.
const RUNNING: u32 = 1;
/// Finished: a one-shot task has its result (value or failure).
const DONE: u32 = 2;
/// Cancelled: will never run (again).
const CANCELLED: u32 = 3;
const PHASE: u32 = 0b11;
/// Recurring only: `cancel()` came while RUNNING; the runner finishes it.
const CANCEL_REQUESTED: u32 = 0b100;
/// Someone sleeps on `Core::finished`; the finisher must notify.
const WAITERS: u32 = 0b1000;

/// A number for a new task, unique in the process. Each thread takes ids in
/// blocks, so submitting needs no shared write per task.
fn next_id() -> u64 {
    const BLOCK: u64 = 1024;
    // std's, also under loom: a counter, not part of any hand-off.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    std::thread_local! {
        static IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (next, end) = ids.get();
        let id = if next < end { next } else { NEXT.fetch_add(BLOCK, Ordering::Relaxed) };
        let end = if next < end { end } else { id + BLOCK };
        ids.set((id + 1, end));
        id
    })
}

/// The part of every cell the manager looks at without knowing its types.
#[derive(Debug)]
pub(crate) struct Core {
    /// Unique in the process; see [`next_id`].
    id: u64,
    /// The name given at submission, if any.
    name: Option<Arc<str>>,
    state: AtomicU32,
    /// Index in the timer heap, or `NO_SLOT`. Read and written only under
    /// the manager's timer lock.
    slot: AtomicU32,
    /// Signalled on the move to DONE or CANCELLED, when WAITERS is set.
    finished: Condvar,
}

impl Core {
    fn new(name: Option<Arc<str>>) -> Self {
        Core {
            id: next_id(),
            name,
            state: AtomicU32::new(QUEUED),
            slot: AtomicU32::new(NO_SLOT),
            finished: Condvar::new(),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Which task this is, for an [`Event`].
    pub(crate) fn task_ref(&self) -> TaskRef {
        TaskRef { id: self.id, name: self.name() }
    }

    pub(crate) fn is_named(&self) -> bool {
        self.name.is_some()
    }

    /// The task's name, or `task-<id>` if it was given none.
    pub(crate) fn name(&self) -> String {
        match &self.name {
            Some(name) => name.to_string(),
            None => format!("task-{}", self.id),
        }
    }

    fn phase(&self) -> u32 {
        self.state.load(Ordering::Acquire) & PHASE
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.phase() >= DONE
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.phase() == CANCELLED
    }

    pub(crate) fn is_running(&self) -> bool {
        self.phase() == RUNNING
    }

    pub(crate) fn slot(&self) -> u32 {
        self.slot.load(Ordering::Relaxed)
    }

    /// Moves `from` -> `to` keeping the flag bits, unless `refuse` bits are
    /// set. Returns the state seen before, if the move happened.
    fn shift(&self, from: u32, to: u32, refuse: u32) -> Option<u32> {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & PHASE == from && s & refuse == 0).then_some((s & !PHASE) | to)
            })
            .ok()
    }

    /// QUEUED -> RUNNING: the one worker that wins runs the task.
    fn begin_run(&self) -> bool {
        self.shift(QUEUED, RUNNING, 0).is_some()
    }

    /// RUNNING -> QUEUED after a recurring run, unless a cancel came in
    /// meanwhile. Called under the timer lock, so that a cancel either finds
    /// the job in the timer or stops it here.
    pub(crate) fn requeue(&self) -> bool {
        self.shift(RUNNING, QUEUED, CANCEL_REQUESTED).is_some()
    }

    /// Moves to a final phase. Must be called holding the cell's stage lock,
    /// so that a waiter, which checks under that lock, cannot miss it.
    /// Returns whether someone must be notified.
    fn finish_locked(&self, from: u32, to: u32) -> Option<bool> {
        self.shift(from, to, 0).map(|old| old & WAITERS != 0)
    }

    fn notify(&self, waiters: bool) {
        if waiters {
            self.finished.notify_all();
        }
    }

    /// Blocks until the phase is final or `deadline` passes; true if final.
    /// `guard` is the cell's stage lock, which every final move holds.
    fn wait_final<S>(&self, mut guard: MutexGuard<'_, S>, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_finished() {
                return true;
            }
            self.state.fetch_or(WAITERS, Ordering::AcqRel);
            guard = match deadline {
                None => self.finished.wait(guard).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.finished
                        .wait_timeout(guard, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
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
    /// The task `id` has won its start (see `module::mark_running`).
    fn mark_running(&self, id: u64);
    /// The run's method and callbacks are over (see `module::count_run`),
    /// before its handle says so.
    fn count_run(&self, failed: bool);
    /// Puts a recurring job back in the timer at `due`; false (the job then
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
}

/// A recurring task's schedule and counts, for listings.
pub(crate) struct RecurringInfo {
    pub(crate) interval: Nanos,
    pub(crate) next_due: Nanos,
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

/// Tells the `Started` event of a run.
fn tell_started(cx: &dyn RunContext, core: &Core) {
    cx.events().emit(log::Level::Trace, || Event::Started { task: core.task_ref() });
}

/// Runs the method, then every callback in order, each under `catch_unwind`.
/// A panicking method skips the callbacks (there is no value to give them);
/// a panicking callback does not stop the ones after it.
fn invoke<T>(method: impl FnOnce() -> T, callbacks: &mut [Callback<T>]) -> Result<T, TaskError> {
    let value = catch_unwind(AssertUnwindSafe(method)).map_err(|payload| {
        let message = panic_message(payload);
        log::error!("task panicked: {message}");
        TaskError::Panicked { message }
    })?;
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

// ---------------------------------------------------------------------------
// One-shot tasks.

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
    waker: Option<Waker>,
}

impl<F, T> OneShot<F, T> {
    pub(crate) fn new(method: F, callbacks: Vec<Callback<T>>, name: Option<Arc<str>>) -> Self {
        OneShot {
            core: Core::new(name),
            stage: Mutex::new(Slot { stage: Stage::Pending(method, Callbacks::new(callbacks)), waker: None }),
        }
    }
}

impl<F, T> OneShot<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn complete(&self, result: Result<T, TaskError>) {
        let mut slot = lock(&self.stage);
        slot.stage = Stage::Done(result.map_err(Box::new));
        let waiters = self.core.finish_locked(RUNNING, DONE).unwrap_or(false);
        let waker = slot.waker.take();
        drop(slot);
        self.core.notify(waiters);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<F, T> Job for OneShot<F, T>
where
    F: FnOnce() -> T + Send + 'static,
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
            self.complete(Err(TaskError::Cancelled));
            return Ran { cancelled: true, ..Ran::default() };
        };
        cx.mark_running(self.core.id);
        tell_started(cx, &self.core);
        let result = invoke(method, callbacks.as_mut_slice());
        // Release what the callbacks hold before the handle says done.
        drop_quietly(callbacks);
        let ran = Ran {
            completed: result.is_ok(),
            failed: result.is_err(),
            cancelled: false,
            error: result.as_ref().err().cloned(),
        };
        // Counted before the handle says done: whoever waited sees it.
        cx.count_run(ran.failed);
        self.complete(result);
        // If the handle is gone this drops the value, whose `Drop` is user
        // code.
        drop_quietly(self);
        ran
    }

    fn cancel(&self) -> bool {
        let mut slot = lock(&self.stage);
        let Some(old) = self.core.shift(QUEUED, CANCELLED, 0) else {
            return false;
        };
        let payload = std::mem::replace(&mut slot.stage, Stage::Cancelled);
        let waker = slot.waker.take();
        drop(slot);
        self.core.notify(old & WAITERS != 0);
        if let Some(waker) = waker {
            waker.wake();
        }
        drop_quietly(payload);
        true
    }
}

/// What every handle does with its cell, whatever the cell's kind.
pub(crate) trait Waitable: Send + Sync {
    fn core(&self) -> &Core;
    fn cancel(&self) -> bool;
    /// Blocks until the phase is final or `deadline` passes; true if final.
    fn wait_until(&self, deadline: Option<Instant>) -> bool;
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

impl<F, T> Staged for OneShot<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    type Stage = Slot<F, T>;
    fn stage(&self) -> &Mutex<Slot<F, T>> {
        &self.stage
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

impl<F, T> Outcome<T> for OneShot<F, T>
where
    F: FnOnce() -> T + Send + 'static,
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
            other => *other = Some(cx.waker().clone()),
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

// ---------------------------------------------------------------------------
// Recurring tasks.

struct RecurringStage<F, T> {
    payload: Option<(F, Callbacks<T>)>,
    last_failure: Option<TaskError>,
}

/// A task that runs every `interval` until cancelled.
pub(crate) struct Recurring<F, T> {
    core: Core,
    /// Changed by `set_interval`; read at the end of each run.
    interval: AtomicU64,
    pacing: Pacing,
    /// Due time of the pending or running run; touched only by whoever holds
    /// the job (timer, queue or worker), one at a time.
    due: AtomicU64,
    runs: AtomicU64,
    failures: AtomicU64,
    skipped: AtomicU64,
    /// 1 while paused: its ticks come and go without running the method.
    paused: AtomicU32,
    stage: Mutex<RecurringStage<F, T>>,
}

impl<F, T> Recurring<F, T> {
    pub(crate) fn new(
        method: F,
        callbacks: Vec<Callback<T>>,
        interval: Nanos,
        pacing: Pacing,
        first_due: Nanos,
        name: Option<Arc<str>>,
    ) -> Self {
        Recurring {
            core: Core::new(name),
            interval: AtomicU64::new(interval),
            pacing,
            due: AtomicU64::new(first_due),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            paused: AtomicU32::new(0),
            stage: Mutex::new(RecurringStage {
                payload: Some((method, Callbacks::new(callbacks))),
                last_failure: None,
            }),
        }
    }
}

impl<F, T> Recurring<F, T>
where
    F: FnMut() -> T + Send + 'static,
    T: Send + 'static,
{
    /// RUNNING -> CANCELLED after a run when it may not go on.
    fn retire(&self) {
        let mut stage = lock(&self.stage);
        let payload = stage.payload.take();
        let waiters = self.core.finish_locked(RUNNING, CANCELLED).unwrap_or(false);
        drop(stage);
        self.core.notify(waiters);
        drop_quietly(payload);
    }
}

impl<F, T> Job for Recurring<F, T>
where
    F: FnMut() -> T + Send + 'static,
    T: Send + 'static,
{
    fn core(&self) -> &Core {
        &self.core
    }

    fn run(self: Arc<Self>, cx: &dyn RunContext) -> Ran {
        if !self.core.begin_run() {
            return Ran { cancelled: self.core.is_cancelled(), ..Ran::default() };
        }
        let Some((mut method, mut callbacks)) = lock(&self.stage).payload.take() else {
            self.retire();
            return Ran { cancelled: true, ..Ran::default() };
        };
        let started = cx.now();
        let paused = self.paused.load(Ordering::Acquire) != 0;
        let failure = if paused {
            // A paused tick: skipped, and the grid goes on (no burst on
            // resume).
            self.skipped.fetch_add(1, Ordering::Relaxed);
            None
        } else {
            cx.mark_running(self.core.id);
            tell_started(cx, &self.core);
            let result = invoke(&mut method, callbacks.as_mut_slice());
            cx.count_run(result.is_err());
            self.runs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(value) => {
                    drop_quietly(value);
                    None
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    Some(e)
                }
            }
        };
        let mut ran = Ran {
            completed: !paused && failure.is_none(),
            failed: failure.is_some(),
            cancelled: false,
            error: failure.clone(),
        };
        {
            let mut stage = lock(&self.stage);
            stage.payload = Some((method, callbacks));
            if failure.is_some() {
                stage.last_failure = failure;
            }
        }
        let due = self.due.load(Ordering::Relaxed);
        let interval = self.interval.load(Ordering::Relaxed);
        let next = next_run(self.pacing, interval, due, started, cx.now());
        if let Some(next) = next {
            self.due.store(next.due, Ordering::Relaxed);
            if next.skipped > 0 {
                self.skipped.fetch_add(next.skipped, Ordering::Relaxed);
            }
            let ticks = next.skipped + u64::from(paused);
            if ticks > 0 {
                cx.events().emit(log::Level::Info, || Event::Skipped { task: self.core.task_ref(), ticks });
            }
        }
        let job: Arc<dyn Job> = self.clone();
        if !cx.reschedule(job, next.map(|n| n.due)) {
            self.retire();
            ran.cancelled = true;
        }
        ran
    }

    fn recurring_info(&self) -> Option<RecurringInfo> {
        Some(RecurringInfo {
            interval: self.interval.load(Ordering::Relaxed),
            next_due: self.due.load(Ordering::Relaxed),
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            paused: self.paused.load(Ordering::Relaxed) != 0,
        })
    }

    fn cancel(&self) -> bool {
        loop {
            let s = self.core.state.load(Ordering::Acquire);
            match s & PHASE {
                QUEUED => {
                    let mut stage = lock(&self.stage);
                    let Some(old) = self.core.shift(QUEUED, CANCELLED, 0) else { continue };
                    let payload = stage.payload.take();
                    drop(stage);
                    self.core.notify(old & WAITERS != 0);
                    drop_quietly(payload);
                    return true;
                }
                RUNNING if s & CANCEL_REQUESTED == 0 => {
                    if self
                        .core
                        .state
                        .compare_exchange(s, s | CANCEL_REQUESTED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return true;
                    }
                }
                _ => return false,
            }
        }
    }
}

/// What a [`RecurringHandle`](crate::RecurringHandle) can do with a
/// recurring cell without knowing its types.
pub(crate) trait Control: Waitable {
    fn runs(&self) -> u64;
    fn failures(&self) -> u64;
    fn skipped(&self) -> u64;
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

impl<F, T> Staged for Recurring<F, T>
where
    F: FnMut() -> T + Send + 'static,
    T: Send + 'static,
{
    type Stage = RecurringStage<F, T>;
    fn stage(&self) -> &Mutex<RecurringStage<F, T>> {
        &self.stage
    }
}

impl<F, T> Control for Recurring<F, T>
where
    F: FnMut() -> T + Send + 'static,
    T: Send + 'static,
{
    fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn last_failure(&self) -> Option<TaskError> {
        lock(&self.stage).last_failure.clone()
    }

    fn cancel_requested(&self) -> bool {
        self.core.state.load(Ordering::Acquire) & CANCEL_REQUESTED != 0
    }

    fn set_interval(&self, interval: Nanos) -> Nanos {
        self.interval.swap(interval, Ordering::Relaxed)
    }

    fn due(&self) -> Nanos {
        self.due.load(Ordering::Relaxed)
    }

    fn set_due(&self, due: Nanos) {
        self.due.store(due, Ordering::Relaxed);
    }

    fn set_paused(&self, paused: bool) -> bool {
        self.paused.swap(u32::from(paused), Ordering::AcqRel) != u32::from(paused)
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire) != 0
    }
}
