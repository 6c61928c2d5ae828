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
//! state changes under the condition, through Future's own methods (a
//! cancellation through [`cancel`], which does what they would), with
//! waiters woken and callbacks run as usual. (This relies on the GIL: a
//! free-threaded build would need the condition always.)
//!
//! A cancelled handle ends `CANCELLED_AND_NOTIFIED`, never plain
//! `CANCELLED`: `concurrent.futures.wait` and `as_completed` count only the
//! former as done.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

/// What this module needs from Python, looked up once.
struct Api {
    task_handle: Py<PyType>,
    recurring_handle: Py<PyType>,
    pending: Py<PyAny>,
    running: Py<PyAny>,
    cancelled: Py<PyAny>,
    cancelled_and_notified: Py<PyAny>,
    finished: Py<PyAny>,
    set_running_or_notify_cancel: Py<PyAny>,
    set_result: Py<PyAny>,
    set_exception: Py<PyAny>,
    invoke_callbacks: Py<PyAny>,
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
            cancelled: base.getattr("CANCELLED")?.unbind(),
            cancelled_and_notified: base.getattr("CANCELLED_AND_NOTIFIED")?.unbind(),
            finished: base.getattr("FINISHED")?.unbind(),
            // Called unbound: `TaskHandle.cancel` asks the core, and must
            // not be re-entered from the core's own cancellation.
            set_running_or_notify_cancel: future.getattr("set_running_or_notify_cancel")?.unbind(),
            set_result: future.getattr("set_result")?.unbind(),
            set_exception: future.getattr("set_exception")?.unbind(),
            invoke_callbacks: future.getattr("_invoke_callbacks")?.unbind(),
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

/// A running handle whose task failed and waits to retry: pending again,
/// so that it may be cancelled until the next attempt marks it running.
/// One attribute set under the GIL: nothing waits on the change (waiters
/// wait for the end), and a cancel reads the state under the GIL too.
pub(crate) fn pending_again(future: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = future.py();
    let api = api(py)?;
    let state = intern!(py, "_state");
    if future.getattr(state)?.eq(api.running.bind(py))? {
        future.setattr(state, api.pending.bind(py))?;
    }
    Ok(())
}

/// Marks the handle running; false if it was cancelled instead (and then
/// makes sure the cancellation was reported).
pub(crate) fn set_running(future: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = future.py();
    let api = api(py)?;
    let state = intern!(py, "_state");
    if !future.getattr(state)?.eq(api.pending.bind(py))? {
        // Only a cancellation leaves a handle whose task starts: report it
        // if nobody has (a no-op if it is reported already).
        cancel(future)?;
        return Ok(false);
    }
    if watched(future)? {
        let args = PyTuple::new(py, [future])?;
        return crate::lifetime::call(api.set_running_or_notify_cancel.bind(py), &args, None)?.is_truthy();
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
        // These run the handle's done-callbacks: user code.
        let (set, outcome) = match outcome {
            Ok(value) => (api.set_result.bind(py), value.into_bound(py)),
            Err(exception) => (api.set_exception.bind(py), exception),
        };
        let args = PyTuple::new(py, [future.clone(), outcome])?;
        crate::lifetime::call(set, &args, None)?;
        return Ok(());
    }
    match outcome {
        // None is the class's default: one attribute fewer per task that
        // returns nothing.
        Ok(value) if value.is_none(py) => {}
        Ok(value) => future.setattr(intern!(py, "_result"), value)?,
        Err(exception) => future.setattr(intern!(py, "_exception"), exception)?,
    }
    future.setattr(intern!(py, "_state"), api.finished.bind(py))
}

/// Marks a handle cancelled, as `Future.cancel()` followed by
/// `set_running_or_notify_cancel()` would, in one step: the state becomes
/// `CANCELLED_AND_NOTIFIED` (what `concurrent.futures.wait` and
/// `as_completed` count as done), waiters are told and woken, then the
/// done-callbacks run. Every cancellation goes through here: a user's
/// cancel, shutdown's, `cancel_pending`, and the core's when it drops a task
/// unrun.
///
/// Idempotent: a recurring handle is cancelled by `RecurringHandle.cancel`
/// at once and again by the core when a run in progress ends. A handle
/// already notified or finished is left alone; one left `CANCELLED` by a
/// plain `Future.cancel` call is notified, its callbacks having run then.
pub(crate) fn cancel(future: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = future.py();
    let api = api(py)?;
    let state = intern!(py, "_state");
    if !watched(future)? {
        // Nobody waits and there are no callbacks (see the module docs):
        // no Python code runs between reading the state and setting it.
        let now = future.getattr(state)?;
        if now.eq(api.pending.bind(py))? || now.eq(api.cancelled.bind(py))? {
            future.setattr(state, api.cancelled_and_notified.bind(py))?;
        }
        return Ok(());
    }
    let condition = future.getattr(intern!(py, "_condition"))?;
    let acquire = condition.getattr(intern!(py, "acquire"))?;
    crate::lifetime::call(&acquire, &PyTuple::empty(py), None)?;
    let notified = notify_cancelled(future, &condition, api);
    let released = condition.call_method0(intern!(py, "release"));
    let run_callbacks = notified?;
    released?;
    if run_callbacks {
        // After the lock is let go, as `Future` does: each callback's
        // exception is logged by `concurrent.futures`, not raised.
        crate::lifetime::call(api.invoke_callbacks.bind(py), &PyTuple::new(py, [future])?, None)?;
    }
    Ok(())
}

/// `cancel`'s part under the handle's condition: true if the callbacks are
/// still to run.
fn notify_cancelled(future: &Bound<'_, PyAny>, condition: &Bound<'_, PyAny>, api: &Api) -> PyResult<bool> {
    let py = future.py();
    let now = future.getattr(intern!(py, "_state"))?;
    let run_callbacks = if now.eq(api.pending.bind(py))? {
        true
    } else if now.eq(api.cancelled.bind(py))? {
        false
    } else {
        return Ok(false);
    };
    future.setattr(intern!(py, "_state"), api.cancelled_and_notified.bind(py))?;
    for waiter in future.getattr(intern!(py, "_waiters"))?.try_iter()? {
        waiter?.call_method1(intern!(py, "add_cancelled"), (future,))?;
    }
    condition.call_method0(intern!(py, "notify_all"))?;
    Ok(run_callbacks)
}
