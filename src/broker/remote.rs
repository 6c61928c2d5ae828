//! [`RemoteCell`]: the cell behind the handle of a task sent through the
//! broker. The listener settles it when the result arrives; cancelling it
//! takes the task out of Redis, cluster-wide, if no worker has claimed it.

use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use serde_json::Value;

use super::Broker;
use crate::err::TaskError;
use crate::job::{Core, OneShot, Outcome, Waitable};
use crate::pool::Pool;
use crate::timer::driver::Target;

/// Where a sent task waits in Redis, for a cancel.
pub(crate) enum Place {
    /// Not sent yet (or the send failed).
    Nowhere,
    /// In a module's stream, as this entry.
    Stream { stream: String, entry: String },
    /// In the delayed set, under this task id.
    Delayed { task: String },
}

/// See the module docs.
pub(crate) struct RemoteCell {
    cell: OneShot<fn() -> Value, Value>,
    task: String,
    place: Mutex<Place>,
    /// Weak: the broker holds waiting cells.
    broker: Weak<Broker>,
    /// The submitting module, whose stats count a cancel.
    pool: Weak<Pool>,
}

impl RemoteCell {
    pub(super) fn new(broker: &Arc<Broker>, pool: &Arc<Pool>, task: String, name: &str) -> Self {
        RemoteCell {
            cell: OneShot::new(Value::default as fn() -> Value, Vec::new(), Some(Arc::from(name))),
            task,
            place: Mutex::new(Place::Nowhere),
            broker: Arc::downgrade(broker),
            pool: Arc::downgrade(pool),
        }
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
            Place::Stream { stream, entry } => broker.unqueue(stream, entry) || broker.unschedule(&self.task),
            Place::Delayed { task } => broker.unschedule(task),
        };
        drop(place);
        if removed {
            broker.stop_waiting(&self.task);
            // Counted where it was submitted, as a task cancelled in the
            // module's queue is.
            if let Some(pool) = self.pool.upgrade() {
                pool.count_cancelled();
            }
            return self.cell.cancel();
        }
        false
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
