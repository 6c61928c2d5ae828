//! A claimed task's way through this process: held by its claimer
//! ([`InFlight`]), queued on the module's pool as a [`Ticket`], run, then
//! acknowledged with its result; or, dropped unrun, handed back.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::in_flight::{Ack, Entry, InFlight};
use super::pace::{back_off, millis};
use super::{encode_result, retrying, Broker, GROUP};
use crate::err::{RemoteError, TaskError};
use crate::job::{JobRef, Label, OneShot};
use crate::pool::{after_count, Pool};
use crate::task::{Attempt, Method};
use crate::trace_context::{NamedRun, TraceContext};
use crate::unwind::panic_message;

/// A claimed stream entry.
pub(super) struct Claimed {
    pub(super) entry: Entry,
    pub(super) task: String,
    pub(super) name: String,
    /// The `name=` its submitter gave it (empty: none), which its events
    /// here tell.
    pub(super) label: String,
    pub(super) args: String,
    pub(super) reply: String,
    /// The recurring task's key, for a tick.
    pub(super) rec: String,
    /// The cluster-wide place it holds, if the module has a global cap.
    pub(super) place: Option<String>,
    /// Its retry policy (`retrying.rs`; empty: none).
    pub(super) retry: String,
    /// Which attempt this is: 1 for the first run.
    pub(super) attempt: u32,
    /// How many times the group has delivered this entry: 1 as read
    /// new, more when taken over from dead workers (`lease.rs`); None when
    /// re-read after a lost reply (not counted here).
    pub(super) deliveries: Option<u64>,
    /// Its result's TTL in ms, as its submitter asked (empty: the
    /// worker's; 0: publish only).
    pub(super) ttl: String,
    /// Its submitter's trace context, which its handler reads while it
    /// runs (`TraceContext::current`).
    pub(super) trace: Option<TraceContext>,
}

impl Claimed {
    /// What its handler may read of it while it runs (`NamedRun::current`).
    fn named_run(&mut self) -> NamedRun {
        NamedRun {
            task_id: self.task.clone(),
            label: (!self.label.is_empty()).then(|| self.label.clone()),
            tick: !self.rec.is_empty(),
            trace: self.trace.take(),
        }
    }
}

impl Broker {
    /// Queues a claimed task on the pool: run its handler, then acknowledge.
    pub(super) fn hand_over(self: &Arc<Self>, pool: &Arc<Pool>, task: Claimed, in_flight: &Arc<InFlight>) {
        let name = if task.label.is_empty() { &task.name } else { &task.label };
        let label = Label::remote(Arc::from(name.as_str()), &task.task);
        // Its wait began when it entered its stream (sent, or moved there
        // when due): the entry id's milliseconds, by Redis's clock.
        let waited = if self.rt.metrics.is_on() {
            let now = self.rt.clock.wall() / 1_000_000;
            Duration::from_millis(now.saturating_sub(entry_millis(&task.entry.id)))
        } else {
            Duration::ZERO
        };
        let ticket = Ticket {
            broker: Arc::clone(self),
            module: Arc::clone(&pool.name),
            claim: Arc::new(Mutex::new(Some(task))),
            in_flight: Arc::clone(in_flight),
            ran: false,
        };
        // A failed run is a failed run here too (stats, events), not only
        // for its submitter; a retried one, a retry.
        let job = JobRef::new(Arc::new(OneShot::labelled(ticket, Vec::new(), Some(label))));
        pool.dispatch_waited(job, waited);
    }

