//! [`Module`]: a queue and its own worker threads, never more than
//! `max_workers` of them, started on demand and retired when idle.
//!
//! Each module has its own threads, so a busy module never delays another
//! one. See `PROTOCOL.md` for the spawn/retire hand-off.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::batch::BATCH;
use crate::err::{ConfigError, SubmitError};
use crate::handle::{RecurringHandle, TaskHandle};
use crate::job::{Job, JobRef, OneShot, Recurring};
use crate::manager::{Phase, Shared, TaskManager};
use crate::schedule::{due_after, to_nanos, Recurrence};
use crate::task::Task;

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
    shared: Arc<ModuleShared>,
}

/// A module's state, shared by its handles, its workers and timer entries.
pub(crate) struct ModuleShared {
    pub(crate) manager: Arc<Shared>,
    max_workers: usize,
    tx: Sender<JobRef>,
    rx: Receiver<JobRef>,
    /// Workers that exist (or are being started); never above max_workers.
    alive: AtomicUsize,
    /// Workers blocked waiting for work.
    idle: AtomicUsize,
}

impl Module {
    /// A module of `manager` that runs at most `max_workers` tasks at once.
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] if `max_workers` is 0.
    pub fn new(manager: &TaskManager, max_workers: usize) -> Result<Module, ConfigError> {
        Module::with_shared(manager.shared(), max_workers)
    }

    pub(crate) fn with_shared(manager: &Arc<Shared>, max_workers: usize) -> Result<Module, ConfigError> {
        if max_workers == 0 {
            return Err(ConfigError::ZeroMaxWorkers);
        }
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(ModuleShared {
            manager: Arc::clone(manager),
            max_workers,
            tx,
            rx,
            alive: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        });
        manager.register(&shared);
        Ok(Module { shared })
    }

    /// The most tasks this module runs at once.
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// Worker threads this module has right now (running or idle), never
    /// more than [`max_workers`](Self::max_workers).
    pub fn worker_count(&self) -> usize {
        self.shared.alive.load(SeqCst)
    }

    /// Tasks queued in this module, waiting for a worker.
    pub fn queued(&self) -> usize {
        self.shared.rx.len()
    }

    /// Queues a task to run as soon as a worker of this module is free: the
    /// spec's `add_task`. Before [`start_thread`](TaskManager::start_thread),
    /// it waits for the start.
    ///
    /// # Errors
    /// [`SubmitError::ShutDown`] once the manager is shutting down;
    /// [`SubmitError::Spawn`] if no worker thread could be started.
    pub fn add_task<F, T>(&self, task: impl Into<Task<F, T>>) -> Result<TaskHandle<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Task { method, callbacks } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks));
        self.shared.submit(cell.clone())?;
        Ok(TaskHandle::new(cell, None))
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
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let manager = &self.shared.manager;
        let due = due_after(manager.now(), delay).ok_or(SubmitError::DelayTooLong { delay })?;
        let Task { method, callbacks } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks));
        if delay.is_zero() {
            self.shared.submit(cell.clone())?;
        } else {
            manager.schedule(&self.shared, cell.clone(), due)?;
        }
        Ok(TaskHandle::new(cell, Some(Arc::clone(manager))))
    }

    /// Runs a task every `recurrence.interval()` until cancelled: the spec's
    /// `schedule_task` with `reoccurring=True` (and `run_now`).
    ///
    /// Runs never overlap; see [`Pacing`](crate::Pacing) for how runs are
    /// placed and what happens after an overrun.
    ///
    /// # Errors
    /// [`SubmitError::ZeroInterval`] for a zero interval;
    /// [`SubmitError::DelayTooLong`] for one beyond the clock's range;
    /// [`SubmitError::ShutDown`] once the manager is shutting down.
    pub fn schedule_recurring<F, T>(
        &self,
        recurrence: Recurrence,
        task: impl Into<Task<F, T>>,
    ) -> Result<RecurringHandle, SubmitError>
    where
        F: FnMut() -> T + Send + 'static,
        T: Send + 'static,
    {
        let manager = &self.shared.manager;
        let interval = recurrence.interval();
        if interval.is_zero() {
            return Err(SubmitError::ZeroInterval);
        }
        let now = manager.now();
        let first_due = if recurrence.runs_now() { Some(now) } else { due_after(now, interval) };
        let (Some(nanos), Some(first_due)) = (to_nanos(interval), first_due) else {
            return Err(SubmitError::DelayTooLong { delay: interval });
        };
        let Task { method, callbacks } = task.into();
        let cell = Arc::new(Recurring::new(method, callbacks, nanos, recurrence.pacing_policy(), first_due));
        if recurrence.runs_now() {
            self.shared.submit(cell.clone())?;
        } else {
            manager.schedule(&self.shared, cell.clone(), first_due)?;
        }
        Ok(RecurringHandle::new(cell, Arc::clone(manager)))
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("max_workers", &self.shared.max_workers)
            .field("workers", &self.worker_count())
            .field("queued", &self.queued())
            .finish()
    }
}

