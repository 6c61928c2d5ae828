//! [`Module`]: the public handle to a module, a group of tasks that shares
//! a cap on worker threads. Its execution is a `Pool` (`pool/`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::err::{ConfigError, SubmitError};
use crate::handle::{RecurringHandle, TaskHandle};
use crate::job::{OneShot, Recurring};
use crate::manager::Manager;
use crate::pool::Pool;
use crate::report::Stats;
use crate::schedule::{due_after, to_nanos, Recurrence};
use crate::task::{Method, MethodMut, Task};

/// A group of tasks that shares a cap on worker threads: the spec's
/// `Module(task_manager=..., max_workers=...)`.
///
/// A module never runs more than `max_workers` of its tasks at once, each on
/// a thread of its own; its threads start when work arrives and exit after
/// the manager's keep-alive. Modules do not share threads, so a flood of
/// work in one never delays another.
///
/// Cloning gives another handle to the same module. A module does not keep
/// its manager alive: once the manager is shut down, submissions fail with
/// [`SubmitError::ShutDown`].
///
/// Build your own module types around it the way the spec subclasses
/// `Module` (see `examples/poller.rs`):
///
/// ```
/// use std::time::Duration;
/// use taskmanager::{Module, Recurrence, RecurringHandle, SubmitError, Task, TaskManager};
///
/// struct Greeter {
///     module: Module,
/// }
///
/// impl Greeter {
///     fn new(manager: &TaskManager) -> Self {
///         Greeter { module: Module::new(manager, 5).expect("5 is a valid cap") }
///     }
///
///     fn greet(&self, name: &str) -> Result<(), SubmitError> {
///         let greeting = format!("hello {name}");
///         self.module.add_task(Task::new(move || greeting).callback(|g: &String| println!("{g}")))?;
///         Ok(())
///     }
///
///     fn tick_every(&self, interval: Duration) -> Result<RecurringHandle, SubmitError> {
///         self.module.schedule_recurring(Recurrence::every(interval), || println!("tick"))
///     }
/// }
///
/// let manager = TaskManager::new();
/// manager.start_thread()?;
/// let greeter = Greeter::new(&manager);
/// greeter.greet("world")?;
/// let ticks = greeter.tick_every(Duration::from_millis(10))?;
/// ticks.cancel();
/// manager.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Module {
    pub(crate) pool: Arc<Pool>,
    /// The manager's Redis store, if it has one (for named tasks).
    #[cfg(feature = "redis")]
    pub(crate) broker: Option<Arc<crate::broker::Broker>>,
}

impl Module {
    /// This module's name ([`ModuleBuilder::name`](crate::ModuleBuilder::name)). Unnamed modules are
    /// called `module-<n>`; the manager's own is `default`.
    pub fn name(&self) -> &str {
        &self.pool.name
    }

    /// The module's default retry policy ([`ModuleBuilder::retry`](crate::ModuleBuilder::retry)), if it has one.
    pub fn retry(&self) -> Option<&crate::Retry> {
        self.pool.retry.get().map(|r| &**r)
    }

    /// The handle to `pool`, a module of `manager`.
    pub(crate) fn from_pool(pool: Arc<Pool>, manager: &Manager) -> Module {
        #[cfg(not(feature = "redis"))]
        let _ = manager;
        Module {
            pool,
            #[cfg(feature = "redis")]
            broker: manager.broker().cloned(),
        }
    }

    /// The most tasks this module runs at once.
    pub fn max_workers(&self) -> usize {
        self.pool.max_workers()
    }

