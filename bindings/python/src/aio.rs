//! `async def` tasks and callbacks. A coroutine that a task's method or a
//! callback returns is run to completion on the worker thread that called
//! it, on an asyncio event loop that thread owns: made on the thread's first
//! coroutine, reused by every later one (tasks a coroutine left running go
//! on with the next), and closed when the worker exits
//! (`BatchRunner::thread_exit`). The coroutine's value is the call's value;
//! its exception, the call's exception.

use std::cell::RefCell;
use std::time::Duration;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// What this module needs from Python, looked up once.
struct Api {
    /// `types.CoroutineType`: what an `async def` function returns.
    coroutine_type: Py<PyAny>,
    /// `collections.abc.Coroutine`: other coroutines (Cython's, ...). Not
    /// plain generators, which `asyncio.iscoroutine` counts on 3.11 and
    /// older: a task may return a generator as its value.
    coroutine_abc: Py<PyAny>,
    new_event_loop: Py<PyAny>,
    all_tasks: Py<PyAny>,
    gather: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let asyncio = py.import("asyncio")?;
        Ok::<_, PyErr>(Api {
            coroutine_type: py.import("types")?.getattr("CoroutineType")?.unbind(),
            coroutine_abc: py.import("collections.abc")?.getattr("Coroutine")?.unbind(),
            new_event_loop: asyncio.getattr("new_event_loop")?.unbind(),
            all_tasks: asyncio.getattr("all_tasks")?.unbind(),
            gather: asyncio.getattr("gather")?.unbind(),
        })
    })
}

thread_local! {
    /// This worker thread's event loop, once a coroutine needed one.
    static EVENT_LOOP: RefCell<Option<Py<PyAny>>> = const { RefCell::new(None) };
}

/// Whether `value` is a coroutine (an object `async def` returns, or
/// another `collections.abc.Coroutine`). The common values a task returns
/// are told apart by their type alone.
pub(crate) fn is_coroutine(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_none()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyTuple>()
        || value.is_exact_instance_of::<PyList>()
        || value.is_exact_instance_of::<PyDict>()
    {
        return Ok(false);
    }
    let py = value.py();
    let api = api(py)?;
    if value.get_type().is(api.coroutine_type.bind(py)) {
        return Ok(true);
    }
    value.is_instance(api.coroutine_abc.bind(py))
}

/// `value`, or, if it is a coroutine, what it returns when run to completion
/// on this thread's event loop.
pub(crate) fn awaited(value: Bound<'_, PyAny>) -> PyResult<Bound<'_, PyAny>> {
    if !is_coroutine(&value)? {
        return Ok(value);
    }
    let py = value.py();
    let event_loop = thread_loop(py)?;
    let run = event_loop.getattr(intern!(py, "run_until_complete"))?;
    crate::lifetime::call(&run, &PyTuple::new(py, [value])?, None)
}

/// [`awaited`], a coroutine given at most `limit` (`time_limit=`): past
/// it, `asyncio.wait_for` cancels it and the call fails with
/// `TimeLimitExceeded` (see `limits.rs`).
pub(crate) fn awaited_within<'py>(
    value: Bound<'py, PyAny>,
    limit: Duration,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if !is_coroutine(&value)? {
        return Ok(value);
    }
    let py = value.py();
    static WAIT_FOR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static TIMEOUT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let wait_for = WAIT_FOR.import(py, "asyncio", "wait_for")?;
    let limited = wait_for.call1((value, limit.as_secs_f64()))?;
    match awaited(limited) {
        Err(e) if e.is_instance(py, TIMEOUT.import(py, "asyncio", "TimeoutError")?) => {
            Err(crate::limits::exceeded(py, what, limit)?)
        }
        other => other,
    }
}

/// This thread's event loop, made now if there is none (or the task's own
/// code closed it).
fn thread_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let current = EVENT_LOOP.with(|slot| slot.borrow().as_ref().map(|l| l.bind(py).clone()));
    if let Some(event_loop) = current {
        if !event_loop.call_method0(intern!(py, "is_closed"))?.is_truthy()? {
            return Ok(event_loop);
        }
    }
    let event_loop = api(py)?.new_event_loop.bind(py).call0()?;
    let old = EVENT_LOOP.with(|slot| slot.borrow_mut().replace(event_loop.clone().unbind()));
    drop(old);
    Ok(event_loop)
}

/// Closes this thread's event loop, if it has one; for a worker about to
/// exit. Errors go to `sys.unraisablehook`. Once the interpreter is
/// finalizing, the loop is left to it (leaked: releasing it needs the
/// interpreter).
pub(crate) fn close_thread_loop() {
    let Some(event_loop) = EVENT_LOOP.try_with(|slot| slot.borrow_mut().take()).ok().flatten() else {
        return;
    };
    let mut event_loop = Some(event_loop);
    crate::lifetime::attach(|py| {
        let event_loop = event_loop.take()?.into_bound(py);
        if let Err(e) = close(&event_loop) {
            e.write_unraisable(py, Some(&event_loop));
        }
        Some(())
    });
    std::mem::forget(event_loop);
}

/// Ends an event loop as `asyncio.run` does: cancels the tasks coroutines
/// left on it and lets them finish, closes async generators and the default
/// executor, then closes the loop (even if a step before failed).
fn close<'py>(event_loop: &Bound<'py, PyAny>) -> PyResult<()> {
    let py = event_loop.py();
    if event_loop.call_method0(intern!(py, "is_closed"))?.is_truthy()? {
        return Ok(());
    }
    let run = |awaitable: Bound<'py, PyAny>| {
        let run = event_loop.getattr(intern!(py, "run_until_complete"))?;
        crate::lifetime::call(&run, &PyTuple::new(py, [awaitable])?, None)
    };
    let ended = (|| {
        let api = api(py)?;
        let tasks = PyTuple::new(
            py,
            api.all_tasks.bind(py).call1((event_loop,))?.try_iter()?.collect::<PyResult<Vec<_>>>()?,
        )?;
        if !tasks.is_empty() {
            for task in &tasks {
                task.call_method0(intern!(py, "cancel"))?;
            }
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "return_exceptions"), true)?;
            run(api.gather.bind(py).call(tasks, Some(&kwargs))?)?;
        }
        run(event_loop.call_method0(intern!(py, "shutdown_asyncgens"))?)?;
        run(event_loop.call_method0(intern!(py, "shutdown_default_executor"))?)?;
        Ok::<_, PyErr>(())
    })();
    let closed = event_loop.call_method0(intern!(py, "close"));
    ended?;
    closed.map(drop)
}
