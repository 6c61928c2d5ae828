//! Run background work inside one program: tasks that run as soon as
//! possible, after a delay, or every interval, on modules that cap how many
//! threads they use.
//!
//! This is the Rust face of the `PythonTaskManager` spec; the Python package
//! is built from the same core. Names trace to the spec:
//!
//! | spec | Rust |
//! |------|------|
//! | `TaskManager()`, `start_thread()` | [`TaskManager::new`], [`TaskManager::start_thread`] |
//! | `Module(task_manager=, max_workers=)` | [`Module::new`]`(&manager, max_workers)` |
//! | a named or bounded module (Python's `max_queued=`) | [`Module::builder`]`(&manager).name("poller").max_workers(5).max_queued(100).build()` |
//! | `add_task(method, args, kwargs, callback)` | [`Module::add_task`]`(`[`Task`]`::new(closure).callback(cb))` |
//! | `schedule_task(method, delay)` | [`Module::schedule_task`]`(delay, task)` |
//! | `schedule_task(..., reoccurring=True, run_now=...)` | [`Module::schedule_recurring`]`(`[`Recurrence`]`::every(delay).run_now(..), task)` |
//!
//! `args` and `kwargs` are what the closure captures. The spec spells
//! `reoccurring`; Rust says recurring. A recurring task's interval is at
//! least [`Recurrence::MIN_INTERVAL`] (1 ms): shorter ones, zero included,
//! are refused with [`SubmitError::IntervalTooShort`].
//!
//! ```
//! use std::time::Duration;
//! use taskmanager::{Module, Recurrence, Task, TaskManager};
//!
//! let manager = TaskManager::new();
//! manager.start_thread()?;
//! let something = Module::new(&manager, 5)?;
//!
//! // Run as soon as possible; the callback receives the return value.
//! let echoed = something.add_task(Task::new(|| "hello").callback(|s: &&str| println!("{s}")))?;
//! assert_eq!(echoed.join()?, "hello");
//!
//! // Run once, 10 ms from now.
//! let once = something.schedule_task(Duration::from_millis(10), || "once")?;
//! assert_eq!(once.join()?, "once");
//!
//! // Run every 5 ms, starting now, until cancelled.
//! let (tx, rx) = std::sync::mpsc::channel();
//! let every = something.schedule_recurring(
//!     Recurrence::every(Duration::from_millis(5)).run_now(true),
//!     move || tx.send("every-now").unwrap(),
//! )?;
//! assert_eq!(rx.recv()?, "every-now");
//! every.cancel(); // no run starts after this
//! every.wait(); // returns once a run in progress, if any, has ended
//! assert!(every.runs() >= 1);
//!
//! manager.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//! - A module never runs more than `max_workers` of its tasks at once, and
//!   has threads of its own: a busy module never delays another.
//! - Every accepted task either runs or is reported cancelled through its
//!   handle; a panic in a task or callback is caught, logged through the
//!   [`log`] crate, and reported through the handle.
//! - Recurring runs never overlap and never burst to catch up (see
//!   [`Pacing`]); due times use the monotonic clock.
//! - Cancelling a scheduled task frees it at once.
//! - A bounded module ([`ModuleBuilder::max_queued`]) refuses submissions
//!   with [`SubmitError::QueueFull`] once its queue is full, instead of
//!   growing without bound; work it already accepted is never refused.
//!
//! # Seeing what runs
//! - [`TaskManager::tasks`] lists scheduled and recurring tasks
//!   ([`TaskInfo`]: name, module, state, next due, interval, runs, failures).
//! - [`Module::stats`] and [`TaskManager::stats`] give [`Stats`]: queued,
//!   running, completed, failed, cancelled, peak concurrency, workers,
//!   pending timers; cheap enough to call every second.
//! - [`Event`]s (started, finished, failed, skipped, cancelled, paused,
//!   resumed) go to the `log` crate (target `taskmanager::events`) and to
//!   [`Builder::listener`].
//! - [`RecurringHandle::pause`], [`resume`](RecurringHandle::resume) and
//!   [`set_interval`](RecurringHandle::set_interval) control a recurring
//!   task; a [`TaskHandle`] is a [`Future`](std::future::Future).
//!
//! # Out-of-order and racing calls
//! Each has one defined outcome (tested in `tests/racing.rs`):
//!
//! | call | outcome |
//! |------|---------|
//! | `cancel()` after the task finished | `false`; the result stays |
//! | `cancel()` twice | the first returns `true` if the task had not started; the second `false` |
//! | `cancel()` racing a worker starting the task | exactly one wins: either the task runs and `cancel` returns `false`, or it never runs and its handle says cancelled |
//! | `join`/`wait` after shutdown | returns at once with the final outcome: the value, or [`TaskError::Cancelled`] for a task shutdown cancelled |
//! | dropping a handle before its task runs | nothing: the task still runs (a recurring one until shutdown); dropping never cancels |
//! | submitting (from anywhere, a callback included) once shutdown began | [`SubmitError::ShutDown`]; the task is not accepted |
//! | submitting while shutdown begins | either accepted (and then it runs, or its handle says cancelled) or refused with `ShutDown`: never accepted and lost |
//! | dropping the manager after [`shutdown_timeout`](TaskManager::shutdown_timeout) returned `Err` | returns at once: the tasks it reported still running are logged and left to finish in the background (their handles report them); the drop never waits for them |
//! | `shutdown_timeout` inside a task | waits for every other task and thread; `Err` if any still runs at the deadline (the caller is not listed); `Ok` once only the caller is left |
//! | a worker thread cannot be started | an immediate task with no worker at all: [`SubmitError::Spawn`]; accepted work waits queued and the start is retried with backoff (see [`Builder::spawn_handler`]) |
//! | anything on a manager started before `fork()`, in the child | after [`after_fork_in_child`]: submissions fail with [`SubmitError::Forked`], shutdown and drop return at once |
//!
//! The concurrency protocol is written down in `src/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod batch;
#[cfg(feature = "redis")]
mod broker;
mod calendar;
mod clock;
#[cfg(feature = "redis")]
mod cluster;
mod err;
mod event;
mod handle;
mod job;
mod lifecycle;
mod limit;
mod limited;
#[cfg(all(test, loom))]
mod loom_tests;
mod manager;
mod metrics;
mod misfire;
mod module;
mod module_builder;
#[cfg(feature = "redis")]
mod named;
mod pool;
mod recurrence;
mod remote_error;
mod report;
mod retry;
mod runtime;
mod schedule;
mod sync;
mod task;
mod threads;
mod timer;
#[cfg(feature = "redis")]
mod trace_context;
mod unwind;
#[cfg(all(unix, not(loom)))]
mod worker;

