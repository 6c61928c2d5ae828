//! [`Core`]: the part of every cell the manager looks at without knowing its
//! types. The state word (phase and flags), the id and name, the timer slot,
//! and the waiting every final move wakes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use crate::event::TaskRef;
use crate::sync::{AtomicU32, Condvar, MutexGuard};
use crate::timer::NO_SLOT;

// Phases, in the low two bits of `Core::state`.
/// Waiting in a module queue or in the timer (recurring: between runs).
pub(super) const QUEUED: u32 = 0;
/// A worker is running the method and callbacks.
pub(super) const RUNNING: u32 = 1;
/// Finished: a one-shot task has its result (value or failure).
pub(super) const DONE: u32 = 2;
/// Cancelled: will never run (again).
pub(super) const CANCELLED: u32 = 3;
pub(super) const PHASE: u32 = 0b11;
/// Recurring only: `cancel()` came while RUNNING; the runner finishes it.
pub(super) const CANCEL_REQUESTED: u32 = 0b100;
/// Someone sleeps on `Core::finished`; the finisher must notify.
pub(super) const WAITERS: u32 = 0b1000;

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
    pub(super) id: u64,
    /// The name given at submission, if any, and a broker's id of the
    /// task. Boxed, so that it costs the cell one word: most tasks have
    /// none, and a cell's every word counts a million times over in the
    /// timer.
    label: Option<Box<Label>>,
    pub(super) state: AtomicU32,
    /// Index in the timer heap, or `NO_SLOT`. Read and written only under
    /// the manager's timer lock.
    pub(super) slot: AtomicU32,
    /// Signalled on the move to DONE or CANCELLED, when WAITERS is set.
    finished: Condvar,
}

/// A task's name, and with a broker its id there: what its events tell
/// beside its number.
#[derive(Debug)]
pub(crate) struct Label {
    pub(crate) name: Arc<str>,
    /// The task's id in the broker: its handle's in the submitting
    /// process, and the run's in the worker's (see `TaskRef::broker_id`).
    pub(crate) broker_id: Option<Box<str>>,
}

impl Label {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn remote(name: Arc<str>, broker_id: &str) -> Self {
        Label { name, broker_id: Some(broker_id.into()) }
    }
}

impl Core {
    pub(super) fn new(label: Option<Label>) -> Self {
        Core {
            id: next_id(),
            label: label.map(Box::new),
            state: AtomicU32::new(QUEUED),
            slot: AtomicU32::new(NO_SLOT),
            finished: Condvar::new(),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Which task this is, for an [`Event`](crate::event::Event).
    pub(crate) fn task_ref(&self) -> TaskRef {
        let broker_id = self.label.as_ref().and_then(|l| l.broker_id.as_deref()).map(str::to_owned);
        TaskRef { id: self.id, name: self.name(), broker_id }
    }

    pub(crate) fn is_named(&self) -> bool {
        self.label.is_some()
    }

    /// The name it was given, if any.
    pub(crate) fn given_name(&self) -> Option<&Arc<str>> {
        self.label.as_ref().map(|label| &label.name)
    }

    /// Its id in a broker, if it has one (see `Label::broker_id`).
    pub(crate) fn broker_id(&self) -> Option<&str> {
        self.label.as_ref()?.broker_id.as_deref()
    }

    /// The task's name, or `task-<id>` if it was given none.
    pub(crate) fn name(&self) -> String {
        match &self.label {
            Some(label) => label.name.to_string(),
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
    pub(super) fn shift(&self, from: u32, to: u32, refuse: u32) -> Option<u32> {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & PHASE == from && s & refuse == 0).then_some((s & !PHASE) | to)
            })
            .ok()
    }

    /// QUEUED -> RUNNING: the one worker that wins runs the task.
    pub(super) fn begin_run(&self) -> bool {
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
    pub(super) fn finish_locked(&self, from: u32, to: u32) -> Option<bool> {
        self.shift(from, to, 0).map(|old| old & WAITERS != 0)
    }

    pub(super) fn notify(&self, waiters: bool) {
        if waiters {
            self.finished.notify_all();
        }
    }

    /// Blocks until the phase is final or `deadline` passes; true if final.
    /// `guard` is the cell's stage lock, which every final move holds.
    pub(super) fn wait_final<S>(&self, mut guard: MutexGuard<'_, S>, deadline: Option<Instant>) -> bool {
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
