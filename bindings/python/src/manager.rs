//! `ManagerCore`: the Rust manager behind `taskmanager.TaskManager`, its
//! GIL batches and its events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use taskmanager::{
    BatchRunner, Drain, Event, RunningTask, ShutdownTimedOut, Stats, TaskError, TaskLookup, TaskManager,
    TaskState,
};

use crate::broker::Named;
use crate::errors::submit_error;
use crate::module::ModuleCore;
use crate::outstanding::Outstanding;
use crate::{aio, checks, lifetime, logbridge};

/// Hands an event to the Python forwarder (see `ManagerCore::new`).
pub(crate) fn forward_event(forward: &Py<PyAny>, event: &Event) {
    let (kind, duration, error, ticks) = match event {
        Event::Started { .. } => ("started", None, None, None),
        Event::Finished { duration, .. } => ("finished", Some(duration.as_secs_f64()), None, None),
        Event::Failed { duration, error, .. } => {
            ("failed", Some(duration.as_secs_f64()), error.as_ref().map(ToString::to_string), None)
        }
        Event::Retrying { error, .. } => ("retrying", None, Some(error.to_string()), None),
        Event::Skipped { ticks, .. } => ("skipped", None, None, Some(*ticks)),
        Event::Coalesced { ticks, .. } => ("coalesced", None, None, Some(*ticks)),
        Event::Cancelled { .. } => ("cancelled", None, None, None),
        Event::Paused { .. } => ("paused", None, None, None),
        Event::Resumed { .. } => ("resumed", None, None, None),
        Event::SpawnFailed { .. } => ("spawn_failed", None, Some(event.to_string()), None),
        _ => ("other", None, None, None),
    };
    let level = logbridge::python_level(event.level());
    // A module's event (a worker that could not start) names the module.
    let (id, name, broker_id) = match (event.task(), event) {
        (Some(task), _) => (task.id, task.name.as_str(), task.broker_id.as_deref()),
        (None, Event::SpawnFailed { module, .. }) => (0, module.as_str(), None),
        (None, _) => (0, "", None),
    };
    // The log line is the core's text of the event: one wording.
    let text = event.to_string();
    lifetime::attach(|py| {
        let args = (kind, level, id, name, duration, error, ticks, broker_id, text);
        let called = args.into_pyobject(py).and_then(|args| lifetime::call(forward.bind(py), &args, None));
        if let Err(e) = called {
            e.write_unraisable(py, Some(forward.bind(py)));
        }
    });
}

/// Holds the GIL across a worker's batch of tasks: each task's own
/// `Python::attach` is then a cheap re-entry instead of a hand-off of the
/// GIL per task. Python code in a task still lets the GIL go at the
/// interpreter's switch interval, and a batch is bounded, so other threads
/// are not starved.
pub(crate) struct GilBatch;

impl BatchRunner for GilBatch {
    fn run_batch(&self, batch: &mut dyn FnMut()) {
        if lifetime::attach(|_| batch()).is_none() {
            // The interpreter is gone: the tasks find it so themselves.
            batch();
        }
    }

    /// Keeps one interpreter state for the thread's life (see
    /// `lifetime::keep_thread_state`).
    fn run_thread(&self, body: &mut (dyn FnMut() + Send)) {
        lifetime::keep_thread_state(body);
    }

    /// Closes the worker's asyncio event loop, if an `async def` task made
    /// one (see `aio`).
    fn thread_exit(&self) {
        aio::close_thread_loop();
    }
}

/// `Stats` for Python: queued, running, completed, failed, cancelled,
/// peak_concurrency, workers, pending_timers, retried, abandoned.
pub(crate) type StatsTuple = (usize, usize, u64, u64, u64, usize, usize, usize, u64, u64);

pub(crate) fn stats_tuple(s: Stats) -> StatsTuple {
    (
        s.queued,
        s.running,
        s.completed,
        s.failed,
        s.cancelled,
        s.peak_concurrency,
        s.workers,
        s.pending_timers,
        s.retried,
        s.abandoned,
    )
}

