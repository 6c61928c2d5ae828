//! [`Event`]s: what happens to tasks, told through the `log` crate (target
//! `taskmanager::events`) and to an optional listener
//! ([`Builder::listener`](crate::Builder::listener)).
//!
//! Nothing is built unless someone listens: with no listener and the log
//! level of an event disabled, emitting it costs one check.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::err::TaskError;

/// The log target of events.
pub(crate) const TARGET: &str = "taskmanager::events";

/// A listener of events; see [`Builder::listener`](crate::Builder::listener).
pub(crate) type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Which task an [`Event`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRef {
    /// The task's number in the process that tells the event: its handle's
    /// `id()` where the handle is. A worker's run of a task sent through a
    /// broker has a number of its own there; 0 for a
    /// [`SharedSchedule`](crate::SharedSchedule).
    pub id: u64,
    /// The task's name, as its handle's `name()`: in a worker too, the
    /// name its submitter gave it.
    pub name: String,
    /// For a task sent through a broker, its id there, as its handle's
    /// `broker_id()`, in the submitter's and the worker's events alike;
    /// for a [`SharedSchedule`](crate::SharedSchedule), its key, and for
    /// one of its ticks, the tick's id. None for a task run where it was
    /// submitted.
    pub broker_id: Option<String>,
}

/// Something that happened to a task (or, for
/// [`SpawnFailed`](Event::SpawnFailed), to a module).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A run began (log level trace).
    Started {
        /// The task.
        task: TaskRef,
    },
    /// A run returned (debug).
    Finished {
        /// The task.
        task: TaskRef,
        /// How long the run took, callbacks included.
        duration: Duration,
    },
    /// A run failed: the method or a callback panicked, or a
    /// [`Task::fallible`](crate::Task::fallible) method returned an error
    /// (warn; a panic itself is logged at error when it is caught).
    Failed {
        /// The task.
        task: TaskRef,
        /// What went wrong; None if the run said it failed without saying
        /// why (the task's handle has the error).
        error: Option<TaskError>,
        /// How long the run took.
        duration: Duration,
    },
    /// A run failed and the task runs again after `after` (warn; see
    /// [`Task::retry`](crate::Task::retry)). Its handle waits on.
    Retrying {
        /// The task.
        task: TaskRef,
        /// Which retry comes next: 1 for the first.
        retry: u32,
        /// How long until it runs.
        after: Duration,
        /// How the run failed.
        error: TaskError,
    },
    /// A recurring task's ticks were skipped: a run overran them, or the
    /// task was paused (info).
    Skipped {
        /// The task.
        task: TaskRef,
        /// How many ticks.
        ticks: u64,
    },
    /// A recurring task's ticks that passed while it could not run were
    /// folded into one late run ([`Misfire::Coalesce`](crate::Misfire::Coalesce))
    /// (info): `ticks` more than that run.
    Coalesced {
        /// The task.
        task: TaskRef,
        /// How many ticks.
        ticks: u64,
    },
    /// A task was cancelled before it ran (or, recurring, stopped) by its
    /// handle, `cancel_pending` or shutdown (debug).
    Cancelled {
        /// The task.
        task: TaskRef,
    },
    /// A recurring task was paused (info).
    Paused {
        /// The task.
        task: TaskRef,
    },
    /// A recurring task was resumed (info).
    Resumed {
        /// The task.
        task: TaskRef,
    },
    /// A worker thread could not be started for a module's queued work
    /// (error). The work stays queued; the start is retried after
    /// `retry_in` if no worker of the module is left to take it.
    SpawnFailed {
        /// The module's name.
        module: String,
        /// Why the thread could not be started.
        error: String,
        /// Failures in a row so far, this one included.
        attempt: u32,
        /// When the start is tried again.
        retry_in: Duration,
    },
}

