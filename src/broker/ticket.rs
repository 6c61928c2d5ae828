//! A claimed task's way through this process: held by its claimer
//! ([`InFlight`]), queued on the module's pool as a [`Ticket`], run, then
//! acknowledged with its result; or, dropped unrun, handed back.

use std::collections::{BTreeMap, HashSet};
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
use crate::task::Fallible;
use crate::timer::driver::Target;
use crate::unwind::panic_message;

/// A stream entry: its stream (one per task name) and its id there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Entry {
    pub(super) stream: String,
    pub(super) id: String,
}

/// `entries`' ids by stream, each stream once, in order.
pub(super) fn by_stream<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut streams: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        streams.entry(entry.stream.as_str()).or_default().push(entry.id.as_str());
    }
    streams
}

/// The entries this claimer handed to the pool that have not finished, and
/// the cluster-wide places they hold (with `global_max_workers`).
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) entries: Mutex<HashSet<Entry>>,
    pub(super) done: Condvar,
    pub(super) places: Mutex<Vec<String>>,
    /// Entries the pool dropped unrun (a shutdown cancelled them), with
    /// their places: the claimer hands them back.
    pub(super) returned: Mutex<Vec<(Entry, Option<String>)>>,
    /// Set by [`Broker::give_up`]: the claimer holds nothing any more.
    pub(super) abandoned: AtomicBool,
    /// Whether its claimer thread runs (changed under `entries`' lock).
    pub(super) claiming: AtomicBool,
    /// Acknowledgements of finished tasks, for the claimer to send with
    /// its next round trip.
    pub(super) acks: Mutex<Acks>,
}

/// See [`InFlight::acks`].
#[derive(Default)]
pub(super) struct Acks {
    queued: Vec<Ack>,
    /// While the claimer waits (a blocking read, a pause), and once it has
    /// stopped, a finished task sends its own acknowledgement (so its
    /// result is not held up, or lost).
    blocked: bool,
    stopped: bool,
}

/// A finished task's acknowledgement (see `scripts::ACK`).
pub(super) struct Ack {
    pub(super) entry: Entry,
    pub(super) task: String,
    pub(super) reply: String,
    pub(super) rec: String,
    pub(super) place: Option<String>,
    /// Whether the run succeeded (`result` is then `{"ok": ...}`).
    pub(super) ok: bool,
    pub(super) result: String,
}

impl InFlight {
    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, HashSet<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn finish(&self, entry: &Entry) {
        self.held().remove(entry);
        self.done.notify_all();
    }

