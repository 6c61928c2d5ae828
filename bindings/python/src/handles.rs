//! The core handles behind `taskmanager.TaskHandle` and `RecurringHandle`.

use std::sync::{Arc, PoisonError};

use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use taskmanager::{RecurringHandle, SubmitError, TaskHandle};

use crate::bridge::{Bridge, Bridged, IntoPython};
use crate::errors::submit_error;
use crate::task::RecurringState;
use crate::{checks, future, lifetime};

/// A core cancel's answer; when it won, the Python `handle` is marked
/// cancelled too (see `future::cancel`).
fn settle_cancel(won: bool, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
    if won {
        future::cancel(handle)?;
    }
    Ok(won)
}

/// The core handle of a one-shot task, run here or through the broker: its
/// bridge settles the Python handle when the core says the task ended.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct TaskCore {
    bridge: Arc<dyn Bridged>,
    id: u64,
    /// The task's name: given at submission (no string made per task).
    name: Arc<str>,
    /// Its id in the broker, if it was sent through one.
    broker_id: Option<String>,
}

impl TaskCore {
    /// The core handle of `future` (a new `TaskHandle`), whose task's core
    /// handle is `handle` and whose bridge (made with `future`) is
    /// `bridge`; `name` is the handle's name (the task's, or its `name=`).
    pub(crate) fn attach<T: IntoPython>(
        future: &Bound<'_, PyAny>,
        bridge: Arc<Bridge<T>>,
        handle: TaskHandle<T>,
        name: Arc<str>,
    ) -> PyResult<()> {
        let (id, broker_id) = (handle.id(), handle.broker_id());
        bridge.attach(handle);
        let bridge: Arc<dyn Bridged> = bridge;
        future.setattr(pyo3::intern!(future.py(), "_core"), TaskCore { bridge, id, name, broker_id })
    }
}

impl Drop for TaskCore {
    /// The Python handle is gone (see `Bridged::forget`).
    fn drop(&mut self) {
        self.bridge.forget();
    }
}

#[pymethods]
impl TaskCore {
    /// Cancels if not started (sent through the broker: if no worker
    /// claimed it); true if this call cancelled it, and then `handle` (this
    /// task's `TaskHandle`) is cancelled.
    fn cancel(&self, py: Python<'_>, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
        Arc::clone(&self.bridge).cancel(py, handle)
    }

    /// Whether a worker runs the task now: for a task sent through the
    /// broker, whether a worker has claimed it (asks Redis; see
    /// `TaskHandle::is_running`). `TaskHandle.running()` asks this only of
    /// a pending handle of such a task: a task run here marks its handle.
    fn running(&self, py: Python<'_>) -> bool {
        self.bridge.is_running(py)
    }

    /// Called once something watches the handle (see `bridge`).
    fn pin(&self, handle: &Bound<'_, PyAny>) {
        self.bridge.pin(handle);
    }

    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    #[getter]
    fn broker_id(&self) -> Option<&str> {
        self.broker_id.as_deref()
    }
}

/// The core handle of a recurring task.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct RecurringCore {
    pub(crate) handle: RecurringHandle,
    pub(crate) state: Arc<RecurringState>,
}

#[pymethods]
impl RecurringCore {
    /// Stops all future runs; true if this call did. `handle` (this task's
    /// `RecurringHandle`) is then cancelled at once, even while a run in
    /// progress finishes: the core's own cancellation when that run ends
    /// finds it done.
    fn cancel(&self, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
        settle_cancel(self.handle.cancel(), handle)
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
        self.handle.failures()
    }

    #[getter]
    fn skipped_ticks(&self) -> u64 {
        self.handle.skipped_ticks()
    }

    #[getter]
    fn coalesced_ticks(&self) -> u64 {
        self.handle.coalesced_ticks()
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
