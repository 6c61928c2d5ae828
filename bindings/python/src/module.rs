//! `ModuleCore`: the Rust module behind `taskmanager.Module`, and how a
//! submission's checked arguments become a task and its handle.

use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, SystemTime};

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use taskmanager::{Attempt, Method, Module, Recurrence, Retry, Task, TaskError};

use crate::bridge::{Bridge, PyValue};
use crate::broker::Named;
use crate::calendar::{self, When};
use crate::errors::submit_error;
use crate::handles::{RecurringCore, TaskCore};
use crate::manager::{stats_tuple, ManagerCore, StatsTuple};
use crate::outstanding::Outstanding;
use crate::task::{self, Invocation, Parts, PyTask, RecurringState};
use crate::{checks, future, lifetime, retry};

/// The Rust module behind a `taskmanager.Module`.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct ModuleCore {
    pub(crate) module: Module,
    pub(crate) outstanding: Arc<Outstanding>,
    /// With a broker: its tasks go through Redis (see `broker`).
    pub(crate) named: Option<Arc<Named>>,
    /// `Module(time_limit=)`: its tasks' default limit.
    pub(crate) time_limit: Option<Duration>,
}

/// A one-shot submission's options beyond the spec's.
pub(crate) struct Options<'a, 'py> {
    pub(crate) retry: Option<&'a Bound<'py, PyAny>>,
    pub(crate) result_ttl: Option<&'a Bound<'py, PyAny>>,
    pub(crate) ignore_result: Option<&'a Bound<'py, PyAny>>,
    /// For recurring tasks too (each run).
    pub(crate) time_limit: Option<&'a Bound<'py, PyAny>>,
    /// `trace=`, for recurring tasks too (see `Call::trace`).
    pub(crate) trace: Option<&'a Bound<'py, PyAny>>,
}

impl Options<'_, '_> {
    /// `result_ttl=` (seconds) and `ignore_result=`: how long a broker
    /// keeps the result (see `NamedTask::result_ttl`); at least a minute.
    fn result_ttl(&self) -> PyResult<Option<Duration>> {
        let ignore = checks::flag(self.ignore_result.filter(|v| !v.is_none()), "ignore_result", false)?;
        let ttl = match self.result_ttl.filter(|v| !v.is_none()) {
            Some(ttl) => Some(checks::seconds(checks::delay(ttl, "result_ttl")?)?),
            None => None,
        };
        if ignore && ttl.is_some() {
            return Err(PyValueError::new_err("give result_ttl or ignore_result=True, not both"));
        }
        Ok(if ignore { Some(taskmanager::MIN_RESULT_TTL) } else { ttl })
    }

    /// `time_limit=`: seconds, more than 0.
    fn time_limit(&self) -> PyResult<Option<Duration>> {
        let Some(limit) = self.time_limit.filter(|v| !v.is_none()) else { return Ok(None) };
        let seconds = checks::delay(limit, "time_limit")?;
        if seconds <= 0.0 {
            return Err(PyValueError::new_err(format!(
                "time_limit must be more than 0 seconds, got {seconds}"
            )));
        }
        checks::seconds(seconds).map(Some)
    }

    /// Whether any one-shot option was given (`ignore_result=False` is
    /// not; `time_limit` applies to recurring tasks too).
    fn given(&self) -> bool {
        let set = |v: Option<&Bound<'_, PyAny>>| v.is_some_and(|v| !v.is_none());
        set(self.retry)
            || set(self.result_ttl)
            || self.ignore_result.is_some_and(|v| v.is_truthy().unwrap_or(true))
    }
}

