//! The core's `log` records, in Python's `logging`: a record of target
//! `taskmanager::broker::claimer` is logged on the Python logger
//! `taskmanager.broker.claimer`, at its level (see [`python_level`]).
//!
//! Rules kept here:
//! - Logging never takes the GIL. A core thread may log while it holds a
//!   core lock that a Python thread, holding the GIL, waits for; so a record
//!   is only formatted and queued (one short lock, never held around
//!   anything else), and a forwarding thread of its own hands the queue to
//!   Python in batches. The queue is bounded: what does not fit is counted
//!   and told as one warning once there is room.
//! - Events (target `taskmanager::events`) are not bridged: the manager
//!   hands them to the `taskmanager.events` logger itself, with their
//!   fields (`manager::forward_event`), and only when that logger wants
//!   them. Bridging them too would log each twice, and would have every
//!   task run build its events when `taskmanager` is at DEBUG.
//! - What is formatted at all follows `log`'s max level, set from the
//!   Python loggers' levels by [`_set_log_level`]: the package calls it at
//!   import and whenever a `TaskManager` is made (configure logging first).
//!   Python's own level checks then decide, per logger.
//! - The forwarding thread is no Python thread: it never keeps the
//!   interpreter from exiting, and it stops for good when
//!   `lifetime::attach` says the interpreter is going away.
//! - An application that set its own `log` logger before importing the
//!   package keeps it: the bridge is not installed and changes nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::lifetime;

/// The events' target (the core's `event::TARGET`): not bridged.
const EVENTS_TARGET: &str = "taskmanager::events";

/// Records waiting for the forwarding thread at most; a burst beyond it
/// (Python busy for long, the GIL held by a long call) is counted, not
/// kept, so a stuck interpreter costs bounded memory.
const CAPACITY: usize = 1024;

/// The `logging` level of a `log` level: Python's own for the four it has,
/// and 5, below DEBUG, for trace.
pub(crate) fn python_level(level: log::Level) -> u32 {
    match level {
        log::Level::Error => 40,
        log::Level::Warn => 30,
        log::Level::Info => 20,
        log::Level::Debug => 10,
        log::Level::Trace => 5,
    }
}

/// The `log` levels a Python logger at `level` lets through: every one
/// whose [`python_level`] is at least `level` (at CRITICAL, none).
pub(crate) fn level_filter(level: u32) -> log::LevelFilter {
    [log::Level::Trace, log::Level::Debug, log::Level::Info, log::Level::Warn, log::Level::Error]
        .into_iter()
        .find(|l| python_level(*l) >= level)
        .map_or(log::LevelFilter::Off, |l| l.to_level_filter())
}

/// The Python logger of a record's target: the core's module path with
/// dots (`taskmanager::broker::claimer` -> `taskmanager.broker.claimer`);
/// another crate's records under `taskmanager.deps.<crate>`, so that the
/// `taskmanager` logger's level and handlers govern all the core sends.
pub(crate) fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    let crate_name = target.split("::").next().unwrap_or(target);
    if crate_name == "taskmanager" {
        dotted
    } else {
        format!("taskmanager.deps.{dotted}")
    }
}

/// The message without the core's `taskmanager: ` prefix, which the
/// logger's name says already.
pub(crate) fn message(text: &str) -> &str {
    text.strip_prefix("taskmanager: ").unwrap_or(text)
}

/// One record on its way to Python.
struct Queued {
    logger: String,
    level: u32,
    message: String,
    /// Where the record was made, for the Python record's `pathname` and
    /// `lineno` (`<unknown>` and 0 if `log` did not say).
    file: String,
    line: u32,
}

/// Whether a forwarding thread runs, and whether one may.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Forwarder {
    /// None yet (or, after a fork, none in this process): the next record
    /// starts one.
    Idle,
    Running,
    /// The interpreter is going away: records are dropped.
    Stopped,
}

struct Queue {
    records: VecDeque<Queued>,
    /// Records that did not fit since the last batch.
    dropped: u64,
    forwarder: Forwarder,
}

static QUEUE: Mutex<Queue> =
    Mutex::new(Queue { records: VecDeque::new(), dropped: 0, forwarder: Forwarder::Idle });
/// Told when a record is queued; the forwarding thread waits on it.
static QUEUED: Condvar = Condvar::new();
/// Whether [`install`] made the bridge `log`'s logger.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Set in a forked child whose queue a parent's thread held at the fork:
/// its lock would never be let go, so nothing is queued any more.
static DISABLED: AtomicBool = AtomicBool::new(false);

fn queue() -> MutexGuard<'static, Queue> {
    QUEUE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The bridge, as `log`'s logger.
struct Bridge;

static BRIDGE: Bridge = Bridge;

