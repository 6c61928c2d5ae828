//! Settling a handle: a `concurrent.futures.Future` subclass
//! (`taskmanager.TaskHandle`) whose lock is made only when someone needs it.
//!
//! A standard Future makes a `threading.Condition` in its constructor and
//! takes it to change state: about two microseconds a task, more than the
//! rest of a submission. `TaskHandle` instead makes its condition on first
//! use (waiting on it, adding a done-callback, `concurrent.futures.wait`),
//! and keeps it in the `_cond` attribute, None until then.
//!
//! The rule that keeps this correct: everything that reads or changes a
//! handle runs with the GIL held, and the functions here run no Python code
//! between looking at `_cond` and changing the state. So either the
//! condition does not exist yet, in which case nobody waits or has a
//! callback, the state is set directly, and whoever comes later makes the
//! condition and then sees the new state; or it exists, in which case the
//! state changes through Future's own methods, under the condition, with
//! waiters woken and callbacks run as usual. (This relies on the GIL: a
//! free-threaded build would need the condition always.)

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// What this module needs from Python, looked up once.
struct Api {
    task_handle: Py<PyType>,
    recurring_handle: Py<PyType>,
    pending: Py<PyAny>,
    running: Py<PyAny>,
    finished: Py<PyAny>,
    set_running_or_notify_cancel: Py<PyAny>,
    set_result: Py<PyAny>,
    set_exception: Py<PyAny>,
    cancel: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let base = py.import("concurrent.futures._base")?;
        let future = base.getattr("Future")?;
        let package = py.import("taskmanager")?;
        Ok::<_, PyErr>(Api {
            task_handle: package.getattr("TaskHandle")?.cast_into::<PyType>()?.unbind(),
            recurring_handle: package.getattr("RecurringHandle")?.cast_into::<PyType>()?.unbind(),
            pending: base.getattr("PENDING")?.unbind(),
            running: base.getattr("RUNNING")?.unbind(),
            finished: base.getattr("FINISHED")?.unbind(),
            // Called unbound: `TaskHandle.cancel` asks the core, and must
            // not be re-entered from the core's own cancellation.
            set_running_or_notify_cancel: future.getattr("set_running_or_notify_cancel")?.unbind(),
            set_result: future.getattr("set_result")?.unbind(),
            set_exception: future.getattr("set_exception")?.unbind(),
            cancel: future.getattr("cancel")?.unbind(),
        })
    })
}

/// A new pending `TaskHandle`, or `RecurringHandle` if `recurring`.
pub(crate) fn new_handle(py: Python<'_>, recurring: bool) -> PyResult<Bound<'_, PyAny>> {
    let api = api(py)?;
    let class = if recurring { &api.recurring_handle } else { &api.task_handle };
    class.bind(py).call0()
}

/// Whether someone has made the handle's condition (and so may wait on it).
fn watched(future: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(!future.getattr(intern!(future.py(), "_cond"))?.is_none())
}

/// Marks the handle running; false if it was cancelled instead.
pub(crate) fn set_running(future: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = future.py();
    let api = api(py)?;
    if watched(future)? {
        return api.set_running_or_notify_cancel.bind(py).call1((future,))?.is_truthy();
    }
    let state = intern!(py, "_state");
    if !future.getattr(state)?.eq(api.pending.bind(py))? {
        return Ok(false);
    }
    future.setattr(state, api.running.bind(py))?;
    Ok(true)
}

/// Settles a running handle with the task's value or exception.
pub(crate) fn settle(
    future: &Bound<'_, PyAny>,
    outcome: Result<Py<PyAny>, Bound<'_, PyAny>>,
) -> PyResult<()> {
    let py = future.py();
    let api = api(py)?;
    if watched(future)? {
        match outcome {
            Ok(value) => api.set_result.bind(py).call1((future, value))?,
            Err(exception) => api.set_exception.bind(py).call1((future, exception))?,
        };
        return Ok(());
    }
    match outcome {
        Ok(value) => future.setattr(intern!(py, "_result"), value)?,
        Err(exception) => future.setattr(intern!(py, "_exception"), exception)?,
    }
    future.setattr(intern!(py, "_state"), api.finished.bind(py))
}

/// Marks a handle cancelled, waking waiters and running its callbacks.
pub(crate) fn cancel(future: &Bound<'_, PyAny>) -> PyResult<()> {
    api(future.py())?.cancel.bind(future.py()).call1((future,))?;
    Ok(())
}
