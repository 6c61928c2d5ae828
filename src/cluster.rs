//! What [`TaskManager::cluster_stats`](crate::TaskManager::cluster_stats)
//! reports: the whole cluster of processes sharing a broker, read from
//! Redis (feature `redis`).

use std::time::{Duration, SystemTime};

/// The cluster sharing this manager's broker and key prefix, as Redis saw
/// it at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterStats {
    /// Every module that has a stream, by name.
    pub modules: Vec<ModuleLoad>,
    /// One-shot tasks scheduled for later (`schedule_named_task`), not yet
    /// due.
    pub delayed: usize,
    /// Every shared recurring schedule, soonest first.
    pub schedules: Vec<ScheduleInfo>,
    /// Every worker process seen in the last day, live ones first.
    pub workers: Vec<WorkerInfo>,
    /// Tasks taken over from workers that stopped renewing their leases,
    /// in all.
    pub reclaimed: u64,
    /// How the tasks of each task name ended, cluster-wide, by module and
    /// name: totals since the counters began, and rates.
    pub outcomes: Vec<TaskOutcomes>,
    /// Tasks in the dead-letter set.
    pub dead_letters: usize,
}

impl ClusterStats {
    /// Tasks waiting for a worker, in every module.
    pub fn queued(&self) -> usize {
        self.modules.iter().map(|m| m.queued).sum()
    }

    /// Tasks claimed and not yet acknowledged, in every module.
    pub fn running(&self) -> usize {
        self.modules.iter().map(|m| m.running).sum()
    }
}

/// One module's tasks in Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleLoad {
    /// The module's name.
    pub name: String,
    /// Sent and not yet claimed by any worker.
    pub queued: usize,
    /// Claimed by a worker and not yet acknowledged (running, or held by a
    /// dead worker until its lease runs out).
    pub running: usize,
}

/// Counts of how tasks ended, one per outcome: `u64` for totals, `f64` for
/// rates per minute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcomes<T = u64> {
    /// Runs that returned.
    pub succeeded: T,
    /// Runs that failed with no retry left (or were given up past their
    /// time limit).
    pub failed: T,
    /// Runs that failed and were scheduled again (their retry policy).
    pub retried: T,
    /// Tasks moved to the dead-letter set, for whatever reason.
    pub dead_lettered: T,
    /// Tasks taken out of Redis by their handle's cancel before any
    /// worker claimed them.
    pub cancelled: T,
}

impl Outcomes<u64> {
    /// Adds `n` to the count named `what` (`succeeded`, `failed`,
    /// `retried`, `dead_lettered`, `cancelled`); other names are ignored.
    pub(crate) fn add(&mut self, what: &str, n: u64) {
        let count = match what {
            "succeeded" => &mut self.succeeded,
            "failed" => &mut self.failed,
            "retried" => &mut self.retried,
            "dead_lettered" => &mut self.dead_lettered,
            "cancelled" => &mut self.cancelled,
            _ => return,
        };
        *count += n;
    }
}

/// How the tasks of one task name ended, counted in Redis by the scripts
/// that record each outcome (by every process sharing the prefix).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskOutcomes {
    /// The module whose workers run it.
    pub module: String,
    /// The task's registered name (never its `name=` label).
    pub name: String,
    /// Since the counters began.
    pub total: Outcomes,
    /// Per minute over the last minute, by Redis's clock.
    pub per_minute_1: Outcomes<f64>,
    /// Per minute over the last 5 minutes.
    pub per_minute_5: Outcomes<f64>,
}

/// A worker process: one that claims tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Its name in the cluster (`host-pid-nonce`).
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The modules it claims tasks of.
    pub modules: Vec<String>,
    /// Since its last heartbeat (every third of the lease).
    pub last_seen: Duration,
    /// Whether it renewed its heartbeat within the lease. A worker that
    /// stopped cleanly is no longer listed; one listed and not alive died
    /// (or lost Redis), and its tasks are taken over after the lease.
    pub alive: bool,
    /// Tasks it holds now.
    pub running: usize,
    /// Tasks other workers took over from it after it stopped renewing.
    pub reclaimed_from: u64,
}

/// A shared recurring schedule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInfo {
    /// Its key (the task's name unless given).
    pub key: String,
    /// The module whose workers run it.
    pub module: String,
    /// The handler it runs.
    pub name: String,
    /// Time between ticks; zero for a calendar schedule.
    pub interval: Duration,
    /// A calendar schedule's cron expression
    /// ([`Recurrence::cron`](crate::Recurrence::cron)); None for an
    /// interval.
    pub cron: Option<String>,
    /// A calendar schedule's time zone (IANA name).
    pub zone: Option<String>,
    /// Until its next tick fires (zero if due now), jitter included.
    pub next_due: Duration,
    /// When its next tick is due, on Redis's wall clock (a calendar
    /// schedule's time, before its jitter).
    pub next_run: Option<SystemTime>,
    /// Whether it is paused (ticks pass, nothing runs).
    pub paused: bool,
    /// Whether a tick is running now (the next one is skipped until it
    /// ends).
    pub running: bool,
    /// Ticks run, and ticks skipped: the previous one still ran, the
    /// schedule was paused, a later tick ran for them (no burst), or (a
    /// calendar schedule) its [`Misfire`](crate::Misfire) policy missed them.
    pub ticks: u64,
    /// See `ticks`.
    pub skipped: u64,
    /// Ticks folded into a later run ([`Misfire::Coalesce`](crate::Misfire::Coalesce)).
    pub coalesced: u64,
    /// Ticks whose run failed.
    pub failures: u64,
}