/// `TaskInfo` for Python: id, name, module, state, next_due, interval,
/// runs, failures.
/// A listed task: (id, name, module, state, next_due, interval, runs,
/// failures, next_run as a Unix timestamp, cron expression, zone).
pub(crate) type TaskTuple = (
    u64,
    String,
    String,
    &'static str,
    Option<f64>,
    Option<f64>,
    u64,
    u64,
    Option<f64>,
    Option<String>,
    Option<String>,
);

/// `DeadLetter` for Python: id, module, name, args, reason, deliveries,
/// dead_at.
pub(crate) type DeadTuple =
    (String, String, String, String, String, u64, f64, Option<(String, String, String)>);

/// `ScheduleInfo` for Python (see `ManagerCore::cluster_stats`).
pub(crate) type ScheduleTuple = (
    String,
    String,
    String,
    f64,
    f64,
    bool,
    bool,
    u64,
    u64,
    u64,
    (Option<String>, Option<String>, Option<f64>, u64),
);

/// `Outcomes` for Python: succeeded, failed, retried, dead_lettered,
/// cancelled.
pub(crate) type OutcomesTuple<T> = (T, T, T, T, T);

/// `TaskOutcomes` for Python: module, name, totals, per minute over the
/// last minute and the last 5.
pub(crate) type TaskOutcomesTuple =
    (String, String, OutcomesTuple<u64>, OutcomesTuple<f64>, OutcomesTuple<f64>);

/// A task found in its stream (see `ManagerCore::locate`): module, name,
/// the worker holding it (None: queued), deliveries, attempt.
pub(crate) type InStreamTuple = (String, String, Option<String>, u64, u32);

/// A claimed task (see `ManagerCore::claimed_tasks`): id, module, name,
/// worker, seconds held, deliveries.
pub(crate) type ClaimedTuple = (String, String, String, String, f64, u64);

/// `ClusterStats` for Python (see `ManagerCore::cluster_stats`).
pub(crate) type ClusterTuple = (
    Vec<(String, usize, usize)>,
    usize,
    Vec<ScheduleTuple>,
    Vec<(String, String, u32, Vec<String>, f64, bool, usize, u64)>,
    u64,
    Vec<TaskOutcomesTuple>,
    usize,
);

fn outcomes_tuple<T>(o: taskmanager::Outcomes<T>) -> OutcomesTuple<T> {
    (o.succeeded, o.failed, o.retried, o.dead_lettered, o.cancelled)
}

/// The Rust manager behind a `taskmanager.TaskManager`.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct ManagerCore {
    pub(crate) manager: TaskManager,
    pub(crate) outstanding: Arc<Outstanding>,
    /// With a broker: how its modules name and run tasks (see `broker`).
    pub(crate) named: Option<Arc<Named>>,
}

