//! Error types: one small type per operation, each saying what went wrong and
//! what to do about it.

use std::fmt;
use std::io;
use std::time::Duration;

pub use crate::remote_error::RemoteError;
use crate::report::RunningTask;

/// A setting was out of range when building a [`TaskManager`](crate::TaskManager)
/// or a [`Module`](crate::Module).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_workers` was 0: a module needs at least one worker to run anything.
    ZeroMaxWorkers,
    /// A bounded module was given a queue capacity of 0: it could never
    /// accept a task.
    ZeroQueueCapacity,
    /// The broker's settings (`Builder::broker`, `Builder::broker_ca_file`,
    /// feature `redis`) could not be used: what is wrong with them.
    Broker(String),
    /// A setting that can only change before the manager starts
    /// ([`Module::set_max_workers`](crate::Module::set_max_workers)).
    Started,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ZeroMaxWorkers => f.write_str("max_workers must be at least 1, got 0"),
            ConfigError::ZeroQueueCapacity => {
                f.write_str("a bounded module's queue capacity must be at least 1, got 0")
            }
            ConfigError::Broker(why) => write!(f, "broker settings not usable: {why}"),
            ConfigError::Started => f.write_str("max_workers can only change before the manager starts"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A task was not accepted by [`add_task`](crate::Module::add_task),
/// [`schedule_task`](crate::Module::schedule_task) or
/// [`schedule_recurring`](crate::Module::schedule_recurring), or an interval
/// was refused by
/// [`RecurringHandle::set_interval`](crate::RecurringHandle::set_interval).
///
/// A task that got this error will never run; nothing of it is kept.
///
/// Errors compare equal when they are the same variant with equal fields;
/// two [`Spawn`](Self::Spawn) errors compare by their
/// [`io::ErrorKind`] only (an [`io::Error`] is not comparable itself), so
/// results can be checked with `assert_eq!`:
///
/// ```
/// use taskmanager::{SubmitError, TaskManager};
///
/// let manager = TaskManager::new();
/// manager.shutdown();
/// assert_eq!(manager.add_task(|| ()).err(), Some(SubmitError::ShutDown));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SubmitError {
    /// The manager is shutting down or has shut down.
    ShutDown,
    /// The delay does not fit the monotonic clock's range (about 584 years
    /// from the manager's creation).
    DelayTooLong {
        /// The delay that was asked for.
        delay: Duration,
    },
    /// A recurring task was given an interval shorter than
    /// [`Recurrence::MIN_INTERVAL`](crate::Recurrence::MIN_INTERVAL) (1 ms),
    /// zero included: it would run in a busy loop. Use a longer interval, or
    /// loop inside one task.
    IntervalTooShort {
        /// The interval that was asked for.
        interval: Duration,
    },
    /// A recurring schedule that cannot work: a cron rule with no time
    /// left, `Misfire::CatchUp { max: 0 }`, a cron rule with `FixedDelay`,
    /// or `set_interval` on a cron task.
    InvalidSchedule {
        /// What is wrong, naming the setting.
        reason: String,
    },
    /// No worker thread could be started for the task and none was running,
    /// so it was not queued.
    Spawn(io::Error),
    /// The module is bounded ([`max_queued`](crate::ModuleBuilder::max_queued))
    /// and its queue holds
    /// `capacity` tasks already; the task was not accepted. Retry later, or
    /// shed the work.
    QueueFull {
        /// The module's queue capacity.
        capacity: usize,
    },
    /// This process is a child forked from the one that started the manager
    /// ([`after_fork_in_child`](crate::after_fork_in_child)): the manager's
    /// threads exist only in the parent, so nothing would run the task.
    /// Create a new manager in the child.
    Forked,
    /// The broker (Redis) did not take the task within the manager's
    /// broker timeout: it is unreachable, or refused it. The task was not
    /// accepted; nothing of it is kept.
    Broker(String),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::ShutDown => f.write_str("task manager is shut down; task not accepted"),
            SubmitError::DelayTooLong { delay } => {
                write!(f, "delay of {delay:?} is beyond the clock's range")
            }
            SubmitError::IntervalTooShort { interval } => write!(
                f,
                "a recurring task's interval must be at least {:?}, got {interval:?}",
                crate::Recurrence::MIN_INTERVAL
            ),
            SubmitError::InvalidSchedule { reason } => write!(f, "invalid schedule: {reason}"),
            SubmitError::Spawn(e) => write!(f, "could not start a worker thread: {e}"),
            SubmitError::QueueFull { capacity } => {
                write!(f, "the module's queue is full ({capacity} tasks waiting); task not accepted")
            }
            SubmitError::Forked => f.write_str(
                "this task manager was started in the parent process and its threads do not exist in this \
                 forked child; create a new TaskManager in the child",
            ),
            SubmitError::Broker(why) => write!(f, "the broker did not take the task: {why}"),
        }
    }
}