/// A submission's checked parts, before it has a handle.
pub(crate) struct Call {
    pub(crate) method: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
    pub(crate) kwargs: Option<Py<PyDict>>,
    pub(crate) callbacks: Vec<Py<PyAny>>,
    pub(crate) name: Arc<str>,
    /// The `name=` given, if one was (with a broker, a recurring task's
    /// key).
    pub(crate) given_name: Option<Arc<str>>,
    /// The `retry=` given, if one was (else the module's default applies).
    pub(crate) retry: Option<Retry>,
    /// With a broker: how long its result is kept in Redis (`result_ttl=`,
    /// or the shortest with `ignore_result=True`); None: the workers'.
    pub(crate) result_ttl: Option<Duration>,
    /// `time_limit=`, else the module's; None: no limit.
    pub(crate) time_limit: Option<Duration>,
    /// `trace=`: its spans' recorder (see `Invocation::trace`); None
    /// without OpenTelemetry.
    pub(crate) trace: Option<Py<PyAny>>,
}

impl Call {
    fn check(
        method: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyAny>>,
        callback: Option<&Bound<'_, PyAny>>,
        name: Option<&Bound<'_, PyAny>>,
        options: &Options<'_, '_>,
        default_limit: Option<Duration>,
    ) -> PyResult<Call> {
        let py = method.py();
        let given = name.is_some();
        let method = checks::method(method)?;
        let name = checks::name(name, &method)?;
        Ok(Call {
            retry: retry::argument(options.retry)?,
            result_ttl: options.result_ttl()?,
            time_limit: options.time_limit()?.or(default_limit),
            args: checks::args(py, args)?.unbind(),
            kwargs: checks::kwargs(py, kwargs)?.map(Bound::unbind),
            callbacks: checks::callbacks(callback)?,
            given_name: given.then(|| Arc::clone(&name)),
            trace: None,
            name,
            method: method.unbind(),
        })
    }
}

impl Call {
    /// With `trace=`, if given (None is none).
    fn traced(mut self, trace: Option<&Bound<'_, PyAny>>) -> Call {
        self.trace = trace.filter(|t| !t.is_none()).map(|t| t.clone().unbind());
        self
    }
}

impl ModuleCore {
    /// The task for `call`, reporting to `future`, counted as outstanding.
    fn task(&self, future: &Bound<'_, PyAny>, call: Call) -> PyTask {
        let Call { method, args, kwargs, callbacks, time_limit, trace, .. } = call;
        PyTask {
            parts: Some(Parts {
                future: future.clone().unbind(),
                call: Invocation { method, args, kwargs, callbacks, limit: time_limit, trace },
            }),
            _ticket: self.outstanding.enter(),
        }
    }

    /// Queues `call` now, or `delay` seconds from now, with a new handle.
    /// A one-shot task of `schedule_task`, now (`when` None), after a
    /// delay or at a datetime.
    fn once<'py>(
        &self,
        py: Python<'py>,
        method: &Bound<'py, PyAny>,
        (args, kwargs, callback, name): CallParts<'_, 'py>,
        options: &Options<'_, 'py>,
        calendar: &calendar::Given<'_, 'py>,
        when: Option<Once>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(argument) = calendar.recurring_only() {
            return Err(PyValueError::new_err(format!("{argument} applies to recurring schedules only")));
        }
        let call = Call::check(method, args, kwargs, callback, name, options, self.time_limit)?
            .traced(options.trace);
        match &self.named {
            None => self.submit_once(py, call, when),
            // Redis's clock decides when a delayed task is due: a
            // datetime becomes the delay until it, by this process's clock.
            Some(named) => {
                let delay = match when {
                    None => None,
                    Some(Once::After(seconds)) => Some(checks::seconds(seconds)?),
                    Some(Once::At(at)) => Some(at.duration_since(SystemTime::now()).unwrap_or_default()),
                };
                named.submit(py, call, delay, self.module.retry())
            }
        }
    }

    fn submit_once<'py>(
        &self,
        py: Python<'py>,
        call: Call,
        when: Option<Once>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = future::new_handle(py, false)?;
        let name = Arc::clone(&call.name);
        let retry = call.retry.clone().or_else(|| self.module.retry().cloned()).map(Arc::new);
        let bridge = Bridge::new(&handle)?;
        let method =
            PyOnce { task: self.task(&handle, call), bridge: Arc::clone(&bridge), retry, attempt: 1 };
        let run = Task::new(method).name(Arc::clone(&name));
        let core = match when {
            None => self.module.add_task(run),
            Some(Once::After(delay)) => self.module.schedule_task(checks::seconds(delay)?, run),
            Some(Once::At(at)) => self.module.schedule_task_at(at, run),
        }
        .map_err(submit_error)?;
        TaskCore::attach(&handle, bridge, core, name)?;
        Ok(handle)
    }

    /// Runs `call` at each tick of `recurrence`, with a new recurring
    /// handle.
    fn submit_recurring<'py>(
        &self,
        py: Python<'py>,
        call: Call,
        recurrence: Recurrence,
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = future::new_handle(py, true)?;
        let name = Arc::clone(&call.name);
        let task = self.task(&handle, call);
        let state = Arc::new(RecurringState::default());
        let shared = Arc::clone(&state);
        let run =
            Task::fallible(move || lifetime::attach(|py| task.run_again(py, &shared)).unwrap_or(Ok(())))
                .name(name);
        let core = self.module.schedule_recurring(recurrence, run).map_err(submit_error)?;
        handle.setattr(intern!(py, "_core"), RecurringCore { handle: core, state })?;
        Ok(handle)
    }
}

