//! [`Timer`]: a manager's pending scheduled tasks (a [`TimerHeap`] under one
//! lock), the thread that hands each to its module as it falls due, and the
//! retries of worker starts that failed. It knows modules only as a
//! [`Target`], so it sits below them.
//!
//! See `PROTOCOL.md` for who owns what under which lock.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::clock::TimeListener;
use crate::err::{StartError, SubmitError};
use crate::event::Event;
use crate::job::{Control, Core, Job, JobRef};
use crate::lifecycle::Phase;
use crate::runtime::Runtime;
use crate::schedule::Nanos;
use crate::sync::{lock, AtomicUsize, Condvar, Mutex, MutexGuard};
use crate::threads::set_timer_slack;
use crate::timer::heap::{Slotted, TimerHeap};

/// Where a due task goes: a module's pool, seen from the timer.
pub(crate) trait Target: Send + Sync + 'static {
    /// Takes a due job, to start at `not_before` (0: at once).
    fn dispatch(self: &Arc<Self>, job: JobRef, not_before: Nanos);
    /// Cancels a job taken out of the timer unrun; if that cancelled it,
    /// counts it and tells the event. Returns whether it did.
    fn cancel(&self, job: JobRef) -> bool;
    /// Counts a job of this target that its handle cancelled.
    fn count_cancelled(&self);
    /// Starts a worker for queued work, if one is missing (a retried start).
    fn kick(self: &Arc<Self>);
    /// This target's entries in the timer; kept by the timer, under its lock.
    fn timers(&self) -> &AtomicUsize;
}

/// A pending scheduled task in the heap.
struct Entry<T> {
    job: JobRef,
    target: Arc<T>,
}

impl<T> Slotted for Entry<T> {
    fn set_slot(&self, slot: u32) {
        self.job.set_slot(slot);
    }
}

impl<T: Target> Entry<T> {
    fn cancel(self) -> bool {
        let Entry { job, target } = self;
        target.cancel(job)
    }
}

struct State<T> {
    heap: TimerHeap<Entry<T>>,
    /// Set at shutdown: the heap takes nothing more.
    closed: bool,
    thread_started: bool,
    /// Targets left with queued work and no worker because a worker thread
    /// could not be started, and when to try again (see `retry_spawn`).
    /// In real time, whatever the manager's clock: threads free up in it.
    retries: Vec<(Instant, Arc<T>)>,
}

/// Every entry enters and leaves the heap through these, which keep each
/// target's count of pending timers.
impl<T: Target> State<T> {
    fn push(&mut self, due: Nanos, entry: Entry<T>) -> bool {
        entry.target.timers().fetch_add(1, Relaxed);
        self.heap.push(due, entry)
    }

    fn left(entry: &Entry<T>) {
        entry.target.timers().fetch_sub(1, Relaxed);
    }

    fn pop_due(&mut self, now: Nanos) -> Option<(Nanos, Entry<T>)> {
        let popped = self.heap.pop_due(now);
        if let Some((_, entry)) = &popped {
            Self::left(entry);
        }
        popped
    }

    fn remove(&mut self, core: &Core) -> Option<Entry<T>> {
        let removed = self.heap.remove(core.slot(), |e| e.job.core().is_some_and(|c| std::ptr::eq(c, core)));
        if let Some(entry) = &removed {
            Self::left(entry);
        }
        removed
    }

    fn drain(&mut self) -> Vec<Entry<T>> {
        let entries: Vec<Entry<T>> = self.heap.drain().collect();
        entries.iter().for_each(Self::left);
        entries
    }

    /// Takes the spawn retries that are due.
    fn due_retries(&mut self) -> Vec<Arc<T>> {
        if self.retries.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let (due, wait): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|&(at, _)| at <= now);
        self.retries = wait;
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// How long until the next spawn retry, if one is pending.
    fn retry_wait(&self) -> Option<Duration> {
        self.retries.iter().map(|&(at, _)| at.saturating_duration_since(Instant::now())).min()
    }
}

