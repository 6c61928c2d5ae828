//! [`Module`]: a queue and its own worker threads, never more than
//! `max_workers` of them, started on demand and retired when idle.
//!
//! Each module has its own threads, so a busy module never delays another
//! one. See `PROTOCOL.md` for the spawn/retire hand-off.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch::BATCH;
use crate::err::{ConfigError, SubmitError};
use crate::event::Event;
use crate::event::Events;
use crate::handle::{RecurringHandle, TaskHandle};
use crate::job::{Job, JobRef, OneShot, Ran, Recurring, RunContext};
use crate::lifecycle::Phase;
use crate::manager::{Shared, TaskManager};
use crate::report::{RunningTask, Stats};
use crate::schedule::{due_after, to_nanos, Nanos, Recurrence};
use crate::sync::{fence, lock, yield_now, AtomicU64, AtomicUsize, Condvar, Mutex, Queue};
use crate::task::Task;
use crate::threads::set_timer_slack;
use crate::unwind::{drop_payload, drop_quietly};

/// How long a worker that ran out of work looks for more before it sleeps.
/// Spinning only, never yielding (see `wait_for_work`).
const SPIN: Duration = Duration::from_micros(SPIN_US);
const SPIN_US: u64 = 8;
/// The first wait before retrying a worker start that failed; it doubles
/// with each failure in a row, up to `SPAWN_RETRY_MAX`.
const SPAWN_RETRY_FIRST: Duration = Duration::from_millis(10);
const SPAWN_RETRY_MAX: Duration = Duration::from_secs(1);
/// Jobs since its last sleep that make a worker hot (see `next_soon`).
const HOT_STREAK: usize = 64;
/// How many times a hot worker yields before it sleeps.
const HOT_YIELDS: usize = 8;

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
    pub(crate) name: Arc<str>,
    pub(crate) manager: Arc<Shared>,
    max_workers: usize,
    queue: Queue<Queued>,
    /// Workers that exist (or are being started); never above max_workers.
    alive: AtomicUsize,
    /// The most tasks `submit` lets wait in the queue; `usize::MAX` when
    /// unbounded.
    capacity: usize,
    /// Jobs in the queue, counted only when bounded (pushes add, pops take
    /// away), so that unbounded modules pay nothing for it.
    queued: AtomicUsize,
    /// Workers waiting for work (on `wake`, or about to).
    idle: AtomicUsize,
    /// Idle workers sleep on `wake` under `park`; see `wait_for_work`.
    park: Mutex<()>,
    wake: Condvar,
    /// One slot per live worker: what it is running.
    workers: Mutex<Vec<Arc<WorkerSlot>>>,
    /// Counts of workers that have exited, and cancels made outside
    /// workers (timer removals, `cancel_queued`).
    counts: Counts,
    /// Entries of this module in the manager's timer; changed under the
    /// timer lock.
    pub(crate) timers: AtomicUsize,
    /// The most workers alive at once.
    peak: AtomicUsize,
    /// Failed worker starts in a row (for the retry backoff). std's: a
    /// count for logs, not part of any hand-off.
    spawn_failures: std::sync::atomic::AtomicU32,
}

/// What one worker is running, for reports (a shutdown that timed out).
/// Written by its worker around each task; read by reporters.
///
/// The id costs one plain store per task. A task with a name of its own
/// also leaves a reference in `named`, under a lock, so the report can say
/// the name: that costs about 50 ns a task, which unnamed tasks (most Rust
/// ones) do not pay; their name is `task-<id>`, known from the id alone.
/// Aligned to its own cache lines: two workers' slots side by side would
/// bounce one line between cores on every task (that cost 30 % of
/// throughput).
#[derive(Default)]
#[repr(align(128))]
struct WorkerSlot {
    /// The running task's id; 0 between tasks.
    current: AtomicU64,
    named: Mutex<Option<Arc<dyn Job>>>,
    /// What this worker's runs came to; on its own cache line, so counting
    /// costs no sharing.
    counts: Counts,
}

