//! `taskmanager._taskmanager`: the native half of the Python package.
//!
//! The Python half (`python/taskmanager/__init__.py`) gives the spec's API;
//! this half checks each submission's arguments (`checks`), makes its
//! handle, and runs Python callables on the Rust core, settling handles
//! without taking a lock nobody waits on (`future`).
//!
//! Rules kept here:
//! - The GIL is held only to call Python code. Waiting (shutdown, idle)
//!   happens detached; queuing and timing happen in the core.
//! - Every Python object a task holds lives in one `PyTask`, which drops
//!   them with the GIL held: when the task ends, or when the core drops the
//!   task unrun (cancel, shutdown), in which case it also marks the task's
//!   future cancelled. So a cancelled task is always reported, and nothing a
//!   task held outlives it.
//! - A `Ticket` counts every accepted task until it ends, so the package
//!   can keep the interpreter alive while work remains.

mod aio;
mod checks;
mod future;
mod lifetime;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use taskmanager::{
    BatchRunner, Event, Module, Recurrence, RecurringHandle, Stats, SubmitError, Task, TaskHandle,
    TaskManager, TaskState,
};

/// `logging.getLogger("taskmanager")`.
static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("logging")?.call_method1("getLogger", ("taskmanager",))?.unbind())
        })
        .map(|l| l.bind(py))
}

/// The exception of `err` with its traceback attached. An exception that
/// leaves Python for Rust carries its traceback beside it; without this, a
/// logged or re-raised exception would not say where it came from.
fn exception<'py>(py: Python<'py>, err: &PyErr) -> Bound<'py, PyAny> {
    let value = err.value(py).clone().into_any();
    if let Some(traceback) = err.traceback(py) {
        if let Err(e) = value.setattr("__traceback__", traceback) {
            e.write_unraisable(py, Some(&value));
        }
    }
    value
}

/// Logs a task's or callback's exception on the `taskmanager` logger, with
/// its traceback. Logging must never take a worker down: its own errors are
/// reported through `sys.unraisablehook`.
fn log_failure(py: Python<'_>, what: &str, callable: &Bound<'_, PyAny>, err: &PyErr) {
    let logged = logger(py).and_then(|log| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", exception(py, err))?;
        let args = (format!("{what} %r raised an exception"), callable).into_pyobject(py)?;
        lifetime::call(&log.getattr(intern!(py, "error"))?, &args, Some(&kwargs))
    });
    if let Err(e) = logged {
        e.write_unraisable(py, Some(callable));
    }
}

// ---------------------------------------------------------------------------
// Counting outstanding work.

/// How many accepted tasks have not ended yet. Counting is one atomic
/// add; the lock is taken only when the count reaches zero, to wake whoever
/// waits for that.
#[derive(Default)]
struct Outstanding {
    count: AtomicUsize,
    lock: Mutex<()>,
    zero: Condvar,
}

impl Outstanding {
    fn enter(self: &Arc<Self>) -> Ticket {
        self.count.fetch_add(1, Ordering::Relaxed);
        Ticket(Arc::clone(self))
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no task is outstanding or `timeout` passes.
    fn wait_zero(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // The count is read under the lock, and the last ticket takes the
        // lock before notifying: a wake-up cannot fall between the two.
        while self.count() > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self.zero.wait_timeout(guard, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

/// One outstanding task; counted out when dropped.
struct Ticket(Arc<Outstanding>);

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.0.zero.notify_all();
        }
    }
}

// ---------------------------------------------------------------------------
// A Python task.

/// Everything Python a task holds.
struct Parts {
    future: Py<PyAny>,
    method: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    callbacks: Vec<Py<PyAny>>,
}

/// A task's Python objects and its ticket. See the module docs.
struct PyTask {
    parts: Option<Parts>,
    _ticket: Ticket,
}

/// Extra state a recurring task shares with its handle.
#[derive(Default)]
struct RecurringState {
    failures: AtomicU64,
    last_exception: Mutex<Option<Py<PyAny>>>,
}

impl PyTask {
    /// Calls the method, then each callback with its value. Returns the
    /// value, or the first exception (the method's, else a callback's).
    fn call(py: Python<'_>, parts: &Parts) -> Result<Py<PyAny>, PyErr> {
        // Counted now, before the handle is settled (so whoever waited
        // sees it), and as failed if it raised: to the core it returned.
        let outcome = Self::call_inner(py, parts);
        taskmanager::count_run(outcome.is_err());
        outcome
    }