#[pymethods]
impl ManagerCore {
    /// `forward(kind, level, id, name, duration, error, ticks)` receives
    /// every event at `level` (a `logging` level) or more severe.
    /// With `broker` (a `redis://` or `rediss://` URL), named tasks go
    /// through Redis (`broker.rs`), with the key `prefix`, `lease` and
    /// `timeout` (seconds), trusting the CA in the PEM file `ca_file` for TLS;
    /// `submit_only`: this process never claims a task; `namer(callable,
    /// what) -> (ModuleCore, name)` names a broker's tasks (see
    /// `taskmanager._names`).
    #[new]
    #[pyo3(signature = (default_max_workers=None, forward=None, level=30, broker=None, prefix=None, lease=None, timeout=None, ca_file=None, submit_only=false, result_ttl=None, namer=None, max_deliveries=None, unrunnable_after=None))]
    // The Python constructor's keywords, one to one.
    #[allow(clippy::too_many_arguments)]
    fn new(
        default_max_workers: Option<usize>,
        forward: Option<Py<PyAny>>,
        level: u32,
        broker: Option<&str>,
        prefix: Option<&str>,
        lease: Option<f64>,
        timeout: Option<f64>,
        ca_file: Option<&str>,
        submit_only: bool,
        result_ttl: Option<f64>,
        namer: Option<Py<PyAny>>,
        max_deliveries: Option<u32>,
        unrunnable_after: Option<f64>,
    ) -> PyResult<Self> {
        let named = match (broker, namer) {
            (Some(_), Some(namer)) => Some(Arc::new(Named { registry: Arc::default(), namer })),
            (Some(_), None) => return Err(PyValueError::new_err("a broker needs namer=")),
            (None, _) => None,
        };
        // None: the core's default (one rule for both languages).
        let mut builder = TaskManager::builder().batch_runner(Arc::new(GilBatch));
        if let Some(max_workers) = default_max_workers {
            builder = builder.default_max_workers(max_workers);
        }
        if let Some(url) = broker {
            builder = builder.broker(url);
            if let Some(prefix) = prefix {
                builder = builder.broker_prefix(prefix);
            }
            if let Some(lease) = lease {
                builder = builder.broker_lease(crate::checks::seconds(lease)?);
            }
            if let Some(timeout) = timeout {
                builder = builder.broker_timeout(crate::checks::seconds(timeout)?);
            }
            if let Some(ca_file) = ca_file {
                builder = builder.broker_ca_file(ca_file);
            }
            if submit_only {
                builder = builder.submit_only();
            }
            if let Some(ttl) = result_ttl {
                builder = builder.broker_result_ttl(crate::checks::seconds(ttl)?);
            }
            if let Some(deliveries) = max_deliveries {
                builder = builder.broker_max_deliveries(deliveries);
            }
            if let Some(wait) = unrunnable_after {
                builder = builder.broker_unrunnable_after(crate::checks::seconds(wait)?);
            }
        }
        // At a level no event reaches (CRITICAL), nobody listens.
        if let (Some(forward), Some(level)) = (forward, logbridge::level_filter(level).to_level()) {
            builder =
                builder.listener(move |event: &Event| forward_event(&forward, event)).listener_level(level);
        }
        let manager = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        if let Some(named) = &named {
            named.claim_module(manager.default_module().name())?;
        }
        Ok(ManagerCore { manager, outstanding: Arc::default(), named })
    }

    /// The default module's `max_workers`.
    #[getter]
    fn max_workers(&self) -> usize {
        self.manager.default_module().max_workers()
    }

