//! A Python task: everything Python it holds, how it runs (method,
//! callbacks, coroutines) and how it is dropped unrun.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::failure::{exception, log_failure};
use crate::outstanding::Ticket;
use crate::{aio, future, lifetime};

/// Everything Python a task holds.
pub(crate) struct Parts {
    pub(crate) future: Py<PyAny>,
    pub(crate) method: Py<PyAny>,
    pub(crate) args: Py<PyTuple>,
    pub(crate) kwargs: Option<Py<PyDict>>,
    pub(crate) callbacks: Vec<Py<PyAny>>,
}

/// A task's Python objects and its ticket. See the module docs.
pub(crate) struct PyTask {
    pub(crate) parts: Option<Parts>,
    pub(crate) _ticket: Ticket,
}

/// Extra state a recurring task shares with its handle.
#[derive(Default)]
pub(crate) struct RecurringState {
    pub(crate) failures: AtomicU64,
    pub(crate) last_exception: Mutex<Option<Py<PyAny>>>,
}

impl PyTask {
    /// Calls the method, then each callback with its value. Returns the
    /// value, or the first exception (the method's, else a callback's).
    pub(crate) fn call(py: Python<'_>, parts: &Parts) -> Result<Py<PyAny>, PyErr> {
        // Counted now, before the handle is settled (so whoever waited
        // sees it), and as failed if it raised: to the core it returned.
        let outcome = Self::call_inner(py, parts);
        taskmanager::count_run(outcome.is_err());
        outcome
    }

    /// A coroutine returned (by an `async def` method or callback) is run to
    /// completion here first: its value is the value (see `aio`).
    pub(crate) fn call_inner(py: Python<'_>, parts: &Parts) -> Result<Py<PyAny>, PyErr> {
        let method = parts.method.bind(py);
        let value = lifetime::call(method, parts.args.bind(py), parts.kwargs.as_ref().map(|k| k.bind(py)))
            .and_then(aio::awaited)
            .inspect_err(|e| log_failure(py, "task", method, e))?;
        let mut failure = None;
        for callback in &parts.callbacks {
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

    /// A one-shot run: result or exception to the handle, after releasing
    /// everything the task held.
    pub(crate) fn run_once(&mut self, py: Python<'_>) {
        let Some(parts) = self.parts.take() else { return };
        let future = parts.future.bind(py).clone();
        match future::set_running(&future) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return e.write_unraisable(py, Some(&future)),
        }
        let outcome = Self::call(py, &parts).map_err(|e| exception(py, &e));
        drop(parts);
        if let Err(e) = future::settle(&future, outcome) {
            e.write_unraisable(py, Some(&future));
        }
    }

    /// A recurring run: failures are logged and kept on the handle; the
    /// schedule goes on.
    pub(crate) fn run_again(&self, py: Python<'_>, state: &RecurringState) {
        let Some(parts) = &self.parts else { return };
        if let Err(e) = Self::call(py, parts) {
            state.failures.fetch_add(1, Ordering::Relaxed);
            let exception = exception(py, &e).unbind();
            let old = state.last_exception.lock().unwrap_or_else(PoisonError::into_inner).replace(exception);
            drop(old);
        }
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
