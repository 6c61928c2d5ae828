//! What a manager's tasks come to, as metrics through the ecosystem's
//! `metrics` facade (feature `metrics`): the application installs the
//! recorder (a Prometheus exporter, StatsD, ...) and turns them on with
//! [`TaskManager::enable_metrics`](crate::TaskManager::enable_metrics).
//! Off, every hook is one relaxed load; without the feature, nothing.
//!
//! Names and labels follow Prometheus's conventions (base units, `_total`
//! on counters). Labels: `module`, and `task`, the task's name (a Python
//! method's qualified name, or its `name=`; `unnamed` for a Rust task
//! given none). A manager keeps at most [`MAX_TASK_SERIES`] task names;
//! later ones are counted under `task="_other"` (one warning), so a
//! program naming tasks by user or id cannot flood its metrics store.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `taskmanager_tasks_started_total` | counter | module, task |
//! | `taskmanager_tasks_succeeded_total` | counter | module, task |
//! | `taskmanager_tasks_failed_total` | counter | module, task |
//! | `taskmanager_tasks_retried_total` | counter | module, task |
//! | `taskmanager_tasks_cancelled_total` | counter | module, task |
//! | `taskmanager_tasks_dead_lettered_total` | counter | module, task |
//! | `taskmanager_ticks_skipped_total` | counter | module, task |
//! | `taskmanager_task_duration_seconds` | histogram | module, task |
//! | `taskmanager_task_queue_wait_seconds` | histogram | module |
//! | `taskmanager_schedule_lateness_seconds` | histogram | module, task |
//! | `taskmanager_tasks_queued` | gauge | module |
//! | `taskmanager_tasks_running` | gauge | module |
//! | `taskmanager_workers` | gauge | module |
//! | `taskmanager_timers_pending` | gauge | module |
//! | `taskmanager_schedule_last_lateness_seconds` | gauge | module, task |
//!
//! With a broker, [`TaskManager::sample_cluster_metrics`](crate::TaskManager::sample_cluster_metrics)
//! reads Redis and sets `taskmanager_cluster_tasks_queued`/`_running`
//! (module), `taskmanager_cluster_tasks_delayed`,
//! `taskmanager_cluster_workers` (state: alive, dead) and
//! `taskmanager_cluster_schedules` (state: active, paused), and
//! `taskmanager_cluster_readable`, 0 when Redis could not be read (the
//! others then keep their last figures).
//!
//! A run is timed from its start to the end of its callbacks; its queue
//! wait from when it could first run (submitted, or due) to its start; a
//! recurring tick's lateness from its due time to its start. Gauges are
//! read from the modules when
//! [`TaskManager::sample_metrics`](crate::TaskManager::sample_metrics) is
//! called (before a scrape, or every few seconds): a gauge set at every
//! run would cost each run more than all the rest (contended atomics).

#[cfg(feature = "metrics")]
mod batch;
#[cfg(not(feature = "metrics"))]
mod off;
#[cfg(feature = "metrics")]
mod on;

#[cfg(feature = "metrics")]
pub(crate) use batch::{Batch, Outcome};
#[cfg(not(feature = "metrics"))]
pub(crate) use off::{Batch, Metrics, ModuleGauges, Outcome};
#[cfg(all(feature = "metrics", feature = "redis"))]
pub(crate) use on::record_cluster;
#[cfg(feature = "metrics")]
pub(crate) use on::{Metrics, ModuleGauges};

/// The most task names one manager labels metrics with.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) const MAX_TASK_SERIES: usize = 1000;

/// The `task` label of a task given no name.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const UNNAMED: &str = "unnamed";

/// The `task` label past [`MAX_TASK_SERIES`] names.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
const OTHER: &str = "_other";