pub use batch::BatchRunner;
#[cfg(feature = "redis")]
pub use broker::{Attempts, ClaimedTask, DeadLetter, InStream, TaskLookup, MIN_RESULT_TTL};
pub use calendar::{Cron, CronError, CronField, FoldPolicy, GapPolicy, Upcoming};
pub use clock::ManualClock;
#[cfg(feature = "redis")]
pub use cluster::{ClusterStats, ModuleLoad, Outcomes, ScheduleInfo, TaskOutcomes, WorkerInfo};
pub use err::{ConfigError, RemoteError, ShutdownTimedOut, StartError, SubmitError, TaskError};
pub use event::{Event, TaskRef};
pub use handle::{JoinTimeoutError, RecurringHandle, TaskHandle};
pub use lifecycle::after_fork_in_child;
#[doc(hidden)]
pub use limit::{watch, Ended, Watch};
pub use limit::{Deadline, STUCK_AFTER};
pub use limited::Limited;
pub use manager::{Builder, Drain, TaskManager};
pub use misfire::Misfire;
pub use module::Module;
pub use module_builder::ModuleBuilder;
#[cfg(feature = "redis")]
pub use named::{NamedTask, SharedSchedule};
pub use recurrence::Recurrence;
pub use report::{RunningTask, Stats, TaskInfo, TaskState};
pub use retry::Retry;
pub use schedule::Pacing;
pub use task::{AbandonHook, Attempt, Fallible, Method, MethodMut, Retrying, Task};
pub use threads::block_process_signals;
#[cfg(feature = "redis")]
pub use trace_context::{NamedRun, TraceContext, TraceContextError, MAX_TRACESTATE};
#[cfg(all(unix, not(loom)))]
pub use worker::WorkerExit;