/// A Python one-shot task as the core runs it: each attempt through
/// [`PyTask::run_once`]; with a retry policy, a failure it allows runs
/// again (the core puts the task back in the timer for the backoff).
struct PyOnce {
    task: PyTask,
    /// Keeps the run's exception, and settles the handle once the core
    /// has counted the run (it is the run's `on_done`).
    bridge: Arc<Bridge<PyValue>>,
    retry: Option<Arc<Retry>>,
    /// The attempt about to run, 1 for the first.
    attempt: u32,
}

impl PyOnce {
    fn run(&mut self, retry: bool) -> Result<PyValue, (task::Raised, bool)> {
        let (task, raised) = (&mut self.task, self.bridge.raised());
        let policy = self.retry.as_deref().filter(|_| retry).map(|r| (r, self.attempt));
        lifetime::attach(|py| task.run_once(py, raised, policy))
            .unwrap_or_else(|| Err((task::Raised::not_run(), false)))
    }
}

fn failed(raised: &task::Raised) -> TaskError {
    TaskError::Failed { message: raised.to_string() }
}

impl Method<PyValue> for PyOnce {
    fn call(mut self) -> Result<PyValue, TaskError> {
        self.run(false).map_err(|(raised, _)| failed(&raised))
    }

    fn attempt(mut self) -> Attempt<Self, PyValue> {
        match self.run(true) {
            Ok(value) => Attempt::Done(Ok(value)),
            Err((raised, true)) => {
                let retry = self.attempt;
                self.attempt += 1;
                let after = self.retry.as_ref().map_or(Duration::ZERO, |r| r.next_delay(retry));
                Attempt::Again { method: self, error: failed(&raised), retry, after }
            }
            Err((raised, false)) => Attempt::Done(Err(failed(&raised))),
        }
    }

    const RETRIES: bool = true;

    /// With a time limit, a run stuck past it is given up (see `limits.rs`).
    fn escapes(&self) -> bool {
        self.task.parts.as_ref().is_some_and(|p| p.call.limit.is_some())
    }

    fn on_done(&self) -> Option<Waker> {
        Some(Waker::from(Arc::clone(&self.bridge)))
    }
}

