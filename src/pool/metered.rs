//! What a module tells its metrics (see `metrics.rs`): its gauges, the
//! time a queued job could first run, and cancels by task name.

use std::sync::Arc;

use super::counts::WorkerSlot;
use super::ready::{Queued, UNMEASURED};
use super::Pool;
use crate::job::{Core, Job, JobRef};
use crate::metrics::ModuleGauges;
use crate::schedule::Nanos;
use crate::timer::driver::Target;

impl Pool {
    /// This module's gauges, if metrics are on.
    pub(crate) fn gauges(&self) -> Option<&ModuleGauges> {
        if !self.rt.metrics.is_on() {
            return None;
        }
        match self.gauges.get() {
            Some(gauges) => Some(gauges),
            None => {
                let made = self.rt.metrics.module(&self.name)?;
                Some(self.gauges.get_or_init(|| made))
            }
        }
    }

    /// When a job queued now could first run, for its queue wait: the
    /// clock's reading if metrics are on, else [`UNMEASURED`].
    pub(super) fn ready_at(&self) -> Nanos {
        if self.rt.metrics.is_on() {
            self.rt.now()
        } else {
            UNMEASURED
        }
    }

    /// Queues `job`, from elsewhere (a broker's claim), which could first
    /// run `waited` ago (for its queue wait), and makes sure a worker will
    /// take it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn dispatch_waited(self: &Arc<Self>, job: JobRef, waited: std::time::Duration) {
        let ready_at = match self.ready_at() {
            UNMEASURED => UNMEASURED,
            now => now.saturating_sub(u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX)),
        };
        self.ready.push(Queued { job, not_before: 0, ready_at });
        self.kick_queued();
    }

    /// Counts a run that found its job cancelled, on `slot` and (with
    /// `metered`, the job) in its metrics.
    pub(super) fn count_cancelled_run(&self, slot: &WorkerSlot, metered: Option<Arc<dyn Job>>) {
        slot.counts.count_cancelled();
        self.cancelled_metric(metered.as_deref().map(|job| job.core()));
    }

    /// Counts a cancel of `core`'s task in its metrics, if on.
    pub(crate) fn cancelled_metric(&self, core: Option<&Core>) {
        if let Some(core) = core.filter(|_| self.rt.metrics.is_on()) {
            if let Some(series) = self.rt.metrics.task(&self.name, core.given_name()) {
                series.cancelled();
            }
        }
    }

    /// The job, shared, if metrics are on (a cancel's is counted after
    /// the job is gone).
    pub(super) fn metered(&self, job: &JobRef) -> Option<Arc<dyn Job>> {
        self.rt.metrics.is_on().then(|| job.share()).flatten()
    }

    /// Hands every worker's batch of runs to the recorder and sets this
    /// module's gauges from its counts, if metrics are on.
    pub(crate) fn sample_gauges(&self) {
        if let Some(gauges) = self.gauges() {
            for slot in crate::sync::lock(&self.workers).iter() {
                slot.batch().flush();
            }
            let stats = self.stats();
            gauges.set(stats.queued, stats.running, stats.workers, stats.pending_timers);
        }
    }
}
