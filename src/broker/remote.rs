//! [`RemoteCell`]: the cell behind the handle of a task sent through the
//! broker. The listener settles it when the result arrives; cancelling it
//! takes the task out of Redis, cluster-wide, if no worker has claimed it;
//! asked whether it runs, it asks Redis whether a worker has claimed it
//! ([`CLAIMED`]).
//!
//! Why asked, not told: a worker could tell the submitter when each run
//! starts (a `PUBLISH` per task, and a message for the submitter's
//! listener to read), but every task would pay for it, and most handles
//! are never asked (fire and forget, or only waited on). Asking costs one
//! script call per `is_running()` of a task not finished, and nothing for
//! anyone who never asks. A claimed task is as good as running: a claimer
//! claims no more than its module has free workers (`claimer.rs`), and a
//! claimed task cannot be cancelled any more, just as a running one.

use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use serde_json::Value;

use super::Broker;
use crate::err::TaskError;
use crate::job::{Core, Label, OneShot, Outcome, Waitable};
use crate::pool::Pool;
use crate::timer::driver::Target;

/// Where a sent task waits in Redis, for a cancel.
pub(crate) enum Place {
    /// Not sent yet (or the send failed).
    Nowhere,
    /// In its stream, as this entry.
    Stream { entry: String },
    /// In the delayed set, under its task id.
    Delayed,
}

/// Whether a worker holds a task: its entry in its stream's consumer
/// group's pending list (claimed, not acknowledged). Returns that entry's
/// id, or an empty string if no worker holds it.
///
/// The entry the submitter knows is checked first: pending (claimed), or
/// still in the stream unclaimed (queued). Gone from there, the task may
/// wait in the delayed set (delayed, or a failed run waiting to retry: not
/// running), or be in the stream as another entry (a delayed task or a
/// retry that fell due, a task handed back): then the group's pending
/// entries are searched for its task id, at most `ARGV[4]` of them (a
/// stream's pending entries are what its workers hold, at most their
/// workers).
///
/// KEYS: the task's stream, the delayed set. ARGV: group, the known entry
/// (empty: none), task id, most pending entries to search.
pub(super) const CLAIMED: &str = r"
local stream, group, entry, task = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if entry ~= '' then
  local ok, pending = pcall(redis.call, 'XPENDING', stream, group, entry, entry, 1)
  -- No group: no worker has read the stream yet.
  if not ok then return '' end
  if #pending > 0 then return entry end
  if #redis.call('XRANGE', stream, entry, entry) > 0 then return '' end
end
if redis.call('ZSCORE', KEYS[2], task) then return '' end
local ok, pending = pcall(redis.call, 'XPENDING', stream, group, '-', '+', tonumber(ARGV[4]))
if not ok then return '' end
for _, p in ipairs(pending) do
  local found = redis.call('XRANGE', stream, p[1], p[1])[1]
  if found then
    local f = found[2]
    for j = 1, #f, 2 do
      if f[j] == 'id' then
        if f[j + 1] == task then return p[1] end
        break
      end
    end
  end
end
return ''
";

/// How many pending entries of its stream [`CLAIMED`] searches for a task
/// that is no longer the entry its handle knows.
const SEARCHED: usize = 1000;

/// See the module docs.
pub(crate) struct RemoteCell {
    cell: OneShot<fn() -> Value, Value>,
    task: String,
    /// The stream of its task name.
    stream: String,
    place: Mutex<Place>,
    /// Weak: the broker holds waiting cells.
    broker: Weak<Broker>,
    /// The submitting module, whose stats count a cancel.
    pool: Weak<Pool>,
}