    /// Changes [`max_workers`](Self::max_workers) before the manager
    /// starts (a worker command's `--concurrency`).
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] for 0; [`ConfigError::Started`] once
    /// the manager has started.
    pub fn set_max_workers(&self, max_workers: usize) -> Result<(), ConfigError> {
        self.pool.set_max_workers(max_workers)
    }

    /// Worker threads this module has right now (running or idle), never
    /// more than [`max_workers`](Self::max_workers).
    pub fn worker_count(&self) -> usize {
        self.pool.worker_count()
    }

    /// Tasks queued in this module, waiting for a worker.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    /// A snapshot of this module's counts: queued, running, completed,
    /// failed and cancelled tasks, peak concurrency, workers and pending
    /// timers. Cheap enough to call every second (or every millisecond).
    pub fn stats(&self) -> Stats {
        self.pool.stats()
    }

    /// Queues a task to run as soon as a worker of this module is free: the
    /// spec's `add_task`. Before [`start_thread`](crate::TaskManager::start_thread),
    /// it waits for the start.
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] once the manager is shutting down;
    /// [`SubmitError::Spawn`] if no worker thread could be started.
    pub fn add_task<F, T>(&self, task: impl Into<Task<F, T>>) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks, name));
        self.pool.submit(cell.clone(), &*cell)?;
        // No manager in the handle: cloning that `Arc` on every submission
        // made its count bounce between submitting threads (-25 % of
        // throughput-4p). A cancelled immediate task is told as an event
        // when its worker passes it. One that may retry may wait in the
        // timer, which its cancel must take it out of.
        Ok(TaskHandle::new(cell, F::RETRIES.then(|| Arc::clone(self.pool.timer()))))
    }

    /// Runs a task once, `delay` from now: the spec's `schedule_task` with
    /// `reoccurring=False`. A zero delay queues it at once, like
    /// [`add_task`](Self::add_task).
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] once the manager is shutting down;
    /// [`SubmitError::DelayTooLong`] for a delay beyond the clock's range.
    pub fn schedule_task<F, T>(
        &self,
        delay: Duration,
        task: impl Into<Task<F, T>>,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        let pool = &self.pool;
        let due = due_after(pool.rt.now(), delay).ok_or(SubmitError::DelayTooLong { delay })?;
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks, name));
        if delay.is_zero() {
            pool.submit(cell.clone(), &*cell)?;
        } else {
            pool.schedule(cell.clone(), due)?;
        }
        Ok(TaskHandle::new(cell, Some(Arc::clone(pool.timer()))))
    }

    /// Runs a task every `recurrence.interval()` until cancelled: the spec's
    /// `schedule_task` with `reoccurring=True` (and `run_now`).
    ///
    /// Runs never overlap; see [`Pacing`](crate::Pacing) for how runs are
    /// placed and what happens after an overrun.
    ///
    /// # Errors
    /// [`SubmitError::IntervalTooShort`] for an interval shorter than
    /// [`Recurrence::MIN_INTERVAL`] (1 ms), zero included;
    /// [`SubmitError::DelayTooLong`] for one beyond the clock's range;
    /// [`SubmitError::ShutDown`] once the manager is shutting down.
    pub fn schedule_recurring<F, T>(
        &self,
        recurrence: Recurrence,
        task: impl Into<Task<F, T>>,
    ) -> Result<RecurringHandle, SubmitError>
    where
        F: MethodMut<T>,
        T: Send + 'static,
    {
        let pool = &self.pool;
        let interval = recurrence.interval();
        if interval < Recurrence::MIN_INTERVAL {
            return Err(SubmitError::IntervalTooShort { interval });
        }
        let now = pool.rt.now();
        let first_due = if recurrence.runs_now() { Some(now) } else { due_after(now, interval) };
        let (Some(nanos), Some(first_due)) = (to_nanos(interval), first_due) else {
            return Err(SubmitError::DelayTooLong { delay: interval });
        };
        let Task { method, callbacks, name } = task.into();
        let cell =
            Arc::new(Recurring::new(method, callbacks, nanos, recurrence.pacing_policy(), first_due, name));
        if recurrence.runs_now() {
            pool.submit(cell.clone(), &*cell)?;
        } else {
            pool.schedule(cell.clone(), first_due)?;
        }
        pool.timer().register_recurring(cell.clone(), &pool.name);
        Ok(RecurringHandle::new(cell, Arc::clone(pool.timer())))
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.pool.name)
            .field("max_workers", &self.pool.max_workers())
            .field("workers", &self.worker_count())
            .field("queued", &self.queued())
            .finish()
    }
}