#[pymethods]
impl ModuleCore {
    /// A module of `max_workers`; with `max_queued`, its queue is bounded.
    #[new]
    #[pyo3(signature = (manager, max_workers, max_queued=None, name=None, global_max_workers=None, retry=None, time_limit=None))]
    // The Python constructor's keywords, one to one.
    #[allow(clippy::too_many_arguments)]
    fn new(
        manager: &ManagerCore,
        max_workers: usize,
        max_queued: Option<usize>,
        name: Option<String>,
        global_max_workers: Option<usize>,
        retry: Option<&Bound<'_, PyAny>>,
        time_limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let limits = Options { retry: None, result_ttl: None, ignore_result: None, time_limit, trace: None };
        let time_limit = limits.time_limit()?;
        let mut builder = Module::builder(&manager.manager).max_workers(max_workers);
        if let Some(retry) = retry::argument(retry)? {
            builder = builder.retry(retry);
        }
        if let Some(name) = &name {
            builder = builder.name(name.as_str());
        }
        if let Some(max_queued) = max_queued {
            builder = builder.max_queued(max_queued);
        }
        if let Some(cap) = global_max_workers {
            builder = builder.global_max_workers(cap);
        }
        let named = manager.named.clone();
        if let (Some(named), Some(name)) = (&named, &name) {
            named.claim_module(name)?;
        }
        let module = builder.build().map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(ModuleCore { module, outstanding: Arc::clone(&manager.outstanding), named, time_limit })
    }

