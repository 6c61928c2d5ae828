//! [`Context`]: a worker's side of running a job, what a job's run may ask
//! of the module that runs it (see [`RunContext`]), and the token by which
//! the timer knows the worker that holds a recurring task.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::counts::WorkerSlot;
use super::Pool;
use crate::event::Events;
use crate::job::{Job, RunContext};
use crate::schedule::Nanos;

/// A worker's side of running a job: see [`RunContext`].
pub(super) struct Context<'a> {
    pub(super) module: &'a Arc<Pool>,
    pub(super) slot: &'a WorkerSlot,
    /// The clock's reading just before the run, if the worker took one
    /// (see `Runtime::wait_until`).
    pub(super) started: Option<Nanos>,
}

impl RunContext for Context<'_> {
    fn events(&self) -> &Events {
        &self.module.rt.events
    }

    fn now(&self) -> Nanos {
        self.module.rt.now()
    }

    fn wall(&self) -> u64 {
        self.module.rt.clock.wall()
    }

    fn started(&self) -> Nanos {
        self.started.unwrap_or_else(|| self.now())
    }

    /// For `stats().running` and `running_tasks()`; `count_run` clears it.
    fn mark_running(&self, id: u64) {
        self.slot.current.store(id, Relaxed);
    }

    /// Counted before the handle says done, so a program that waited for
    /// the task sees it counted; no longer running, before then too.
    fn count_run(&self, failed: bool) {
        self.slot.counts.count_run(failed);
        self.slot.current.store(0, Relaxed);
    }

    /// Not failed: the task runs again; no longer running meanwhile.
    fn count_retry(&self) {
        self.slot.counts.count_retry();
        self.slot.current.store(0, Relaxed);
    }

    /// Keeps the job in this worker's hands when it may (see `may_hold`):
    /// the worker then sleeps until its due time and runs it, one wake-up a
    /// run (the timer thread's and then a worker's otherwise).
    fn reschedule(&self, job: Arc<dyn Job>, due: Option<Nanos>) -> bool {
        let hold = !self.slot.holding.load(Relaxed)
            && !self.slot.detached.load(Relaxed)
            && due.is_some_and(|due| self.module.may_hold(due));
        let rescheduled = self.module.reschedule(job, due, hold.then(|| holder(self.slot)));
        if rescheduled && hold {
            self.slot.holding.store(true, Relaxed);
        }
        rescheduled
    }
}

/// A worker's token in the timer's held entries: its slot's address.
pub(super) fn holder(slot: &WorkerSlot) -> usize {
    std::ptr::from_ref(slot) as usize
}
