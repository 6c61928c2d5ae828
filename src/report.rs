//! What the manager reports about its work: [`Stats`] (counts),
//! [`TaskInfo`] (a listed task) and [`RunningTask`] (a task running now).
//! Plain values, made by the modules and the manager.

use std::time::{Duration, SystemTime};

/// A snapshot of what a module (or, summed, a manager) holds and has done:
/// [`Module::stats`](crate::Module::stats), [`TaskManager::stats`](crate::TaskManager::stats).
/// Cheap to take: a few atomic loads per worker, no stopping of anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks waiting in the queue for a worker.
    pub queued: usize,
    /// Tasks running now.
    pub running: usize,
    /// Runs that returned (each run of a recurring task counts).
    pub completed: u64,
    /// Runs that failed (the method or a callback panicked, or a fallible
    /// method returned an error) and were not retried: for a task with
    /// [`Task::retry`](crate::Task::retry), its last failure only.
    pub failed: u64,
    /// Failed runs followed by a retry ([`Task::retry`](crate::Task::retry)).
    pub retried: u64,
    /// Runs given up while still running, past their time limit
    /// ([`Task::time_limit`](crate::Task::time_limit)); also counted in
    /// `failed`. Each left its thread in the call and gave its worker's
    /// place to a new thread: until such a call returns, the module has
    /// that many threads beyond `max_workers` (none of them runs anything
    /// else).
    pub abandoned: u64,
    /// Tasks cancelled before they ran (by a handle, `cancel_pending` or
    /// shutdown), and recurring tasks ended by a cancel.
    pub cancelled: u64,
    /// The most worker threads at once so far. A worker starts only for
    /// work no running worker can take, so this is the most tasks that ran
    /// at once; it never exceeds `max_workers`.
    pub peak_concurrency: usize,
    /// Worker threads alive now (running or idle).
    pub workers: usize,
    /// Scheduled tasks waiting in the timer (recurring ones between runs).
    pub pending_timers: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Stats) {
        self.queued += other.queued;
        self.running += other.running;
        self.completed += other.completed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.retried += other.retried;
        self.abandoned += other.abandoned;
        self.peak_concurrency += other.peak_concurrency;
        self.workers += other.workers;
        self.pending_timers += other.pending_timers;
    }
}

/// A task that was running when a report was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningTask {
    /// The task's number, as [`TaskHandle::id`](crate::TaskHandle::id).
    pub id: u64,
    /// The task's name, as [`TaskHandle::name`](crate::TaskHandle::name).
    pub name: String,
}

/// A scheduled or recurring task, as [`TaskManager::tasks`](crate::TaskManager::tasks) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The task's number, as its handle's `id()`.
    pub id: u64,
    /// The task's name, as its handle's `name()`.
    pub name: String,
    /// The name of its module ([`Module::name`](crate::Module::name)).
    pub module: String,
    /// Scheduled, running or paused.
    pub state: TaskState,
    /// Time from now until its next run (zero if due now).
    pub next_due: Option<Duration>,
    /// A recurring task's interval; None for a one-shot task.
    pub interval: Option<Duration>,
    /// Runs so far (recurring tasks; failed runs included).
    pub runs: u64,
    /// Failed runs so far (recurring tasks).
    pub failures: u64,
    /// When its next run is due, on the wall clock: a calendar task's next
    /// time (before its jitter); for others, now plus `next_due`.
    pub next_run: Option<SystemTime>,
    /// A calendar task's cron expression ([`Recurrence::cron`](crate::Recurrence::cron)).
    pub cron: Option<String>,
    /// A calendar task's time zone (IANA name), the zone its times are read
    /// in.
    pub zone: Option<String>,
}

/// What a listed task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for its due time.
    Scheduled,
    /// A run is in progress.
    Running,
    /// A recurring task, paused: its ticks are skipped.
    Paused,
}
