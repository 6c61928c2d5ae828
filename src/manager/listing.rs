//! [`TaskManager::tasks`](crate::TaskManager::tasks): the manager's pending
//! and recurring tasks, from its timer's heap and recurring registry, and
//! with a broker the delayed tasks it sent (`broker/listing.rs`).

use std::time::{Duration, UNIX_EPOCH};

use super::Manager;
use crate::report::{TaskInfo, TaskState};
use crate::schedule::Nanos;

impl Manager {
    /// See [`TaskManager::tasks`](crate::TaskManager::tasks).
    pub(crate) fn tasks(&self) -> Vec<TaskInfo> {
        let times = self.rt.times();
        let now = times.mono;
        let until = |due: Nanos| Duration::from_nanos(due.saturating_sub(now));
        let wall = |due: Nanos| Some(UNIX_EPOCH + Duration::from_nanos(times.wall) + until(due));
        let mut tasks = Vec::new();
        self.timer.for_each_pending(|due, job, pool| {
            if job.recurring_info().is_some() {
                return; // listed below, with its schedule
            }
            let core = job.core();
            tasks.push(TaskInfo {
                id: core.id(),
                name: core.name(),
                module: pool.name.to_string(),
                state: TaskState::Scheduled,
                next_due: Some(until(due)),
                interval: None,
                runs: 0,
                failures: 0,
                next_run: wall(due),
                cron: None,
                zone: None,
            });
        });
        for (job, module) in self.timer.recurring() {
            let (Some(info), core) = (job.recurring_info(), job.core()) else { continue };
            let state = if core.is_running() {
                TaskState::Running
            } else if info.paused {
                TaskState::Paused
            } else {
                TaskState::Scheduled
            };
            tasks.push(TaskInfo {
                id: core.id(),
                name: core.name(),
                module: module.to_string(),
                state,
                next_due: Some(until(info.next_due)),
                interval: (info.interval > 0).then(|| Duration::from_nanos(info.interval)),
                runs: info.runs,
                failures: info.failures,
                next_run: info.next_wall.or_else(|| wall(info.next_due)),
                cron: info.calendar.as_ref().map(|c| c.expression().to_owned()),
                zone: info.calendar.as_ref().map(|c| c.zone_name().to_owned()),
            });
        }
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            tasks.extend(broker.delayed_tasks());
        }
        tasks.sort_by_key(|t| (t.next_due, t.id));
        tasks
    }
}
