//! [`Timer`]: a manager's pending scheduled tasks (a [`TimerHeap`] under one
//! lock), the thread that hands each to its module as it falls due, and the
//! retries of worker starts that failed. It knows modules only as a
//! [`Target`], so it sits below them.
//!
//! See `PROTOCOL.md` for who owns what under which lock.

use std::sync::{Arc, Weak};

use crate::clock::TimeListener;
use crate::err::{StartError, SubmitError};
use crate::job::{Control, Core, Job, JobRef};
use crate::lifecycle::Phase;
use crate::runtime::Runtime;
use crate::schedule::Nanos;
use crate::sync::{lock, Condvar, Mutex, MutexGuard};
use crate::threads::set_timer_slack;
pub(crate) use crate::timer::state::HeldNow;
pub(crate) use crate::timer::state::Target;
use crate::timer::state::{Entry, State, Walled, WALL_CHECK};

/// A recurring task in the listing registry, with its module's name.
pub(super) type Listed = (Weak<dyn Job>, Arc<str>);

/// The timer. See the module docs.
pub(crate) struct Timer<T> {
    pub(super) rt: Arc<Runtime>,
    pub(super) state: Mutex<State<T>>,
    pub(super) wake: Condvar,
    /// Recurring tasks, for listings (a recurring task is in the timer, a
    /// queue or a worker's hands in turn); pruned as they end.
    pub(super) recurring: Mutex<Vec<Listed>>,
    /// See [`Walled`]. Locked after `state`, never before.
    pub(super) walled: Mutex<Walled>,
}

impl<T: Target> Timer<T> {
    pub(crate) fn new(rt: Arc<Runtime>) -> Self {
        Timer {
            rt,
            state: Mutex::new(State::new()),
            wake: Condvar::new(),
            recurring: Mutex::new(Vec::new()),
            walled: Mutex::new(Walled::default()),
        }
    }

    pub(crate) fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    fn push(&self, mut state: MutexGuard<'_, State<T>>, due: Nanos, target: &Arc<T>, job: Arc<dyn Job>) {
        let entry = Entry { job: JobRef::new(job), target: Arc::clone(target) };
        let earliest = state.push(due, entry);
        self.wake_for(state, earliest, due);
    }