impl log::Log for Bridge {
    /// Cheap: events' `wanted()` asks it for every task run when a
    /// failure's event could be logged.
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level() && metadata.target() != EVENTS_TARGET
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || DISABLED.load(Ordering::Relaxed) {
            return;
        }
        // Formatted before the lock: it runs the record's Display code.
        let text = record.args().to_string();
        let queued = Queued {
            logger: logger_name(record.target()),
            level: python_level(record.level()),
            message: message(&text).to_owned(),
            file: record.file().unwrap_or("<unknown>").to_owned(),
            line: record.line().unwrap_or(0),
        };
        let mut q = queue();
        if q.forwarder == Forwarder::Stopped {
            return;
        }
        if q.records.len() < CAPACITY {
            q.records.push_back(queued);
        } else {
            q.dropped += 1;
        }
        let start = q.forwarder == Forwarder::Idle;
        if start {
            q.forwarder = Forwarder::Running;
        }
        drop(q);
        QUEUED.notify_one();
        if start {
            let spawned = std::thread::Builder::new().name("taskmanager-log".into()).spawn(forward);
            if spawned.is_err() {
                // Kept queued; the next record tries again.
                let mut q = queue();
                if q.forwarder == Forwarder::Running {
                    q.forwarder = Forwarder::Idle;
                }
            }
        }
    }

    fn flush(&self) {}
}

/// The forwarding thread: hands queued records to Python, a batch per
/// taking of the GIL, until the interpreter goes away.
fn forward() {
    // Ctrl-C and SIGTERM are for the application's threads (as on every
    // thread of the core); it inherited the mask of whichever thread logged.
    taskmanager::block_process_signals();
    loop {
        let (batch, dropped) = {
            let mut q = queue();
            while q.records.is_empty() && q.dropped == 0 {
                q = QUEUED.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            (std::mem::take(&mut q.records), std::mem::take(&mut q.dropped))
        };
        if lifetime::attach(|py| deliver(py, batch, dropped)).is_none() {
            let mut q = queue();
            q.forwarder = Forwarder::Stopped;
            q.records = VecDeque::new();
            return;
        }
    }
}

/// Logs a batch on its Python loggers, then says how many records did not
/// fit. A failing handler must not end the forwarding: its error goes to
/// `sys.unraisablehook`.
fn deliver(py: Python<'_>, batch: VecDeque<Queued>, dropped: u64) {
    let dropped = (dropped > 0).then(|| Queued {
        logger: "taskmanager".to_owned(),
        level: python_level(log::Level::Warn),
        message: format!("{dropped} log record(s) of the core dropped: Python's logging did not keep up"),
        file: file!().to_owned(),
        line: line!(),
    });
    for record in batch.into_iter().chain(dropped) {
        // The GIL may have changed hands inside the last call, and the exit
        // hook may have barred our threads meanwhile (`lifetime`, rule 1).
        if lifetime::finalizing() {
            return;
        }
        if let Err(e) = deliver_one(py, &record) {
            e.write_unraisable(py, None);
        }
    }
}

/// Logs one record as `logger.log` would, but made with the Rust file and
/// line it came from (a record made by `logger.log` would name this
/// module's caller, `logging/__init__.py`).
fn deliver_one(py: Python<'_>, record: &Queued) -> PyResult<()> {
    let logging = py.import(intern!(py, "logging"))?;
    let logger =
        call_method(&logging, intern!(py, "getLogger"), &(record.logger.as_str(),).into_pyobject(py)?)?;
    if !call_method(&logger, intern!(py, "isEnabledFor"), &(record.level,).into_pyobject(py)?)?.is_truthy()? {
        return Ok(());
    }
    // "%s": a message may hold a `%`.
    let args = (
        record.logger.as_str(),
        record.level,
        record.file.as_str(),
        record.line,
        "%s",
        (record.message.as_str(),),
        py.None(),
    );
    let made = call_method(&logger, intern!(py, "makeRecord"), &args.into_pyobject(py)?)?;
    call_method(&logger, intern!(py, "handle"), &(made,).into_pyobject(py)?)?;
    Ok(())
}

/// `object.name(*args)`, guarded as every call into Python code of a thread
/// of ours must be (`lifetime::call`).
fn call_method<'py>(
    object: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    lifetime::call(&object.getattr(name)?, args, None)
}

/// Makes the bridge `log`'s logger (at WARNING, Python's default, until
/// [`_set_log_level`]), unless the process has one already.
pub(crate) fn install() {
    if log::set_logger(&BRIDGE).is_ok() {
        INSTALLED.store(true, Ordering::Release);
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// The package's `_logging.sync_level`: `level` is the most verbose level
/// of the `taskmanager` loggers (`taskmanager.events` aside); records less
/// severe are not even formatted from now on. Nothing if the bridge is not
/// installed (the application's own `log` logger decides).
#[pyfunction]
pub(crate) fn _set_log_level(level: u32) {
    if INSTALLED.load(Ordering::Acquire) {
        log::set_max_level(level_filter(level));
    }
}

/// In a forked child: the forwarding thread is the parent's, and the
/// records queued are the parent's to log. If a parent's thread held the
/// queue at the fork, its lock stays taken here: the bridge then goes quiet.
pub(crate) fn after_fork_in_child() {
    match QUEUE.try_lock() {
        Ok(mut q) => reset(&mut q),
        Err(TryLockError::Poisoned(p)) => reset(&mut p.into_inner()),
        Err(TryLockError::WouldBlock) => DISABLED.store(true, Ordering::Relaxed),
    }
}

fn reset(q: &mut Queue) {
    q.records.clear();
    q.dropped = 0;
    if q.forwarder == Forwarder::Running {
        q.forwarder = Forwarder::Idle;
    }
}