    /// A coroutine returned (by an `async def` method or callback) is run to
    /// completion here first: its value is the value (see `aio`).
    fn call_inner(py: Python<'_>, parts: &Parts) -> Result<Py<PyAny>, PyErr> {
        let method = parts.method.bind(py);
        let value = lifetime::call(method, parts.args.bind(py), parts.kwargs.as_ref().map(|k| k.bind(py)))
            .and_then(aio::awaited)
            .inspect_err(|e| log_failure(py, "task", method, e))?;
        let mut failure = None;
        for callback in &parts.callbacks {
            let callback = callback.bind(py);
            let args = PyTuple::new(py, [&value])?;
            if let Err(e) = lifetime::call(callback, &args, None).and_then(aio::awaited) {
                log_failure(py, "callback", callback, &e);
                failure.get_or_insert(e);
            }
        }
        match failure {
            None => Ok(value.unbind()),
            Some(e) => Err(e),
        }
    }

    /// A one-shot run: result or exception to the handle, after releasing
    /// everything the task held.
    fn run_once(&mut self, py: Python<'_>) {
        let Some(parts) = self.parts.take() else { return };
        let future = parts.future.bind(py).clone();
        match future::set_running(&future) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return e.write_unraisable(py, Some(&future)),
        }
        let outcome = Self::call(py, &parts).map_err(|e| exception(py, &e));
        drop(parts);
        if let Err(e) = future::settle(&future, outcome) {
            e.write_unraisable(py, Some(&future));
        }
    }

    /// A recurring run: failures are logged and kept on the handle; the
    /// schedule goes on.
    fn run_again(&self, py: Python<'_>, state: &RecurringState) {
        let Some(parts) = &self.parts else { return };
        if let Err(e) = Self::call(py, parts) {
            state.failures.fetch_add(1, Ordering::Relaxed);
            let exception = exception(py, &e).unbind();
            let old = state.last_exception.lock().unwrap_or_else(PoisonError::into_inner).replace(exception);
            drop(old);
        }
    }
}

impl Drop for PyTask {
    fn drop(&mut self) {
        if let Some(parts) = self.parts.take() {
            // Dropped without a (final) run: cancelled by a handle, by
            // shutdown, or a recurring task's end. Past the exit hooks
            // nobody can be told, and releasing needs the interpreter:
            // leak instead (see `lifetime`).
            let mut parts = Some(parts);
            lifetime::attach(|py| {
                let parts = parts.take()?;
                if let Err(e) = future::cancel(parts.future.bind(py)) {
                    e.write_unraisable(py, None);
                }
                drop(parts);
                Some(())
            });
            std::mem::forget(parts);
        }
    }
}

// ---------------------------------------------------------------------------
// Classes.

pyo3::create_exception!(
    _taskmanager,
    QueueFull,
    PyRuntimeError,
    "A bounded module's queue is full: the task was not accepted."
);