    /// After a push: wakes the timer thread if the entry, due at `due`, is
    /// the new earliest and the thread would otherwise sleep past its
    /// hand-off time. An entry that is not the earliest is never due before
    /// the thread wakes anyway (it sleeps no later than the earliest).
    fn wake_for(&self, mut state: MutexGuard<'_, State<T>>, earliest: bool, due: Nanos) {
        let hand_off = due.saturating_sub(self.rt.handoff_lead());
        if earliest && state.asleep_until.is_some_and(|until| hand_off < until) {
            state.asleep_until = None;
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

    /// Puts a recurring job back after a run: with a `holder` (the worker
    /// that ran it, which will be idle until then and holds nothing), into
    /// that worker's hands, so that the worker sleeps until the due time
    /// and runs it itself: one wake-up a run, not the timer's and then the
    /// worker's (see [`State::hold`]); otherwise into the heap. Returns
    /// false, leaving the job to retire itself, if it was cancelled
    /// meanwhile, has no next due time, or the manager is shutting down.
    pub(crate) fn reschedule(
        &self,
        target: &Arc<T>,
        job: Arc<dyn Job>,
        due: Option<Nanos>,
        holder: Option<usize>,
    ) -> bool {
        let Some(due) = due else { return false };
        let mut state = lock(&self.state);
        if state.closed || !job.core().requeue() {
            return false;
        }
        if let Some(holder) = holder {
            state.hold(holder, due, Entry { job: JobRef::new(job), target: Arc::clone(target) });
            return true;
        }
        self.push(state, due, target, job);
        true
    }

    /// What became of the entry the worker `holder` holds; takes it if it
    /// is due, or with `precise_ticks` due within the hand-off lead, as the
    /// timer thread would (the worker then sleeps the rest in `Pool::run`:
    /// a long sleep can wake late, by an idle CPU's wake-up time, a short
    /// one does not; see [`Runtime::held_lead`]).
    pub(crate) fn check_held(&self, holder: usize) -> HeldNow {
        let until = self.rt.now().saturating_add(self.rt.held_lead());
        lock(&self.state).check_held(holder, until)
    }

    /// The worker `holder` has other work (or retires): its held entry, if
    /// any, goes to the heap and the timer thread.
    pub(crate) fn give_back(&self, holder: usize) {
        let mut state = lock(&self.state);
        if let Some((due, entry)) = state.unhold(holder) {
            let earliest = state.push(due, entry);
            self.wake_for(state, earliest, due);
        }
    }

    /// Moves a pending recurring job (in the timer or a worker's hands) to
    /// `new_due(its due)`; does nothing if it is running or queued.
    pub(crate) fn move_pending(&self, control: &dyn Control, new_due: impl FnOnce(Nanos) -> Nanos) {
        self.move_entry(control.core(), || {
            let due = new_due(control.due());
            control.set_due(due);
            due
        });
    }

    /// Moves the job of `core`, if it waits in the timer or a worker's
    /// hands, to the time `new_due` gives (called under the timer lock).
    fn move_entry(&self, core: &Core, new_due: impl FnOnce() -> Nanos) {
        let mut state = lock(&self.state);
        let Some((entry, held)) = state.remove(core) else { return };
        let holder = held.then(|| Arc::clone(&entry.target));
        let due = new_due();
        let earliest = state.push(due, entry);
        self.wake_for(state, earliest, due);
        // Its holder finds it gone, and idles on.
        if let Some(target) = holder {
            target.wake_holders();
        }
    }

    /// Takes a job its handle cancelled out of the timer at once, if it is
    /// there, counting it and telling the event.
    pub(crate) fn remove(&self, core: &Core) {
        let removed = lock(&self.state).remove(core);
        // Dropped outside the lock: it releases a module reference.
        if let Some((entry, held)) = removed {
            if held {
                entry.target.wake_holders();
            }
            entry.target.count_cancelled(entry.job.core());
            if let Some(job) = entry.job.job() {
                self.rt.events.cancelled(|| job.core().task_ref());
            }
        }
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
    /// the next due time (less the hand-off lead) or a wake-up. Due jobs go
    /// out in a batch: each target's are queued, then the target is kicked
    /// once (one wake-up call, not one per job).
    fn run(&self) {
        set_timer_slack(self.rt.timer_slack);
        let lead = self.rt.handoff_lead();
        let mut due = Vec::new();
        // Tasks `check_wall` looked at: dropped at the top of the next
        // turn, with the lock let go (see `live`), before `closed` is read.
        let mut held = Vec::new();
        let mut state = lock(&self.state);
        loop {
            if !held.is_empty() {
                drop(state);
                held.clear();
                state = lock(&self.state);
            }
            state.asleep_until = None;
            if state.closed {
                return;
            }
            let wall = self.check_wall(&mut state, &mut held);
            let walled = wall.follows;
            if !wall.jobs.is_empty() {
                drop(state);
                wall.holders.iter().for_each(|target| target.wake_holders());
                drop(wall);
                state = lock(&self.state);
                // From the top: a shutdown may have closed the timer
                // meanwhile (its wake-up found no one waiting).
                continue;
            }
            let now = self.rt.now();
            let until = now.saturating_add(lead);
            if state.expected_back <= until {
                state.expected_back = Nanos::MAX;
            }
            while due.len() < 1024 {
                match state.pop_due(until) {
                    Some((at, entry)) => {
                        let interval = entry
                            .job
                            .job()
                            .and_then(Job::recurring_info)
                            .map(|info| info.interval)
                            .filter(|&interval| interval > 0);
                        if let Some(interval) = interval {
                            state.expected_back = state.expected_back.min(at.saturating_add(interval));
                        }
                        due.push((at, entry));
                    }
                    None => break,
                }
            }
            let retries = state.due_retries();
            if !due.is_empty() || !retries.is_empty() {
                drop(state);
                // The first job of a run of one target's jobs is kicked at
                // once (its worker wakes while the rest are queued); the
                // rest once, at the end of the run.
                let mut run: Option<(Arc<T>, usize)> = None;
                for (at, Entry { job, target }) in due.drain(..) {
                    match &mut run {
                        Some((current, n)) if Arc::ptr_eq(current, &target) => {
                            target.enqueue(job, at);
                            *n += 1;
                        }
                        _ => {
                            if let Some((done, n)) = run.take() {
                                if n > 1 {
                                    done.kick_queued();
                                }
                            }
                            target.dispatch(job, at);
                            run = Some((target, 1));
                        }
                    }
                }
                if let Some((done, n)) = run {
                    if n > 1 {
                        done.kick_queued();
                    }
                }
                for target in retries {
                    target.kick();
                }
                state = lock(&self.state);
                continue;
            }
            let next = match (state.heap.next_due(), state.expected_back) {
                (Some(next), back) => Some(next.min(back)),
                (None, Nanos::MAX) => None,
                (None, back) => Some(back),
            };
            let due_wait = next.map(|next| (next, next.saturating_sub(lead).saturating_sub(now)));
            let due_wait = due_wait
                .and_then(|(at, wait)| Some((at.saturating_sub(lead), self.rt.clock.real_wait(wait)?)));
            let wait = match (due_wait.map(|(_, w)| w), state.retry_wait()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // A task follows the wall clock: read it again within a second
            // (a manual clock's step wakes the thread itself).
            let wait = match (wait, walled && self.rt.clock.real_wait(0).is_some()) {
                (Some(wait), true) => Some(wait.min(WALL_CHECK)),
                (None, true) => Some(WALL_CHECK),
                (wait, false) => wait,
            };
            // A retry's wake-up time is in real time, not the clock's: a
            // push then wakes the thread as if it slept without end.
            state.asleep_until = Some(match (due_wait, wait) {
                (Some((at, w)), Some(wait)) if w == wait => at,
                _ => Nanos::MAX,
            });
            state = match wait {
                Some(wait) => self.wake.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0,
                None => self.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// At shutdown: closes the timer, sends what is due to its target (or,
    /// with `cancel_due`, cancels it) and cancels the rest. Returns how many
    /// due entries it cancelled.
    pub(crate) fn close(&self, cancel_due: bool) -> usize {
        let (due, not_due, holders) = {
            let mut state = lock(&self.state);
            state.closed = true;
            let holders = state.return_held();
            let now = self.rt.now();
            let due: Vec<Entry<T>> = std::iter::from_fn(|| state.pop_due(now).map(|(_, e)| e)).collect();
            let not_due = state.drain();
            (due, not_due, holders)
        };
        self.wake.notify_all();
        for target in holders {
            target.wake_holders();
        }
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
        let (entries, holders) = {
            let mut state = lock(&self.state);
            let holders = state.return_held();
            (state.drain(), holders)
        };
        for target in holders {
            target.wake_holders();
        }
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
