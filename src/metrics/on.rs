//! The metrics themselves (feature `metrics`): a manager's switch, the
//! series of each task name, a module's gauges, the cluster's gauges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Gauge,
    Histogram, Unit,
};

const COUNTERS: &[(&str, &str)] = &[
    ("taskmanager_tasks_started_total", "Runs begun."),
    ("taskmanager_tasks_succeeded_total", "Runs whose method and callbacks returned."),
    (
        "taskmanager_tasks_failed_total",
        "Runs that failed (raised, panicked, or timed out), retries not counted.",
    ),
    ("taskmanager_tasks_retried_total", "Failed runs that will be tried again."),
    ("taskmanager_tasks_cancelled_total", "Tasks cancelled before they ran, or recurring tasks stopped."),
    ("taskmanager_tasks_dead_lettered_total", "Tasks moved to the broker's dead-letter set."),
    ("taskmanager_ticks_skipped_total", "Recurring ticks that passed without a run."),
];
const GAUGES: &[(&str, &str)] = &[
    ("taskmanager_tasks_queued", "Tasks waiting for a worker of the module, in this process."),
    ("taskmanager_tasks_running", "Tasks running in the module, in this process."),
    ("taskmanager_workers", "Worker threads of the module."),
    ("taskmanager_timers_pending", "Delayed and recurring tasks of the module waiting in the timer."),
    ("taskmanager_schedule_last_lateness_seconds", "How late a recurring task's last tick started."),
    (
        "taskmanager_cluster_tasks_queued",
        "Tasks waiting in Redis for a worker, by module (the same from every process).",
    ),
    ("taskmanager_cluster_tasks_running", "Tasks claimed from Redis and not yet acknowledged, by module."),
    ("taskmanager_cluster_tasks_delayed", "Tasks in Redis scheduled for later."),
    ("taskmanager_cluster_workers", "Worker processes seen in the last day, alive or dead."),
    ("taskmanager_cluster_schedules", "Shared recurring schedules, active or paused."),
    (
        "taskmanager_cluster_readable",
        "1 if the last read of the cluster's figures from Redis succeeded, else 0.",
    ),
];
const HISTOGRAMS: &[(&str, &str)] = &[
    ("taskmanager_task_duration_seconds", "How long runs took, callbacks included."),
    (
        "taskmanager_task_queue_wait_seconds",
        "From when a task could first run (queued, or due) to its start.",
    ),
    ("taskmanager_schedule_lateness_seconds", "From a recurring tick's due time to its run's start."),
];

use super::{MAX_TASK_SERIES, OTHER, UNNAMED};

/// A module's name and a task's (None: unnamed).
type SeriesKey = (Arc<str>, Option<Arc<str>>);

