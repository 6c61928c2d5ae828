//! [`Bridge`]: settles a Python handle (`taskmanager.TaskHandle`) from its
//! core handle, for a task run in this process and for one sent through the
//! broker alike: the core finishes the task (counting it first, so whoever
//! waited on the handle sees it in `stats()`), then wakes the bridge, which
//! settles the Python handle with the value, the exception or the
//! cancellation.
//!
//! What wakes it: for a task run here, the task's own method (`PyOnce`,
//! which holds the bridge) gives it to the core as its `on_done` waker, so
//! a submission registers nothing in the cell and allocates nothing but
//! the bridge (which also keeps the run's exception). For a task sent
//! through the broker, the bridge polls the core handle once at submission,
//! which leaves its waker in the cell.
//!
//! For a task sent through the broker, the bridge holds the Python handle
//! weakly while nobody watches it, so a handle its user dropped (fire and
//! forget) is freed at once; the task still runs (dropping never cancels),
//! and nothing is settled for it. (A task run here holds its handle until
//! it runs in any case: its bridge holds it strongly from the start.) Once
//! watched (a wait, a done-callback, `concurrent.futures.wait`, an `await`:
//! whatever makes its lock, see `_handle.py`), it is held strongly until
//! settled, as an executor holds its futures. The handle holds the bridge
//! (its `_core`): held strongly, that is a cycle Python's collector cannot
//! see, so the bridge lets go once it has settled the handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyWeakrefReference;

use taskmanager::{TaskError, TaskHandle};

use crate::{convert, future, lifetime};

/// A core handle's value, as it becomes the Python handle's result.
pub(crate) trait IntoPython: Send + 'static {
    /// Whether the task runs in another process: its cancel talks to Redis.
    const REMOTE: bool;
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>>;
}

/// The value of a task run in this process: the method's own return value.
pub(crate) struct PyValue(pub(crate) Py<PyAny>);

impl IntoPython for PyValue {
    const REMOTE: bool = false;
    fn into_python(self, _py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self.0)
    }
}

/// The value of a task run by a worker through the broker: JSON.
impl IntoPython for serde_json::Value {
    const REMOTE: bool = true;
    fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        convert::to_python(py, &self).map(Bound::unbind)
    }
}

/// See the module docs.
pub(crate) struct Bridge<T> {
    /// The core handle; taken out while a cancel runs (see `cancel`), and
    /// not there yet while a task run here is being submitted.
    handle: Mutex<Option<TaskHandle<T>>>,
    future: Mutex<Held>,
    /// The exception of a run here that raised: the core keeps only its
    /// text (see `task::Raised`).
    raised: Raised,
}

/// Where a task run here leaves its exception for its bridge.
pub(crate) type Raised = Mutex<Option<Py<PyAny>>>;

/// How a bridge holds its Python handle.
enum Held {
    Weakly(Py<PyWeakrefReference>),
    Strongly(Py<PyAny>),
    Settled,
}

impl Held {
    /// The Python handle, if it is still there.
    fn into_future(self, py: Python<'_>) -> Option<Bound<'_, PyAny>> {
        match self {
            Held::Strongly(future) => Some(future.into_bound(py)),
            Held::Weakly(weak) => weak.bind(py).upgrade(),
            Held::Settled => None,
        }
    }
}

/// A mutex's guard, poisoned or not (a panic elsewhere leaves data that
/// is still whole: every change under these locks is one assignment).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: IntoPython> Bridge<T> {
    /// A bridge to the Python handle `future`, with no core handle yet: a
    /// task run here gets it from [`attach`](Self::attach) once submitted.
    pub(crate) fn new(future: &Bound<'_, PyAny>) -> PyResult<Arc<Self>> {
        // A task run here holds its handle until it runs anyway (to mark it
        // running): held strongly from the start, with no weak reference to
        // make and upgrade per task. A remote one, weakly (see the module
        // docs).
        let held = if T::REMOTE {
            Held::Weakly(PyWeakrefReference::new(future)?.unbind())
        } else {
            Held::Strongly(future.clone().unbind())
        };
        Ok(Arc::new(Bridge { handle: Mutex::new(None), future: Mutex::new(held), raised: Mutex::new(None) }))
    }

    /// Gives the bridge its core handle. A task sent through the broker is
    /// polled now, which leaves the bridge's waker in its cell; a task run
    /// here wakes the bridge through its method (`on_done`), and may have
    /// ended already (it ran at once, or was cancelled): then the wake
    /// found no handle, and the bridge settles it now.
    pub(crate) fn attach(self: &Arc<Self>, handle: TaskHandle<T>) {
        // Read after the handle is in place: a wake before that found none,
        // but came after the end this then sees.
        let done = lock(&self.handle).insert(handle).is_done();
        if T::REMOTE || done {
            self.poll();
        }
    }

    /// Where a run here leaves its exception (see `task::Raised`).
    pub(crate) fn raised(&self) -> &Raised {
        &self.raised
    }

    fn poll(self: &Arc<Self>) {
        let waker = Waker::from(Arc::clone(self));
        let mut slot = lock(&self.handle);
        let Some(handle) = slot.as_mut() else { return };
        let Poll::Ready(outcome) = Pin::new(handle).poll(&mut Context::from_waker(&waker)) else { return };
        // Taken with the outcome, under the handle's lock: a second poll
        // (a wake racing `attach` or a lost cancel) finds the outcome taken
        // and nothing left to settle. The core handle is kept for `cancel`,
        // which finds the task finished.
        let held = std::mem::replace(&mut *lock(&self.future), Held::Settled);
        drop(slot);
        let mut held = Some(held);
        lifetime::attach(|py| {
            let Some(future) = held.take().and_then(|h| h.into_future(py)) else { return };
            if let Err(e) = self.complete(py, &future, outcome) {
                e.write_unraisable(py, Some(&future));
            }
        });
        // Past the exit hooks: leaked, as `PyTask` leaks (see `lifetime`).
        std::mem::forget(held);
    }