impl ModuleShared {
    /// Queues a job from a user's submission. See `PROTOCOL.md`, "Submit".
    fn submit(self: &Arc<Self>, job: Arc<dyn Job>) -> Result<(), SubmitError> {
        if !self.manager.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        self.push(JobRef::new(Arc::clone(&job)));
        fence(SeqCst);
        match self.manager.phase() {
            Phase::Created => Ok(()),
            Phase::Running => match self.ensure_worker() {
                Ok(()) => Ok(()),
                // Nobody will run it: take it back if it is still queued.
                Err(e) if self.alive.load(SeqCst) == 0 && job.cancel() => Err(SubmitError::Spawn(e)),
                Err(_) => Ok(()),
            },
            // Shutdown began while we queued: shutdown may not have seen the
            // job, so take it back; if a worker already took it, it runs.
            Phase::ShuttingDown | Phase::Terminated if job.cancel() => Err(SubmitError::ShutDown),
            Phase::ShuttingDown | Phase::Terminated => Ok(()),
        }
    }

    /// Queues an accepted job (from the timer, or a recurring run) and makes
    /// sure a worker will take it.
    pub(crate) fn dispatch(self: &Arc<Self>, job: JobRef) {
        self.push(job);
        fence(SeqCst);
        self.kick();
    }

    fn push(&self, job: JobRef) {
        // Cannot fail: `self.rx` keeps the channel open.
        let _ = self.tx.send(job);
    }

    /// Starts a worker if there is queued work, none is idle and the cap
    /// allows; logs a failure to spawn (the work stays queued for the next
    /// kick). Callers fence between their push and this.
    pub(crate) fn kick(self: &Arc<Self>) {
        if self.manager.phase() == Phase::Created || self.rx.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_worker() {
            log::error!("taskmanager: could not start a worker thread: {e}");
        }
    }

    /// Cancels every queued job; returns how many were cancelled.
    pub(crate) fn cancel_queued(&self) -> usize {
        self.rx.try_iter().map(JobRef::cancel).filter(|&c| c).count()
    }

    /// Whether nothing refers to this module but the manager's registry and
    /// it holds no work: it can be forgotten.
    pub(crate) fn is_forgotten(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1 && self.rx.is_empty()
    }

    fn ensure_worker(self: &Arc<Self>) -> std::io::Result<()> {
        if self.idle.load(SeqCst) > 0 || !self.reserve() {
            return Ok(());
        }
        let module = Arc::clone(self);
        let spawned = self.manager.spawn_thread("taskmanager-worker", move || module.work());
        if spawned.is_err() {
            self.alive.fetch_sub(1, SeqCst);
        }
        spawned
    }

    /// Takes a worker place if one is free.
    fn reserve(&self) -> bool {
        self.alive.fetch_update(SeqCst, SeqCst, |n| (n < self.max_workers).then_some(n + 1)).is_ok()
    }

    /// A worker's life: run queued jobs; wait up to the keep-alive for more;
    /// retire when idle that long, or when the manager shuts down and the
    /// queue is empty. The manager's `closing` channel disconnects at
    /// shutdown, which wakes every waiting worker at once, for good.
    fn work(self: Arc<Self>) {
        let keep_alive = self.manager.keep_alive;
        let closing = self.manager.closing();
        loop {
            while let Some(job) = self.next_soon() {
                self.run_batch(job);
            }
            self.idle.fetch_add(1, SeqCst);
            let job = if self.manager.phase() == Phase::Running {
                crossbeam_channel::select! {
                    recv(self.rx) -> job => job.ok(),
                    recv(closing) -> _ => None,
                    default(keep_alive) => None,
                }
            } else {
                None
            };
            self.idle.fetch_sub(1, SeqCst);
            match job {
                Some(job) => self.run(job),
                None if self.retire() => return,
                None => {}
            }
        }
    }

    /// The next queued job, waiting a few microseconds for one before
    /// giving up: a producer that is a little slower than its workers then
    /// rarely has to wake a parked worker with a system call.
    fn next_soon(&self) -> Option<JobRef> {
        let backoff = crossbeam_utils::Backoff::new();
        for _ in 0..8 {
            if let Ok(job) = self.rx.try_recv() {
                return Some(job);
            }
            backoff.spin();
        }
        self.rx.try_recv().ok()
    }

    /// Runs `first` and, with a batch runner, up to a batch of the jobs
    /// queued behind it inside one `run_batch` call.
    fn run_batch(self: &Arc<Self>, first: JobRef) {
        let Some(runner) = &self.manager.batch_runner else {
            return self.run(first);
        };
        let mut first = Some(first);
        let mut batch = || {
            let jobs = first.take().into_iter().chain(self.rx.try_iter()).take(BATCH);
            for job in jobs {
                self.run(job);
            }
        };
        if catch_unwind(AssertUnwindSafe(|| runner.run_batch(&mut batch))).is_err() {
            log::error!("taskmanager: the batch runner panicked");
        }
        // A runner that never called `batch` must not lose the job.
        if let Some(job) = first {
            self.run(job);
        }
    }

    fn run(self: &Arc<Self>, job: JobRef) {
        // Jobs catch their users' panics; this is the last line of defence
        // so that nothing ever kills a worker.
        if catch_unwind(AssertUnwindSafe(|| job.run(self))).is_err() {
            log::error!("taskmanager: a task panicked outside its own guard");
        }
    }

    /// Gives up this worker's place; returns false if work arrived while
    /// leaving and the place could be taken back, so the worker stays.
    fn retire(&self) -> bool {
        self.alive.fetch_sub(1, SeqCst);
        fence(SeqCst);
        self.rx.is_empty() || !self.reserve()
    }
}
