//! [`Context`]: a worker's side of running a job, what a job's run may ask
//! of the module that runs it (see [`RunContext`]), and the token by which
//! the timer knows the worker that holds a recurring task.

use std::cell::Cell;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::counts::WorkerSlot;
use super::ready::UNMEASURED;
use super::Pool;
use crate::event::Events;
use crate::job::{Core, Job, RunContext};
use crate::metrics::Outcome;
use crate::schedule::Nanos;

/// A worker's side of running a job: see [`RunContext`].
pub(super) struct Context<'a> {
    pub(super) module: &'a Arc<Pool>,
    pub(super) slot: &'a WorkerSlot,
    /// The clock's reading just before the run, if the worker took one
    /// (see `Runtime::wait_until`).
    pub(super) started: Option<Nanos>,
    /// When the job could first run (see `Queued::ready_at`): the later of
    /// its queueing and its due time.
    pub(super) ready_at: Nanos,
    /// With metrics on: the run's start, on the manager's clock.
    metered_from: Cell<Option<Nanos>>,
}

impl<'a> Context<'a> {
    /// The context of a run of a job queued at `queued` (or
    /// `UNMEASURED`), handed over ahead of its due time `not_before` (or 0).
    pub(super) fn new(
        module: &'a Arc<Pool>,
        slot: &'a WorkerSlot,
        started: Option<Nanos>,
        (queued, not_before): (Nanos, Nanos),
    ) -> Self {
        let ready_at = if queued == UNMEASURED { UNMEASURED } else { queued.max(not_before) };
        Context { module, slot, started, ready_at, metered_from: Cell::new(None) }
    }

    /// Counts the end of a metered run (see `mark_running`) in the
    /// worker's batch.
    fn ended(&self, outcome: Outcome) {
        if let Some(from) = self.metered_from.take() {
            let took = Duration::from_nanos(self.now().saturating_sub(from));
            self.slot.batch().ended(outcome, took);
        }
    }
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
    fn mark_running(&self, core: &Core, due: Option<Nanos>) {
        self.slot.current.store(core.id(), Relaxed);
        let pool = self.module;
        if pool.rt.metrics.is_on() {
            let started = self.started();
            let since = |at: Nanos| Duration::from_nanos(started.saturating_sub(at));
            let waited = (self.ready_at != UNMEASURED).then(|| since(self.ready_at));
            let task = (&pool.name, core.given_name());
            let late = due.map(since).or_else(|| tick_lateness(core, self.wall()));
            if self.slot.batch().started(&pool.rt.metrics, task, waited, late) {
                self.metered_from.set(Some(started));
            }
        }
    }

    /// Counted before the handle says done, so a program that waited for
    /// the task sees it counted; no longer running, before then too.
    fn count_run(&self, failed: bool) {
        self.slot.counts.count_run(failed);
        self.slot.current.store(0, Relaxed);
        self.ended(if failed { Outcome::Failed } else { Outcome::Succeeded });
    }

    /// Not failed: the task runs again; no longer running meanwhile.
    fn count_retry(&self) {
        self.slot.counts.count_retry();
        self.slot.current.store(0, Relaxed);
        self.ended(Outcome::Retried);
    }

    fn count_skipped(&self, core: &Core, ticks: u64) {
        let pool = self.module;
        if let Some(series) = pool.rt.metrics.task(&pool.name, core.given_name()) {
            series.skipped(ticks);
        }
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

/// How late a shared schedule's tick from Redis started (its id is
/// `<key>@<due ms>`, by Redis's clock; this process's wall clock is
/// `wall_ns`); None for any other task.
fn tick_lateness(core: &Core, wall_ns: u64) -> Option<Duration> {
    let due_ms: u64 = core.broker_id()?.rsplit_once('@')?.1.parse().ok()?;
    Some(Duration::from_millis((wall_ns / 1_000_000).saturating_sub(due_ms)))
}