    /// `Module.add_task`: checks the arguments and queues
    /// `method(*args, **kwargs)`; returns its `TaskHandle`.
    #[pyo3(signature = (method, args=None, kwargs=None, callback=None, name=None, retry=None, result_ttl=None, ignore_result=None, time_limit=None, trace=None))]
    // The spec's arguments, and the options of a one-shot task.
    #[allow(clippy::too_many_arguments)]
    fn add_task<'py>(
        &self,
        method: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyAny>>,
        callback: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyAny>>,
        retry: Option<&Bound<'py, PyAny>>,
        result_ttl: Option<&Bound<'py, PyAny>>,
        ignore_result: Option<&Bound<'py, PyAny>>,
        time_limit: Option<&Bound<'py, PyAny>>,
        trace: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = Options { retry, result_ttl, ignore_result, time_limit, trace };
        let call =
            Call::check(method, args, kwargs, callback, name, &options, self.time_limit)?.traced(trace);
        match &self.named {
            None => self.submit_once(method.py(), call, None),
            Some(named) => named.submit(method.py(), call, None, self.module.retry()),
        }
    }

    /// `Module.schedule_task`: checks the arguments and schedules
    /// `method(*args, **kwargs)` `delay` seconds from now (every `delay`
    /// with `reoccurring`), at the times of `cron`, or at the datetime
    /// `at`; returns its `TaskHandle`, or a `RecurringHandle` if it recurs.
    #[pyo3(signature = (method, delay=None, args=None, kwargs=None, callback=None, reoccurring=None, run_now=None, recurring=None, name=None, retry=None, result_ttl=None, ignore_result=None, time_limit=None, cron=None, tz=None, dst_gap=None, dst_fold=None, at=None, misfire=None, max_catch_up=None, grace=None, jitter=None, trace=None))]
    // The arguments are the spec's, the `recurring` alias, and the
    // calendar's.
    #[allow(clippy::too_many_arguments)]
    fn schedule_task<'py>(
        &self,
        method: &Bound<'py, PyAny>,
        delay: Option<&Bound<'py, PyAny>>,
        args: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyAny>>,
        callback: Option<&Bound<'py, PyAny>>,
        reoccurring: Option<&Bound<'py, PyAny>>,
        run_now: Option<&Bound<'py, PyAny>>,
        recurring: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyAny>>,
        retry: Option<&Bound<'py, PyAny>>,
        result_ttl: Option<&Bound<'py, PyAny>>,
        ignore_result: Option<&Bound<'py, PyAny>>,
        time_limit: Option<&Bound<'py, PyAny>>,
        cron: Option<&Bound<'py, PyAny>>,
        tz: Option<&Bound<'py, PyAny>>,
        dst_gap: Option<&Bound<'py, PyAny>>,
        dst_fold: Option<&Bound<'py, PyAny>>,
        at: Option<&Bound<'py, PyAny>>,
        misfire: Option<&Bound<'py, PyAny>>,
        max_catch_up: Option<&Bound<'py, PyAny>>,
        grace: Option<&Bound<'py, PyAny>>,
        jitter: Option<&Bound<'py, PyAny>>,
        trace: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = method.py();
        let options = Options { retry, result_ttl, ignore_result, time_limit, trace };
        let method = checks::method(method)?;
        let calendar =
            calendar::Given { cron, tz, dst_gap, dst_fold, at, misfire, max_catch_up, grace, jitter };
        let when = calendar.when(delay)?;
        let repeat = checks::reoccurring(reoccurring, recurring)?;
        let now = checks::flag(run_now, "run_now", false)?;
        // Whether it recurs decides the delay's rule: a one-shot delay may
        // be 0; a reoccurring one is the interval between runs.
        let runs = match when {
            When::Delay(delay) if !repeat.unwrap_or(false) => {
                // `run_now` on a one-shot task: it runs once, now.
                Runs::Once((!now).then_some(Once::After(checks::delay(delay, "delay")?)))
            }
            When::At(_) if repeat == Some(true) || now => {
                return Err(PyValueError::new_err(
                    "at is one run at a datetime: reoccurring and run_now do not apply (for runs at calendar \
                     times, give cron)",
                ));
            }
            When::At(at) => Runs::Once(Some(Once::At(at))),
            When::Delay(delay) => {
                Runs::Every(Recurrence::every(checks::interval(delay, "delay", checks::REOCCURRING_DELAY)?))
            }
            When::Cron(_) if repeat == Some(false) => {
                return Err(PyValueError::new_err(
                    "a cron schedule recurs: reoccurring=False contradicts cron",
                ));
            }
            When::Cron(cron) => Runs::Every(Recurrence::cron(*cron)),
        };
        let recurrence = match runs {
            Runs::Every(recurrence) => recurrence,
            Runs::Once(once) => {
                return self.once(py, &method, (args, kwargs, callback, name), &options, &calendar, once)
            }
        };
        let recurrence = calendar.apply(recurrence.run_now(now))?;
        if options.given() {
            return Err(PyValueError::new_err(
                "retry, result_ttl and ignore_result apply to one-shot tasks: a reoccurring task's next run is \
                 its retry (its failures are logged and counted, and the schedule goes on), and its runs' \
                 results are not kept",
            ));
        }
        let recurring = Options { retry: None, result_ttl: None, ignore_result: None, ..options };
        let call =
            Call::check(&method, args, kwargs, callback, name, &recurring, self.time_limit)?.traced(trace);
        match &self.named {
            None => self.submit_recurring(py, call, recurrence),
            Some(named) => Ok(Bound::new(py, named.recur(py, call, recurrence)?)?.into_any()),
        }
    }

    /// The module's stats, as the fields of `taskmanager.Stats`, in order.
    fn stats(&self) -> StatsTuple {
        stats_tuple(self.module.stats())
    }

    fn worker_count(&self) -> usize {
        self.module.worker_count()
    }

    /// Changes `max_workers` before the manager starts (the worker
    /// command's `--concurrency`).
    fn set_max_workers(&self, max_workers: usize) -> PyResult<()> {
        self.module.set_max_workers(max_workers).map_err(|e| match e {
            taskmanager::ConfigError::Started => pyo3::exceptions::PyRuntimeError::new_err(e.to_string()),
            e => PyValueError::new_err(e.to_string()),
        })
    }

    /// With a broker: makes `callable` this process's runner of this
    /// module's task `name` (see `broker`).
    fn register(&self, py: Python<'_>, name: &str, callable: Py<PyAny>) -> PyResult<()> {
        let named = self.named.as_ref().ok_or_else(|| PyValueError::new_err("register() needs a broker"))?;
        named.register(py, &self.module, name, callable)
    }

    fn queued(&self) -> usize {
        self.module.queued()
    }
}

/// What `schedule_task` was asked for: one run (now, if None), or a run
/// at each tick.
enum Runs {
    Once(Option<Once>),
    Every(Recurrence),
}

/// When a one-shot task of `schedule_task` runs, if not now.
enum Once {
    /// `delay` seconds from now.
    After(f64),
    /// At a wall-clock time.
    At(SystemTime),
}

/// A call's `args`, `kwargs`, `callback` and `name`, as given.
type CallParts<'a, 'py> = (
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
    Option<&'a Bound<'py, PyAny>>,
);
