//! The broker mode of the Python package: the same submissions and the same
//! runner as in-process, with Redis as where a task waits.
//!
//! - A submission is checked as every submission is (`module.rs`), then
//!   named: `taskmanager._names` (the one place of the rule of what a name
//!   may run) says which module of this manager owns the callable and its
//!   name there. Its arguments become JSON once (`convert`), and it goes to
//!   the owner's named task in the core.
//! - A worker runs only what this manager registered ([`Registry`]): each
//!   public method of its `Module` subclasses, and each `@manager.task`
//!   function. A named task runs through [`PyTask::call`], as a task run
//!   here does (`async def`, callbacks in order, each failure logged), and
//!   its value goes back as JSON, its exception as a `RemoteError`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyLookupError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use serde_json::{json, Map, Value};

use taskmanager::{
    Module, NamedRun, Recurrence, RemoteError, Retry, SharedSchedule as CoreSchedule, TraceContext,
};

use crate::bridge::{lock, Bridge};
use crate::errors::submit_error;
use crate::failure::exception;
use crate::handles::TaskCore;
use crate::module::{Call, ModuleCore};
use crate::task::{Invocation, PyTask};
use crate::{convert, future, lifetime};

/// What this manager's process runs by name: `(module, name)` to its
/// callable. Callbacks of named tasks are found here too.
#[derive(Default)]
pub(crate) struct Registry {
    runnable: Mutex<HashMap<(String, String), Py<PyAny>>>,
    modules: Mutex<HashSet<String>>,
}

/// A manager's broker mode, shared by its modules.
pub(crate) struct Named {
    pub(crate) registry: Arc<Registry>,
    /// `namer(callable, what) -> (ModuleCore, name)`, or a TypeError naming
    /// `what` (see `taskmanager._names`).
    pub(crate) namer: Py<PyAny>,
}

impl Named {
    /// Claims `module` as a module name of this manager: two modules of one
    /// manager must not share one, or a worker could not tell their tasks
    /// apart.
    pub(crate) fn claim_module(&self, module: &str) -> PyResult<()> {
        if !lock(&self.registry.modules).insert(module.to_owned()) {
            return Err(PyValueError::new_err(format!(
                "this TaskManager has a module named {module:?} already: with a broker, a module's name (its \
                 class's module and qualified name) tells workers whose methods its tasks run, so each Module \
                 subclass may have one instance per manager"
            )));
        }
        Ok(())
    }

    /// The owner and name of `callable`.
    fn name_of(&self, py: Python<'_>, callable: &Bound<'_, PyAny>, what: &str) -> PyResult<(Module, String)> {
        let named = self.namer.bind(py).call1((callable, what))?;
        let (owner, name): (Bound<'_, PyAny>, String) = named.extract()?;
        let owner = owner.cast_into::<ModuleCore>()?;
        Ok((owner.get().module.clone(), name))
    }

    /// A call as it crosses processes: `{"args": [...], "kwargs": {...},
    /// "callbacks": [[module, name], ...]}`.
    fn payload(&self, py: Python<'_>, call: &Call) -> PyResult<Value> {
        let args = call.args.bind(py);
        let mut json_args = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().enumerate() {
            json_args.push(convert::to_json(&arg, &format!("args[{i}]"))?);
        }
        let mut kwargs = Map::new();
        if let Some(dict) = &call.kwargs {
            for (key, value) in dict.bind(py).iter() {
                let key: String = key.extract()?;
                let value = convert::to_json(&value, &format!("kwargs[{}]", convert::quoted(&key)))?;
                kwargs.insert(key, value);
            }
        }
        let many = call.callbacks.len() > 1;
        let mut callbacks = Vec::with_capacity(call.callbacks.len());
        for (i, callback) in call.callbacks.iter().enumerate() {
            let what = if many { format!("callback[{i}]") } else { "callback".to_owned() };
            let (owner, name) = self.name_of(py, callback.bind(py), &what)?;
            callbacks.push(json!([owner.name(), name]));
        }
        let mut payload = json!({ "args": json_args, "kwargs": kwargs, "callbacks": callbacks });
        if let Some(limit) = call.time_limit {
            payload["time_limit"] = json!(limit.as_secs_f64());
        }
        Ok(payload)
    }

    /// Sends `call` now, or `delay` from now; returns its `TaskHandle`.
    pub(crate) fn submit<'py>(
        &self,
        py: Python<'py>,
        call: Call,
        delay: Option<Duration>,
        default_retry: Option<&Retry>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (owner, name) = self.name_of(py, call.method.bind(py), "method")?;
        let payload = self.payload(py, &call)?;
        // The submitting module's default, as in-process (the owner's own
        // applies when neither is given).
        let retry = call.retry.clone().or_else(|| default_retry.cloned());
        let trace = call.trace.as_ref().map(|t| trace_context(t.bind(py))).transpose()?.flatten();
        let sent = lifetime::detach(py, || {
            let mut task = owner.named_task(&name, payload).label(Arc::clone(&call.name));
            if let Some(trace) = trace {
                task = task.trace_context(trace);
            }
            if let Some(delay) = delay {
                task = task.delay(delay);
            }
            if let Some(retry) = retry {
                task = task.retry(retry);
            }
            if let Some(ttl) = call.result_ttl {
                task = task.result_ttl(ttl);
            }
            task.submit()
        })
        .map_err(submit_error)?;
        let handle = future::new_handle(py, false)?;
        TaskCore::attach(&handle, Bridge::new(&handle)?, sent, call.name)?;
        Ok(handle)
    }

