//! The [`TaskManager`] calls that read or act on what its broker keeps in
//! Redis (feature `redis`): the cluster's stats, the dead-letter set,
//! tasks looked up by id, and shared schedules by key.

use std::time::Duration;

use super::TaskManager;
use crate::err::SubmitError;

impl TaskManager {
    /// With a broker: the whole cluster sharing its Redis and key prefix,
    /// read from Redis: each module's queued and running tasks, delayed
    /// tasks, shared schedules, the worker processes seen (alive or dead, with
    /// what each holds and what was taken over from it), how the tasks of
    /// each name ended (totals and rates, see
    /// [`TaskOutcomes`](crate::TaskOutcomes)) and the dead-letter count.
    ///
    /// # Errors
    /// [`SubmitError::Broker`] without a broker, or if Redis cannot be
    /// read within the broker timeout.
    pub fn cluster_stats(&self) -> Result<crate::ClusterStats, SubmitError> {
        self.broker_or_err()?.cluster_stats()
    }

    /// With a broker and metrics on (feature `metrics`, see
    /// [`enable_metrics`](Self::enable_metrics)): reads the cluster's
    /// stats and sets the `taskmanager_cluster_*` gauges from them (tasks
    /// queued and running by module, delayed, workers alive and dead,
    /// schedules active and paused), or, if Redis cannot be read,
    /// `taskmanager_cluster_readable` to 0. Every process that calls it
    /// reports the same figures: aggregate them with `max`, not `sum`.
    ///
    /// # Errors
    /// As [`cluster_stats`](Self::cluster_stats).
    #[cfg(feature = "metrics")]
    pub fn sample_cluster_metrics(&self) -> Result<crate::ClusterStats, SubmitError> {
        let stats = self.cluster_stats();
        if self.shared().runtime().metrics.is_on() {
            crate::metrics::record_cluster(stats.as_ref().ok());
        }
        stats
    }

    /// With a broker: the dead-letter set, newest first, at most `limit`
    /// tasks (see [`DeadLetter`](crate::DeadLetter)): tasks that could not
    /// be read, poison tasks whose workers died running them
    /// ([`Builder::broker_max_deliveries`](crate::Builder::broker_max_deliveries)),
    /// tasks whose retries were used up
    /// ([`Retry::dead_letter`](crate::Retry::dead_letter)), and tasks of a
    /// name no live worker could run for
    /// [`Builder::broker_unrunnable_after`](crate::Builder::broker_unrunnable_after)
    /// (requeue them once a worker has the name).
    /// The set keeps at most 10,000 tasks, each at most 7 days.
    ///
    /// # Errors
    /// [`SubmitError::Broker`] without a broker, or if Redis cannot be
    /// read within the broker timeout.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<crate::DeadLetter>, SubmitError> {
        self.broker_or_err()?.dead_letters(limit)
    }

    /// With a broker: puts the dead-lettered tasks `ids` back in their
    /// streams as they were first sent (any worker may claim them at once);
    /// returns how many were there.
    ///
    /// # Errors
    /// As [`dead_letters`](Self::dead_letters).
    pub fn requeue_dead_letters(&self, ids: &[String]) -> Result<usize, SubmitError> {
        self.broker_or_err()?.requeue_dead(ids)
    }

    /// With a broker: empties the dead-letter set; returns how many tasks
    /// it held.
    ///
    /// # Errors
    /// As [`dead_letters`](Self::dead_letters).
    pub fn purge_dead_letters(&self) -> Result<usize, SubmitError> {
        self.broker_or_err()?.purge_dead()
    }

    /// With a broker: what Redis says of the task `id` (a
    /// [`TaskHandle::broker_id`](crate::TaskHandle::broker_id), from any
    /// process): its result while it is kept (the workers'
    /// [`Builder::broker_result_ttl`](crate::Builder::broker_result_ttl),
    /// 10 min by default, or the task's own), or where it waits.
    ///
    /// # Errors
    /// [`SubmitError::Broker`] without a broker, or if Redis cannot be read
    /// within the broker timeout.
    pub fn lookup(&self, id: &str) -> Result<crate::TaskLookup, SubmitError> {
        self.broker_or_err()?.lookup(id)
    }

    /// With a broker: how many times the task `id` ran (its attempt, and
    /// that attempt's deliveries), as its stored result, its retry waiting,
    /// or its dead letter records it; None if Redis holds none of them
    /// (queued, running, its result expired, or no such task).
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn attempts(&self, id: &str) -> Result<Option<crate::Attempts>, SubmitError> {
        self.broker_or_err()?.attempts(id)
    }

    /// With a broker: the delayed one-shot tasks (and those waiting to
    /// retry) per module. Each task's module is read from its hash, a
    /// thousand a round trip (about 0.1 s for 10,000 waiting): for an
    /// operator; [`ClusterStats::delayed`](crate::ClusterStats::delayed)
    /// is their total, at the cost of one call.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn delayed_by_module(&self) -> Result<std::collections::BTreeMap<String, usize>, SubmitError> {
        self.broker_or_err()?.delayed_by_module()
    }

    /// With a broker: the task `id` found in its stream, queued or held by
    /// a worker (see [`InStream`](crate::InStream)), which
    /// [`lookup`](Self::lookup) cannot tell; None if no stream holds it.
    /// It searches every stream of the prefix (at most 10,000 entries
    /// each): an operator's question, not one to ask per task.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn locate(&self, id: &str) -> Result<Option<crate::InStream>, SubmitError> {
        self.broker_or_err()?.locate(id)
    }

    /// With a broker: the tasks workers have claimed and not yet
    /// acknowledged, cluster-wide (running, or about to), longest held
    /// first, at most `limit` (see [`ClaimedTask`](crate::ClaimedTask)).
    /// One script call per stream of the prefix: for an operator's page,
    /// not per task.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn claimed_tasks(&self, limit: usize) -> Result<Vec<crate::ClaimedTask>, SubmitError> {
        self.broker_or_err()?.claimed_tasks(limit)
    }

    /// With a broker: waits up to `timeout` for the outcome of the task
    /// `id` (see [`lookup`](Self::lookup)), as its handle would give it;
    /// None if none came in time (not finished yet, or no such task, or
    /// its result expired).
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn wait_result(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<Result<serde_json::Value, crate::TaskError>>, SubmitError> {
        self.broker_or_err()?.wait_result(id, timeout)
    }

    /// With a broker: the handle of the shared schedule `key` (as
    /// [`ClusterStats::schedules`](crate::ClusterStats::schedules) lists
    /// them), to pause, resume or remove it from any process, also one no
    /// longer in any program's code. Whether it exists is asked of Redis by
    /// each call on the handle.
    ///
    /// # Errors
    /// [`SubmitError::Broker`] without a broker.
    pub fn shared_schedule(&self, key: &str) -> Result<crate::SharedSchedule, SubmitError> {
        Ok(crate::SharedSchedule::existing(std::sync::Arc::clone(self.broker_or_err()?), key))
    }

    fn broker_or_err(&self) -> Result<&std::sync::Arc<crate::broker::Broker>, SubmitError> {
        self.shared()
            .broker()
            .ok_or_else(|| SubmitError::Broker("this task manager has no broker".to_owned()))
    }
}
