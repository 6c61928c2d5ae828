//! Time limits (`time_limit=`): a task's method past its limit gets
//! `taskmanager.TimeLimitExceeded` raised in its thread, at the next Python
//! instruction it runs (CPython's `PyThreadState_SetAsyncExc`, called
//! through ctypes: `python/taskmanager/_limits.py`). The same in-process and
//! in a broker's worker: both run a task through `PyTask::call`.
//!
//! One watchdog thread per process sleeps until the earliest deadline of
//! the calls it watches ([`within`]). Rules that keep the exception inside
//! the call it is meant for:
//!
//! - A call is watched from just before it starts to just after it returns,
//!   and it stops being watched while its thread still holds the GIL (no
//!   Python code runs between the return and [`unwatch`]).
//! - The watchdog marks a call fired and raises into its thread in one
//!   stretch under the GIL with no Python code in between (the ctypes
//!   function is called directly, no bytecode runs): so either the call was
//!   still running (and its thread will see the exception, or the call
//!   returns and finds it fired), or it had ended (and nothing is raised).
//! - A call that ends fired withdraws an exception still pending (it
//!   returned from C code without running another Python instruction), and
//!   fails with `TimeLimitExceeded` whatever it returned.
//!
//! An `async def` method's coroutine is not interrupted this way (the
//! exception could land in the event loop's own code): it runs under
//! `asyncio.wait_for` for the time left, which cancels it (`aio.rs`).
//! Code that never returns to Python (a blocking C call) cannot be
//! interrupted: the watchdog logs it once, a second after the deadline.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::lifetime;

/// After its deadline, a call still not returned is reported once this
/// much later: it is in code that does not return to Python.
const STUCK_AFTER: Duration = Duration::from_secs(1);

struct Watch {
    /// The thread's `threading.get_ident()`.
    ident: u64,
    deadline: Instant,
    fired: bool,
    reported: bool,
    /// For the log: the task's method and its limit.
    what: String,
}

#[derive(Default)]
struct Watches {
    calls: HashMap<u64, Watch>,
    next: u64,
    /// Whether the watchdog thread runs (none in a forked child).
    running: bool,
}

static WATCHES: Mutex<Option<Watches>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

fn watches() -> MutexGuard<'static, Option<Watches>> {
    WATCHES.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// Runs `call` (a task's method, on this thread) with the limit `limit`:
/// see the module docs. `what` names it in errors and logs.
pub(crate) fn within<'py>(
    py: Python<'py>,
    limit: Duration,
    what: &str,
    call: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let api = api(py)?;
    let ident: u64 = api.get_ident.bind(py).call0()?.extract()?;
    let what = format!("task {what} (time_limit {} s)", limit.as_secs_f64());
    let token = watch(ident, Instant::now() + limit, what.clone());
    let result = call();
    if !unwatch(token) {
        return result;
    }
    // Fired: withdraw what may still be pending, and fail the call.
    api.clear.bind(py).call1((ident, py.None()))?;
    match result {
        Err(e) if !e.is_instance(py, api.exceeded.bind(py)) => Err(e),
        _ => Err(PyErr::from_value(api.exceeded.bind(py).call1((format!("{what} ran past its limit"),))?)),
    }
}

/// The exception a coroutine past its limit ends with (`aio.rs`).
pub(crate) fn exceeded(py: Python<'_>, what: &str, limit: Duration) -> PyResult<PyErr> {
    let message =
        format!("task {what} (time_limit {} s) ran past its limit; it was cancelled", limit.as_secs_f64());
    Ok(PyErr::from_value(api(py)?.exceeded.bind(py).call1((message,))?))
}

fn watch(ident: u64, deadline: Instant, what: String) -> u64 {
    let mut guard = watches();
    let state = guard.get_or_insert_with(Watches::default);
    state.next += 1;
    let token = state.next;
    state.calls.insert(token, Watch { ident, deadline, fired: false, reported: false, what });
    let start = !state.running;
    state.running = true;
    drop(guard);
    CHANGED.notify_one();
    if start {
        let spawned = std::thread::Builder::new().name("taskmanager-limits".into()).spawn(watchdog);
        if let Err(e) = spawned {
            log::error!("taskmanager: could not start the time-limit watchdog: {e}; limits are not enforced");
            if let Some(state) = watches().as_mut() {
                state.running = false;
            }
        }
    }
    token
}

/// Stops watching `token`; whether it fired.
fn unwatch(token: u64) -> bool {
    watches().as_mut().and_then(|state| state.calls.remove(&token)).is_some_and(|w| w.fired)
}

/// The watchdog thread: sleeps until the earliest deadline, then fires.
fn watchdog() {
    taskmanager::block_process_signals();
    let mut guard = watches();
    loop {
        let Some(state) = guard.as_mut() else { return };
        if !state.running {
            return;
        }
        let now = Instant::now();
        let next = state
            .calls
            .values()
            .filter_map(|w| match (w.fired, w.reported) {
                (false, _) => Some(w.deadline),
                (true, false) => Some(w.deadline + STUCK_AFTER),
                (true, true) => None,
            })
            .min();
        match next {
            None => guard = CHANGED.wait(guard).unwrap_or_else(PoisonError::into_inner),
            Some(due) if due > now => {
                guard = CHANGED.wait_timeout(guard, due - now).unwrap_or_else(PoisonError::into_inner).0;
            }
            Some(_) => {
                for w in state
                    .calls
                    .values_mut()
                    .filter(|w| w.fired && !w.reported && w.deadline + STUCK_AFTER <= now)
                {
                    w.reported = true;
                    log::warn!(
                        "taskmanager: {} has not returned {:?} after its limit: it is in code that does not \
                         return to Python (a blocking call), which cannot be interrupted; its worker stays busy \
                         until it returns, and the run then fails",
                        w.what,
                        STUCK_AFTER
                    );
                }
                let due: Vec<u64> = state
                    .calls
                    .iter()
                    .filter(|(_, w)| !w.fired && w.deadline <= now)
                    .map(|(t, _)| *t)
                    .collect();
                if due.is_empty() {
                    continue;
                }
                drop(guard);
                if lifetime::attach(|py| fire(py, &due)).is_none() {
                    return; // the interpreter is going away
                }
                guard = watches();
            }
        }
    }
}

/// Under the GIL: marks each call of `due` still watched as fired and
/// raises into its thread, with no Python code run in between (see the
/// module docs).
fn fire(py: Python<'_>, due: &[u64]) {
    let Ok(api) = api(py) else { return };
    for token in due {
        let ident = {
            let mut guard = watches();
            let Some(w) = guard.as_mut().and_then(|s| s.calls.get_mut(token)) else { continue };
            w.fired = true;
            w.ident
        };
        let raised = api.raise_in.bind(py).call1((ident, api.exceeded.bind(py)));
        if let Err(e) = raised {
            e.write_unraisable(py, None);
        }
    }
}

/// In a forked child: the watchdog thread is the parent's.
pub(crate) fn after_fork_in_child() {
    if let Ok(mut guard) = WATCHES.try_lock() {
        *guard = None;
    }
}
