//! [`State`]: what the timer keeps under its lock: the heap of pending
//! entries (each target counting its own), the spawn retries, and what the
//! timer thread's sleep promises (`asleep_until`, `expected_back`), which
//! decides whether a push must wake it. The driver (`driver.rs`) owns one.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::job::{Core, Job, JobRef};
use crate::schedule::Nanos;
use crate::sync::AtomicUsize;
use crate::timer::heap::{Slotted, TimerHeap};

/// Where a due task goes: a module's pool, seen from the timer.
pub(crate) trait Target: Send + Sync + 'static {
    /// Takes a due job, to start at `not_before` (0: at once).
    fn dispatch(self: &Arc<Self>, job: JobRef, not_before: Nanos);
    /// Queues a due job without waking a worker for it: the caller then
    /// calls [`kick_queued`](Self::kick_queued).
    fn enqueue(&self, job: JobRef, not_before: Nanos);
    /// Makes sure workers take what `enqueue` queued.
    fn kick_queued(self: &Arc<Self>);
    /// Cancels a job taken out of the timer unrun; if that cancelled it,
    /// counts it and tells the event. Returns whether it did.
    fn cancel(&self, job: JobRef) -> bool;
    /// Counts a job of this target that its handle cancelled (`core`:
    /// which, if it is still there).
    fn count_cancelled(&self, core: Option<&Core>);
    /// Starts a worker for queued work, if one is missing (a retried start).
    fn kick(self: &Arc<Self>);
    /// Wakes this target's idle workers: an entry one of them holds (see
    /// [`State::hold`]) was taken from it.
    fn wake_holders(&self);
    /// This target's entries in the timer; kept by the timer, under its lock.
    fn timers(&self) -> &AtomicUsize;
}

/// A pending scheduled task in the heap.
pub(crate) struct Entry<T> {
    pub(crate) job: JobRef,
    pub(crate) target: Arc<T>,
}

impl<T> Slotted for Entry<T> {
    fn set_slot(&self, slot: u32) {
        self.job.set_slot(slot);
    }
}

impl<T: Target> Entry<T> {
    pub(crate) fn cancel(self) -> bool {
        let Entry { job, target } = self;
        target.cancel(job)
    }
}

/// A recurring entry kept by the worker that ran it, which sleeps until its
/// due time and runs it itself (see [`State::hold`]).
pub(crate) struct Held<T> {
    pub(crate) due: Nanos,
    pub(crate) entry: Entry<T>,
    /// The worker's token (its slot's address).
    pub(crate) holder: usize,
}

/// What became of a worker's held entry (see [`State::check_held`]).
pub(crate) enum HeldNow {
    /// It holds nothing (any more): a cancel, a new interval or shutdown
    /// took it.
    Gone,
    /// Not due yet: due then.
    Waiting(Nanos),
    /// Due (at the time given): the worker runs it now.
    Due(Nanos, JobRef),
}

pub(crate) struct State<T> {
    pub(crate) heap: TimerHeap<Entry<T>>,
    /// Entries held by the workers that will run them, at most one each:
    /// pending like the heap's (counted, listed, cancelled, closed alike),
    /// but no business of the timer thread's.
    held: Vec<Held<T>>,
    /// Set at shutdown: the heap takes nothing more.
    pub(crate) closed: bool,
    pub(crate) thread_started: bool,
    /// Targets left with queued work and no worker because a worker thread
    /// could not be started, and when to try again (see `retry_spawn`).
    /// In real time, whatever the manager's clock: threads free up in it.
    pub(crate) retries: Vec<(Instant, Arc<T>)>,
    /// While the timer thread waits: the clock reading at which it wakes by
    /// itself (`Nanos::MAX`: only when told). None while it is awake, or a
    /// wake-up is on its way. A push due before it must wake the thread;
    /// any other push it finds when it wakes anyway, without a system call.
    pub(crate) asleep_until: Option<Nanos>,
    /// The earliest a recurring task that the timer handed out can be back:
    /// its due time plus its interval (a run ends after it starts, and the
    /// next due is at least an interval after the last). The timer sleeps no
    /// later than this, so that the run's reschedule, due then or later,
    /// finds it asleep until then and needs no wake-up (see `asleep_until`).
    pub(crate) expected_back: Nanos,
}