    fn start(&self) -> PyResult<()> {
        self.manager.start_thread().map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    fn default_module(&self) -> ModuleCore {
        ModuleCore {
            module: self.manager.default_module().clone(),
            outstanding: Arc::clone(&self.outstanding),
            named: self.named.clone(),
            time_limit: None,
        }
    }

    /// Stops accepting; with `cancel_pending`, cancels every task not
    /// started. Does not wait.
    fn begin_shutdown(&self, py: Python<'_>, cancel_pending: bool) -> usize {
        lifetime::detach(py, || {
            if cancel_pending {
                self.manager.begin_shutdown_now()
            } else {
                self.manager.begin_shutdown();
                0
            }
        })
    }

    /// Whether this process only submits (`TaskManager(submit_only=)`).
    fn set_submit_only(&self, submit_only: bool) {
        self.manager.set_submit_only(submit_only);
    }

    /// After shutdown began: hands the tasks this process claimed and has
    /// not finished back to the cluster (0 without a broker).
    fn hand_back(&self, py: Python<'_>) -> usize {
        lifetime::detach(py, || self.manager.hand_back_claimed())
    }

    /// After `begin_shutdown`: waits for the end, at most `timeout` seconds
    /// (None: no limit), through the core's one drain loop (see
    /// `TaskManager::drain`). Python's signal handlers run every step, so
    /// Ctrl-C (or a worker's second signal) interrupts it with their
    /// exception. At the deadline, raises `timed_out(running, cancelled)`
    /// (`taskmanager.ShutdownTimedOut`) with `handed_back` set: queued
    /// tasks were cancelled, claimed ones handed back to the cluster.
    #[pyo3(signature = (timeout, timed_out))]
    fn drain(&self, py: Python<'_>, timeout: Option<f64>, timed_out: &Bound<'_, PyAny>) -> PyResult<()> {
        let deadline = timeout.map(checks::seconds).transpose()?.and_then(|t| Instant::now().checked_add(t));
        let mut raised: Option<PyErr> = None;
        let end = lifetime::detach(py, || {
            self.manager.drain(deadline, || {
                raised = lifetime::attach(|py| py.check_signals().err()).flatten();
                raised.is_some()
            })
        });
        match end {
            Drain::Ended => Ok(()),
            Drain::Interrupted => {
                Err(raised.unwrap_or_else(|| PyRuntimeError::new_err("the wait was interrupted")))
            }
            Drain::TimedOut(report) => {
                let running: Vec<(u64, String)> =
                    report.running.into_iter().map(|t| (t.id, t.name)).collect();
                let error = timed_out.call1((running, report.cancelled))?;
                error.setattr("handed_back", report.handed_back)?;
                Err(PyErr::from_value(error))
            }
        }
    }

    /// Waits up to `timeout` seconds for the end; true if it ended.
    fn await_termination(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = checks::seconds(timeout)?;
        Ok(lifetime::detach(py, || self.manager.await_termination(timeout)))
    }

    /// Waits up to `timeout` seconds until no accepted task is outstanding.
    fn wait_idle(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = checks::seconds(timeout)?;
        Ok(lifetime::detach(py, || self.outstanding.wait_zero(timeout)))
    }

    fn is_shut_down(&self) -> bool {
        self.manager.is_shut_down()
    }

    /// The manager's stats, as the fields of `taskmanager.Stats`, in order.
    /// The dead-letter set, newest first: tuples of the fields of
    /// `taskmanager.DeadLetter` (its time in seconds since the epoch).
    fn dead_letters(&self, py: Python<'_>, limit: usize) -> PyResult<Vec<DeadTuple>> {
        let letters = lifetime::detach(py, || self.manager.dead_letters(limit)).map_err(submit_error)?;
        Ok(letters
            .into_iter()
            .map(|d| {
                let at = d.dead_at.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |t| t.as_secs_f64());
                let error = d.error.map(|e| (e.kind, e.message, e.traceback));
                (d.id, d.module, d.name, d.args, d.reason, d.deliveries, at, error)
            })
            .collect())
    }

