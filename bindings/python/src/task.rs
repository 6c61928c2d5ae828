//! A Python task: everything Python it holds, how it runs (method,
//! callbacks, coroutines) and how it is dropped unrun.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::bridge::{self, PyValue};
use crate::failure::{exception, log_failure};
use crate::outstanding::Ticket;
use crate::retry::exception_kinds;
use crate::{aio, future, lifetime, limits};

/// A method's `__qualname__`, or its repr: for time-limit messages.
fn method_name(method: &Bound<'_, PyAny>) -> String {
    method
        .getattr(pyo3::intern!(method.py(), "__qualname__"))
        .and_then(|n| n.extract::<String>())
        .or_else(|_| method.repr().map(|r| r.to_string()))
        .unwrap_or_else(|_| "?".to_owned())
}
use taskmanager::Retry;

/// What a run calls: the method with its arguments, then each callback
/// with its value. A task run here and a task a worker took from the
/// broker both run through [`PyTask::call`].
pub(crate) struct Invocation {
    pub(crate) method: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
    pub(crate) kwargs: Option<Py<PyDict>>,
    pub(crate) callbacks: Vec<Py<PyAny>>,
    /// `time_limit=`: the most the method may run (`limits.rs`).
    pub(crate) limit: Option<Duration>,
    /// With OpenTelemetry: what records each run's span
    /// (`taskmanager._tracing`, an object whose `begin()` starts the span
    /// and returns what `end(exception or None)` ends); None without it.
    pub(crate) trace: Option<Py<PyAny>>,
}

/// Everything Python a task holds.
pub(crate) struct Parts {
    pub(crate) future: Py<PyAny>,
    pub(crate) call: Invocation,
}

/// A task's Python objects and its ticket. See the module docs.
pub(crate) struct PyTask {
    pub(crate) parts: Option<Parts>,
    pub(crate) _ticket: Ticket,
}

/// Extra state a recurring task shares with its handle (its failures are
/// counted by the core, from what each run returns).
#[derive(Default)]
pub(crate) struct RecurringState {
    pub(crate) last_exception: Mutex<Option<Py<PyAny>>>,
}

/// A Python task's failure as the core sees it: the exception's type and
/// text (the exception itself goes to the handle). The core counts the run
/// as failed and tells it in the `Failed` event.
#[derive(Debug)]
pub(crate) struct Raised(String);

impl Raised {
    pub(crate) fn new(py: Python<'_>, err: &PyErr) -> Raised {
        let kind = err.get_type(py).name().map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
        let text = err.value(py).str().map_or_else(|_| String::new(), |s| s.to_string());
        Raised(if text.is_empty() { kind } else { format!("{kind}: {text}") })
    }
}

impl Raised {
    /// The run did not happen: the handle was cancelled first, or the
    /// interpreter is gone.
    pub(crate) fn not_run() -> Raised {
        Raised(
            "the task did not run: its handle was cancelled, or the interpreter is shutting down".to_owned(),
        )
    }
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PyTask {
    /// Calls the method, then each callback with its value. Returns the
    /// value, or the first exception (the method's, else a callback's).
    ///
    /// A coroutine returned (by an `async def` method or callback) is run to
    /// completion here first: its value is the value (see `aio`).
    ///
    /// With a tracer (`Invocation::trace`), the run is a span: begun
    /// before the method, ended after the last callback with the failure,
    /// if any. A tracer's own error is reported as unraisable, never the
    /// task's.
    pub(crate) fn call(py: Python<'_>, call: &Invocation) -> Result<Py<PyAny>, PyErr> {
        let Some(trace) = &call.trace else { return Self::call_untraced(py, call) };
        let trace = trace.bind(py);
        let span = trace.call_method0(intern!(py, "begin")).map_err(|e| e.write_unraisable(py, Some(trace)));
        let outcome = Self::call_untraced(py, call);
        if let Ok(span) = span {
            let error = match &outcome {
                Ok(_) => py.None().into_bound(py),
                Err(e) => exception(py, e),
            };
            if let Err(e) = span.call_method1(intern!(py, "end"), (error,)) {
                e.write_unraisable(py, Some(&span));
            }
        }
        outcome
    }

    fn call_untraced(py: Python<'_>, call: &Invocation) -> Result<Py<PyAny>, PyErr> {
        let method = call.method.bind(py);
        let invoke = || lifetime::call(method, call.args.bind(py), call.kwargs.as_ref().map(|k| k.bind(py)));
        let value = match call.limit {
            None => invoke().and_then(aio::awaited),
            Some(limit) => {
                // The coroutine of an `async def` method gets the time left.
                let what = method_name(method);
                limits::within(py, limit, &what, invoke, |v, left| aio::awaited_within(v, left, &what))
            }
        }
        .inspect_err(|e| log_failure(py, "task", method, e))?;
        let mut failure = None;
        for callback in &call.callbacks {
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

    /// A one-shot run (attempt `attempt` of it, 1 for the first): marks the
    /// handle running, calls, and releases everything the task held. The
    /// value, or the failure (its exception kept on `bridge`), goes to the
    /// core, which counts the run and then has the bridge settle the
    /// handle. A failure `retry` allows keeps everything, puts the handle
    /// back to pending, and says so (`Err((_, true))`): the core runs the
    /// task again.
    pub(crate) fn run_once(
        &mut self,
        py: Python<'_>,
        raised: &bridge::Raised,
        retry: Option<(&Retry, u32)>,
    ) -> Result<PyValue, (Raised, bool)> {
        let not_run = || Err((Raised::not_run(), false));
        let Some(future) = self.parts.as_ref().map(|p| p.future.bind(py).clone()) else { return not_run() };
        match future::set_running(&future) {
            Ok(true) => {}
            // Cancelled (reported already): nothing runs.
            Ok(false) => return not_run(),
            Err(e) => {
                e.write_unraisable(py, Some(&future));
                return not_run();
            }
        }
        let Some(parts) = self.parts.as_ref() else { return not_run() };
        let outcome = Self::call(py, &parts.call);
        if let (Err(e), Some((policy, attempt))) = (&outcome, retry) {
            if policy.allows_kinds(attempt, &exception_kinds(&exception(py, e))) {
                if let Err(e) = future::pending_again(&future) {
                    e.write_unraisable(py, Some(&future));
                }
                return Err((Raised::new(py, e), true));
            }
        }
        drop(self.parts.take());
        outcome.map(PyValue).map_err(|e| {
            let old = bridge::lock(raised).replace(exception(py, &e).unbind());
            drop(old);
            (Raised::new(py, &e), false)
        })
    }

    /// A recurring run: a failure is logged, kept on the handle and told to
    /// the core; the schedule goes on.
    pub(crate) fn run_again(&self, py: Python<'_>, state: &RecurringState) -> Result<(), Raised> {
        let Some(parts) = &self.parts else { return Ok(()) };
        Self::call(py, &parts.call).map(drop).map_err(|e| {
            let failure = Raised::new(py, &e);
            let exception = exception(py, &e).unbind();
            let old = state.last_exception.lock().unwrap_or_else(PoisonError::into_inner).replace(exception);
            drop(old);
            failure
        })
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
