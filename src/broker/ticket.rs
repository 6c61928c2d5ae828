//! A claimed task's way through this process: held by its claimer
//! ([`InFlight`]), queued on the module's pool as a [`Ticket`], run, then
//! acknowledged with its result; or, dropped unrun, handed back.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use redis::streams::StreamId;
use serde_json::Value;

use super::pace::{back_off, millis};
use super::{encode_result, Broker, GROUP};
use crate::err::RemoteError;
use crate::job::{JobRef, OneShot};
use crate::pool::Pool;
use crate::timer::driver::Target;
use crate::unwind::panic_message;

/// The entries this claimer handed to the pool that have not finished, and
/// the cluster-wide places they hold (with `global_max_workers`).
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) entries: Mutex<HashSet<String>>,
    pub(super) done: Condvar,
    pub(super) places: Mutex<Vec<String>>,
    /// Entries the pool dropped unrun (a shutdown cancelled them), with
    /// their places: the claimer hands them back.
    pub(super) returned: Mutex<Vec<(String, Option<String>)>>,
    /// Set by [`Broker::give_up`]: the claimer holds nothing any more.
    pub(super) abandoned: AtomicBool,
    /// Whether its claimer thread runs (changed under `entries`' lock).
    pub(super) claiming: AtomicBool,
}

impl InFlight {
    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn finish(&self, entry: &str) {
        self.held().remove(entry);
        self.done.notify_all();
    }

    /// A claimed entry the pool dropped without running it.
    pub(super) fn unrun(&self, entry: &str, place: Option<String>) {
        self.returned.lock().unwrap_or_else(|p| p.into_inner()).push((entry.to_owned(), place));
        self.finish(entry);
    }

    pub(super) fn take_returned(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut *self.returned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn forget_places(&self, gone: &[String]) {
        self.places.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| !gone.contains(p));
    }

    /// Tells the claimer to stop: from now on it hands back at once
    /// whatever a read still returns, and ends.
    pub(super) fn abandon(&self) {
        self.abandoned.store(true, SeqCst);
        let _held = self.held();
        self.done.notify_all();
    }

    /// A claimer thread runs for this module from now (`false`: it ended).
    pub(super) fn set_claiming(&self, claiming: bool) {
        let _held = self.held();
        self.claiming.store(claiming, SeqCst);
        self.done.notify_all();
    }

