//! Task failures, told: the exception with its traceback, logged on the
//! `taskmanager` logger.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::lifetime;

pub(crate) static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(crate) fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    LOGGER
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("logging")?.call_method1("getLogger", ("taskmanager",))?.unbind())
        })
        .map(|l| l.bind(py))
}

/// The exception of `err` with its traceback attached. An exception that
/// leaves Python for Rust carries its traceback beside it; without this, a
/// logged or re-raised exception would not say where it came from.
pub(crate) fn exception<'py>(py: Python<'py>, err: &PyErr) -> Bound<'py, PyAny> {
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
pub(crate) fn log_failure(py: Python<'_>, what: &str, callable: &Bound<'_, PyAny>, err: &PyErr) {
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