    /// Settles `future` with the task's outcome.
    fn complete(
        &self,
        py: Python<'_>,
        future: &Bound<'_, PyAny>,
        outcome: Result<T, TaskError>,
    ) -> PyResult<()> {
        let outcome = match outcome {
            Err(TaskError::Cancelled) => return future::cancel(future),
            Ok(value) => Ok(value.into_python(py)?),
            Err(TaskError::Failed { message }) => Err(match lock(&self.raised).take() {
                Some(exception) => exception.into_bound(py),
                None => PyRuntimeError::new_err(message).into_value(py).into_any().into_bound(py),
            }),
            Err(other) => Err(exception_of(py, other)?),
        };
        // A task run here marked its handle running as it started; a remote
        // one's start is not seen here.
        if !T::REMOTE || future::set_running(future)? {
            future::settle(future, outcome)?;
        }
        Ok(())
    }
}

impl<T: IntoPython> Wake for Bridge<T> {
    fn wake(self: Arc<Self>) {
        self.poll();
    }
}

/// What a `TaskCore` asks of its bridge, whatever the value's type.
pub(crate) trait Bridged: Send + Sync {
    /// The Python handle is gone (its user dropped it): so is the core
    /// handle. The task still runs; a task sent through the broker is
    /// forgotten by it, and its result is never settled (no GIL taken for
    /// it). Without this, the core handle and the waker it holds kept each
    /// other (and every result of a fire-and-forget submitter was settled
    /// for nobody, the GIL taken for each).
    fn forget(&self);
    /// Holds the Python handle strongly from now until it is settled.
    fn pin(&self, future: &Bound<'_, PyAny>);
    /// Cancels the task if it has not started (a remote one: if no worker
    /// claimed it); true if this call did, and then the Python handle
    /// `future` is cancelled.
    fn cancel(self: Arc<Self>, py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<bool>;
    /// Whether a worker runs the task now, as the core handle says (a
    /// remote one asks Redis).
    fn is_running(&self, py: Python<'_>) -> bool;
}

impl<T: IntoPython> Bridged for Bridge<T> {
    fn forget(&self) {
        // Dropped outside the lock: a poll never holds it while taking the
        // GIL, and dropping the core handle may drop the task's value.
        let core = lock(&self.handle).take();
        drop(core);
    }

    fn pin(&self, future: &Bound<'_, PyAny>) {
        let mut held = lock(&self.future);
        if let Held::Weakly(_) = *held {
            *held = Held::Strongly(future.clone().unbind());
        }
    }

    fn cancel(self: Arc<Self>, py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<bool> {
        // Taken out of the slot for the call: a cancel that wins wakes the
        // bridge, whose poll takes the slot's lock (held across the call, it
        // deadlocked: issue 25). A wake that found the slot empty meanwhile
        // is made up for by the poll once the handle is back.
        let Some(core) = lock(&self.handle).take() else { return Ok(false) };
        // A remote cancel talks to Redis: without the GIL.
        let (won, core) =
            if T::REMOTE { lifetime::detach(py, || (core.cancel(), core)) } else { (core.cancel(), core) };
        if won {
            drop(std::mem::replace(&mut *lock(&self.future), Held::Settled));
            future::cancel(future)?;
            return Ok(true);
        }
        *lock(&self.handle) = Some(core);
        self.poll();
        Ok(false)
    }

    fn is_running(&self, py: Python<'_>) -> bool {
        // Without the GIL (a remote one asks Redis), holding the slot for
        // the call: taken out, as `cancel` does, a cancel meanwhile would
        // find it empty and say the task had ended. Nothing here wakes the
        // bridge, and this thread takes no other lock and no GIL while it
        // holds the slot: a wake or a cancel of this handle meanwhile
        // waits for the reply, no more.
        lifetime::detach(py, || lock(&self.handle).as_ref().is_some_and(TaskHandle::is_running))
    }
}

/// The Python exception a task's failure is, as its handle raises it (a
/// failure of a Python task run here is its own exception, kept beside).
pub(crate) fn exception_of<'py>(py: Python<'py>, error: TaskError) -> PyResult<Bound<'py, PyAny>> {
    Ok(match error {
        TaskError::Remote(e) => REMOTE_ERROR.import(py, "taskmanager._broker", "RemoteError")?.call1((
            e.kind,
            e.message,
            e.traceback,
        ))?,
        other @ TaskError::ResultLost { .. } => {
            RESULT_LOST.import(py, "taskmanager._broker", "ResultLost")?.call1((other.to_string(),))?
        }
        TaskError::DeadLettered { reason } => {
            DEAD_LETTERED.import(py, "taskmanager._broker", "DeadLettered")?.call1((reason,))?
        }
        TaskError::Cancelled => py.import("concurrent.futures")?.getattr("CancelledError")?.call0()?,
        other @ TaskError::TimeLimitExceeded { .. } => {
            TIME_LIMIT.import(py, "taskmanager._limits", "TimeLimitExceeded")?.call1((other.to_string(),))?
        }
        other => PyRuntimeError::new_err(other.to_string()).into_value(py).into_any().into_bound(py),
    })
}

/// The exceptions of `taskmanager._broker` a remote failure becomes,
/// looked up once.
static REMOTE_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static RESULT_LOST: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DEAD_LETTERED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static TIME_LIMIT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
