//! The edges of the process's life: interpreter exit, Ctrl-C and fork.
//!
//! The package's exit hooks (`python/taskmanager/_lifetime.py`) stop every
//! manager before the interpreter finalizes, waiting for running tasks as
//! long as the manager's mode allows (see the README). What still runs then
//! is abandoned, and three rules keep it from crashing the process:
//!
//! 1. Once [`finalizing`] is set (the hooks' last step), worker threads never
//!    enter the interpreter again: [`attach`] refuses, and what a task held
//!    is leaked instead of released (releasing needs the interpreter).
//! 2. A worker that is inside Python when finalization starts is ended by
//!    CPython (before 3.14) with `pthread_exit` the next time it takes the
//!    GIL. That unwinds its stack; unwinding into the core's `catch_unwind`
//!    would abort the process ("FATAL: exception not rethrown") or crash it.
//!    [`hang_if_killed`] stops the unwinding and parks the thread forever
//!    instead, as CPython 3.14 itself does; the process then exits normally
//!    around it. It must wrap each call into Python that can run Python code
//!    (the task, its callbacks, a coroutine's loop, a handle's done-callbacks,
//!    logging, the event listener) directly: frames between it and the call
//!    would run their cleanup during the unwinding, and dropping a value that
//!    owns a Python object there touches the interpreter without the GIL
//!    while the main thread finalizes it. Measured: with the guard around
//!    the task's call, 0 of 20 exits crashed; with it one frame higher, 20 of
//!    20 segfaulted (tests/python/test_process_boundaries.py).
//! 3. A manager dropped during finalization does not wait for its threads or
//!    let go of the GIL (see `ManagerCore`'s `Drop`).
//!
//! After `os.fork()` the child holds copies of managers whose threads exist
//! only in the parent: [`after_fork_in_child`] tells the core, which then
//! refuses their submissions and never waits for those threads.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// Set by the exit hook's last step: no worker may enter Python any more.
static FINALIZING: AtomicBool = AtomicBool::new(false);

/// Whether the interpreter is past the point where workers may run Python.
pub(crate) fn finalizing() -> bool {
    FINALIZING.load(Ordering::Acquire)
}

/// Parks the thread forever when dropped, which happens only if the stack
/// unwinds through the frame that holds it (see rule 2 above).
struct HangIfUnwound;

impl Drop for HangIfUnwound {
    fn drop(&mut self) {
        loop {
            std::thread::park();
        }
    }
}

/// Runs `f`, which may run Python code on this thread; if the interpreter
/// ends the thread from inside it (`pthread_exit` during finalization), the
/// thread parks here forever instead of unwinding further. Wrap the call
/// into Python itself (see rule 2 of the module docs), not a caller of it.
pub(crate) fn hang_if_killed<R>(f: impl FnOnce() -> R) -> R {
    let guard = HangIfUnwound;
    let result = f();
    std::mem::forget(guard);
    result
}

/// Calls `callable(*args, **kwargs)` guarded by [`hang_if_killed`]. The
/// arguments come as a tuple the caller owns: PyO3's conversions of other
/// argument kinds own temporaries in frames of their own, whose cleanup
/// during the unwinding would reach the interpreter (measured: a done-
/// callback set through `call1((future, value))` aborted 5 exits of 5).
pub(crate) fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    hang_if_killed(|| callable.call(args, kwargs))
}

/// `Python::attach` for worker threads: None, without touching the
/// interpreter, once it is finalizing (ours or CPython's own flag); and
/// guarded by [`hang_if_killed`].
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Option<R> {
    if finalizing() {
        return None;
    }
    hang_if_killed(|| Python::try_attach(f))
}

/// `py.detach(f)` for methods a task may call on a worker thread: taking
/// the GIL back afterwards is where CPython ends a thread during
/// finalization, so it is guarded by [`hang_if_killed`].
pub(crate) fn detach<R: Send>(py: Python<'_>, f: impl FnOnce() -> R + Send) -> R {
    hang_if_killed(|| py.detach(f))
}

/// Runs `body`, a whole thread's life, holding an interpreter state for
/// this thread throughout (taken with the GIL, which is then let go):
/// each [`attach`] inside finds it and only takes the GIL. Without it,
/// every `attach` of a thread Python did not start makes a thread state and
/// frees it again, with its frame stack (a memory map and unmap each time:
/// measured at about a tenth of a Redis submitter's CPU, in its result
/// listener).
///
/// At the end the GIL is taken back to free the state, unless the
/// interpreter is finalizing by then: the thread then parks for good
/// rather than touch it (see rule 1 of the module docs).
/// A panic in `body` goes on unwinding only outside the guarded frames
/// (which would park the thread instead).
pub(crate) fn keep_thread_state(body: &mut (dyn FnMut() + Send)) {
    let mut outcome = None;
    attach(|py| {
        detach(py, || {
            outcome = Some(std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *body)));
            if finalizing() {
                loop {
                    std::thread::park();
                }
            }
        });
    });
    match outcome {
        Some(Ok(())) => {}
        Some(Err(payload)) => std::panic::resume_unwind(payload),
        None => body(),
    }
}

/// The exit hook's last step: from now on no worker enters Python.
#[pyfunction]
pub(crate) fn _finalizing() {
    FINALIZING.store(true, Ordering::Release);
}

/// `os.register_at_fork(after_in_child=...)`: see the module docs.
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    taskmanager::after_fork_in_child();
    crate::logbridge::after_fork_in_child();
}

/// Ends the process with SIGINT's status once the interpreter has finished
/// exiting, as CPython does for a KeyboardInterrupt that ends the main
/// thread: the exit hook calls this when Ctrl-C interrupted its wait.
#[pyfunction]
pub(crate) fn _exit_with_sigint_at_end() -> PyResult<()> {
    // SAFETY: `Py_AtExit` only stores the function pointer, to call it at
    // the very end of `Py_FinalizeEx`; it is called here with the GIL held
    // (a #[pyfunction]), before finalization, as its documentation asks.
    // There is no safe wrapper for it.
    let failed = unsafe { pyo3::ffi::Py_AtExit(Some(die_by_sigint)) } != 0;
    if failed {
        return Err(pyo3::exceptions::PyRuntimeError::new_err("Py_AtExit: too many exit functions"));
    }
    Ok(())
}

/// Called by the interpreter after finalization: its signal handlers are
/// uninstalled by then, so SIGINT's default action ends the process, and
/// its parent sees "killed by SIGINT" (130 in a shell).
extern "C" fn die_by_sigint() {
    use nix::sys::signal::{kill, Signal};
    // Flushed by finalization already; nothing Python is touched here.
    if kill(nix::unistd::Pid::this(), Signal::SIGINT).is_ok() {
        // The signal is delivered before kill returns to a single-threaded
        // receiver; other threads may still be parked: wait for it.
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    std::process::exit(130);
}