impl Event {
    /// The log level the event is told at.
    pub fn level(&self) -> log::Level {
        match self {
            Event::Started { .. } => log::Level::Trace,
            Event::Finished { .. } | Event::Cancelled { .. } => log::Level::Debug,
            Event::Failed { .. } | Event::Retrying { .. } => log::Level::Warn,
            Event::Skipped { .. }
            | Event::Coalesced { .. }
            | Event::Paused { .. }
            | Event::Resumed { .. } => log::Level::Info,
            Event::SpawnFailed { .. } => log::Level::Error,
        }
    }

    /// The task the event is about; None for a module's event
    /// ([`SpawnFailed`](Event::SpawnFailed)).
    pub fn task(&self) -> Option<&TaskRef> {
        match self {
            Event::Started { task }
            | Event::Finished { task, .. }
            | Event::Failed { task, .. }
            | Event::Retrying { task, .. }
            | Event::Skipped { task, .. }
            | Event::Coalesced { task, .. }
            | Event::Cancelled { task }
            | Event::Paused { task }
            | Event::Resumed { task } => Some(task),
            Event::SpawnFailed { .. } => None,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Event::SpawnFailed { module, error, attempt, retry_in } = self {
            return write!(
                f,
                "module {module}: could not start a worker thread (attempt {attempt}): {error}; retrying in {retry_in:?}"
            );
        }
        match self.task() {
            Some(TaskRef { id, name, broker_id: Some(remote) }) => {
                write!(f, "task {name} (#{id}, {remote}) ")?
            }
            Some(TaskRef { id, name, broker_id: None }) => write!(f, "task {name} (#{id}) ")?,
            None => {}
        }
        match self {
            Event::Started { .. } => f.write_str("started"),
            Event::Finished { duration, .. } => write!(f, "finished in {duration:?}"),
            Event::Failed { error: Some(error), duration, .. } => {
                write!(f, "failed after {duration:?}: {error}")
            }
            Event::Failed { error: None, duration, .. } => write!(f, "failed after {duration:?}"),
            Event::Retrying { retry, after, error, .. } => {
                write!(f, "failed ({error}); retry {retry} in {after:?}")
            }
            Event::Skipped { ticks, .. } => write!(f, "skipped {ticks} tick(s)"),
            Event::Coalesced { ticks, .. } => write!(f, "ran once late for {} tick(s)", ticks + 1),
            Event::Cancelled { .. } => f.write_str("cancelled"),
            Event::Paused { .. } => f.write_str("paused"),
            Event::Resumed { .. } => f.write_str("resumed"),
            Event::SpawnFailed { .. } => Ok(()),
        }
    }
}

/// Where a manager's events go.
#[derive(Clone)]
pub(crate) struct Events {
    listener: Option<Listener>,
    /// The least severe level the listener gets.
    listener_level: log::Level,
}

impl Events {
    pub(crate) fn new(listener: Option<Listener>, listener_level: log::Level) -> Events {
        Events { listener, listener_level }
    }

    /// Tells that a task was cancelled (`task` says which).
    pub(crate) fn cancelled(&self, task: impl FnOnce() -> TaskRef) {
        self.emit(log::Level::Debug, || Event::Cancelled { task: task() });
    }

    /// Whether an event at `level` would go anywhere.
    pub(crate) fn wanted(&self, level: log::Level) -> bool {
        (self.listener.is_some() && level <= self.listener_level) || log::log_enabled!(target: TARGET, level)
    }

    /// Tells the event made by `make`, if anyone listens at `level`. A
    /// panicking listener is logged and otherwise ignored.
    pub(crate) fn emit(&self, level: log::Level, make: impl FnOnce() -> Event) {
        if !self.wanted(level) {
            return;
        }
        let event = make();
        log::log!(target: TARGET, event.level(), "{event}");
        if let Some(listener) = self.listener.as_ref().filter(|_| level <= self.listener_level) {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| listener(&event))) {
                log::error!("taskmanager: the event listener panicked");
                crate::unwind::drop_payload(payload);
            }
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").field("listener", &self.listener.is_some()).finish()
    }
}
