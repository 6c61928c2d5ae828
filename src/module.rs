//! [`Module`]: the public handle to a module, a group of tasks that shares
//! a cap on worker threads. Its execution is a `Pool` (`pool/`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::wall_nanos;
use crate::err::{ConfigError, SubmitError};
use crate::handle::{RecurringHandle, TaskHandle};
use crate::job::{OneShot, Plan, Recurring, Rule};
use crate::manager::Manager;
use crate::misfire::Misfire;
use crate::pool::Pool;
use crate::recurrence::{Recurrence, When};
use crate::report::Stats;
use crate::schedule::{due_after, to_nanos, Nanos, Pacing};
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
        let due = due_after(self.pool.rt.now(), delay).ok_or(SubmitError::DelayTooLong { delay })?;
        let cell = self.schedule_once(delay, due, task)?;
        Ok(TaskHandle::new(cell, Some(Arc::clone(self.pool.timer()))))
    }

    /// A one-shot task queued now if `delay` is zero, else in the timer at
    /// `due`: its cell.
    fn schedule_once<F, T>(
        &self,
        delay: Duration,
        due: Nanos,
        task: impl Into<Task<F, T>>,
    ) -> Result<Arc<OneShot<F, T>>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        let pool = &self.pool;
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks, name));
        if delay.is_zero() {
            pool.submit(cell.clone(), &*cell)?;
        } else {
            pool.schedule(cell.clone(), due)?;
        }
        Ok(cell)
    }

    /// Runs a task once at the wall-clock time `at` (now, if that has
    /// passed). It follows the wall clock: a step of the system's clock,
    /// or a suspend and resume, moves the run to the new time (noticed
    /// within a second).
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] once the manager is shutting down;
    /// [`SubmitError::DelayTooLong`] for a time beyond the clock's range.
    pub fn schedule_task_at<F, T>(
        &self,
        at: SystemTime,
        task: impl Into<Task<F, T>>,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        let pool = &self.pool;
        let now = pool.rt.times();
        let wall = wall_nanos(at);
        let delay = Duration::from_nanos(wall.saturating_sub(now.wall));
        let due = due_after(now.mono, delay).ok_or(SubmitError::DelayTooLong { delay })?;
        let cell = self.schedule_once(delay, due, task)?;
        if !delay.is_zero() {
            pool.timer().follow_wall(cell.clone(), Some(wall));
        }
        Ok(TaskHandle::new(cell, Some(Arc::clone(pool.timer()))))
    }

    /// Runs a task at each tick of `recurrence` until cancelled: the spec's
    /// `schedule_task` with `reoccurring=True` (and `run_now`), every
    /// interval; or at the times of a calendar rule
    /// ([`Recurrence::cron`]).
    ///
    /// Runs never overlap; see [`Pacing`](crate::Pacing) for how runs are
    /// placed, and [`Misfire`](crate::Misfire) for what happens to ticks
    /// that pass while a run overruns, the module is busy or the process
    /// sleeps.
    ///
    /// # Errors
    /// [`SubmitError::IntervalTooShort`] for an interval shorter than
    /// [`Recurrence::MIN_INTERVAL`] (1 ms), zero included;
    /// [`SubmitError::DelayTooLong`] for one beyond the clock's range;
    /// [`SubmitError::InvalidSchedule`] for a schedule that cannot work
    /// (see there); [`SubmitError::ShutDown`] once the manager is shutting
    /// down.
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
        let (plan, interval) = plan(&recurrence)?;
        let calendar = plan.is_calendar();
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(Recurring::new(method, callbacks, interval, plan, name));
        let first = cell.first_key(pool.rt.times(), recurrence.runs_now());
        let Some(first) = first else {
            let delay = recurrence.interval();
            return Err(match recurrence.calendar() {
                Some(cron) => {
                    invalid(format!("the cron expression {:?} has no time left to run at", cron.expression()))
                }
                None => SubmitError::DelayTooLong { delay },
            });
        };
        if recurrence.runs_now() {
            pool.submit(cell.clone(), &*cell)?;
        } else {
            pool.schedule(cell.clone(), first)?;
        }
        pool.timer().register_recurring(cell.clone(), &pool.name);
        if calendar {
            pool.timer().follow_wall(cell.clone(), None);
        }
        Ok(RecurringHandle::new(cell, Arc::clone(pool.timer())))
    }
}

fn invalid(reason: String) -> SubmitError {
    SubmitError::InvalidSchedule { reason }
}

/// A recurring task's plan, and its interval (zero for a calendar), from
/// `recurrence`, checked.
pub(crate) fn plan(recurrence: &Recurrence) -> Result<(Plan, Nanos), SubmitError> {
    let misfire = recurrence.misfire_policy();
    if misfire == (Misfire::CatchUp { max: 0 }) {
        return Err(invalid("Misfire::CatchUp's max must be at least 1".to_owned()));
    }
    let jitter = recurrence.jitter_bound();
    let jitter_nanos = to_nanos(jitter).ok_or(SubmitError::DelayTooLong { delay: jitter })?;
    let (rule, interval) = match recurrence.when() {
        When::Every(interval) => {
            let interval = *interval;
            if interval < Recurrence::MIN_INTERVAL {
                return Err(SubmitError::IntervalTooShort { interval });
            }
            let nanos = to_nanos(interval).ok_or(SubmitError::DelayTooLong { delay: interval })?;
            (Rule::Every(recurrence.pacing_policy()), nanos)
        }
        When::Calendar(cron) => {
            if recurrence.pacing_policy() == Pacing::FixedDelay {
                return Err(invalid(
                    "a calendar schedule runs at its times: Pacing::FixedDelay does not apply to it"
                        .to_owned(),
                ));
            }
            (Rule::Calendar { cron: Arc::clone(cron), tick: Default::default() }, 0)
        }
    };
    Ok((Plan::new(rule, misfire, recurrence.grace_time(), jitter_nanos), interval))
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