std::thread_local! {
    /// The counts of the worker running on this thread (set while it lives).
    static WORKER_COUNTS: std::cell::RefCell<Option<Arc<WorkerSlot>>> = const { std::cell::RefCell::new(None) };
    /// Whether the current run was counted already, and as failed or not.
    static COUNTED: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Counts the run of the task on this thread as completed, or as failed,
/// in its module's [`Stats`], now. The core calls it the moment a run's
/// method and callbacks are over, before the handle says done, so a
/// program that waited for a task sees it counted. Embedders whose tasks
/// report errors as values call it too, before they hand the outcome on:
/// the Python binding does, with `failed` when a Python task raised (the
/// exception goes to the handle). The first call for a run counts; later
/// ones, and calls outside a run, do nothing.
pub fn count_run(failed: bool) {
    if COUNTED.with(|c| c.get().is_some()) {
        return;
    }
    WORKER_COUNTS.with(|slot| {
        if let Some(slot) = slot.borrow().as_ref() {
            let count = if failed { &slot.counts.failed } else { &slot.counts.completed };
            count.fetch_add(1, Relaxed);
            // No longer running, before whoever waits for it hears so.
            slot.current.store(0, Relaxed);
            COUNTED.with(|c| c.set(Some(failed)));
        }
    });
}

/// The id of the task running on this thread, if it is a worker's.
pub(crate) fn current_task() -> Option<u64> {
    WORKER_COUNTS
        .with(|slot| slot.borrow().as_ref().map(|slot| slot.current.load(Relaxed)))
        .filter(|&id| id != 0)
}

/// Completed, failed and cancelled counts. std's atomics, also under
/// loom: statistics, not part of any hand-off.
#[derive(Default)]
struct Counts {
    completed: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    cancelled: std::sync::atomic::AtomicU64,
}

impl Counts {
    fn add(&self, ran: &Ran) {
        for (count, yes) in
            [(&self.completed, ran.completed), (&self.failed, ran.failed), (&self.cancelled, ran.cancelled)]
        {
            if yes {
                count.fetch_add(1, Relaxed);
            }
        }
    }

    fn add_to(&self, stats: &mut Stats) {
        stats.completed += self.completed.load(Relaxed);
        stats.failed += self.failed.load(Relaxed);
        stats.cancelled += self.cancelled.load(Relaxed);
    }
}

/// A job in a module's queue.
struct Queued {
    job: JobRef,
    /// Its due time, if the timer handed it over ahead of it (else 0).
    not_before: Nanos,
}

impl Module {
    /// A module of `manager` that runs at most `max_workers` tasks at once:
    /// the spec's `Module(task_manager=manager, max_workers=...)`. For a
    /// name or a bounded queue, use [`builder`](Self::builder).
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] if `max_workers` is 0.
    pub fn new(manager: &TaskManager, max_workers: usize) -> Result<Module, ConfigError> {
        Module::with_shared(manager.shared(), max_workers, usize::MAX, None)
    }

    /// This module's name ([`ModuleBuilder::name`](crate::ModuleBuilder::name)). Unnamed modules are
    /// called `module-<n>`; the manager's own is `default`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub(crate) fn with_shared(
        manager: &Arc<Shared>,
        max_workers: usize,
        capacity: usize,
        name: Option<Arc<str>>,
    ) -> Result<Module, ConfigError> {
        if max_workers == 0 {
            return Err(ConfigError::ZeroMaxWorkers);
        }
        let name = name.unwrap_or_else(|| manager.next_module_name());
        let shared = Arc::new(ModuleShared {
            name,
            manager: Arc::clone(manager),
            max_workers,
            queue: Queue::new(),
            capacity,
            queued: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            counts: Counts::default(),
            timers: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            spawn_failures: std::sync::atomic::AtomicU32::new(0),
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
        self.shared.queue.len()
    }

    /// A snapshot of this module's counts: queued, running, completed,
    /// failed and cancelled tasks, peak concurrency, workers and pending
    /// timers. Cheap enough to call every second (or every millisecond).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
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
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks, name));
        self.shared.submit(cell.clone())?;
        // No manager in the handle: cloning that `Arc` on every submission
        // made its count bounce between submitting threads (-25 % of
        // throughput-4p). A cancelled immediate task is told as an event
        // when its worker passes it.
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
        let Task { method, callbacks, name } = task.into();
        let cell = Arc::new(OneShot::new(method, callbacks, name));
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
        F: FnMut() -> T + Send + 'static,
        T: Send + 'static,
    {
        let manager = &self.shared.manager;
        let interval = recurrence.interval();
        if interval < Recurrence::MIN_INTERVAL {
            return Err(SubmitError::IntervalTooShort { interval });
        }
        let now = manager.now();
        let first_due = if recurrence.runs_now() { Some(now) } else { due_after(now, interval) };
        let (Some(nanos), Some(first_due)) = (to_nanos(interval), first_due) else {
            return Err(SubmitError::DelayTooLong { delay: interval });
        };
        let Task { method, callbacks, name } = task.into();
        let cell =
            Arc::new(Recurring::new(method, callbacks, nanos, recurrence.pacing_policy(), first_due, name));
        if recurrence.runs_now() {
            self.shared.submit(cell.clone())?;
        } else {
            manager.schedule(&self.shared, cell.clone(), first_due)?;
        }
        manager.register_recurring(cell.clone(), &self.shared.name);
        Ok(RecurringHandle::new(cell, Arc::clone(manager)))
    }
}