    /// Waits up to `timeout` for the claimer thread to end: a read it sent
    /// before [`abandon`](Self::abandon) may still return entries (a copy
    /// just handed back among them), which it hands back itself.
    pub(super) fn wait_claimer_end(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let mut held = self.held();
        while self.claiming.load(SeqCst) {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else { return };
            held = self.done.wait_timeout(held, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Takes what the claimer held: every entry, and the places of entries
    /// the pool dropped unrun (a running task's place frees itself when its
    /// lease runs out).
    pub(super) fn take_all(&self) -> (Vec<String>, Vec<String>) {
        let mut entries: Vec<String> = self.held().drain().collect();
        let mut places = Vec::new();
        for (entry, place) in self.take_returned() {
            entries.push(entry);
            places.extend(place);
        }
        self.done.notify_all();
        (entries, places)
    }

    pub(super) fn abandoned(&self) -> bool {
        self.abandoned.load(SeqCst)
    }

    /// Waits up to `timeout` for a task to finish while `max` run.
    pub(super) fn wait_while_full(&self, max: usize, timeout: Duration) {
        let held = self.held();
        if held.len() >= max {
            drop(self.done.wait_timeout(held, timeout).unwrap_or_else(|p| p.into_inner()));
        }
    }
}

/// A claimed stream entry.
pub(super) struct Claimed {
    pub(super) entry: String,
    pub(super) task: String,
    pub(super) name: String,
    pub(super) args: String,
    pub(super) reply: String,
    /// The recurring task's key, for a tick.
    pub(super) rec: String,
    /// The cluster-wide place it holds, if the module has a global cap.
    pub(super) place: Option<String>,
}

impl Claimed {
    pub(super) fn from(entry: &StreamId) -> Claimed {
        let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
        Claimed {
            entry: entry.id.clone(),
            task: field("id"),
            name: field("name"),
            args: field("args"),
            reply: field("reply"),
            rec: field("rec"),
            place: None,
        }
    }
}

impl Broker {
    /// Queues a claimed task on the pool: run its handler, then acknowledge.
    pub(super) fn hand_over(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        stream: &str,
        task: Claimed,
        in_flight: &Arc<InFlight>,
    ) {
        let name: Arc<str> = Arc::from(task.name.as_str());
        let ticket = Ticket {
            broker: Arc::clone(self),
            module: Arc::clone(&pool.name),
            stream: stream.to_owned(),
            task,
            in_flight: Arc::clone(in_flight),
            ran: false,
        };
        let run = move || ticket.run();
        pool.dispatch(JobRef::new(Arc::new(OneShot::new(run, Vec::new(), Some(name)))), 0);
    }

    pub(super) fn places_key(&self, module: &str) -> String {
        format!("{}:cap:{module}", self.config.prefix)
    }

    /// Gives back a cluster-wide place; one that cannot be given back frees
    /// itself when its lease runs out.
    fn release_place(&self, module: &str, place: &str) {
        let released = self
            .with_conn(|conn| redis::cmd("ZREM").arg(self.places_key(module)).arg(place).query::<i64>(conn));
        if let Err(e) = released {
            log::warn!("taskmanager: could not give back a place of module {module} ({e}); it frees itself after the lease");
        }
    }

    /// Acknowledges a task that ran, with its result; retries for half a
    /// lease, then leaves it pending (it will run again elsewhere).
    fn ack(&self, stream: &str, task: &Claimed, result: &Result<Value, RemoteError>) {
        let text = encode_result(result);
        let result_key = self.result_key(&task.task);
        let rec = self.recurring_hash(&task.rec);
        let is_tick = if task.rec.is_empty() { "0" } else { "1" };
        let ttl = millis(self.config.result_ttl).max(1);
        let give_up = std::time::Instant::now() + self.config.lease / 2;
        let mut backoff = Duration::from_millis(50);
        loop {
            let acked = self.with_conn(|conn| {
                self.ack_script
                    .key(stream)
                    .key(&result_key)
                    .key(&rec)
                    .arg(GROUP)
                    .arg(&task.entry)
                    .arg(&text)
                    .arg(ttl)
                    .arg(&task.reply)
                    .arg(&task.task)
                    .arg(is_tick)
                    .invoke::<i64>(conn)
            });
            match acked {
                Ok(_) => return,
                Err(e) if std::time::Instant::now() < give_up => {
                    log::warn!("taskmanager: could not acknowledge task {}: {e}; retrying", task.task);
                    back_off(&mut backoff);
                }
                Err(e) => {
                    log::error!(
                        "taskmanager: task {} ran but could not be acknowledged ({e}); after its lease another \
                         worker will run it again",
                        task.task
                    );
                    return;
                }
            }
        }
    }
}

/// A claimed task on its way through the pool. Dropped unrun (a shutdown
/// cancelled it), it goes back to its claimer to be handed back.
struct Ticket {
    broker: Arc<Broker>,
    module: Arc<str>,
    stream: String,
    task: Claimed,
    in_flight: Arc<InFlight>,
    ran: bool,
}

impl Ticket {
    /// Runs the task's handler, then acknowledges it with the result.
    fn run(mut self) {
        self.ran = true;
        let (task, module) = (&self.task, &self.module);
        let result =
            match (self.broker.handler(module, &task.name), serde_json::from_str::<Value>(&task.args)) {
                (None, _) => Err(RemoteError::new(
                    "UnknownTask",
                    format!(
                        "no handler named {:?} is registered on module {module:?} in this worker",
                        task.name
                    ),
                )),
                (Some(_), Err(e)) => {
                    Err(RemoteError::new("ValueError", format!("arguments are not JSON: {e}")))
                }
                (Some(handler), Ok(args)) => catch_unwind(AssertUnwindSafe(|| handler(args)))
                    .unwrap_or_else(|payload| Err(RemoteError::new("Panic", panic_message(payload)))),
            };
        self.broker.ack(&self.stream, task, &result);
        if let Some(place) = &task.place {
            self.broker.release_place(module, place);
            self.in_flight.forget_places(std::slice::from_ref(place));
        }
        self.in_flight.finish(&task.entry);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.ran {
            self.in_flight.unrun(&self.task.entry, self.task.place.take());
        }
    }
}