    /// Keeps `call` recurring at each tick of `recurrence`, once per tick
    /// across every process, under its key: `name=` if given; else the
    /// task's module and name, and a digest of its arguments if it has
    /// any (one method scheduled with two sets of arguments is two
    /// schedules, as in-process).
    pub(crate) fn recur(
        &self,
        py: Python<'_>,
        call: Call,
        recurrence: Recurrence,
    ) -> PyResult<SharedSchedule> {
        let (owner, name) = self.name_of(py, call.method.bind(py), "method")?;
        let payload = self.payload(py, &call)?;
        let key = match (
            &call.given_name,
            payload["args"].as_array().is_some_and(Vec::is_empty)
                && payload["kwargs"].as_object().is_some_and(Map::is_empty),
        ) {
            (Some(given), _) => given.to_string(),
            (None, true) => format!("{}.{name}", owner.name()),
            (None, false) => {
                format!("{}.{name}#{:016x}", owner.name(), fnv1a(payload.to_string().as_bytes()))
            }
        };
        let schedule =
            lifetime::detach(py, || owner.schedule_named_recurring_as(&key, recurrence, &name, payload))
                .map_err(submit_error)?;
        Ok(SharedSchedule::new(schedule))
    }

    /// Makes `callable` this process's runner of `module`'s task `name`.
    pub(crate) fn register(
        &self,
        py: Python<'_>,
        module: &Module,
        name: &str,
        callable: Py<PyAny>,
    ) -> PyResult<()> {
        let key = (module.name().to_owned(), name.to_owned());
        {
            let mut runnable = lock(&self.registry.runnable);
            if runnable.contains_key(&key) {
                return Err(PyValueError::new_err(format!(
                    "module {:?} of this TaskManager has a task named {name:?} already",
                    module.name()
                )));
            }
            runnable.insert(key, callable.clone_ref(py));
        }
        let registry = Arc::clone(&self.registry);
        let (module_name, task_name) = (module.name().to_owned(), name.to_owned());
        let handler = move |payload: Value| {
            let names = (module_name.as_str(), task_name.as_str());
            lifetime::attach(|py| run(py, &registry, callable.bind(py), &payload, names)).unwrap_or_else(
                || Err(RemoteError::new("RuntimeError", "the worker's interpreter is shutting down")),
            )
        };
        module.register(name, handler).map_err(submit_error)
    }
}