/// Every entry enters and leaves the heap through these, which keep each
/// target's count of pending timers.
impl<T: Target> State<T> {
    pub(crate) fn new() -> Self {
        State {
            heap: TimerHeap::new(),
            held: Vec::new(),
            closed: false,
            thread_started: false,
            retries: Vec::new(),
            asleep_until: None,
            expected_back: Nanos::MAX,
        }
    }

    pub(crate) fn push(&mut self, due: Nanos, entry: Entry<T>) -> bool {
        entry.target.timers().fetch_add(1, Relaxed);
        self.heap.push(due, entry)
    }

    fn left(entry: &Entry<T>) {
        entry.target.timers().fetch_sub(1, Relaxed);
    }

    pub(crate) fn pop_due(&mut self, now: Nanos) -> Option<(Nanos, Entry<T>)> {
        let popped = self.heap.pop_due(now);
        if let Some((_, entry)) = &popped {
            Self::left(entry);
        }
        popped
    }

    /// Takes the entry of `core` out, from the heap or a worker's hands
    /// (then also says so: its holder must be woken).
    pub(crate) fn remove(&mut self, core: &Core) -> Option<(Entry<T>, bool)> {
        let is_it = |e: &Entry<T>| e.job.core().is_some_and(|c| std::ptr::eq(c, core));
        let removed = match self.heap.remove(core.slot(), is_it) {
            Some(entry) => Some((entry, false)),
            None => {
                let at = self.held.iter().position(|h| is_it(&h.entry))?;
                Some((self.held.swap_remove(at).entry, true))
            }
        };
        if let Some((entry, _)) = &removed {
            Self::left(entry);
        }
        removed
    }

    /// Every entry of the heap, taken out. Held entries are not among
    /// them: [`return_held`](Self::return_held) first, to wake their holders.
    pub(crate) fn drain(&mut self) -> Vec<Entry<T>> {
        let entries: Vec<Entry<T>> = self.heap.drain().collect();
        entries.iter().for_each(Self::left);
        entries
    }

    /// Pending entries, held ones included, with their due times.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Nanos, &Entry<T>)> {
        self.heap.iter().chain(self.held.iter().map(|h| (h.due, &h.entry)))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.held.len()
    }

    /// Gives `entry`, due at `due`, to the worker `holder` to keep. A worker
    /// holds at most one: it asks only when it holds none (its slot's
    /// `holding` flag).
    pub(crate) fn hold(&mut self, holder: usize, due: Nanos, entry: Entry<T>) {
        debug_assert!(self.held.iter().all(|h| h.holder != holder), "a worker holds one entry at most");
        entry.target.timers().fetch_add(1, Relaxed);
        self.held.push(Held { due, entry, holder });
    }

    /// Takes `holder`'s entry back, whether due or not.
    pub(crate) fn unhold(&mut self, holder: usize) -> Option<(Nanos, Entry<T>)> {
        let at = self.held.iter().position(|h| h.holder == holder)?;
        let Held { due, entry, .. } = self.held.swap_remove(at);
        Self::left(&entry);
        Some((due, entry))
    }

    /// What became of `holder`'s entry; takes it out if it is due at `now`.
    pub(crate) fn check_held(&mut self, holder: usize, now: Nanos) -> HeldNow {
        match self.held.iter().find(|h| h.holder == holder) {
            None => HeldNow::Gone,
            Some(h) if h.due > now => HeldNow::Waiting(h.due),
            Some(_) => match self.unhold(holder) {
                Some((due, entry)) => HeldNow::Due(due, entry.job),
                None => HeldNow::Gone,
            },
        }
    }

    /// Moves every held entry into the heap (at shutdown, `cancel_pending`),
    /// still counted as pending; returns their targets, whose holders must
    /// be woken.
    pub(crate) fn return_held(&mut self) -> Vec<Arc<T>> {
        let held: Vec<Held<T>> = self.held.drain(..).collect();
        held.into_iter()
            .map(|Held { due, entry, .. }| {
                let target = Arc::clone(&entry.target);
                self.heap.push(due, entry);
                target
            })
            .collect()
    }

    /// Takes the spawn retries that are due.
    pub(crate) fn due_retries(&mut self) -> Vec<Arc<T>> {
        if self.retries.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let (due, wait): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|&(at, _)| at <= now);
        self.retries = wait;
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// How long until the next spawn retry, if one is pending.
    pub(crate) fn retry_wait(&self) -> Option<Duration> {
        self.retries.iter().map(|&(at, _)| at.saturating_duration_since(Instant::now())).min()
    }
}