/// One manager's switch and the handles it made (see the module docs).
#[derive(Default)]
pub(crate) struct Metrics {
    on: AtomicBool,
    /// By module, then task name. Looked up once a run (a worker keeps
    /// its last one: see `pool::context`).
    tasks: Mutex<HashMap<SeriesKey, Arc<TaskSeries>>>,
    /// Task names labelled so far, past which `_other` is used.
    names: Mutex<std::collections::HashSet<Arc<str>>>,
    warned: AtomicBool,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics::default()
    }

    /// Turns them on, and describes each metric to the recorder.
    pub(crate) fn enable(&self) {
        if self.is_on() {
            return;
        }
        for (name, help) in COUNTERS {
            describe_counter!(*name, Unit::Count, *help);
        }
        for (name, help) in GAUGES {
            describe_gauge!(*name, Unit::Count, *help);
        }
        for (name, help) in HISTOGRAMS {
            describe_histogram!(*name, Unit::Seconds, *help);
        }
        self.on.store(true, Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// The series of task `name` (None: unnamed) of `module`, if on.
    pub(crate) fn task(&self, module: &Arc<str>, name: Option<&Arc<str>>) -> Option<Arc<TaskSeries>> {
        if !self.is_on() {
            return None;
        }
        let key = (Arc::clone(module), name.cloned());
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = tasks.get(&key) {
            return Some(Arc::clone(series));
        }
        let label = match name {
            None => UNNAMED.to_owned(),
            Some(name) => self.label(name),
        };
        let series = Arc::new(TaskSeries::new(module, label));
        tasks.insert(key, Arc::clone(&series));
        Some(series)
    }

    /// `name`, or `_other` past the cap.
    fn label(&self, name: &Arc<str>) -> String {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.contains(name) || names.len() < MAX_TASK_SERIES {
            names.insert(Arc::clone(name));
            return name.to_string();
        }
        if !self.warned.swap(true, Relaxed) {
            log::warn!(
                "taskmanager: more than {MAX_TASK_SERIES} task names; metrics count the rest as task=\"{OTHER}\""
            );
        }
        OTHER.to_owned()
    }

    /// The gauges of `module`, if on.
    pub(crate) fn module(&self, module: &str) -> Option<ModuleGauges> {
        self.is_on().then(|| ModuleGauges::new(module))
    }
}

/// The handles of one task name's series (each an atomic in the
/// recorder: recording is a store, no look-up).
pub(crate) struct TaskSeries {
    started: Counter,
    succeeded: Counter,
    failed: Counter,
    retried: Counter,
    cancelled: Counter,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    dead_lettered: Counter,
    skipped: Counter,
    duration: Histogram,
    wait: Histogram,
    /// Made at a recurring task's first tick: a one-shot task has
    /// no lateness, and an empty series would say it had none.
    lateness: std::sync::OnceLock<(Histogram, Gauge)>,
    labels: [(&'static str, String); 2],
}

impl TaskSeries {
    fn new(module: &str, task: String) -> Self {
        let labels = [("module", module.to_owned()), ("task", task)];
        TaskSeries {
            started: counter!("taskmanager_tasks_started_total", &labels),
            succeeded: counter!("taskmanager_tasks_succeeded_total", &labels),
            failed: counter!("taskmanager_tasks_failed_total", &labels),
            retried: counter!("taskmanager_tasks_retried_total", &labels),
            cancelled: counter!("taskmanager_tasks_cancelled_total", &labels),
            dead_lettered: counter!("taskmanager_tasks_dead_lettered_total", &labels),
            skipped: counter!("taskmanager_ticks_skipped_total", &labels),
            duration: histogram!("taskmanager_task_duration_seconds", &labels),
            wait: histogram!("taskmanager_task_queue_wait_seconds", "module" => module.to_owned()),
            lateness: std::sync::OnceLock::new(),
            labels,
        }
    }

    /// Adds a worker's batch of runs (see `batch.rs`): how many began,
    /// succeeded, failed and will be retried, their queue waits and their
    /// durations, in seconds.
    pub(super) fn add(&self, counts: [u64; 4], waits: &[f64], durations: &[f64]) {
        for (counter, n) in
            [&self.started, &self.succeeded, &self.failed, &self.retried].into_iter().zip(counts)
        {
            if n > 0 {
                counter.increment(n);
            }
        }
        for &wait in waits {
            self.wait.record(wait);
        }
        for &duration in durations {
            self.duration.record(duration);
        }
    }

    /// A recurring tick's run began `late` after its due time (told at
    /// once: ticks are few).
    pub(crate) fn late(&self, late: Duration) {
        let (all, last) = self.lateness.get_or_init(|| {
            let histogram = histogram!("taskmanager_schedule_lateness_seconds", &self.labels);
            (histogram, gauge!("taskmanager_schedule_last_lateness_seconds", &self.labels))
        });
        all.record(late.as_secs_f64());
        last.set(late.as_secs_f64());
    }

    pub(crate) fn cancelled(&self) {
        self.cancelled.increment(1);
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn dead_lettered(&self, tasks: u64) {
        self.dead_lettered.increment(tasks);
    }

    pub(crate) fn skipped(&self, ticks: u64) {
        self.skipped.increment(ticks);
    }
}

/// Sets the `taskmanager_cluster_*` gauges from `stats`, or (None:
/// Redis could not be read) `taskmanager_cluster_readable` to 0.
#[cfg(feature = "redis")]
pub(crate) fn record_cluster(stats: Option<&crate::cluster::ClusterStats>) {
    gauge!("taskmanager_cluster_readable").set(if stats.is_some() { 1.0 } else { 0.0 });
    let Some(stats) = stats else { return };
    for load in &stats.modules {
        let label = [("module", load.name.clone())];
        gauge!("taskmanager_cluster_tasks_queued", &label).set(load.queued as f64);
        gauge!("taskmanager_cluster_tasks_running", &label).set(load.running as f64);
    }
    gauge!("taskmanager_cluster_tasks_delayed").set(stats.delayed as f64);
    let alive = stats.workers.iter().filter(|w| w.alive).count();
    gauge!("taskmanager_cluster_workers", "state" => "alive").set(alive as f64);
    gauge!("taskmanager_cluster_workers", "state" => "dead").set((stats.workers.len() - alive) as f64);
    let paused = stats.schedules.iter().filter(|s| s.paused).count();
    gauge!("taskmanager_cluster_schedules", "state" => "active").set((stats.schedules.len() - paused) as f64);
    gauge!("taskmanager_cluster_schedules", "state" => "paused").set(paused as f64);
}

/// A module's gauges.
pub(crate) struct ModuleGauges {
    pub(crate) queued: Gauge,
    pub(crate) running: Gauge,
    pub(crate) workers: Gauge,
    pub(crate) timers: Gauge,
}

impl ModuleGauges {
    fn new(module: &str) -> Self {
        let label = [("module", module.to_owned())];
        ModuleGauges {
            queued: gauge!("taskmanager_tasks_queued", &label),
            running: gauge!("taskmanager_tasks_running", &label),
            workers: gauge!("taskmanager_workers", &label),
            timers: gauge!("taskmanager_timers_pending", &label),
        }
    }

    /// Sets them all.
    pub(crate) fn set(&self, queued: usize, running: usize, workers: usize, timers: usize) {
        self.queued.set(queued as f64);
        self.running.set(running as f64);
        self.workers.set(workers as f64);
        self.timers.set(timers as f64);
    }
}