/// Same variant and equal fields; [`Spawn`](SubmitError::Spawn) errors by
/// their [`io::ErrorKind`].
impl PartialEq for SubmitError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SubmitError::ShutDown, SubmitError::ShutDown) | (SubmitError::Forked, SubmitError::Forked) => {
                true
            }
            (SubmitError::DelayTooLong { delay: a }, SubmitError::DelayTooLong { delay: b }) => a == b,
            (
                SubmitError::IntervalTooShort { interval: a },
                SubmitError::IntervalTooShort { interval: b },
            ) => a == b,
            (SubmitError::Spawn(a), SubmitError::Spawn(b)) => a.kind() == b.kind(),
            (SubmitError::QueueFull { capacity: a }, SubmitError::QueueFull { capacity: b }) => a == b,
            (SubmitError::Broker(a), SubmitError::Broker(b)) => a == b,
            (SubmitError::InvalidSchedule { reason: a }, SubmitError::InvalidSchedule { reason: b }) => {
                a == b
            }
            _ => false,
        }
    }
}

/// Comparing [`io::ErrorKind`]s is an equivalence, so equality is total.
impl Eq for SubmitError {}

impl std::error::Error for SubmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubmitError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// How a task ended, other than by returning a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task was cancelled (through its handle, or by shutdown) before it ran.
    Cancelled,
    /// The method panicked; no callback ran (there was no value to give them).
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// A callback panicked; the ones after it still ran, the value is dropped.
    CallbackPanicked {
        /// Position of the first callback that panicked, counting from 0.
        index: usize,
        /// The panic's message.
        message: String,
    },
    /// The method returned a failure ([`Task::fallible`](crate::Task::fallible),
    /// or a Python task raised): no callback ran.
    Failed {
        /// The failure's text.
        message: String,
    },
    /// The task ran in another process (through a broker) and failed there.
    Remote(RemoteError),
    /// Moved to the broker's dead-letter set, kept there with this reason to be
    /// requeued (`TaskManager::dead_letters`): unreadable, a poison task, its
    /// retries used up, or no live worker could run its name
    /// (`Builder::broker_unrunnable_after`).
    DeadLettered {
        /// Why.
        reason: String,
    },
    /// The task went to a broker, but its result cannot reach this handle (the
    /// manager shut down, or the result expired); the task itself runs elsewhere.
    ResultLost {
        /// Why.
        reason: String,
    },
    /// The run went past its [`time_limit`](crate::Task::time_limit): it
    /// returned late (its value dropped), or, `abandoned`, it was given up
    /// while still running (see [`Deadline`](crate::Deadline)); then it is
    /// never retried, as a retry beside it would run its effects twice.
    TimeLimitExceeded {
        /// The limit.
        limit: Duration,
        /// Given up while still running.
        abandoned: bool,
    },
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Cancelled => f.write_str("task was cancelled before it ran"),
            TaskError::Panicked { message } => write!(f, "task panicked: {message}"),
            TaskError::CallbackPanicked { index, message } => {
                write!(f, "callback {index} panicked: {message}")
            }
            TaskError::Failed { message } => write!(f, "task failed: {message}"),
            TaskError::Remote(e) => write!(f, "task failed in a worker process: {e}"),
            TaskError::ResultLost { reason } => write!(f, "the task's result cannot arrive: {reason}"),
            TaskError::DeadLettered { reason } => {
                write!(f, "the task was moved to the dead-letter set: {reason}")
            }
            TaskError::TimeLimitExceeded { limit, abandoned } => {
                write!(f, "the task ran past its limit (time_limit {} s)", limit.as_secs_f64())?;
                if *abandoned {
                    f.write_str(" and did not return: it was given up, and what it returns is dropped")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for TaskError {}

/// [`TaskManager::start_thread`](crate::TaskManager::start_thread) failed.
///
/// Compares like [`SubmitError`]: same variant, and for
/// [`Spawn`](Self::Spawn) the same [`io::ErrorKind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The manager has been shut down; a shut-down manager cannot restart.
    ShutDown,
    /// A thread the start needs (the timer's; for
    /// [`run_worker`](crate::TaskManager::run_worker), its signal thread)
    /// could not be spawned.
    Spawn(io::Error),
    /// The manager was started in the parent of this forked process (see
    /// [`after_fork_in_child`](crate::after_fork_in_child)); create a new
    /// manager in the child.
    Forked,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::ShutDown => f.write_str("task manager is shut down and cannot start"),
            StartError::Spawn(e) => write!(f, "could not start a manager thread: {e}"),
            StartError::Forked => f.write_str(
                "this task manager was started in the parent process and cannot run in this forked child; \
                 create a new TaskManager in the child",
            ),
        }
    }
}

