//! [`Pool`]: a module's execution, its queue and its own worker threads,
//! never more than `max_workers` of them, started on demand and retired when
//! idle, so a busy module never delays another. The queue is in `ready.rs`,
//! the workers' loop in `worker.rs`, what a run may ask of it in
//! `context.rs`, their counts and the reports read from them in `counts.rs`;
//! the public [`Module`](crate::Module) is a handle to a pool.
//!
//! See `PROTOCOL.md` for the spawn/retire hand-off.

mod context;
mod counts;
mod metered;
mod ready;
mod worker;

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::err::{ConfigError, SubmitError};
use crate::event::Event;
use crate::job::{Core, Job, JobRef};
use crate::lifecycle::Phase;
use crate::metrics::ModuleGauges;
use crate::runtime::Runtime;
use crate::schedule::Nanos;
use crate::sync::{fence, lock, yield_now, AtomicUsize, Condvar, Mutex};
use crate::timer::driver::{Target, Timer};

#[cfg(feature = "redis")]
pub(crate) use counts::after_count;
pub(crate) use counts::current_task;
use counts::{Counts, WorkerSlot};
use ready::{Queued, ReadyQueue};

/// The first wait before retrying a worker start that failed; it doubles
/// with each failure in a row, up to `SPAWN_RETRY_MAX`.
const SPAWN_RETRY_FIRST: Duration = Duration::from_millis(10);
const SPAWN_RETRY_MAX: Duration = Duration::from_secs(1);

/// A module's state, shared by its handles, its workers and timer entries.
pub(crate) struct Pool {
    pub(crate) name: Arc<str>,
    pub(crate) rt: Arc<Runtime>,
    /// Due work, from every source (see `ready.rs`): what workers take.
    ready: ReadyQueue,
    /// The manager's timer, where this pool's scheduled work waits.
    timer: Arc<Timer<Pool>>,
    /// std's: changed only before the manager starts, when no worker exists
    /// (see `set_max_workers`), so never part of a hand-off.
    max_workers: std::sync::atomic::AtomicUsize,
    /// Workers that exist (or are being started); never above max_workers.
    alive: AtomicUsize,
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
    timers: AtomicUsize,
    peak: AtomicUsize, // the most workers alive at once
    /// Failed worker starts in a row (for the retry backoff). std's: a
    /// count for logs, not part of any hand-off.
    spawn_failures: std::sync::atomic::AtomicU32,
    /// The module's default [`Retry`](crate::Retry), set once when it is
    /// built (`ModuleBuilder::retry`). std's: configuration.
    pub(crate) retry: std::sync::OnceLock<Arc<crate::Retry>>,
    /// Made when metrics are first on here (see `metrics.rs`). std's:
    /// set once.
    gauges: std::sync::OnceLock<ModuleGauges>,
}

