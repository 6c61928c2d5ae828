//! `taskmanager._taskmanager`: the native half of the Python package.
//!
//! The Python half (`python/taskmanager/__init__.py`) gives the spec's API;
//! this half checks each submission's arguments (`checks`), makes its
//! handle, and runs Python callables on the Rust core, settling handles
//! without taking a lock nobody waits on (`future`).
//!
//! Rules kept here:
//! - The GIL is held only to call Python code. Waiting (shutdown, idle)
//!   happens detached; queuing and timing happen in the core.
//! - Every Python object a task holds lives in one `PyTask`, which drops
//!   them with the GIL held: when the task ends, or when the core drops the
//!   task unrun (cancel, shutdown), in which case it also marks the task's
//!   future cancelled. So a cancelled task is always reported, and nothing a
//!   task held outlives it.
//! - A `Ticket` counts every accepted task until it ends, so the package
//!   can keep the interpreter alive while work remains.
//!
//! One file per concept: `manager` (`ManagerCore`, GIL batches, events),
//! `module` (`ModuleCore`: a submission becomes a task and its handle),
//! `task` (a Python task's parts and runs), `handles` (`TaskCore`,
//! `RecurringCore`), `future` (settling handles), `aio` (coroutines on a
//! worker's loop), `checks` (arguments), `errors` (the core's errors as
//! exceptions), `failure` (logging exceptions), `logbridge` (the core's `log` records
//! into Python's `logging`), `outstanding` (counting work for interpreter
//! exit), `lifetime` (exit and fork).

mod aio;
mod bridge;
mod broker;
mod calendar;
mod checks;
mod convert;
mod errors;
mod failure;
mod future;
mod handles;
mod lifetime;
mod limits;
mod logbridge;
mod manager;
mod module;
mod outstanding;
mod prometheus;
mod retry;
mod task;

use pyo3::prelude::*;

use crate::errors::QueueFull;
use crate::handles::{RecurringCore, TaskCore};
use crate::manager::ManagerCore;
use crate::module::ModuleCore;

// Free-threading: this module needs the GIL. Settling a handle relies on it
// (`future`: a handle's condition is made lazily, and only the GIL orders
// that against a waiter; without it the condition would be needed always),
// and the rest has been neither audited nor tested without it. A free-threaded CPython (3.13t) cannot load the
// abi3 wheel; a source build there is version-specific (PyO3 makes no abi3
// module for it), and importing it re-enables the GIL with a warning.
#[pymodule(gil_used = true)]
fn _taskmanager(m: &Bound<'_, PyModule>) -> PyResult<()> {
    logbridge::install();
    m.add_function(wrap_pyfunction!(logbridge::_set_log_level, m)?)?;
    m.add("QueueFull", m.py().get_type::<QueueFull>())?;
    m.add_class::<ManagerCore>()?;
    m.add_function(wrap_pyfunction!(lifetime::_finalizing, m)?)?;
    m.add_function(wrap_pyfunction!(lifetime::_after_fork_in_child, m)?)?;
    m.add_function(wrap_pyfunction!(lifetime::_exit_with_sigint_at_end, m)?)?;
    m.add_function(wrap_pyfunction!(manager::_shutdown_timed_out_text, m)?)?;
    m.add_class::<ModuleCore>()?;
    m.add_class::<TaskCore>()?;
    m.add_class::<RecurringCore>()?;
    m.add_class::<broker::SharedSchedule>()?;
    m.add_class::<retry::Retry>()?;
    Ok(())
}