/// Same variant; [`Spawn`](StartError::Spawn) errors by their
/// [`io::ErrorKind`].
impl PartialEq for StartError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (StartError::ShutDown, StartError::ShutDown) | (StartError::Forked, StartError::Forked) => true,
            (StartError::Spawn(a), StartError::Spawn(b)) => a.kind() == b.kind(),
            _ => false,
        }
    }
}

/// Comparing [`io::ErrorKind`]s is an equivalence, so equality is total.
impl Eq for StartError {}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Spawn(e) => Some(e),
            StartError::ShutDown | StartError::Forked => None,
        }
    }
}

/// [`TaskManager::shutdown_timeout`](crate::TaskManager::shutdown_timeout)
/// ran out of time: tasks were still running, or queued tasks had not
/// started (or both).
///
/// Queued tasks that had not started were cancelled (their handles say so);
/// the tasks still running go on in the background and their handles report
/// them when they end. The message says which of the two was left:
///
/// ```
/// use taskmanager::{RunningTask, ShutdownTimedOut};
///
/// let backlog = ShutdownTimedOut { still_running: 0, cancelled: 3, running: vec![], handed_back: 0 };
/// assert_eq!(
///     backlog.to_string(),
///     "shutdown timed out: 3 queued task(s) not started were cancelled; none was running"
/// );
/// let stuck = ShutdownTimedOut {
///     still_running: 1,
///     cancelled: 0,
///     running: vec![RunningTask { id: 7, name: "poller".into() }],
///     handed_back: 0,
/// };
/// assert_eq!(
///     stuck.to_string(),
///     "shutdown timed out: 1 task(s) still running (poller); no queued task was cancelled"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownTimedOut {
    /// How many tasks were still running when the time ran out.
    pub still_running: usize,
    /// Queued tasks cancelled because the time ran out before they started.
    pub cancelled: usize,
    /// The tasks still running, by id and name.
    pub running: Vec<RunningTask>,
    /// With a broker: the tasks this process had claimed and not finished
    /// (running or not started), handed back to the cluster, where other
    /// workers run them at once.
    pub handed_back: usize,
}

impl fmt::Display for ShutdownTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shutdown timed out: ")?;
        let cancelled = match self.cancelled {
            0 => "no queued task was cancelled".to_owned(),
            n => format!("{n} queued task(s) not started were cancelled"),
        };
        if self.still_running == 0 {
            if self.cancelled == 0 {
                // Only threads were left (a worker or the timer still
                // ending), no task.
                return f
                    .write_str("no task was running or queued; the manager's threads had not all exited");
            }
            return write!(f, "{cancelled}; none was running");
        }
        write!(f, "{} task(s) still running", self.still_running)?;
        let names: Vec<&str> = self.running.iter().map(|t| t.name.as_str()).collect();
        if !names.is_empty() {
            write!(f, " ({})", names.join(", "))?;
        }
        write!(f, "; {cancelled}")
    }
}

impl std::error::Error for ShutdownTimedOut {}