fn submit_error(e: SubmitError) -> PyErr {
    match e {
        SubmitError::QueueFull { capacity } => QueueFull::new_err(format!(
            "the module's queue is full ({capacity} tasks waiting); task not accepted"
        )),
        SubmitError::ShutDown => PyRuntimeError::new_err("cannot add a task: the task manager is shut down"),
        SubmitError::DelayTooLong { .. } => PyValueError::new_err("delay is too large"),
        // The binding checks intervals first (`checks::interval`): this is
        // the core's same rule, should one get through.
        SubmitError::IntervalTooShort { interval } => checks::interval_too_short(
            "delay",
            &interval.as_secs_f64().to_string(),
            checks::REOCCURRING_DELAY,
        ),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

fn seconds(delay: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(delay)
        .map_err(|_| PyValueError::new_err(format!("delay must be a finite number >= 0, got {delay}")))
}

/// Hands an event to the Python forwarder (see `ManagerCore::new`).
fn forward_event(forward: &Py<PyAny>, event: &Event) {
    let (kind, duration, error, ticks) = match event {
        Event::Started { .. } => ("started", None, None, None),
        Event::Finished { duration, .. } => ("finished", Some(duration.as_secs_f64()), None, None),
        Event::Failed { duration, error, .. } => {
            ("failed", Some(duration.as_secs_f64()), error.as_ref().map(ToString::to_string), None)
        }
        Event::Skipped { ticks, .. } => ("skipped", None, None, Some(*ticks)),
        Event::Cancelled { .. } => ("cancelled", None, None, None),
        Event::Paused { .. } => ("paused", None, None, None),
        Event::Resumed { .. } => ("resumed", None, None, None),
        Event::SpawnFailed { .. } => ("spawn_failed", None, Some(event.to_string()), None),
        _ => ("other", None, None, None),
    };
    let level = match event.level() {
        log::Level::Trace => 5,
        log::Level::Debug => 10,
        log::Level::Info => 20,
        log::Level::Warn => 30,
        log::Level::Error => 40,
    };
    // A module's event (a worker that could not start) names the module.
    let (id, name) = match (event.task(), event) {
        (Some(task), _) => (task.id, task.name.as_str()),
        (None, Event::SpawnFailed { module, .. }) => (0, module.as_str()),
        (None, _) => (0, ""),
    };
    lifetime::attach(|py| {
        let args = (kind, level, id, name, duration, error, ticks);
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
struct GilBatch;

impl BatchRunner for GilBatch {
    fn run_batch(&self, batch: &mut dyn FnMut()) {
        if lifetime::attach(|_| batch()).is_none() {
            // The interpreter is gone: the tasks find it so themselves.
            batch();
        }
    }

    /// Closes the worker's asyncio event loop, if an `async def` task made
    /// one (see `aio`).
    fn thread_exit(&self) {
        aio::close_thread_loop();
    }
}

/// `Stats` for Python: queued, running, completed, failed, cancelled,
/// peak_concurrency, workers, pending_timers.
type StatsTuple = (usize, usize, u64, u64, u64, usize, usize, usize);

fn stats_tuple(s: Stats) -> StatsTuple {
    (s.queued, s.running, s.completed, s.failed, s.cancelled, s.peak_concurrency, s.workers, s.pending_timers)
}

/// `TaskInfo` for Python: id, name, module, state, next_due, interval,
/// runs, failures.
type TaskTuple = (u64, String, String, &'static str, Option<f64>, Option<f64>, u64, u64);

/// The Rust manager behind a `taskmanager.TaskManager`.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
struct ManagerCore {
    manager: TaskManager,
    outstanding: Arc<Outstanding>,
}

#[pymethods]
impl ManagerCore {
    /// `forward(kind, level, id, name, duration, error, ticks)` receives
    /// every event at `level` (a `logging` level) or more severe.
    #[new]
    #[pyo3(signature = (default_max_workers, forward=None, level=30))]
    fn new(default_max_workers: usize, forward: Option<Py<PyAny>>, level: u32) -> PyResult<Self> {
        let mut builder =
            TaskManager::builder().batch_runner(Arc::new(GilBatch)).default_max_workers(default_max_workers);
        if let Some(forward) = forward {
            let level = match level {
                0..=5 => log::Level::Trace,
                6..=10 => log::Level::Debug,
                11..=20 => log::Level::Info,
                21..=30 => log::Level::Warn,
                _ => log::Level::Error,
            };
            builder =
                builder.listener(move |event: &Event| forward_event(&forward, event)).listener_level(level);
        }
        let manager = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(ManagerCore { manager, outstanding: Arc::default() })
    }

    fn start(&self) -> PyResult<()> {
        self.manager.start_thread().map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    fn default_module(&self) -> ModuleCore {
        ModuleCore {
            module: self.manager.default_module().clone(),
            outstanding: Arc::clone(&self.outstanding),
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

    /// Waits up to `timeout` seconds for the end; true if it ended.
    fn await_termination(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        Ok(lifetime::detach(py, || self.manager.await_termination(timeout)))
    }

    /// Waits up to `timeout` seconds until no accepted task is outstanding.
    fn wait_idle(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = seconds(timeout)?;
        Ok(lifetime::detach(py, || self.outstanding.wait_zero(timeout)))
    }

    fn is_shut_down(&self) -> bool {
        self.manager.is_shut_down()
    }

    /// The manager's stats, as the fields of `taskmanager.Stats`, in order.
    fn stats(&self) -> StatsTuple {
        stats_tuple(self.manager.stats())
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
                (t.id, t.name, t.module, state, seconds(t.next_due), seconds(t.interval), t.runs, t.failures)
            })
            .collect()
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

/// The Rust module behind a `taskmanager.Module`.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
struct ModuleCore {
    module: Module,
    outstanding: Arc<Outstanding>,
}

/// A submission's checked parts, before it has a handle.
struct Call {
    method: Py<PyAny>,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    callbacks: Vec<Py<PyAny>>,
    name: Arc<str>,
}

impl Call {
    fn check(
        method: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyAny>>,
        callback: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Call> {
        let py = method.py();
        let method = checks::method(method)?;
        Ok(Call {
            args: checks::args(py, args)?.unbind(),
            kwargs: checks::kwargs(py, kwargs)?.map(Bound::unbind),
            callbacks: checks::callbacks(callback)?,
            name: checks::name(name, &method)?,
            method: method.unbind(),
        })
    }
}

impl ModuleCore {
    /// The task for `call`, reporting to `future`, counted as outstanding.
    fn task(&self, future: &Bound<'_, PyAny>, call: Call) -> PyTask {
        let Call { method, args, kwargs, callbacks, name: _ } = call;
        PyTask {
            parts: Some(Parts { future: future.clone().unbind(), method, args, kwargs, callbacks }),
            _ticket: self.outstanding.enter(),
        }
    }

    /// Queues `call` now, or `delay` seconds from now, with a new handle.
    fn submit_once<'py>(
        &self,
        py: Python<'py>,
        call: Call,
        delay: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = future::new_handle(py, false)?;
        let name = Arc::clone(&call.name);
        let mut task = self.task(&handle, call);
        let run = Task::new(move || {
            lifetime::attach(|py| task.run_once(py));
        })
        .name(name);
        let core = match delay {
            None => self.module.add_task(run),
            Some(delay) => self.module.schedule_task(seconds(delay)?, run),
        }
        .map_err(submit_error)?;
        handle.setattr(intern!(py, "_core"), TaskCore { handle: core })?;
        Ok(handle)
    }

    /// Runs `call` every `interval` seconds, with a new recurring handle.
    fn submit_recurring<'py>(
        &self,
        py: Python<'py>,
        call: Call,
        interval: Duration,
        run_now: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = future::new_handle(py, true)?;
        let name = Arc::clone(&call.name);
        let task = self.task(&handle, call);
        let state = Arc::new(RecurringState::default());
        let shared = Arc::clone(&state);
        let run = Task::new(move || {
            lifetime::attach(|py| task.run_again(py, &shared));
        })
        .name(name);
        let recurrence = Recurrence::every(interval).run_now(run_now);
        let core = self.module.schedule_recurring(recurrence, run).map_err(submit_error)?;
        handle.setattr(intern!(py, "_core"), RecurringCore { handle: core, state })?;
        Ok(handle)
    }
}

#[pymethods]
impl ModuleCore {
    /// A module of `max_workers`; with `max_queued`, its queue is bounded.
    #[new]
    #[pyo3(signature = (manager, max_workers, max_queued=None, name=None))]
    fn new(
        manager: &ManagerCore,
        max_workers: usize,
        max_queued: Option<usize>,
        name: Option<String>,
    ) -> PyResult<Self> {
        let mut builder = Module::builder(&manager.manager).max_workers(max_workers);
        if let Some(name) = name {
            builder = builder.name(name);
        }
        if let Some(max_queued) = max_queued {
            builder = builder.max_queued(max_queued);
        }
        let module = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(ModuleCore { module, outstanding: Arc::clone(&manager.outstanding) })
    }

    /// `Module.add_task`: checks the arguments and queues
    /// `method(*args, **kwargs)`; returns its `TaskHandle`.
    #[pyo3(signature = (method, args=None, kwargs=None, callback=None, name=None))]
    fn add_task<'py>(
        &self,
        method: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyAny>>,
        callback: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let call = Call::check(method, args, kwargs, callback, name)?;
        self.submit_once(method.py(), call, None)
    }

    /// `Module.schedule_task`: checks the arguments and schedules
    /// `method(*args, **kwargs)`; returns its `TaskHandle`, or a
    /// `RecurringHandle` if it recurs.
    #[pyo3(signature = (method, delay, args=None, kwargs=None, callback=None, reoccurring=None, run_now=None, recurring=None, name=None))]
    // The arguments are the spec's, plus the `recurring` alias.
    #[allow(clippy::too_many_arguments)]
    fn schedule_task<'py>(
        &self,
        method: &Bound<'py, PyAny>,
        delay: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyAny>>,
        callback: Option<&Bound<'py, PyAny>>,
        reoccurring: Option<&Bound<'py, PyAny>>,
        run_now: Option<&Bound<'py, PyAny>>,
        recurring: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = method.py();
        let method = checks::method(method)?;
        // Whether it recurs decides the delay's rule: a one-shot delay may
        // be 0; a reoccurring one is the interval between runs.
        let repeat = checks::reoccurring(reoccurring, recurring)?;
        if !repeat {
            let seconds = checks::delay(delay, "delay")?;
            let call = Call::check(&method, args, kwargs, callback, name)?;
            // `run_now` on a one-shot task: it runs once, now.
            let now = checks::flag(run_now, "run_now", false)?;
            return self.submit_once(py, call, if now { None } else { Some(seconds) });
        }
        let interval = checks::interval(delay, "delay", checks::REOCCURRING_DELAY)?;
        let call = Call::check(&method, args, kwargs, callback, name)?;
        let now = checks::flag(run_now, "run_now", false)?;
        self.submit_recurring(py, call, interval, now)
    }

    /// The module's stats, as the fields of `taskmanager.Stats`, in order.
    fn stats(&self) -> StatsTuple {
        stats_tuple(self.module.stats())
    }

    fn worker_count(&self) -> usize {
        self.module.worker_count()
    }

    fn queued(&self) -> usize {
        self.module.queued()
    }
}

/// The core handle of a one-shot task.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
struct TaskCore {
    handle: TaskHandle<()>,
}

#[pymethods]
impl TaskCore {
    /// Cancels if not started; true if this call cancelled it. `handle`
    /// (this task's `TaskHandle`) is then cancelled: by the core dropping
    /// the task, already, and here again for certain (a no-op).
    fn cancel(&self, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !self.handle.cancel() {
            return Ok(false);
        }
        future::cancel(handle)?;
        Ok(true)
    }

    #[getter]
    fn id(&self) -> u64 {
        self.handle.id()
    }

    #[getter]
    fn name(&self) -> String {
        self.handle.name()
    }
}

/// The core handle of a recurring task.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
struct RecurringCore {
    handle: RecurringHandle,
    state: Arc<RecurringState>,
}

#[pymethods]
impl RecurringCore {
    /// Stops all future runs; true if this call did. `handle` (this task's
    /// `RecurringHandle`) is then cancelled at once, even while a run in
    /// progress finishes: the core's own cancellation when that run ends
    /// finds it done.
    fn cancel(&self, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !self.handle.cancel() {
            return Ok(false);
        }
        future::cancel(handle)?;
        Ok(true)
    }

    #[getter]
    fn id(&self) -> u64 {
        self.handle.id()
    }

    #[getter]
    fn name(&self) -> String {
        self.handle.name()
    }

    /// Checks `seconds` as a recurring task's interval and sets it.
    fn set_interval(&self, seconds: &Bound<'_, PyAny>) -> PyResult<()> {
        let interval = checks::interval(seconds, "seconds", checks::NEW_INTERVAL)?;
        self.handle.set_interval(interval).map_err(|e| match e {
            SubmitError::IntervalTooShort { interval } => checks::interval_too_short(
                "seconds",
                &interval.as_secs_f64().to_string(),
                checks::NEW_INTERVAL,
            ),
            other => submit_error(other),
        })
    }

    fn pause(&self, py: Python<'_>) -> bool {
        lifetime::detach(py, || self.handle.pause())
    }

    fn resume(&self, py: Python<'_>) -> bool {
        lifetime::detach(py, || self.handle.resume())
    }

    #[getter]
    fn paused(&self) -> bool {
        self.handle.is_paused()
    }

    #[getter]
    fn runs(&self) -> u64 {
        self.handle.runs()
    }

    #[getter]
    fn failures(&self) -> u64 {
        self.state.failures.load(Ordering::Relaxed)
    }

    #[getter]
    fn skipped_ticks(&self) -> u64 {
        self.handle.skipped_ticks()
    }

    #[getter]
    fn last_exception(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let last = self.state.last_exception.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref().map(|e| e.clone_ref(py))
    }

    #[getter]
    fn done(&self) -> bool {
        self.handle.is_done()
    }

    // The last exception's traceback can reach frames that hold this
    // handle: let the garbage collector see that reference. A lock held
    // elsewhere right now is skipped, which only keeps objects alive longer.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(last) = self.state.last_exception.try_lock() {
            if let Some(exception) = last.as_ref() {
                visit.call(exception)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let last = self.state.last_exception.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(last);
    }
}

#[pymodule]
fn _taskmanager(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("QueueFull", m.py().get_type::<QueueFull>())?;
    m.add_class::<ManagerCore>()?;
    m.add_function(wrap_pyfunction!(lifetime::_finalizing, m)?)?;
    m.add_function(wrap_pyfunction!(lifetime::_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(lifetime::_exit_with_sigint_at_end, m)?)?;
    m.add_class::<ModuleCore>()?;
    m.add_class::<TaskCore>()?;
    m.add_class::<RecurringCore>()?;
    Ok(())
}