impl RemoteCell {
    /// The cell of `task`, of the handler `name` on `pool`'s module,
    /// named `label` (its handle's name and its listing's).
    pub(super) fn new(
        broker: &Arc<Broker>,
        pool: &Arc<Pool>,
        task: String,
        name: &str,
        label: Arc<str>,
    ) -> Self {
        RemoteCell {
            cell: OneShot::labelled(
                Value::default as fn() -> Value,
                Vec::new(),
                Some(Label::remote(label, &task)),
            ),
            task,
            stream: broker.stream_key(&pool.name, name),
            place: Mutex::new(Place::Nowhere),
            broker: Arc::downgrade(broker),
            pool: Arc::downgrade(pool),
        }
    }

    /// The stream of its task name.
    pub(super) fn stream(&self) -> &str {
        &self.stream
    }

    pub(super) fn set_place(&self, place: Place) {
        *self.place.lock().unwrap_or_else(|p| p.into_inner()) = place;
    }

    /// Ends the handle with the task's result (see [`OneShot::settle`]).
    pub(super) fn settle(&self, result: Result<Value, TaskError>) -> bool {
        self.cell.settle(result)
    }
}

impl Waitable for RemoteCell {
    fn core(&self) -> &Core {
        self.cell.core()
    }

    /// Takes the task out of Redis if no worker has claimed it (a claimed
    /// one runs: false), then ends the handle as cancelled.
    fn cancel(&self) -> bool {
        if self.cell.core().is_finished() {
            return false;
        }
        let Some(broker) = self.broker.upgrade() else { return false };
        let place = self.place.lock().unwrap_or_else(|p| p.into_inner());
        let removed = match &*place {
            Place::Nowhere => false,
            // Gone from its stream, it may wait to retry (a failed run
            // scheduled it under its task id): taken out of there.
            Place::Stream { entry } => broker.unqueue(&self.stream, entry) || broker.unschedule(&self.task),
            Place::Delayed => broker.unschedule(&self.task),
        };
        drop(place);
        if removed {
            broker.stop_waiting(&self.task);
            // Counted where it was submitted, as a task cancelled in the
            // module's queue is.
            if let Some(pool) = self.pool.upgrade() {
                pool.count_cancelled(Some(self.cell.core()));
            }
            let cancelled = self.cell.cancel();
            if cancelled {
                broker.rt.events.cancelled(|| self.cell.core().task_ref());
            }
            return cancelled;
        }
        false
    }

    /// Whether a worker has claimed it and its result has not come: asks
    /// Redis ([`CLAIMED`]; see the module docs). False if Redis cannot be
    /// asked (logged).
    fn is_running(&self) -> bool {
        if self.cell.core().is_finished() {
            return false;
        }
        let Some(broker) = self.broker.upgrade() else { return false };
        let known = match &*self.place.lock().unwrap_or_else(|p| p.into_inner()) {
            Place::Nowhere => return false,
            Place::Stream { entry } => entry.clone(),
            Place::Delayed => String::new(),
        };
        let asked = broker.with_conn(|conn| {
            broker
                .claimed_script
                .key(&self.stream)
                .key(broker.delayed_key())
                .arg(super::GROUP)
                .arg(&known)
                .arg(&self.task)
                .arg(SEARCHED)
                .invoke::<String>(conn)
        });
        match asked {
            Ok(entry) if entry.is_empty() => false,
            Ok(entry) => {
                // Found as another entry: the next question, and a cancel,
                // look there first.
                if entry != known {
                    self.set_place(Place::Stream { entry });
                }
                // Its result may have come meanwhile.
                !self.cell.core().is_finished()
            }
            Err(e) => {
                log::warn!(
                    "taskmanager: {}",
                    broker.call_error(&format!("asking whether task {} runs", self.task), &e)
                );
                false
            }
        }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        self.cell.wait_until(deadline)
    }

    fn broker_id(&self) -> Option<String> {
        Some(self.task.clone())
    }
}

impl Outcome<Value> for RemoteCell {
    fn take(&self) -> Result<Value, TaskError> {
        self.cell.take()
    }

    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<Value, TaskError>> {
        self.cell.poll_take(cx)
    }
}