/// A recurring task in the listing registry, with its module's name.
type Listed = (Weak<dyn Job>, Arc<str>);

/// The timer. See the module docs.
pub(crate) struct Timer<T> {
    rt: Arc<Runtime>,
    state: Mutex<State<T>>,
    wake: Condvar,
    /// Recurring tasks, for listings (a recurring task is in the timer, a
    /// queue or a worker's hands in turn); pruned as they end.
    recurring: Mutex<Vec<Listed>>,
}

impl<T: Target> Timer<T> {
    pub(crate) fn new(rt: Arc<Runtime>) -> Self {
        Timer {
            rt,
            state: Mutex::new(State {
                heap: TimerHeap::new(),
                closed: false,
                thread_started: false,
                retries: Vec::new(),
            }),
            wake: Condvar::new(),
            recurring: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    fn push(&self, mut state: MutexGuard<'_, State<T>>, due: Nanos, target: &Arc<T>, job: Arc<dyn Job>) {
        let entry = Entry { job: JobRef::new(job), target: Arc::clone(target) };
        if state.push(due, entry) {
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Puts a new scheduled job in the timer.
    pub(crate) fn schedule(&self, target: &Arc<T>, job: Arc<dyn Job>, due: Nanos) -> Result<(), SubmitError> {
        if self.rt.life.inherited() {
            return Err(SubmitError::Forked);
        }
        let state = lock(&self.state);
        if state.closed || !self.rt.life.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        self.push(state, due, target, job);
        Ok(())
    }

    /// Puts a recurring job back after a run. Returns false, leaving the job
    /// to retire itself, if it was cancelled meanwhile, has no next due time,
    /// or the manager is shutting down.
    pub(crate) fn reschedule(&self, target: &Arc<T>, job: Arc<dyn Job>, due: Option<Nanos>) -> bool {
        let Some(due) = due else { return false };
        let state = lock(&self.state);
        if state.closed || !job.core().requeue() {
            return false;
        }
        self.push(state, due, target, job);
        true
    }

    /// Moves a recurring job waiting in the timer to `new_due(its due)`;
    /// does nothing if it is not in the timer (running, or queued).
    pub(crate) fn move_pending(&self, control: &dyn Control, new_due: impl FnOnce(Nanos) -> Nanos) {
        let mut state = lock(&self.state);
        let Some(entry) = state.remove(control.core()) else { return };
        let due = new_due(control.due());
        control.set_due(due);
        if state.push(due, entry) {
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Takes a job its handle cancelled out of the timer at once, if it is
    /// there, counting it and telling the event.
    pub(crate) fn remove(&self, core: &Core) {
        let removed = lock(&self.state).remove(core);
        // Dropped outside the lock: it releases a module reference.
        if let Some(entry) = removed {
            entry.target.count_cancelled();
            if let Some(job) = entry.job.job() {
                self.rt.events.emit(log::Level::Debug, || Event::Cancelled { task: job.core().task_ref() });
            }
        }
    }

    /// Remembers a recurring task for listings.
    pub(crate) fn register_recurring(&self, job: Arc<dyn Job>, module: &Arc<str>) {
        let mut recurring = lock(&self.recurring);
        if recurring.len() >= 64 && recurring.len().is_power_of_two() {
            recurring.retain(|(job, _)| job.upgrade().is_some_and(|job| !job.core().is_finished()));
        }
        recurring.push((Arc::downgrade(&job), Arc::clone(module)));
    }

    /// The recurring tasks that have not ended, with their modules' names.
    pub(crate) fn recurring(&self) -> Vec<(Arc<dyn Job>, Arc<str>)> {
        let mut recurring = lock(&self.recurring);
        recurring.retain(|(job, _)| job.upgrade().is_some_and(|job| !job.core().is_finished()));
        recurring.iter().filter_map(|(job, module)| Some((job.upgrade()?, Arc::clone(module)))).collect()
    }

    /// Calls `f` with every pending entry's due time, job and target, under
    /// the timer lock.
    pub(crate) fn for_each_pending(&self, mut f: impl FnMut(Nanos, &dyn Job, &T)) {
        let state = lock(&self.state);
        for (due, entry) in state.heap.iter() {
            if let Some(job) = entry.job.job() {
                f(due, job, &entry.target);
            }
        }
    }

    /// Pending entries.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).heap.len()
    }

    /// Starts the timer thread (once) and moves the manager to Running, under
    /// the timer lock, so that no scheduling call falls between the two.
    /// Returns whether this call started it (false: it was running).
    pub(crate) fn start(self: &Arc<Self>) -> Result<bool, StartError> {
        let mut state = lock(&self.state);
        if self.rt.life.inherited() {
            return Err(StartError::Forked);
        }
        match self.rt.life.phase() {
            Phase::Running => return Ok(false),
            Phase::ShuttingDown | Phase::Terminated => return Err(StartError::ShutDown),
            Phase::Created => {}
        }
        if !state.thread_started {
            let me = Arc::clone(self);
            self.rt.threads.spawn("taskmanager-timer", move || me.run()).map_err(StartError::Spawn)?;
            state.thread_started = true;
        }
        // A racing shutdown wins: then this start fails.
        if !self.rt.life.start() {
            return Err(StartError::ShutDown);
        }
        Ok(true)
    }

    /// The timer thread: moves due jobs to their targets, then sleeps until
    /// the next due time or a wake-up.
    fn run(&self) {
        set_timer_slack(self.rt.timer_slack);
        let lead = self.rt.handoff_lead();
        let mut due = Vec::new();
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                return;
            }
            let now = self.rt.now();
            while due.len() < 1024 {
                match state.pop_due(now.saturating_add(lead)) {
                    Some((at, entry)) => due.push((at, entry)),
                    None => break,
                }
            }
            let retries = state.due_retries();
            if !due.is_empty() || !retries.is_empty() {
                drop(state);
                for (at, Entry { job, target }) in due.drain(..) {
                    target.dispatch(job, at);
                }
                for target in retries {
                    target.kick();
                }
                state = lock(&self.state);
                continue;
            }
            let due_wait = state
                .heap
                .next_due()
                .and_then(|next| self.rt.clock.real_wait(next.saturating_sub(lead).saturating_sub(now)));
            let wait = match (due_wait, state.retry_wait()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            state = match wait {
                Some(wait) => self.wake.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0,
                None => self.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

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

    /// At shutdown: closes the timer, sends what is due to its target (or,
    /// with `cancel_due`, cancels it) and cancels the rest. Returns how many
    /// due entries it cancelled.
    pub(crate) fn close(&self, cancel_due: bool) -> usize {
        let (due, not_due) = {
            let mut state = lock(&self.state);
            state.closed = true;
            let now = self.rt.now();
            let due: Vec<Entry<T>> = std::iter::from_fn(|| state.pop_due(now).map(|(_, e)| e)).collect();
            let not_due = state.drain();
            (due, not_due)
        };
        self.wake.notify_all();
        // Cancelled as not yet due; their handles say so.
        for entry in not_due {
            entry.cancel();
        }
        if cancel_due {
            return due.into_iter().map(Entry::cancel).filter(|&c| c).count();
        }
        for Entry { job, target } in due {
            target.dispatch(job, 0);
        }
        0
    }

    /// Cancels every pending entry (`cancel_pending`); returns how many this
    /// cancelled.
    pub(crate) fn cancel_all(&self) -> usize {
        let entries = lock(&self.state).drain();
        entries.into_iter().map(Entry::cancel).filter(|&c| c).count()
    }
}

impl<T: Target> TimeListener for Timer<T> {
    /// A manual clock moved: the timer re-reads it. Taking the timer lock
    /// first means the timer is either before its clock read or already
    /// waiting, so the wake-up cannot fall between the two.
    fn time_moved(&self) {
        drop(lock(&self.state));
        self.wake.notify_all();
    }
}
