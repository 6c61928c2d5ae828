//! Named tasks through a broker (Redis): the Python side names its
//! callables and encodes arguments as JSON text (`taskmanager._broker`);
//! this file sends them, runs them through the module's Python dispatcher
//! in the worker that claims them, and completes the submitter's handle
//! when the result comes back.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyWeakrefReference};

use serde_json::Value;
use taskmanager::{Module, RemoteError, SharedSchedule, TaskError, TaskHandle};

use crate::errors::submit_error;
use crate::{checks, future, lifetime};

/// Completes a Python handle when its remote task ends: the core wakes it
/// (from the broker's result listener, or a cancel).
///
/// The bridge holds the Python handle weakly while nobody watches it, so a
/// handle its user dropped (fire and forget) is freed at once, with its
/// core handle: the broker then forgets the task, and its result is never
/// settled (no GIL taken for it). Once watched (a wait, a done-callback,
/// `concurrent.futures.wait`, an `await`: whatever makes its lock, see
/// `_handle.py`), it is held strongly until settled, as an executor holds
/// its futures. The handle holds the bridge (its `_core`): held strongly,
/// that is a cycle Python's collector cannot see, so the bridge lets go
/// once it has settled the handle.
struct Bridge {
    handle: Mutex<Option<TaskHandle<Value>>>,
    future: Mutex<Held>,
}

/// How a bridge holds its Python handle.
enum Held {
    Weakly(Py<PyWeakrefReference>),
    Strongly(Py<PyAny>),
    Settled,
}

impl Bridge {
    fn poll(self: &Arc<Self>) {
        let waker = Waker::from(Arc::clone(self));
        let mut slot = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = slot.as_mut() else { return };
        let Poll::Ready(outcome) = Pin::new(handle).poll(&mut Context::from_waker(&waker)) else { return };
        // Kept for `cancel`, which finds the task finished.
        drop(slot);
        lifetime::attach(|py| {
            let held =
                std::mem::replace(&mut *self.future.lock().unwrap_or_else(|p| p.into_inner()), Held::Settled);
            let future = match held {
                Held::Strongly(future) => future.into_bound(py),
                Held::Weakly(weak) => match weak.bind(py).upgrade() {
                    Some(future) => future,
                    None => return,
                },
                Held::Settled => return,
            };
            if let Err(e) = complete(py, &future, outcome) {
                e.write_unraisable(py, Some(&future));
            }
        });
    }

    /// Holds the handle strongly from now until it is settled.
    fn pin(&self, future: &Bound<'_, PyAny>) {
        let mut held = self.future.lock().unwrap_or_else(|p| p.into_inner());
        if let Held::Weakly(_) = *held {
            *held = Held::Strongly(future.clone().unbind());
        }
    }
}

impl Wake for Bridge {
    fn wake(self: Arc<Self>) {
        self.poll();
    }
}

/// What `complete` calls in `taskmanager._broker`, looked up once.
struct Api {
    decode: Py<PyAny>,
    remote_error: Py<PyAny>,
    result_lost: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let broker = py.import("taskmanager._broker")?;
        Ok::<_, PyErr>(Api {
            decode: broker.getattr("decode")?.unbind(),
            remote_error: broker.getattr("RemoteError")?.unbind(),
            result_lost: broker.getattr("ResultLost")?.unbind(),
        })
    })
}

/// Settles the Python handle `future` with a remote task's outcome: the
/// JSON value decoded, `taskmanager.RemoteError`, or a cancellation.
fn complete(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: Result<Value, TaskError>) -> PyResult<()> {
    let api = api(py)?;
    let outcome = match outcome {
        Err(TaskError::Cancelled) => return future::cancel(future),
        Ok(value) => Ok(api.decode.bind(py).call1((value.to_string(),))?.unbind()),
        Err(TaskError::Remote(e)) => {
            Err(api.remote_error.bind(py).call1((e.kind, e.message, e.traceback))?)
        }
        Err(other) => Err(api.result_lost.bind(py).call1((other.to_string(),))?),
    };
    if future::set_running(future)? {
        future::settle(future, outcome)?;
    }
    Ok(())
}

/// The core handle of a named task: what `TaskHandle.cancel` and friends
/// ask.
#[pyclass(frozen, module = "taskmanager._taskmanager")]
pub(crate) struct NamedCore {
    bridge: Arc<Bridge>,
    id: u64,
    name: String,
}

impl Drop for NamedCore {
    /// The Python handle is gone: so is the core handle, and the broker
    /// forgets the task. (A poll holds this lock only briefly, never while
    /// taking the GIL.)
    fn drop(&mut self) {
        self.bridge.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[pymethods]
impl NamedCore {
    /// Called once something watches the handle (see [`Bridge`]).
    fn pin(&self, handle: &Bound<'_, PyAny>) {
        self.bridge.pin(handle);
    }

    /// Takes the task out of Redis if no worker has claimed it; true if
    /// this call cancelled it.
    fn cancel(&self, py: Python<'_>, handle: &Bound<'_, PyAny>) -> PyResult<bool> {
        let slot = &self.bridge.handle;
        let won = lifetime::detach(py, || {
            slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|h| h.cancel())
        });
        if won {
            future::cancel(handle)?;
        }
        Ok(won)
    }

    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }
}

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
    let id = core.id();
    let weak = PyWeakrefReference::new(&future)?.unbind();
    let bridge = Arc::new(Bridge { handle: Mutex::new(Some(core)), future: Mutex::new(Held::Weakly(weak)) });
    future.setattr(
        intern!(py, "_core"),
        NamedCore { bridge: Arc::clone(&bridge), id, name: name.to_owned() },
    )?;
    // The result may be in already: the first poll settles it then.
    lifetime::detach(py, || bridge.poll());
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
