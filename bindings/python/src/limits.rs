//! Time limits (`time_limit=`): a task's method past its limit gets
//! `taskmanager.TimeLimitExceeded` raised in its thread, at the next Python
//! instruction it runs (CPython's `PyThreadState_SetAsyncExc`, called
//! through ctypes: `python/taskmanager/_limits.py`). The same in-process and
//! in a broker's worker: both run a task through `PyTask::call`.
//!
//! The core's watchdog (`taskmanager::watch`, `src/limit.rs`) keeps the
//! time: at the deadline it calls this module's interrupt, and a second
//! later it gives up a call still not returned (a blocking C call, which no
//! exception interrupts): the worker's place goes to a new thread, the run
//! ends failed, and what the call returns later is dropped. Rules that keep
//! the exception inside the call it is meant for:
//!
//! - A call is armed (may be interrupted) from just before it starts to
//!   just after it returns, and it is disarmed while its thread still holds
//!   the GIL (no Python code runs between the return and the disarm).
//! - The interrupt checks that the call is armed, marks it fired and raises
//!   into its thread in one stretch under the GIL with no Python code in
//!   between (the ctypes function is called directly, no bytecode runs): so
//!   either the call was still running (and its thread will see the
//!   exception, or the call returns and finds it fired), or it had ended
//!   (and nothing is raised).
//! - A call that ends fired withdraws an exception still pending (it
//!   returned from C code without running another Python instruction), and
//!   fails with `TimeLimitExceeded` whatever it returned.
//!
//! An `async def` method's coroutine is not interrupted this way (the
//! exception could land in the event loop's own code): it runs under
//! `asyncio.wait_for` for the time left, which cancels it (`aio.rs`); it
//! stays watched, so an event loop stuck in C code is given up too.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use taskmanager::Ended;

use crate::lifetime;

/// What this module needs from Python, looked up once.
struct Api {
    exceeded: Py<PyAny>,
    raise_in: Py<PyAny>,
    clear: Py<PyAny>,
    get_ident: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

fn api(py: Python<'_>) -> PyResult<&Api> {
    API.get_or_try_init(py, || {
        let limits = py.import("taskmanager._limits")?;
        Ok::<_, PyErr>(Api {
            exceeded: limits.getattr("TimeLimitExceeded")?.unbind(),
            // The ctypes function objects themselves: calling one runs no
            // Python code (see the module docs).
            raise_in: limits.getattr("_set_async_exc")?.unbind(),
            clear: limits.getattr("_clear_async_exc")?.unbind(),
            get_ident: py.import("threading")?.getattr("get_ident")?.unbind(),
        })
    })
}

/// A watched call's state; read and written under the GIL only.
#[derive(Default)]
struct Armed {
    armed: bool,
    fired: bool,
}

/// Runs `call` (a task's method, on this thread), then `then` on its value
/// (the coroutine an `async def` method returned, given the time left),
/// both within `limit`: see the module docs. `what` names it in errors and
/// logs.
pub(crate) fn within<'py>(
    py: Python<'py>,
    limit: Duration,
    what: &str,
    call: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    then: impl FnOnce(Bound<'py, PyAny>, Duration) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let api = api(py)?;
    let ident: u64 = api.get_ident.bind(py).call0()?.extract()?;
    let state = Arc::new(Mutex::new(Armed { armed: true, fired: false }));
    let interrupt = {
        let state = Arc::clone(&state);
        move || {
            lifetime::attach(|py| fire(py, &state, ident));
        }
    };
    let label = format!("task {what} (time_limit {} s)", limit.as_secs_f64());
    let started = Instant::now();
    let watch = taskmanager::watch(limit, label.clone(), Some(Box::new(interrupt)));
    let result = call();
    // Disarmed holding the GIL: no Python code ran since the call returned.
    let fired = std::mem::take(&mut *state.lock().unwrap_or_else(PoisonError::into_inner)).fired;
    let result = if fired {
        // Withdraw what may still be pending, and fail the call.
        api.clear.bind(py).call1((ident, py.None()))?;
        Err(exceeded_by(py, result, &label)?)
    } else {
        result.and_then(|value| then(value, limit.saturating_sub(started.elapsed())))
    };
    match watch.end() {
        Ended::InTime => result,
        Ended::Expired | Ended::Abandoned => Err(exceeded_by(py, result, &label)?),
    }
}

/// The failure of a call past its limit that came to `result`: its own
/// `TimeLimitExceeded` (raised in it, caught or not), or a new one.
fn exceeded_by(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>, label: &str) -> PyResult<PyErr> {
    let exceeded = api(py)?.exceeded.bind(py);
    Ok(match result {
        Err(e) if !e.is_instance(py, exceeded) => e,
        _ => PyErr::from_value(exceeded.call1((format!("{label} ran past its limit"),))?),
    })
}

/// The exception a coroutine past its limit ends with (`aio.rs`).
pub(crate) fn exceeded(py: Python<'_>, what: &str, limit: Duration) -> PyResult<PyErr> {
    let message =
        format!("task {what} (time_limit {} s) ran past its limit; it was cancelled", limit.as_secs_f64());
    Ok(PyErr::from_value(api(py)?.exceeded.bind(py).call1((message,))?))
}

/// The watchdog's interrupt, under the GIL: if the call is still armed,
/// marks it fired and raises into its thread, with no Python code run in
/// between (see the module docs).
fn fire(py: Python<'_>, state: &Mutex<Armed>, ident: u64) {
    let Ok(api) = api(py) else { return };
    {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.armed {
            return;
        }
        state.fired = true;
    }
    if let Err(e) = api.raise_in.bind(py).call1((ident, api.exceeded.bind(py))) {
        e.write_unraisable(py, None);
    }
}