/// How often the timer reads the wall clock while a task follows it, to
/// notice a step (an NTP step, a changed system time, a suspend and
/// resume), and by how much the wall clock must move against the
/// monotonic one to count as a step.
pub(super) const WALL_CHECK: Duration = Duration::from_secs(1);
pub(super) const WALL_STEP: i128 = 20_000_000;

/// The tasks that follow the wall clock: a one-shot at a time (its time,
/// in nanoseconds since the epoch) or a calendar task (None: it knows its
/// own, `Job::wall_rekey`); and the wall clock's offset from the monotonic
/// one when their keys were last computed.
#[derive(Default)]
pub(super) struct Walled {
    pub(super) jobs: Vec<(Weak<dyn Job>, Option<u64>)>,
    pub(super) offset: Option<i128>,
    /// Where [`prune_some`](Self::prune_some) looks next.
    cursor: usize,
}

impl Walled {
    /// Forgets up to a few ended tasks, from a cursor that goes round:
    /// O(1) a check, so that the timer stops waking each second soon after
    /// the last task that follows the wall clock ended. The tasks it looked
    /// at go to `held` (see [`live`]).
    pub(super) fn prune_some(&mut self, held: &mut Vec<Arc<dyn Job>>) {
        for _ in 0..8 {
            if self.jobs.is_empty() {
                return;
            }
            self.cursor %= self.jobs.len();
            let ended = !live(&self.jobs[self.cursor].0, held);
            if ended {
                self.jobs.swap_remove(self.cursor);
            } else {
                self.cursor += 1;
            }
        }
    }
}

/// Whether the task of `job` is still there and has not ended. The
/// reference taken to look goes to `held`, to be dropped once no lock is
/// held: were it the last one, dropping it would drop the task (a result
/// nobody took, say), whose drop may be code that schedules a task.
pub(crate) fn live(job: &Weak<dyn Job>, held: &mut Vec<Arc<dyn Job>>) -> bool {
    match job.upgrade() {
        Some(job) => {
            let alive = !job.core().is_finished();
            held.push(job);
            alive
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::OneShot;

    #[test]
    fn ended_tasks_that_followed_the_wall_clock_are_forgotten_a_few_a_check() {
        let task: Arc<dyn Job> = Arc::new(OneShot::new((|| ()) as fn(), Vec::new(), None));
        let mut walled = Walled::default();
        for _ in 0..20 {
            let gone: Weak<dyn Job> = Weak::<OneShot<fn(), ()>>::new();
            walled.jobs.push((gone, Some(0)));
        }
        walled.jobs.push((Arc::downgrade(&task), None));
        let mut held = Vec::new();
        walled.prune_some(&mut held);
        let left = walled.jobs.len();
        assert!((13..21).contains(&left), "some, and eight at most, a check: {left}");
        for _ in 0..3 {
            walled.prune_some(&mut held);
        }
        assert_eq!(walled.jobs.len(), 1, "the live one stays");
        assert!(held.iter().all(|job| Arc::ptr_eq(job, &task)), "what it looked at is held, to drop later");
        held.clear();
        drop(task);
        walled.prune_some(&mut held);
        assert!(walled.jobs.is_empty(), "then the timer stops reading the wall clock");
    }
}
