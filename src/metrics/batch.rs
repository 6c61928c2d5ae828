//! A worker's runs, counted by the worker alone and handed to the recorder
//! in batches: a recorder's counters are atomics every worker shares, and
//! six of them written at every run cost a no-op task 40 % of its
//! throughput (BENCHMARKS.md, "Metrics"). A batch is handed over when it
//! holds [`BATCH`] runs, when the worker's next run is of another task
//! name, when the worker runs out of work, and when the figures are read
//! (`TaskManager::sample_metrics`, which a Prometheus scrape calls): so a
//! scrape sees every run that ended before it.

use std::sync::Arc;
use std::time::Duration;

use super::on::{Metrics, TaskSeries};

/// The most runs a batch holds.
const BATCH: usize = 64;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    /// Failed, and will run again.
    Retried,
}

/// One worker's runs not yet handed over, all of one task name.
#[derive(Default)]
pub(crate) struct Batch {
    /// The task name (None: unnamed) and its series.
    series: Option<(Option<Arc<str>>, Arc<TaskSeries>)>,
    /// Began, succeeded, failed, retried.
    counts: [u64; 4],
    /// Queue waits and durations, in seconds.
    waits: Vec<f64>,
    durations: Vec<f64>,
}

impl Batch {
    /// A run of the task `name` (None: unnamed) of `module` began, `waited`
    /// after it could first (None: not known), `late` after its tick's due
    /// time (a recurring task). False if metrics are off.
    pub(crate) fn started(
        &mut self,
        metrics: &Metrics,
        (module, name): (&Arc<str>, Option<&Arc<str>>),
        waited: Option<Duration>,
        late: Option<Duration>,
    ) -> bool {
        if self.series.as_ref().map_or(true, |(last, _)| last.as_ref() != name) {
            self.flush();
            self.series = metrics.task(module, name).map(|series| (name.cloned(), series));
        }
        let Some((_, series)) = &self.series else { return false };
        if let Some(late) = late {
            series.late(late);
        }
        self.counts[0] += 1;
        if let Some(waited) = waited {
            self.waits.push(waited.as_secs_f64());
        }
        true
    }

    /// The run begun last ended, after `took`.
    pub(crate) fn ended(&mut self, outcome: Outcome, took: Duration) {
        let at = match outcome {
            Outcome::Succeeded => 1,
            Outcome::Failed => 2,
            Outcome::Retried => 3,
        };
        self.counts[at] += 1;
        self.durations.push(took.as_secs_f64());
        if self.durations.len() >= BATCH {
            self.flush();
        }
    }

    /// Hands the batch to the recorder.
    pub(crate) fn flush(&mut self) {
        if let Some((_, series)) = &self.series {
            if self.counts != [0; 4] || !self.waits.is_empty() {
                series.add(self.counts, &self.waits, &self.durations);
            }
        }
        self.counts = [0; 4];
        self.waits.clear();
        self.durations.clear();
    }
}