    /// `TaskManager.task_state`: "finished", "failed", "delayed", "dead"
    /// or "unknown" (see `taskmanager::TaskLookup`).
    fn task_state(&self, py: Python<'_>, id: &str) -> PyResult<&'static str> {
        let found = lifetime::detach(py, || self.manager.lookup(id)).map_err(submit_error)?;
        Ok(match found {
            TaskLookup::Finished(Ok(_)) => "finished",
            TaskLookup::Finished(Err(TaskError::DeadLettered { .. })) | TaskLookup::DeadLettered(_) => "dead",
            TaskLookup::Finished(Err(_)) => "failed",
            TaskLookup::Delayed(_) => "delayed",
            TaskLookup::Unknown => "unknown",
        })
    }

    /// `TaskManager.attempts`: (attempt, deliveries) of task `id`, as
    /// Redis records them, or None (see `taskmanager::Attempts`).
    fn attempts(&self, py: Python<'_>, id: &str) -> PyResult<Option<(u32, Option<u64>)>> {
        let found = lifetime::detach(py, || self.manager.attempts(id)).map_err(submit_error)?;
        Ok(found.map(|a| (a.attempt, a.deliveries)))
    }

    /// The delayed tasks per module, for `status` (see
    /// `TaskManager::delayed_by_module`).
    fn delayed_by_module(&self, py: Python<'_>) -> PyResult<Vec<(String, usize)>> {
        let counts = lifetime::detach(py, || self.manager.delayed_by_module()).map_err(submit_error)?;
        Ok(counts.into_iter().collect())
    }

    /// Task `id` in its stream, for `tasks ... show`: (module, name, the
    /// worker holding it or None while queued, deliveries, attempt), or
    /// None (see `taskmanager::InStream`).
    fn locate(&self, py: Python<'_>, id: &str) -> PyResult<Option<InStreamTuple>> {
        let found = lifetime::detach(py, || self.manager.locate(id)).map_err(submit_error)?;
        Ok(found.map(|t| (t.module, t.name, t.worker, t.deliveries, t.attempt)))
    }

    /// `TaskManager.claimed_tasks`: (id, module, name, worker, seconds
    /// held, deliveries) of each (see `taskmanager::ClaimedTask`).
    fn claimed_tasks(&self, py: Python<'_>, limit: usize) -> PyResult<Vec<ClaimedTuple>> {
        let claimed = lifetime::detach(py, || self.manager.claimed_tasks(limit)).map_err(submit_error)?;
        Ok(claimed
            .into_iter()
            .map(|t| (t.id, t.module, t.name, t.worker, t.idle.as_secs_f64(), t.deliveries))
            .collect())
    }

    /// `TaskManager.result`: task `id`'s value, or its exception raised,
    /// waiting up to `timeout` seconds (None: for good), a tenth of a
    /// second at a time so that Ctrl-C interrupts it; TimeoutError if none
    /// came.
    #[pyo3(signature = (id, timeout=None))]
    fn result(&self, py: Python<'_>, id: &str, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        let deadline = timeout.map(|t| Instant::now() + checks::seconds(t).unwrap_or(Duration::MAX / 2));
        loop {
            let step = deadline.map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(Instant::now()).min(Duration::from_millis(100))
            });
            let found = lifetime::detach(py, || self.manager.wait_result(id, step)).map_err(submit_error)?;
            match found {
                Some(Ok(value)) => return Ok(crate::convert::to_python(py, &value)?.unbind()),
                Some(Err(error)) => return Err(PyErr::from_value(crate::bridge::exception_of(py, error)?)),
                None if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                        "no result for task {id:?} within {} s: not finished, no such task, or its result expired",
                        timeout.unwrap_or_default()
                    )));
                }
                None => py.check_signals()?,
            }
        }
    }

    /// The handle of the shared schedule `key` (see
    /// `TaskManager::shared_schedule`).
    fn shared_schedule(&self, key: &str) -> PyResult<crate::broker::SharedSchedule> {
        let schedule = self.manager.shared_schedule(key).map_err(submit_error)?;
        Ok(crate::broker::SharedSchedule::new(schedule))
    }

    /// Puts dead-lettered tasks back in their streams; how many were there.
    fn requeue_dead_letters(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
        lifetime::detach(py, || self.manager.requeue_dead_letters(&ids)).map_err(submit_error)
    }

    /// Empties the dead-letter set; how many it held.
    fn purge_dead_letters(&self, py: Python<'_>) -> PyResult<usize> {
        lifetime::detach(py, || self.manager.purge_dead_letters()).map_err(submit_error)
    }

    fn stats(&self) -> StatsTuple {
        stats_tuple(self.manager.stats())
    }

    /// Turns this manager's metrics on, into the process's Prometheus
    /// registry (`prometheus.rs`).
    fn enable_metrics(&self) -> PyResult<()> {
        if !crate::prometheus::install() {
            return Err(PyRuntimeError::new_err("another metrics recorder is installed in this process"));
        }
        self.manager.enable_metrics();
        Ok(())
    }

    /// The process's metrics in Prometheus's text format, this manager's
    /// gauges sampled now, and with a broker the cluster's (one read of
    /// Redis: if it fails, logged and `taskmanager_cluster_readable` 0).
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        self.enable_metrics()?;
        self.manager.sample_metrics();
        if self.named.is_some() {
            if let Err(e) = lifetime::detach(py, || self.manager.sample_cluster_metrics()) {
                log::warn!("taskmanager: metrics: could not read the cluster's figures: {e}");
            }
        }
        Ok(crate::prometheus::render())
    }

    /// The listing of `TaskManager::tasks`, as tuples of the fields of
    /// `taskmanager.TaskInfo`, in order (durations in seconds).
    fn tasks(&self) -> Vec<TaskTuple> {
        self.manager
            .tasks()
            .into_iter()
            .map(|t| {
                let state = match t.state {
                    TaskState::Scheduled => "scheduled",
                    TaskState::Running => "running",
                    TaskState::Paused => "paused",
                };
                let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
                let timestamp = t.next_run.and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok());
                let (due, interval) = (seconds(t.next_due), seconds(t.interval));
                let wall = (seconds(timestamp), t.cron, t.zone);
                (t.id, t.name, t.module, state, due, interval, t.runs, t.failures, wall.0, wall.1, wall.2)
            })
            .collect()
    }

    /// `TaskManager.cluster_stats()`, as tuples: (modules as (name,
    /// queued, running), delayed, schedules as (key, module, name,
    /// interval, next_due, paused, running, ticks, skipped, failures,
    /// (cron, zone, next_run in seconds since the epoch, coalesced)),
    /// workers as (id, host, pid, modules, last_seen, alive, running,
    /// reclaimed_from), reclaimed, outcomes as (module, name, totals, per
    /// minute over 1 and over 5 minutes), each as `OutcomesTuple`, dead
    /// letters).
    fn cluster_stats(&self, py: Python<'_>) -> PyResult<ClusterTuple> {
        let stats = lifetime::detach(py, || self.manager.cluster_stats()).map_err(|e| match e {
            taskmanager::SubmitError::Broker(why) => pyo3::exceptions::PyConnectionError::new_err(format!(
                "could not read the cluster's stats from the broker: {why}"
            )),
            e => PyRuntimeError::new_err(e.to_string()),
        })?;
        let modules = stats.modules.into_iter().map(|m| (m.name, m.queued, m.running)).collect();
        let schedules = stats
            .schedules
            .into_iter()
            .map(|s| {
                let interval = s.interval.as_secs_f64();
                let due = s.next_due.as_secs_f64();
                let next_run = s.next_run.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                let calendar = (s.cron, s.zone, next_run.map(|t| t.as_secs_f64()), s.coalesced);
                (
                    s.key, s.module, s.name, interval, due, s.paused, s.running, s.ticks, s.skipped,
                    s.failures, calendar,
                )
            })
            .collect();
        let workers = stats
            .workers
            .into_iter()
            .map(|w| {
                let seen = w.last_seen.as_secs_f64();
                (w.id, w.host, w.pid, w.modules, seen, w.alive, w.running, w.reclaimed_from)
            })
            .collect();
        let outcomes = stats
            .outcomes
            .into_iter()
            .map(|t| {
                let rates = (outcomes_tuple(t.per_minute_1), outcomes_tuple(t.per_minute_5));
                (t.module, t.name, outcomes_tuple(t.total), rates.0, rates.1)
            })
            .collect();
        Ok((modules, stats.delayed, schedules, workers, stats.reclaimed, outcomes, stats.dead_letters))
    }

    /// The running tasks as (id, name) pairs.
    fn running_tasks(&self) -> Vec<(u64, String)> {
        self.manager.running_tasks().into_iter().map(|t| (t.id, t.name)).collect()
    }

    /// Cancels every task not started; returns how many.
    fn cancel_pending(&self, py: Python<'_>) -> usize {
        lifetime::detach(py, || self.manager.cancel_pending())
    }

    fn is_manager_thread(&self) -> bool {
        self.manager.is_manager_thread()
    }

    fn outstanding(&self) -> usize {
        self.outstanding.count()
    }
}

impl Drop for ManagerCore {
    fn drop(&mut self) {
        if lifetime::finalizing() {
            // Past the exit hooks: what was queued is cancelled, and tasks
            // still running are not waited for (they may never return, and
            // letting go of the GIL now could let a worker crash the
            // exit): the manager is left to them.
            let _ = self.manager.shutdown_timeout(Duration::ZERO);
            return;
        }
        // Workers may need the GIL to finish: wait for them detached.
        Python::attach(|py| lifetime::detach(py, || self.manager.shutdown()));
    }
}

/// The text of `taskmanager.ShutdownTimedOut`: the core's, for `running`
/// (`(id, name)` pairs) and `cancelled`.
#[pyfunction]
pub(crate) fn _shutdown_timed_out_text(running: Vec<(u64, String)>, cancelled: usize) -> String {
    let running: Vec<RunningTask> = running.into_iter().map(|(id, name)| RunningTask { id, name }).collect();
    ShutdownTimedOut { still_running: running.len(), cancelled, running, handed_back: 0 }.to_string()
}
