//! Named tasks through a broker (Redis): the Python side names its
//! callables and encodes arguments as JSON text (`taskmanager._broker`);
//! this file sends them, runs them through the module's Python dispatcher
//! in the worker that claims them, and completes the submitter's handle
//! when the result comes back.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use serde_json::Value;
use taskmanager::{Module, RemoteError, SharedSchedule};

use crate::bridge::Raised;
use crate::errors::submit_error;
use crate::handles::TaskCore;
use crate::{checks, future, lifetime};

/// The handle of a recurring named task kept in Redis.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct ScheduleCore {
    schedule: SharedSchedule,
}

#[pymethods]
impl ScheduleCore {
    #[getter]
    fn key(&self) -> String {
        self.schedule.key().to_owned()
    }

    #[getter]
    fn created(&self) -> bool {
        self.schedule.created()
    }

    fn cancel(&self, py: Python<'_>) -> PyResult<bool> {
        lifetime::detach(py, || self.schedule.cancel()).map_err(submit_error)
    }

    fn pause(&self, py: Python<'_>) -> PyResult<bool> {
        lifetime::detach(py, || self.schedule.pause()).map_err(submit_error)
    }

    fn resume(&self, py: Python<'_>) -> PyResult<bool> {
        lifetime::detach(py, || self.schedule.resume()).map_err(submit_error)
    }

    /// (ticks run, ticks skipped), or None once cancelled.
    fn counts(&self, py: Python<'_>) -> PyResult<Option<(u64, u64)>> {
        lifetime::detach(py, || self.schedule.counts()).map_err(submit_error)
    }
}

fn parse(args: &str) -> PyResult<Value> {
    serde_json::from_str(args).map_err(|e| PyValueError::new_err(format!("args: not JSON text: {e}")))
}

/// Runs every named task this process claims for the module through
/// `dispatch(name, args_json) -> result_json`; an exception it raises
/// becomes the submitter's `RemoteError` (type name, message,
/// traceback text from `dispatch`'s `error_parts`).
pub(crate) fn register_dispatcher(
    module: &Module,
    dispatch: Py<PyAny>,
    error_parts: Py<PyAny>,
) -> PyResult<()> {
    let handler = move |name: &str, args: Value| -> Result<Value, RemoteError> {
        let ran = lifetime::attach(|py| {
            let call = PyTuple::new(py, [name.to_owned(), args.to_string()])?;
            match lifetime::call(dispatch.bind(py), &call, None) {
                Ok(text) => Ok::<_, PyErr>(Ok(text.extract::<String>()?)),
                Err(e) => {
                    let parts = PyTuple::new(py, [e.into_value(py)])?;
                    let (kind, message, traceback): (String, String, String) =
                        lifetime::call(error_parts.bind(py), &parts, None)?.extract()?;
                    Ok(Err(RemoteError { kind, message, traceback }))
                }
            }
        });
        match ran {
            Some(Ok(Ok(text))) => serde_json::from_str(&text)
                .map_err(|e| RemoteError::new("TypeError", format!("the result is not JSON: {e}"))),
            Some(Ok(Err(error))) => Err(error),
            Some(Err(e)) => Err(RemoteError::new("RuntimeError", e.to_string())),
            None => Err(RemoteError::new("RuntimeError", "the worker's interpreter is shutting down")),
        }
    };
    module.register_fallback(handler).map_err(submit_error)
}

/// Sends the named task `name` with `args` (JSON text) now, or `delay`
/// seconds from now; returns its `TaskHandle`.
pub(crate) fn add_named<'py>(
    module: &Module,
    py: Python<'py>,
    name: &str,
    args: &str,
    delay: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let value = parse(args)?;
    let delay = delay.map(checks::seconds).transpose()?;
    let sent = lifetime::detach(py, || match delay {
        None => module.add_named_task(name, value),
        Some(delay) => module.schedule_named_task(delay, name, value),
    });
    let core = sent.map_err(submit_error)?;
    let future = future::new_handle(py, false)?;
    TaskCore::attach(&future, core, Raised::default())?;
    Ok(future)
}

/// Keeps the named task `name` recurring every `interval` seconds in
/// Redis under `key`, once cluster-wide.
pub(crate) fn schedule_named_recurring(
    module: &Module,
    py: Python<'_>,
    key: &str,
    name: &str,
    args: &str,
    interval: f64,
    run_now: bool,
) -> PyResult<ScheduleCore> {
    let value = parse(args)?;
    let recurrence = taskmanager::Recurrence::every(checks::seconds(interval)?).run_now(run_now);
    let schedule = lifetime::detach(py, || module.schedule_named_recurring_as(key, recurrence, name, value))
        .map_err(submit_error)?;
    Ok(ScheduleCore { schedule })
}
