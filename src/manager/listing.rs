//! [`TaskManager::tasks`](crate::TaskManager::tasks): the manager's pending
//! and recurring tasks, from its timer's heap and recurring registry, and
//! with a broker the delayed tasks it sent (`broker/listing.rs`).

use std::time::Duration;

use super::Manager;
use crate::report::{TaskInfo, TaskState};
use crate::schedule::Nanos;

impl Manager {
    /// See [`TaskManager::tasks`](crate::TaskManager::tasks).
    pub(crate) fn tasks(&self) -> Vec<TaskInfo> {
        let now = self.rt.now();
        let until = |due: Nanos| Duration::from_nanos(due.saturating_sub(now));
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
                interval: Some(Duration::from_nanos(info.interval)),
                runs: info.runs,
                failures: info.failures,
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