    fn acks(&self) -> std::sync::MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ack` for the claimer's next round trip; gives it back if the
    /// task must send it itself (the claimer is blocked on a read, or gone).
    fn queue_ack(&self, ack: Ack) -> Option<Ack> {
        let mut acks = self.acks();
        if acks.blocked || acks.stopped {
            return Some(ack);
        }
        acks.queued.push(ack);
        None
    }

    /// The queued acknowledgements, for the claimer to send.
    pub(super) fn take_acks(&self) -> Vec<Ack> {
        std::mem::take(&mut self.acks().queued)
    }

    /// Acknowledgements the claimer could not send, to try again first.
    pub(super) fn requeue_acks(&self, mut failed: Vec<Ack>) {
        let mut acks = self.acks();
        failed.append(&mut acks.queued);
        acks.queued = failed;
    }

    /// Before the claimer waits (a blocking read, a pause): from now,
    /// finished tasks send their own acknowledgements. False (and nothing
    /// changes) if some are queued: the claimer sends those instead of
    /// waiting.
    pub(super) fn begin_wait(&self) -> bool {
        let mut acks = self.acks();
        if !acks.queued.is_empty() {
            return false;
        }
        acks.blocked = true;
        true
    }

    pub(super) fn end_wait(&self) {
        self.acks().blocked = false;
    }

    /// The claimer has stopped (or is given up on): finished tasks send
    /// their own acknowledgements from now on. Returns those queued, to
    /// send.
    pub(super) fn stop_queueing(&self) -> Vec<Ack> {
        let mut acks = self.acks();
        acks.stopped = true;
        std::mem::take(&mut acks.queued)
    }

    /// A claimed entry the pool dropped without running it.
    pub(super) fn unrun(&self, entry: &Entry, place: Option<String>) {
        self.returned.lock().unwrap_or_else(|p| p.into_inner()).push((entry.clone(), place));
        self.finish(entry);
    }

    pub(super) fn take_returned(&self) -> Vec<(Entry, Option<String>)> {
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
    pub(super) fn take_all(&self) -> (Vec<Entry>, Vec<String>) {
        let mut entries: Vec<Entry> = self.held().drain().collect();
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
    pub(super) entry: Entry,
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
    pub(super) fn from(stream: &str, entry: &StreamId) -> Claimed {
        let field = |name: &str| entry.get::<String>(name).unwrap_or_default();
        Claimed {
            entry: Entry { stream: stream.to_owned(), id: entry.id.clone() },
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
    pub(super) fn hand_over(self: &Arc<Self>, pool: &Arc<Pool>, task: Claimed, in_flight: &Arc<InFlight>) {
        let name: Arc<str> = Arc::from(task.name.as_str());
        let ticket = Ticket {
            broker: Arc::clone(self),
            module: Arc::clone(&pool.name),
            task,
            in_flight: Arc::clone(in_flight),
            ran: false,
        };
        // A failed run is a failed run here too (stats, events), not only
        // for its submitter.
        let run = Fallible(move || ticket.run());
        pool.dispatch(JobRef::new(Arc::new(OneShot::new(run, Vec::new(), Some(name)))), 0);
    }

    /// The call that sends `acks` (see `scripts::ACK`), of any of
    /// `module`'s streams, at once; None if `acks` is empty.
    pub(super) fn ack_cmd(&self, module: &str, acks: &[Ack]) -> Option<redis::Cmd> {
        if acks.is_empty() {
            return None;
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.ack_script.get_hash()).arg(1).arg(self.places_key(module));
        cmd.arg(GROUP).arg(millis(self.config.result_ttl).max(1)).arg(&self.config.prefix);
        for ack in acks {
            cmd.arg(&ack.entry.stream).arg(&ack.entry.id).arg(&ack.task).arg(&ack.reply).arg(&ack.rec);
            cmd.arg(ack.place.as_deref().unwrap_or("")).arg(if ack.ok { "1" } else { "0" }).arg(&ack.result);
        }
        Some(cmd)
    }

    /// Sends `acks` now, on a pooled connection; retries for half a lease,
    /// then leaves them pending (they will run again elsewhere).
    pub(super) fn ack_now(&self, module: &str, acks: &[Ack]) {
        let Some(cmd) = self.ack_cmd(module, acks) else { return };
        let give_up = std::time::Instant::now() + self.config.lease / 2;
        let mut backoff = Duration::from_millis(50);
        loop {
            let acked = self.with_conn(|conn| self.eval(conn, &cmd).map(|_: i64| ()));
            match acked {
                Ok(()) => return,
                Err(e) if std::time::Instant::now() < give_up => {
                    log::warn!("taskmanager: could not acknowledge {} task(s): {e}; retrying", acks.len());
                    back_off(&mut backoff);
                }
                Err(e) => {
                    log::error!(
                        "taskmanager: {} task(s) ran but could not be acknowledged ({e}); after their lease \
                         another worker will run them again",
                        acks.len()
                    );
                    return;
                }
            }
        }
    }

    /// Runs a script call made with its hash (`EVALSHA`), loading the
    /// script first if Redis does not have it (restarted, or flushed).
    pub(super) fn eval<T: redis::FromRedisValue>(
        &self,
        conn: &mut redis::Connection,
        cmd: &redis::Cmd,
    ) -> redis::RedisResult<T> {
        match cmd.query(conn) {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                self.load_scripts(conn)?;
                cmd.query(conn)
            }
            other => other,
        }
    }

    /// Loads the scripts sent by hash in pipelines.
    pub(super) fn load_scripts(&self, conn: &mut redis::Connection) -> redis::RedisResult<()> {
        self.ack_script.prepare_invoke().load(conn)?;
        self.claim_script.prepare_invoke().load(conn).map(drop)
    }
}

/// A claimed task on its way through the pool. Dropped unrun (a shutdown
/// cancelled it), it goes back to its claimer to be handed back.
struct Ticket {
    broker: Arc<Broker>,
    module: Arc<str>,
    task: Claimed,
    in_flight: Arc<InFlight>,
    ran: bool,
}

impl Ticket {
    /// Runs the task's handler, then acknowledges it with the result;
    /// returns the handler's failure, if it failed.
    fn run(mut self) -> Result<(), RemoteError> {
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
        let task = &mut self.task;
        let place = task.place.take();
        if let Some(place) = &place {
            // The ack gives it back; the heartbeat stops renewing it now.
            self.in_flight.forget_places(std::slice::from_ref(place));
        }
        let ack = Ack {
            entry: task.entry.clone(),
            task: std::mem::take(&mut task.task),
            reply: std::mem::take(&mut task.reply),
            rec: std::mem::take(&mut task.rec),
            place,
            ok: result.is_ok(),
            result: encode_result(&result),
        };
        // Queued before the entry stops being held: whoever takes every
        // held entry (a drain, `give_up`) finds it in one or the other.
        if let Some(ack) = self.in_flight.queue_ack(ack) {
            self.broker.ack_now(module, std::slice::from_ref(&ack));
        }
        self.in_flight.finish(&self.task.entry);
        result.map(drop)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.ran {
            self.in_flight.unrun(&self.task.entry, self.task.place.take());
        }
    }
}
