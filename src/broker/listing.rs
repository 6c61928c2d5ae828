//! The delayed one-shot tasks this manager sent that still wait in Redis,
//! for its listing ([`TaskManager::tasks`](crate::TaskManager::tasks)), as
//! in-process a manager lists the tasks in its own timer.
//!
//! Which tasks, from here; whether each still waits, and when it falls
//! due, from Redis. Not from the handles: a handle its user dropped (fire
//! and forget) leaves its task waiting, and listed in-process. Not from
//! Redis alone: `P:delayed` holds every process's delayed tasks, and
//! reading all of it to find this manager's would cost a listing what the
//! whole cluster has scheduled. So each delayed submission leaves a note
//! here (its id, name, module and due time by this process's clock), and a
//! listing asks Redis for the notes' due times in one call (`ZMSCORE`):
//! one not there any more was cancelled or fell due. A note goes when its
//! task is cancelled, when a listing finds it gone, and once its due time
//! has passed (then it has left the delayed set, or is leaving it: a task
//! past due is not listed, as in-process, where it is in its queue by
//! then); so the notes are at most the tasks that still wait.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Broker;
use crate::report::{TaskInfo, TaskState};

/// A delayed task this manager sent, as its listing shows it.
struct Note {
    id: u64,
    name: String,
    module: Arc<str>,
    /// When it falls due, by this process's clock: for dropping the note,
    /// and for the listing if Redis cannot be asked.
    due: Instant,
}

/// The notes, by task id in the broker. See the module docs.
#[derive(Default)]
pub(super) struct Delayed {
    notes: HashMap<String, Note>,
    /// How many notes the last pruning kept: the next prunes at twice as
    /// many, so pruning costs each submission O(1) on average.
    kept: usize,
}

impl Broker {
    /// Notes that `task` (the handle `id`, named `name`) waits in Redis's
    /// delayed set until `delay` from now.
    pub(super) fn note_delayed(&self, task: &str, id: u64, name: String, module: &Arc<str>, delay: Duration) {
        let now = Instant::now();
        let due = now.checked_add(delay).unwrap_or(now + Duration::from_secs(100 * 365 * 24 * 3600));
        let mut delayed = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
        if delayed.notes.len() >= (2 * delayed.kept).max(64) {
            delayed.notes.retain(|_, note| note.due > now);
            delayed.kept = delayed.notes.len();
        }
        delayed.notes.insert(task.to_owned(), Note { id, name, module: Arc::clone(module), due });
    }

    /// `task` waits no more (cancelled).
    pub(super) fn forget_delayed(&self, task: &str) {
        self.delayed.lock().unwrap_or_else(|p| p.into_inner()).notes.remove(task);
    }

    /// The delayed tasks this manager sent that still wait, each due as
    /// Redis says (by its clock, as `FIRE` moves them). If Redis cannot be
    /// asked, as the notes say (logged).
    pub(crate) fn delayed_tasks(&self) -> Vec<TaskInfo> {
        let now = Instant::now();
        let tasks: Vec<String> = {
            let mut delayed = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
            delayed.notes.retain(|_, note| note.due > now);
            delayed.notes.keys().cloned().collect()
        };
        if tasks.is_empty() {
            return Vec::new();
        }
        let asked = self.with_conn(|conn| {
            redis::pipe()
                .cmd("ZMSCORE")
                .arg(self.delayed_key())
                .arg(&tasks)
                .cmd("TIME")
                .query::<(Vec<Option<f64>>, (u64, u64))>(conn)
        });
        let mut delayed = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
        let dues: Vec<Option<Duration>> = match asked {
            Ok((scores, (secs, micros))) => {
                let redis_now = (secs * 1000 + micros / 1000) as f64;
                scores
                    .into_iter()
                    .map(|due| due.map(|due| Duration::from_millis((due - redis_now).max(0.0) as u64)))
                    .collect()
            }
            Err(e) => {
                log::warn!("taskmanager: {}", self.call_error("listing the delayed tasks", &e));
                tasks
                    .iter()
                    .map(|task| delayed.notes.get(task).map(|note| note.due.saturating_duration_since(now)))
                    .collect()
            }
        };
        let mut listed = Vec::new();
        for (task, due) in tasks.iter().zip(dues) {
            let Some(due) = due else {
                // Fell due (`FIRE` moved it), or Redis lost its data.
                delayed.notes.remove(task);
                continue;
            };
            let Some(note) = delayed.notes.get(task) else { continue };
            listed.push(TaskInfo {
                id: note.id,
                name: note.name.clone(),
                module: note.module.to_string(),
                state: TaskState::Scheduled,
                next_due: Some(due),
                interval: None,
                runs: 0,
                failures: 0,
                next_run: Some(std::time::UNIX_EPOCH + Duration::from_nanos(self.rt.clock.wall()) + due),
                cron: None,
                zone: None,
            });
        }
        listed
    }
}
