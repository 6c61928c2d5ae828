//! Without the feature `metrics`: stand-ins that are never on and record
//! nothing, so that the places that record need no `cfg`.

use std::sync::Arc;
use std::time::Duration;

/// Without the feature: never on, nothing recorded.
pub(crate) struct Metrics;

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics
    }

    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        false
    }

    #[inline]
    pub(crate) fn task(&self, _module: &Arc<str>, _name: Option<&Arc<str>>) -> Option<Arc<TaskSeries>> {
        None
    }

    #[inline]
    pub(crate) fn module(&self, _module: &str) -> Option<ModuleGauges> {
        None
    }
}

pub(crate) enum TaskSeries {}

impl TaskSeries {
    pub(crate) fn cancelled(&self) {
        match *self {}
    }
    #[allow(dead_code)]
    pub(crate) fn dead_lettered(&self, _tasks: u64) {
        match *self {}
    }
    pub(crate) fn skipped(&self, _ticks: u64) {
        match *self {}
    }
}

pub(crate) enum ModuleGauges {}

impl ModuleGauges {
    pub(crate) fn set(&self, _queued: usize, _running: usize, _workers: usize, _timers: usize) {
        match *self {}
    }
}

/// How a run ended (see the feature's `batch.rs`).
#[allow(dead_code)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    Retried,
}

/// Never holds anything: metrics are never on.
#[derive(Default)]
pub(crate) struct Batch;

impl Batch {
    pub(crate) fn started(
        &mut self,
        _metrics: &Metrics,
        _task: (&Arc<str>, Option<&Arc<str>>),
        _waited: Option<Duration>,
        _late: Option<Duration>,
    ) -> bool {
        false
    }
    pub(crate) fn ended(&mut self, _outcome: Outcome, _took: Duration) {}
    pub(crate) fn flush(&mut self) {}
}