    /// The call that sends `acks` (see `outcomes::ack_script`), of any of
    /// `module`'s streams, at once; None if `acks` is empty.
    pub(super) fn ack_cmd(&self, module: &str, acks: &[Ack]) -> Option<redis::Cmd> {
        if acks.is_empty() {
            return None;
        }
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.ack_script.get_hash()).arg(3).arg(self.places_key(module));
        cmd.arg(self.delayed_key()).arg(self.recurring_key());
        cmd.arg(GROUP).arg(millis(self.config.result_ttl).max(1)).arg(&self.config.prefix);
        cmd.arg(module).arg(self.wake_channel());
        for ack in acks {
            cmd.arg(&ack.entry.stream).arg(&ack.entry.id).arg(&ack.task).arg(&ack.reply).arg(&ack.rec);
            cmd.arg(ack.place.as_deref().unwrap_or("")).arg(if ack.ok { "1" } else { "0" }).arg(&ack.result);
            match ack.retry {
                Some((after, attempt)) => cmd.arg(after).arg(attempt),
                None => cmd.arg("").arg(""),
            };
            cmd.arg(&ack.ttl);
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
    /// The claim, until whoever ends the run takes it to acknowledge it:
    /// the run itself once its handler returns, or the time-limit
    /// watchdog if it gives the run up first (`on_abandon`).
    claim: Arc<Mutex<Option<Claimed>>>,
    in_flight: Arc<InFlight>,
    ran: bool,
}

/// What ends a claimed task's run: everything but the claim itself.
struct Ender {
    broker: Arc<Broker>,
    module: Arc<str>,
    in_flight: Arc<InFlight>,
}

impl Ticket {
    /// Runs the task's handler, then acknowledges it with the result, or,
    /// if it failed and its policy retries it, with the retry (see
    /// `outcomes::ack_script`). Returns the handler's outcome and the retry, if any
    /// (its number, and after how long).
    fn run(mut self) -> (Result<(), RemoteError>, Option<(u32, Duration)>) {
        self.ran = true;
        let (name, args, run) = match lock(&self.claim).as_mut() {
            Some(task) => (task.name.clone(), std::mem::take(&mut task.args), task.named_run()),
            None => return (Err(RemoteError::new("Cancelled", "the task was given up")), None),
        };
        let module = &*self.module;
        let result = match (self.broker.handler(module, &name), serde_json::from_str::<Value>(&args)) {
            (None, _) => Err(RemoteError::new(
                "UnknownTask",
                format!("no handler named {name:?} is registered on module {module:?} in this worker"),
            )),
            (Some(_), Err(e)) => Err(RemoteError::new("ValueError", format!("arguments are not JSON: {e}"))),
            (Some(handler), Ok(args)) => {
                NamedRun::scoped(run, || catch_unwind(AssertUnwindSafe(|| handler(args))))
                    .unwrap_or_else(|payload| Err(RemoteError::new("Panic", panic_message(payload))))
            }
        };
        // Taken by the watchdog meanwhile: the run was given up, and
        // acknowledged as failed then; this outcome is dropped.
        let Some(task) = lock(&self.claim).take() else {
            log::warn!(
                "taskmanager: task {name} of module {module} returned after it was given up; its outcome is dropped"
            );
            return (result.map(drop), None);
        };
        let ender = Ender {
            broker: Arc::clone(&self.broker),
            module: Arc::clone(&self.module),
            in_flight: Arc::clone(&self.in_flight),
        };
        let decision = Ender::decide(&task, &result, true);
        let (retry, outcome) = (decision.0, result.as_ref().map(drop).map_err(RemoteError::clone));
        // Acknowledged (its result sent) once this worker has counted the
        // run: whoever gets the result sees it counted.
        after_count(Box::new(move || ender.end(task, &result, decision)));
        (outcome, retry)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Ender {
    /// What `task`'s run, which came to `result`, leads to: the retry its
    /// policy allows (if `may_retry`), with its number and wait; and the
    /// failure to dead-letter it with, if its retries are used up and its
    /// policy says so.
    fn decide(
        task: &Claimed,
        result: &Result<Value, RemoteError>,
        may_retry: bool,
    ) -> (Option<(u32, Duration)>, Option<TaskError>) {
        let policy = match result {
            Err(e) if task.rec.is_empty() && may_retry => {
                retrying::decode(&task.retry).map(|p| (p, TaskError::Remote(e.clone())))
            }
            _ => None,
        };
        let retry = policy
            .as_ref()
            .filter(|(p, error)| p.allows(task.attempt, error))
            .map(|(p, _)| (task.attempt, p.next_delay(task.attempt)));
        let bury = policy.filter(|(p, error)| p.dead_letters() && p.exhausted(task.attempt, error));
        (retry, bury.map(|(_, error)| error))
    }

    /// Acknowledges `task`'s run, which came to `result`, as [`decide`]d:
    /// with its `retry`, into the dead-letter set (`bury`), else as done.
    fn end(
        &self,
        mut task: Claimed,
        result: &Result<Value, RemoteError>,
        (retry, bury): (Option<(u32, Duration)>, Option<TaskError>),
    ) {
        if let Some(error) = bury {
            match self.dead_letter(task, &error, result) {
                None => return,
                Some(back) => task = back,
            }
        }
        let place = task.place.take();
        if let Some(place) = &place {
            // The ack gives it back; the heartbeat stops renewing it now.
            self.in_flight.forget_places(std::slice::from_ref(place));
        }
        let entry = task.entry.clone();
        let ack = Ack {
            entry: task.entry,
            task: task.task,
            reply: task.reply,
            rec: task.rec,
            place,
            ok: result.is_ok(),
            result: encode_result(result, task.attempt, task.deliveries),
            retry: retry.map(|(attempt, after)| (millis(after), attempt + 1)),
            ttl: task.ttl,
        };
        // Queued before the entry stops being held: whoever takes every
        // held entry (a drain, `give_up`) finds it in one or the other.
        if let Some(ack) = self.in_flight.queue_ack(ack) {
            self.broker.ack_now(&self.module, std::slice::from_ref(&ack));
        }
        self.in_flight.finish(&entry);
    }

    /// Moves a task that used up its retries to the dead-letter set, with
    /// its last failure, instead of acknowledging it (`Retry::dead_letter`);
    /// the task back (it is then acknowledged as failed) if Redis did not
    /// take it.
    fn dead_letter(
        &self,
        mut task: Claimed,
        error: &TaskError,
        result: &Result<Value, RemoteError>,
    ) -> Option<Claimed> {
        let module = &self.module;
        let reason = format!("retries used up: attempt {} failed ({error})", task.attempt);
        let last = encode_result(result, task.attempt, task.deliveries);
        let moved = self.broker.with_conn(|conn| {
            self.broker.dead_letter(
                conn,
                module,
                &task.entry,
                &reason,
                u64::from(task.attempt),
                Some(&last),
            )?;
            if let Some(place) = &task.place {
                redis::cmd("ZREM").arg(self.broker.places_key(module)).arg(place).query::<i64>(conn)?;
            }
            Ok(())
        });
        if let Err(e) = moved {
            log::warn!(
                "taskmanager: could not dead-letter task {} ({e}); it is acknowledged as failed",
                task.task
            );
            return Some(task);
        }
        if let Some(place) = task.place.take() {
            self.in_flight.forget_places(std::slice::from_ref(&place));
        }
        self.in_flight.finish(&task.entry);
        None
    }
}

/// A claimed task's run, as its worker's cell sees it: a failure is a
/// failure, or a retry that the acknowledgement scheduled in Redis.
impl Method<()> for Ticket {
    fn call(self) -> Result<(), TaskError> {
        self.run().0.map_err(TaskError::Remote)
    }

    fn attempt(self) -> Attempt<Self, ()> {
        match self.run() {
            (Err(e), Some((retry, after))) => {
                Attempt::RetriedElsewhere { error: TaskError::Remote(e), retry, after }
            }
            (result, _) => Attempt::Done(result.map_err(TaskError::Remote)),
        }
    }

    /// Its handler may run under a time limit (the Python package's).
    fn escapes(&self) -> bool {
        true
    }

    /// Given up past its time limit: acknowledged as failed at once (not
    /// retried: the call may still be running), so its lease ends and its
    /// submitter hears of it.
    fn on_abandon(&self) -> Option<crate::task::AbandonHook> {
        let claim = Arc::clone(&self.claim);
        let ender = Ender {
            broker: Arc::clone(&self.broker),
            module: Arc::clone(&self.module),
            in_flight: Arc::clone(&self.in_flight),
        };
        Some(Box::new(move |error: &TaskError| {
            let Some(task) = lock(&claim).take() else { return };
            let failure = Err(RemoteError::new("TimeLimitExceeded", error.to_string()));
            let decision = Ender::decide(&task, &failure, false);
            ender.end(task, &failure, decision);
        }))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.ran {
            if let Some(mut task) = lock(&self.claim).take() {
                self.in_flight.unrun(&task.entry, task.place.take());
            }
        }
    }
}

/// The milliseconds part of a stream entry id (`<ms>-<seq>`); 0 if it has
/// none.
fn entry_millis(id: &str) -> u64 {
    id.split('-').next().and_then(|ms| ms.parse().ok()).unwrap_or(0)
}