/// The W3C trace context of a submission's span recorder
/// (`taskmanager._tracing`): its `carrier()`, `(traceparent, tracestate)`;
/// None if it has none (no tracer provider set up: no valid span).
fn trace_context(trace: &Bound<'_, PyAny>) -> PyResult<Option<TraceContext>> {
    let (traceparent, tracestate): (String, String) =
        trace.call_method0(pyo3::intern!(trace.py(), "carrier"))?.extract()?;
    if traceparent.is_empty() {
        return Ok(None);
    }
    TraceContext::new(&traceparent, &tracestate).map(Some).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The recorder of a named task's run span in this worker, if
/// OpenTelemetry is importable (`taskmanager._tracing.remote`, looked up
/// once): parented on the trace context its submitter sent, if any.
fn remote_trace(py: Python<'_>, module: &str, name: &str) -> Option<Py<PyAny>> {
    static REMOTE: PyOnceLock<Option<Py<PyAny>>> = PyOnceLock::new();
    let remote = REMOTE.get_or_init(py, || {
        let found = py.import("taskmanager._tracing").and_then(|m| m.getattr("remote"));
        found.map_err(|e| e.write_unraisable(py, None)).ok().filter(|f| !f.is_none()).map(Bound::unbind)
    });
    let remote = remote.as_ref()?.bind(py);
    let run = NamedRun::current()?;
    let trace = run.trace.as_ref();
    let recorder = remote.call1((
        module,
        run.label.as_deref().unwrap_or(name),
        run.task_id,
        run.tick,
        trace.map(TraceContext::traceparent),
        trace.and_then(TraceContext::tracestate),
    ));
    recorder
        .map_err(|e| e.write_unraisable(py, Some(remote)))
        .ok()
        .filter(|r| !r.is_none())
        .map(Bound::unbind)
}

/// Runs a named task in this worker: the same runner as a task run here.
fn run(
    py: Python<'_>,
    registry: &Registry,
    method: &Bound<'_, PyAny>,
    payload: &Value,
    (module, name): (&str, &str),
) -> Result<Value, RemoteError> {
    let mut invocation = decode(py, registry, method, payload).map_err(|e| remote_error(py, &e))?;
    invocation.trace = remote_trace(py, module, name);
    let value = PyTask::call(py, &invocation).map_err(|e| remote_error(py, &e))?;
    convert::to_json(value.bind(py), "the result").map_err(|e| remote_error(py, &e))
}

/// A payload (see [`Named::payload`]) as the call to make.
fn decode(
    py: Python<'_>,
    registry: &Registry,
    method: &Bound<'_, PyAny>,
    payload: &Value,
) -> PyResult<Invocation> {
    let not_a_call = || {
        PyValueError::new_err(format!(
            "the task's arguments are not a taskmanager Python call ({{\"args\": [...], \"kwargs\": {{...}}}}): {}",
            truncated(&payload.to_string())
        ))
    };
    let object = payload.as_object().ok_or_else(not_a_call)?;
    let args = match object.get("args") {
        None => PyTuple::empty(py),
        Some(Value::Array(items)) => {
            PyTuple::new(py, items.iter().map(|v| convert::to_python(py, v)).collect::<PyResult<Vec<_>>>()?)?
        }
        Some(_) => return Err(not_a_call()),
    };
    let kwargs = match object.get("kwargs") {
        None => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(Value::Object(map)) => {
            let dict = PyDict::new(py);
            for (key, value) in map {
                dict.set_item(key, convert::to_python(py, value)?)?;
            }
            Some(dict.unbind())
        }
        Some(_) => return Err(not_a_call()),
    };
    let mut callbacks = Vec::new();
    for callback in object.get("callbacks").and_then(Value::as_array).into_iter().flatten() {
        let (Some(module), Some(name)) = (callback[0].as_str(), callback[1].as_str()) else {
            return Err(not_a_call());
        };
        let found =
            lock(&registry.runnable).get(&(module.to_owned(), name.to_owned())).map(|c| c.clone_ref(py));
        let found = found.ok_or_else(|| {
            PyLookupError::new_err(format!(
                "callback {name:?} of module {module:?} is not runnable in this worker"
            ))
        })?;
        callbacks.push(found);
    }
    let limit = match object.get("time_limit") {
        None => None,
        Some(Value::Number(n)) => {
            n.as_f64().filter(|s| s.is_finite() && *s > 0.0).map(Duration::from_secs_f64)
        }
        Some(_) => return Err(not_a_call()),
    };
    Ok(Invocation {
        method: method.clone().unbind(),
        args: args.unbind(),
        kwargs,
        callbacks,
        limit,
        trace: None,
    })
}

fn truncated(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// What a submitter learns of an exception raised in a worker: its type's
/// name, its text and the worker's traceback.
fn remote_error(py: Python<'_>, err: &PyErr) -> RemoteError {
    let kind = err.get_type(py).name().map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
    let message = err.value(py).str().map_or_else(|_| String::new(), |s| s.to_string());
    let traceback = format_traceback(py, err).unwrap_or_default();
    let kinds = crate::retry::exception_kinds(&exception(py, err));
    RemoteError { kind, message, traceback, kinds }
}

fn format_traceback(py: Python<'_>, err: &PyErr) -> PyResult<String> {
    static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let format = FORMAT.import(py, "traceback", "format_exception")?;
    let exception = exception(py, err);
    let lines = format.call1((exception.get_type(), &exception, exception.getattr("__traceback__")?))?;
    Ok(lines.extract::<Vec<String>>()?.concat())
}

/// FNV-1a, 64 bits: a schedule key's digest of its arguments, the same in
/// every process and version (std's hashers promise neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The handle of a recurring task kept in Redis: it fires once per tick
/// across every process, and `cancel`/`pause`/`resume` act cluster-wide.
#[pyclass(frozen, module = "taskmanager")]
pub(crate) struct SharedSchedule {
    schedule: CoreSchedule,
    /// Whether a `cancel` of this handle removed the schedule: a later one
    /// says True again, as an in-process `RecurringHandle`'s (a Future's).
    cancelled: AtomicBool,
}

impl SharedSchedule {
    pub(crate) fn new(schedule: CoreSchedule) -> Self {
        SharedSchedule { schedule, cancelled: AtomicBool::new(false) }
    }
}

#[pymethods]
impl SharedSchedule {
    /// The schedule's key in Redis.
    #[getter]
    fn key(&self) -> String {
        self.schedule.key().to_owned()
    }

    /// Whether this call created it (False: it existed, made by this or
    /// another process, and was kept).
    #[getter]
    fn created(&self) -> bool {
        self.schedule.created()
    }

    /// Whether this call changed it: it existed with another interval or
    /// other arguments, and now has these (counts and pause kept; a new
    /// interval starts a new grid from now).
    #[getter]
    fn updated(&self) -> bool {
        self.schedule.updated()
    }

    /// Removes the schedule everywhere; True if this handle cancelled it,
    /// now or before (as a cancelled Future's `cancel()`, and a
    /// `RecurringHandle`'s, is True); False if it did not exist (removed
    /// elsewhere, or never made).
    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        let existed = lifetime::detach(py, || self.schedule.cancel()).map_err(submit_error)?;
        if existed {
            self.cancelled.store(true, Ordering::Relaxed);
        }
        Ok(existed || self.cancelled.load(Ordering::Relaxed))
    }

    /// Ticks pass without running until `resume`; True if this call paused
    /// it (False: paused already, or it does not exist).
    fn pause(&self, py: Python<'_>) -> PyResult<bool> {
        lifetime::detach(py, || self.schedule.pause()).map_err(submit_error)
    }

    /// Resumes on its grid; True if this call resumed it (False: not
    /// paused, or it does not exist).
    fn resume(&self, py: Python<'_>) -> PyResult<bool> {
        lifetime::detach(py, || self.schedule.resume()).map_err(submit_error)
    }

    /// (ticks run, ticks skipped), cluster-wide, as `ScheduleInfo` counts
    /// them; None once cancelled.
    fn counts(&self, py: Python<'_>) -> PyResult<Option<(u64, u64)>> {
        lifetime::detach(py, || self.schedule.counts()).map_err(submit_error)
    }

    fn __repr__(&self) -> String {
        format!("<SharedSchedule {:?}>", self.schedule.key())
    }
}
