//! What a module's runs came to: per-worker [`WorkerSlot`]s (the running
//! task, completed/failed/cancelled counts), and the module's reports read
//! from them (`Pool::stats`, `Pool::running`). A run is counted the moment
//! its method and callbacks are over, from what it returned (see
//! `RunContext::count_run`).

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;

use super::Pool;
use crate::job::Job;
use crate::metrics::Batch;
use crate::report::{RunningTask, Stats};
use crate::sync::{lock, AtomicU64, Mutex};

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
pub(crate) struct WorkerSlot {
    /// The running task's id; 0 between tasks.
    pub(crate) current: AtomicU64,
    /// Whether this worker holds a recurring entry of the timer's, to run
    /// at its due time (see `Timer::reschedule`). Touched by the worker
    /// only; std's, as it is no hand-off.
    pub(crate) holding: std::sync::atomic::AtomicBool,
    pub(crate) named: Mutex<Option<Arc<dyn Job>>>,
    /// Its place was given to a new thread while it ran a task past its
    /// time limit (see `limit.rs`): it exits once that run returns.
    pub(crate) detached: std::sync::atomic::AtomicBool,
    /// What this worker's runs came to; on its own cache line, so counting
    /// costs no sharing.
    pub(crate) counts: Counts,
    /// With metrics on, this worker's runs not yet given to the recorder
    /// (see `metrics/batch.rs`). Its worker takes the lock at each run's
    /// start and end; a reader of the metrics, to hand them over.
    batch: std::sync::Mutex<Batch>,
}

impl WorkerSlot {
    pub(crate) fn batch(&self) -> std::sync::MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }
}

std::thread_local! {
    /// The slot of the worker running on this thread (set while it lives).
    static WORKER_COUNTS: std::cell::RefCell<Option<Arc<WorkerSlot>>> = const { std::cell::RefCell::new(None) };
}

std::thread_local! {
    /// What a run left to do once it is counted (see [`after_count`]).
    static AFTER_COUNT: std::cell::RefCell<Option<Box<dyn FnOnce()>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `then` once the run on this thread has been counted and told (or
/// now, off a worker): a Redis task sends its result in its acknowledgement
/// this way, so that whoever got the result sees the run counted, as with a
/// task run in this process.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn after_count(then: Box<dyn FnOnce()>) {
    let on_worker = WORKER_COUNTS.with(|slot| slot.borrow().is_some());
    if !on_worker {
        return then();
    }
    let earlier = AFTER_COUNT.with(|after| after.borrow_mut().replace(then));
    if let Some(earlier) = earlier {
        earlier();
    }
}

/// Runs what the run on this thread left to do once counted, if anything.
pub(crate) fn run_after_count() {
    if let Some(then) = AFTER_COUNT.with(|after| after.borrow_mut().take()) {
        then();
    }
}

/// Makes `slot` this thread's worker slot, or (None) clears it.
pub(crate) fn set_worker_slot(slot: Option<Arc<WorkerSlot>>) {
    WORKER_COUNTS.with(|s| *s.borrow_mut() = slot);
}

/// The id of the task running on this thread, if it is a worker's.
pub(crate) fn current_task() -> Option<u64> {
    WORKER_COUNTS
        .with(|slot| slot.borrow().as_ref().map(|slot| slot.current.load(Relaxed)))
        .filter(|&id| id != 0)
}

/// Completed, failed, cancelled and retried counts. std's atomics, also under
/// loom: statistics, not part of any hand-off.
#[derive(Default)]
pub(crate) struct Counts {
    completed: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    cancelled: std::sync::atomic::AtomicU64,
    retried: std::sync::atomic::AtomicU64,
    abandoned: std::sync::atomic::AtomicU64,
}

impl Counts {
    pub(crate) fn add_to(&self, stats: &mut Stats) {
        stats.completed += self.completed.load(Relaxed);
        stats.failed += self.failed.load(Relaxed);
        stats.cancelled += self.cancelled.load(Relaxed);
        stats.retried += self.retried.load(Relaxed);
        stats.abandoned += self.abandoned.load(Relaxed);
    }

    /// Moves `other`'s counts into these (a worker's, as it exits).
    pub(crate) fn absorb(&self, other: &Counts) {
        for (from, to) in [
            (&other.completed, &self.completed),
            (&other.failed, &self.failed),
            (&other.cancelled, &self.cancelled),
            (&other.retried, &self.retried),
            (&other.abandoned, &self.abandoned),
        ] {
            to.fetch_add(from.load(Relaxed), Relaxed);
        }
    }

    /// One run over: completed, or failed.
    pub(crate) fn count_run(&self, failed: bool) {
        let count = if failed { &self.failed } else { &self.completed };
        count.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_retry(&self) {
        self.retried.fetch_add(1, Relaxed);
    }

    /// A run given up past its time limit: a failure, and abandoned.
    pub(crate) fn count_abandoned(&self) {
        self.failed.fetch_add(1, Relaxed);
        self.abandoned.fetch_add(1, Relaxed);
    }

    pub(crate) fn count_cancelled(&self) {
        self.cancelled.fetch_add(1, Relaxed);
    }
}

/// What a module reports, read from its workers' slots.
impl Pool {
    /// See [`Module::stats`](crate::Module::stats).
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = Stats {
            queued: self.ready.len(),
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
}