/// A worker's side of running a job: see [`RunContext`].
struct Context<'a> {
    module: &'a Arc<ModuleShared>,
    slot: &'a WorkerSlot,
}

impl RunContext for Context<'_> {
    fn events(&self) -> &Events {
        &self.module.manager.events
    }

    fn now(&self) -> Nanos {
        self.module.manager.now()
    }

    /// For `stats().running` and `running_tasks()`; `count_run` clears it.
    fn mark_running(&self, id: u64) {
        self.slot.current.store(id, Relaxed);
    }

    fn count_run(&self, failed: bool) {
        count_run(failed);
    }

    fn reschedule(&self, job: Arc<dyn Job>, due: Option<Nanos>) -> bool {
        self.module.manager.reschedule(self.module, job, due)
    }
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.shared.name)
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
        if self.manager.inherited() {
            return Err(SubmitError::Forked);
        }
        if self.is_bounded() {
            let capacity = self.capacity;
            self.queued
                .fetch_update(SeqCst, SeqCst, |n| (n < capacity).then_some(n + 1))
                .map_err(|_| SubmitError::QueueFull { capacity })?;
        }
        self.queue.push(Queued { job: JobRef::new(Arc::clone(&job)), not_before: 0 });
        fence(SeqCst);
        match self.manager.phase() {
            Phase::Created => Ok(()),
            Phase::Running => match self.ensure_worker() {
                Ok(()) => Ok(()),
                // Nobody will run it: take it back if it is still queued.
                // A whole shutdown may have passed since the phase was read
                // (the thread registry then refuses): say so, not "spawn".
                Err(e) if self.alive.load(SeqCst) == 0 && job.cancel() => Err(match self.manager.phase() {
                    Phase::Running => SubmitError::Spawn(e),
                    _ => SubmitError::ShutDown,
                }),
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
    /// `not_before`: the job's due time if the timer handed it over early
    /// (0 for none); the worker that takes it starts it then.
    pub(crate) fn dispatch(self: &Arc<Self>, job: JobRef, not_before: Nanos) {
        if self.is_bounded() {
            // Accepted when it was scheduled: never refused, even if full.
            self.queued.fetch_add(1, SeqCst);
        }
        self.queue.push(Queued { job, not_before });
        fence(SeqCst);
        self.kick();
    }

    fn is_bounded(&self) -> bool {
        self.capacity != usize::MAX
    }

    /// Takes the next queued job, if any. Every job leaves the queue here.
    fn pop(&self) -> Option<Queued> {
        let job = self.queue.pop()?;
        if self.is_bounded() {
            self.queued.fetch_sub(1, SeqCst);
        }
        Some(job)
    }

    /// Starts a worker if there is queued work, none is idle and the cap
    /// allows; logs a failure to spawn (the work stays queued for the next
    /// kick). Callers fence between their push and this.
    pub(crate) fn kick(self: &Arc<Self>) {
        if self.manager.phase() == Phase::Created || self.queue.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_worker() {
            self.spawn_failed(&e);
        }
    }

    /// A worker could not be started for queued work: logs it, tells it as
    /// an event, and, if no worker is left to take the work, has the
    /// manager try again after a backoff (10 ms, doubling to 1 s).
    fn spawn_failed(self: &Arc<Self>, error: &std::io::Error) {
        let attempt = self.spawn_failures.fetch_add(1, Relaxed).saturating_add(1);
        let retry_in = SPAWN_RETRY_FIRST.saturating_mul(1 << (attempt - 1).min(7)).min(SPAWN_RETRY_MAX);
        log::error!(
            "taskmanager: could not start a worker thread for module {} (attempt {attempt}): {error}; \
             its queued work waits, retrying in {retry_in:?}",
            self.name
        );
        self.manager.events.emit(log::Level::Error, || Event::SpawnFailed {
            module: self.name.to_string(),
            error: error.to_string(),
            attempt,
            retry_in,
        });
        if self.alive.load(SeqCst) == 0 {
            self.manager.retry_spawn(self, Instant::now() + retry_in);
        }
    }

    /// Cancels every queued job; returns how many were cancelled.
    pub(crate) fn cancel_queued(&self) -> usize {
        std::iter::from_fn(|| self.pop()).map(|q| self.cancel(q.job)).filter(|&c| c).count()
    }

    /// Cancels a job of this module taken out of its queue or the timer;
    /// if that cancelled it, counts it and tells the event.
    pub(crate) fn cancel(&self, job: JobRef) -> bool {
        let events = &self.manager.events;
        let watched = if events.wanted(log::Level::Debug) { job.share() } else { None };
        let cancelled = job.cancel();
        if cancelled {
            self.count_cancelled();
            if let Some(job) = watched {
                events.emit(log::Level::Debug, || Event::Cancelled { task: job.core().task_ref() });
            }
        }
        cancelled
    }

    /// Counts a task of this module cancelled outside its workers.
    pub(crate) fn count_cancelled(&self) {
        self.counts.cancelled.fetch_add(1, Relaxed);
    }

    /// See [`Module::stats`].
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats {
            queued: self.queue.len(),
            peak_concurrency: self.peak.load(Relaxed),
            workers: self.alive.load(SeqCst),
            pending_timers: self.timers.load(Relaxed),
            ..Stats::default()
        };
        let workers = lock(&self.workers);
        self.counts.add_to(&mut stats);
        for slot in workers.iter() {
            slot.counts.add_to(&mut stats);
            stats.running += usize::from(slot.current.load(Relaxed) != 0);
        }
        stats
    }

    /// Whether nothing refers to this module but the manager's registry and
    /// it holds no work: it can be forgotten.
    pub(crate) fn is_forgotten(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1 && self.queue.is_empty()
    }

    fn ensure_worker(self: &Arc<Self>) -> std::io::Result<()> {
        if self.idle.load(SeqCst) > 0 {
            // Taking the lock waits out a worker between its queue check
            // and its sleep, so the notification cannot fall in between.
            // It is released before notifying: the woken worker must not
            // find it held (and sleep again on it) if this thread is
            // preempted right after the wake-up.
            drop(lock(&self.park));
            self.wake.notify_one();
            self.announce_wake();
            return Ok(());
        }
        if !self.reserve() {
            return Ok(());
        }
        let module = Arc::clone(self);
        let spawned = self.manager.spawn_thread("taskmanager-worker", move || module.work());
        match spawned {
            Ok(()) => {
                self.spawn_failures.store(0, Relaxed);
                self.announce_wake();
            }
            Err(_) => {
                self.alive.fetch_sub(1, SeqCst);
            }
        }
        spawned
    }

    /// Takes a worker place if one is free.
    fn reserve(&self) -> bool {
        match self.alive.fetch_update(SeqCst, SeqCst, |n| (n < self.max_workers).then_some(n + 1)) {
            Ok(before) => {
                self.peak.fetch_max(before + 1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// A worker's life: run queued jobs; wait up to the keep-alive for more;
    /// retire when idle that long, or when the manager shuts down and the
    /// queue is empty.
    fn work(self: Arc<Self>) {
        // Its waits for an early job's due time must be as precise as the
        // timer's own (see `Shared::handoff_lead`).
        set_timer_slack(self.manager.timer_slack);
        let slot = Arc::new(WorkerSlot::default());
        WORKER_COUNTS.with(|s| *s.borrow_mut() = Some(Arc::clone(&slot)));
        lock(&self.workers).push(Arc::clone(&slot));
        let mut wakes_seen = self.manager.wakes.load(Relaxed);
        // Jobs run since this worker last slept.
        let mut streak = 0usize;
        loop {
            while let Some(job) = self.next_soon(streak >= HOT_STREAK) {
                self.run_batch(job, &slot);
                self.make_way(&mut wakes_seen);
                streak += 1;
            }
            streak = 0;
            match self.wait_for_work() {
                Some(job) => {
                    self.run(job, &slot);
                    streak = 1;
                }
                None if self.retire() => break,
                None => {}
            }
        }
        let mut workers = lock(&self.workers);
        // Its counts move to the module's under the same lock a reader
        // takes, so a snapshot never counts them twice or not at all.
        for (from, to) in [
            (&slot.counts.completed, &self.counts.completed),
            (&slot.counts.failed, &self.counts.failed),
            (&slot.counts.cancelled, &self.counts.cancelled),
        ] {
            to.fetch_add(from.load(Relaxed), Relaxed);
        }
        workers.retain(|s| !Arc::ptr_eq(s, &slot));
        drop(workers);
        WORKER_COUNTS.with(|s| s.borrow_mut().take());
        if let Some(runner) = &self.manager.batch_runner {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runner.thread_exit())) {
                log::error!("taskmanager: the batch runner's thread_exit panicked");
                drop_payload(payload);
            }
        }
    }

    /// The tasks this module's workers are running right now.
    pub(crate) fn running(&self) -> Vec<RunningTask> {
        let workers = lock(&self.workers).clone();
        workers
            .iter()
            .filter_map(|slot| {
                let id = slot.current.load(SeqCst);
                if id == 0 {
                    return None;
                }
                let named = lock(&slot.named);
                let name = match named.as_deref().map(Job::core) {
                    Some(core) if core.id() == id => core.name(),
                    _ => format!("task-{id}"),
                };
                Some(RunningTask { id, name })
            })
            .collect()
    }

    /// Sleeps until a job is queued (and returns it), the keep-alive passes
    /// or the manager shuts down (None).
    ///
    /// The sleep is a plain condition-variable wait, with no spinning or
    /// yielding first: a worker that yields while other modules' workers
    /// keep every core busy can wait a whole scheduler slice (milliseconds)
    /// before it runs again and falls asleep, and a job queued meanwhile
    /// waits with it. Asleep, it is woken at once.
    fn wait_for_work(&self) -> Option<Queued> {
        let deadline = Instant::now() + self.manager.keep_alive;
        let mut parked = lock(&self.park);
        loop {
            if let Some(job) = self.pop() {
                return Some(job);
            }
            let now = Instant::now();
            if self.manager.phase() != Phase::Running || now >= deadline {
                return None;
            }
            // Counted idle only while about to sleep, so that submitters
            // take the lock and make the wake-up call only when a worker
            // really sleeps. The fence pairs with the submitter's between
            // its push and its read of `idle`: either it sees this worker
            // idle (and notifies, once the lock held here is released by
            // the wait), or the check below sees its job.
            self.idle.fetch_add(1, SeqCst);
            fence(SeqCst);
            if self.queue.is_empty() && self.manager.phase() == Phase::Running {
                parked = self.wake.wait_timeout(parked, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            self.idle.fetch_sub(1, SeqCst);
        }
    }

    /// Tells the busy workers of other modules that this module's worker is
    /// being woken or started (see `make_way`). The write is on the wake-up
    /// path only, which makes a system call anyway; never per task.
    fn announce_wake(self: &Arc<Self>) {
        self.manager.woken_module.store(Arc::as_ptr(self) as usize, Relaxed);
        self.manager.wakes.fetch_add(1, Relaxed);
    }

    /// Between jobs: if another module's worker was woken since this worker
    /// last looked, yields the CPU once, so that the woken worker runs now
    /// instead of after this worker's time slice. When every core runs busy
    /// workers of one module, the kernel does not always let a woken thread
    /// preempt them, and a one-microsecond job of another module could wait
    /// milliseconds. Costs one load of a rarely written word per job.
    fn make_way(self: &Arc<Self>, wakes_seen: &mut u64) {
        let wakes = self.manager.wakes.load(Relaxed);
        if wakes == *wakes_seen {
            return;
        }
        *wakes_seen = wakes;
        if self.manager.woken_module.load(Relaxed) != Arc::as_ptr(self) as usize {
            yield_now();
        }
    }

    /// Wakes every idle worker: the manager is shutting down.
    pub(crate) fn wake_all(&self) {
        drop(lock(&self.park));
        self.wake.notify_all();
    }

    /// The next queued job, waiting a few microseconds for one before
    /// giving up: a producer that is a little slower than its workers then
    /// rarely has to wake a parked worker with a system call.
    ///
    /// A `hot` worker (one that has run many jobs since it last slept) also
    /// yields the CPU a few times before giving up: its producer is likely
    /// runnable and waiting for a core, and will refill the queue. A worker
    /// that is not hot never yields (see `wait_for_work` for why that
    /// matters: a job for a worker that gave up its slice waits with it).
    fn next_soon(&self, hot: bool) -> Option<Queued> {
        if let Some(job) = self.pop() {
            return Some(job);
        }
        if cfg!(loom) {
            // A spin measured in real time would make the models
            // non-deterministic; sleeping is what they check.
            return None;
        }
        let until = Instant::now() + SPIN;
        let mut pauses = 1u32;
        loop {
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            if let Some(job) = self.pop() {
                return Some(job);
            }
            if Instant::now() >= until {
                break;
            }
            pauses = (pauses * 2).min(64);
        }
        if hot {
            for _ in 0..HOT_YIELDS {
                yield_now();
                if let Some(job) = self.pop() {
                    return Some(job);
                }
            }
        }
        None
    }

    /// Runs `first` and, with a batch runner, up to a batch of the jobs
    /// queued behind it inside one `run_batch` call.
    fn run_batch(self: &Arc<Self>, first: Queued, slot: &WorkerSlot) {
        let Some(runner) = &self.manager.batch_runner else {
            return self.run(first, slot);
        };
        let mut first = Some(first);
        let mut batch = || {
            let jobs = first.take().into_iter().chain(std::iter::from_fn(|| self.pop())).take(BATCH);
            for job in jobs {
                self.run(job, slot);
            }
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runner.run_batch(&mut batch))) {
            log::error!("taskmanager: the batch runner panicked");
            drop_payload(payload);
        }
        // A runner that never called `batch` must not lose the job.
        if let Some(job) = first {
            self.run(job, slot);
        }
    }

    fn run(self: &Arc<Self>, queued: Queued, slot: &WorkerSlot) {
        let Queued { job, not_before } = queued;
        if not_before != 0 {
            self.manager.wait_until(not_before);
            if self.manager.shut_down_before(not_before) {
                // Handed over early, and shutdown came before it was due.
                self.cancel(job);
                return;
            }
        }
        let named = job.label().is_some_and(|(_, named)| named);
        if named {
            *lock(&slot.named) = job.share();
        }
        // Events: nothing is built unless someone listens. (The job tells
        // `Started` itself: only it knows whether a recurring tick runs.)
        let events = &self.manager.events;
        let watched =
            if events.wanted(log::Level::Warn) { job.share().map(|job| (job, Instant::now())) } else { None };
        // Jobs catch their users' panics; this is the last line of defence
        // so that nothing ever kills a worker.
        let ran = match catch_unwind(AssertUnwindSafe(|| job.run(&Context { module: self, slot }))) {
            Ok(mut ran) => {
                match COUNTED.with(|c| c.take()) {
                    // Counted as it ended (see `count_run`), perhaps as
                    // failed by an embedder: what is left is a cancel.
                    Some(failed) => {
                        (ran.completed, ran.failed) = (!failed, failed);
                        slot.counts.add(&Ran { cancelled: ran.cancelled, ..Ran::default() });
                    }
                    None => slot.counts.add(&ran),
                }
                ran
            }
            Err(payload) => {
                log::error!("taskmanager: a task panicked outside its own guard");
                drop_payload(payload);
                // Whatever the run counted stays counted; the next run
                // starts afresh.
                COUNTED.with(|c| c.take());
                Ran::default()
            }
        };
        slot.current.store(0, Relaxed);
        if let Some((job, started)) = watched {
            let duration = started.elapsed();
            if ran.failed {
                let task = job.core().task_ref();
                events.emit(log::Level::Warn, || Event::Failed { task, error: ran.error, duration });
            } else if ran.completed {
                events.emit(log::Level::Debug, || Event::Finished { task: job.core().task_ref(), duration });
            }
            if ran.cancelled {
                // Cancelled while queued (or, recurring, during this run):
                // the timer and shutdown did not see it go.
                events.emit(log::Level::Debug, || Event::Cancelled { task: job.core().task_ref() });
            }
            drop_quietly(job);
        }
        if named {
            // Dropped outside the lock: the last reference drops the task's
            // result, whose `Drop` is user code.
            let ran = lock(&slot.named).take();
            drop_quietly(ran);
        }
    }

    /// Gives up this worker's place; returns false if work arrived while
    /// leaving and the place could be taken back, so the worker stays.
    fn retire(&self) -> bool {
        self.alive.fetch_sub(1, SeqCst);
        fence(SeqCst);
        self.queue.is_empty() || !self.reserve()
    }
}