impl Pool {
    /// A pool named `name` whose scheduled work waits in `timer`. The caller
    /// checks `max_workers` (at least 1) and `capacity` (at least 1;
    /// `usize::MAX` for unbounded).
    pub(crate) fn new(timer: &Arc<Timer<Pool>>, name: Arc<str>, max_workers: usize, capacity: usize) -> Self {
        Pool {
            name,
            rt: Arc::clone(timer.runtime()),
            ready: ReadyQueue::new(capacity),
            timer: Arc::clone(timer),
            max_workers: std::sync::atomic::AtomicUsize::new(max_workers),
            alive: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            park: Mutex::new(()),
            wake: Condvar::new(),
            workers: Mutex::new(Vec::new()),
            counts: Counts::default(),
            timers: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            spawn_failures: std::sync::atomic::AtomicU32::new(0),
            retry: std::sync::OnceLock::new(),
            gauges: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn max_workers(&self) -> usize {
        self.max_workers.load(SeqCst)
    }

    /// Changes `max_workers` (at least 1) before the manager starts.
    pub(crate) fn set_max_workers(&self, max_workers: usize) -> Result<(), ConfigError> {
        if max_workers == 0 {
            return Err(ConfigError::ZeroMaxWorkers);
        }
        if self.rt.life.phase() != Phase::Created {
            return Err(ConfigError::Started);
        }
        self.max_workers.store(max_workers, SeqCst);
        Ok(())
    }

    /// Worker threads right now (running or idle).
    pub(crate) fn worker_count(&self) -> usize {
        self.alive.load(SeqCst)
    }

    /// Tasks queued, waiting for a worker.
    pub(crate) fn queued(&self) -> usize {
        self.ready.len()
    }

    /// The timer this pool's scheduled work waits in.
    pub(crate) fn timer(&self) -> &Arc<Timer<Pool>> {
        &self.timer
    }

    /// Queues a user's `job`, the queue holding `queued` (the caller keeps
    /// its own: no atomic step here). See `PROTOCOL.md`, "Submit".
    pub(crate) fn submit(self: &Arc<Self>, queued: Arc<dyn Job>, job: &dyn Job) -> Result<(), SubmitError> {
        let life = &self.rt.life;
        if !life.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        if life.inherited() {
            return Err(SubmitError::Forked);
        }
        let queued = Queued { job: JobRef::new(queued), not_before: 0, ready_at: self.ready_at() };
        self.ready.try_push(queued).map_err(|capacity| SubmitError::QueueFull { capacity })?;
        fence(SeqCst);
        match life.phase() {
            Phase::Created => Ok(()),
            Phase::Running => match self.ensure_worker() {
                Ok(()) => Ok(()),
                // Nobody will run it: take it back if it is still queued.
                // A whole shutdown may have passed since the phase was read
                // (the thread registry then refuses): say so, not "spawn".
                Err(e) if self.alive.load(SeqCst) == 0 && job.cancel() => Err(match life.phase() {
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

    /// Puts a new job in the timer, due at `due`.
    pub(crate) fn schedule(self: &Arc<Self>, job: Arc<dyn Job>, due: Nanos) -> Result<(), SubmitError> {
        self.timer.schedule(self, job, due)
    }

    /// Puts a recurring job back in the timer after a run, or in the hands
    /// of `holder`, the worker that ran it (see [`Timer::reschedule`]).
    pub(crate) fn reschedule(
        self: &Arc<Self>,
        job: Arc<dyn Job>,
        due: Option<Nanos>,
        holder: Option<usize>,
    ) -> bool {
        self.timer.reschedule(self, job, due, holder)
    }

    /// Whether a worker that ran a recurring job, next due at `due`, should
    /// keep it and run it then itself: only with the real clock (a manual
    /// one moves only when told, and the timer is what listens), when no
    /// work is queued (it would give the job back at once), and when `due`
    /// falls within the keep-alive (it would retire first).
    ///
    /// Under loom, whose models do not let time pass, only a job due half
    /// an hour or more ahead is held (the models' are due in an hour): then
    /// it never falls due inside a model, whatever the real clock says, and
    /// the models stay deterministic.
    fn may_hold(&self, due: Nanos) -> bool {
        const LOOM_HOLDS_FROM: Nanos = 30 * 60 * 1_000_000_000;
        if !self.ready.is_empty() || self.rt.life.phase() != Phase::Running {
            return false;
        }
        let wait = due.saturating_sub(self.rt.now());
        if cfg!(loom) && wait < LOOM_HOLDS_FROM {
            return false;
        }
        self.rt.clock.real_wait(wait).is_some_and(|wait| wait <= self.rt.keep_alive)
    }

    /// Takes the next queued job, if any.
    fn pop(&self) -> Option<Queued> {
        self.ready.pop()
    }

    /// A worker could not be started for queued work: logs it, tells it as
    /// an event, and, if no worker is left to take the work, has the
    /// timer try again after a backoff (10 ms, doubling to 1 s).
    fn spawn_failed(self: &Arc<Self>, error: &std::io::Error) {
        let attempt = self.spawn_failures.fetch_add(1, Relaxed).saturating_add(1);
        let retry_in = SPAWN_RETRY_FIRST.saturating_mul(1 << (attempt - 1).min(7)).min(SPAWN_RETRY_MAX);
        log::error!(
            "taskmanager: could not start a worker thread for module {} (attempt {attempt}): {error}; \
             its queued work waits, retrying in {retry_in:?}",
            self.name
        );
        self.rt.events.emit(log::Level::Error, || Event::SpawnFailed {
            module: self.name.to_string(),
            error: error.to_string(),
            attempt,
            retry_in,
        });
        if self.alive.load(SeqCst) == 0 {
            self.timer.retry_spawn(self, Instant::now() + retry_in);
        }
    }

    /// Cancels every queued job; returns how many were cancelled.
    pub(crate) fn cancel_queued(&self) -> usize {
        std::iter::from_fn(|| self.pop()).map(|q| self.cancel(q.job)).filter(|&c| c).count()
    }

    /// Whether nothing refers to this module but the manager's registry and
    /// it holds no work: it can be forgotten.
    pub(crate) fn is_forgotten(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1 && self.ready.is_empty()
    }

    /// Wakes every idle worker: the manager is shutting down.
    pub(crate) fn wake_all(&self) {
        drop(lock(&self.park));
        self.wake.notify_all();
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
        let pool = Arc::clone(self);
        let spawned = self.rt.threads.spawn("taskmanager-worker", move || pool.work());
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
        match self.alive.fetch_update(SeqCst, SeqCst, |n| (n < self.max_workers()).then_some(n + 1)) {
            Ok(before) => {
                self.peak.fetch_max(before + 1, Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Tells the busy workers of other modules that this module's worker is
    /// being woken or started (see `make_way`). The write is on the wake-up
    /// path only, which makes a system call anyway; never per task.
    fn announce_wake(self: &Arc<Self>) {
        self.rt.woken_module.store(Arc::as_ptr(self) as usize, Relaxed);
        self.rt.wakes.fetch_add(1, Relaxed);
    }

    /// Between jobs: if another module's worker was woken since this worker
    /// last looked, yields the CPU once, so that the woken worker runs now
    /// instead of after this worker's time slice. When every core runs busy
    /// workers of one module, the kernel does not always let a woken thread
    /// preempt them, and a one-microsecond job of another module could wait
    /// milliseconds. Costs one load of a rarely written word per job.
    pub(super) fn make_way(self: &Arc<Self>, wakes_seen: &mut u64) {
        let wakes = self.rt.wakes.load(Relaxed);
        if wakes == *wakes_seen {
            return;
        }
        *wakes_seen = wakes;
        if self.rt.woken_module.load(Relaxed) != Arc::as_ptr(self) as usize {
            yield_now();
        }
    }
}

impl Target for Pool {
    /// Queues an accepted job (from the timer, or a recurring run) and makes
    /// sure a worker will take it.
    fn dispatch(self: &Arc<Self>, job: JobRef, not_before: Nanos) {
        self.enqueue(job, not_before);
        self.kick_queued();
    }

    fn enqueue(&self, job: JobRef, not_before: Nanos) {
        self.ready.push(Queued { job, not_before, ready_at: self.ready_at() });
    }

    /// After `enqueue`s: with more than one job queued and more than one
    /// worker idle, wakes them all (one call); else as `kick`.
    fn kick_queued(self: &Arc<Self>) {
        fence(SeqCst);
        if self.ready.len() > 1 && self.idle.load(SeqCst) > 1 && self.rt.life.phase() != Phase::Created {
            self.wake_all();
            self.announce_wake();
            return;
        }
        self.kick();
    }

    /// Cancels a job of this module taken out of its queue or the timer;
    /// if that cancelled it, counts it and tells the event.
    fn cancel(&self, job: JobRef) -> bool {
        let events = &self.rt.events;
        let watched = if events.wanted(log::Level::Debug) { job.share() } else { None };
        let metered = self.metered(&job);
        let cancelled = job.cancel();
        if cancelled {
            self.count_cancelled(metered.as_deref().map(Job::core));
            if let Some(job) = watched {
                events.cancelled(|| job.core().task_ref());
            }
        }
        cancelled
    }

    fn count_cancelled(&self, core: Option<&Core>) {
        self.counts.count_cancelled();
        self.cancelled_metric(core);
    }

    /// Starts a worker if there is queued work, none is idle and the cap
    /// allows; logs a failure to spawn (the work stays queued for the next
    /// kick). Callers fence between their push and this.
    fn kick(self: &Arc<Self>) {
        if self.rt.life.phase() == Phase::Created || self.ready.is_empty() {
            return;
        }
        if let Err(e) = self.ensure_worker() {
            self.spawn_failed(&e);
            return;
        }
        // A backlog (queued before the start, or while starts failed) gets a
        // worker per job, up to max_workers, not one worker for all of it.
        // When every worker is busy this costs one load.
        let mut backlog = None;
        while self.alive.load(SeqCst) < self.max_workers() {
            let left = backlog.get_or_insert_with(|| self.ready.len().saturating_sub(1));
            if *left == 0 {
                return;
            }
            *left -= 1;
            if let Err(e) = self.ensure_worker() {
                self.spawn_failed(&e);
                return;
            }
        }
    }

    fn timers(&self) -> &AtomicUsize {
        &self.timers
    }

    fn wake_holders(&self) {
        self.wake_all();
    }
}
