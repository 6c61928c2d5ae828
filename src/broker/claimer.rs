//! A module's claimer: the thread that takes the module's tasks from Redis
//! into its pool, never more than the pool has free workers for, keeps
//! their leases alive, and takes over tasks whose holder died.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use serde_json::Value;

use super::{back_off, encode_result, millis, Broker, Every, GROUP};
use crate::err::RemoteError;
use crate::job::{JobRef, OneShot};
use crate::lifecycle::Phase;
use crate::pool::Pool;
use crate::timer::driver::Target;
use crate::unwind::panic_message;

/// How long one read waits for new tasks: also how soon a claimer notices
/// shutdown.
const BLOCK: Duration = Duration::from_millis(200);

/// The entries this claimer handed to the pool that have not finished, and
/// the cluster-wide places they hold (with `global_max_workers`).
#[derive(Default)]
struct InFlight {
    entries: Mutex<HashSet<String>>,
    done: Condvar,
    places: Mutex<Vec<String>>,
}

impl InFlight {
    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, entry: &str) {
        self.held().remove(entry);
        self.done.notify_all();
    }

    /// Waits up to `timeout` for a task to finish while `max` run.
    fn wait_while_full(&self, max: usize, timeout: Duration) {
        let held = self.held();
        if held.len() >= max {
            drop(self.done.wait_timeout(held, timeout).unwrap_or_else(|p| p.into_inner()));
        }
    }
}

/// The claimer's periodic steps.
struct Timers<'a> {
    heartbeat: &'a mut Every,
    reclaim: &'a mut Every,
    /// Whether to look for entries delivered in a lost reply.
    recover: &'a mut bool,
}

/// A claimed stream entry.
struct Claimed {
    entry: String,
    task: String,
    name: String,
    args: String,
    reply: String,
    /// The recurring task's key, for a tick.
    rec: String,
    /// The cluster-wide place it holds, if the module has a global cap.
    place: Option<String>,
}

impl Claimed {
    fn from(entry: &StreamId) -> Claimed {
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
    /// The claimer's loop, until the manager stops running.
    pub(super) fn claim(self: &Arc<Self>, pool: &Arc<Pool>) {
        let stream = self.stream_key(&pool.name);
        let in_flight = Arc::new(InFlight::default());
        let mut heartbeat = Every::new(self.config.lease / 3);
        // Taken over from the dead: checked at once, then every half lease.
        let mut reclaim = Every::now_due(self.config.lease / 2);
        let mut conn: Option<redis::Connection> = None;
        let mut backoff = Duration::from_millis(100);
        // Set on every new connection: see `claim_once`.
        let mut recover = true;
        while self.rt.life.phase() == Phase::Running {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.claimer_connection(&stream) {
                    Ok(c) => {
                        recover = true;
                        conn.insert(c)
                    }
                    Err(e) => {
                        log::warn!("taskmanager: broker unreachable for module {}: {e}; retrying", pool.name);
                        back_off(&mut backoff);
                        continue;
                    }
                },
            };
            let mut timers =
                Timers { heartbeat: &mut heartbeat, reclaim: &mut reclaim, recover: &mut recover };
            match self.claim_once(c, pool, &stream, &in_flight, &mut timers) {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    log::warn!("taskmanager: broker error for module {}: {e}; reconnecting", pool.name);
                    conn = None;
                    back_off(&mut backoff);
                }
            }
        }
    }

    fn claimer_connection(&self, stream: &str) -> redis::RedisResult<redis::Connection> {
        let mut conn = self.connect()?;
        conn.set_read_timeout(Some(self.config.timeout + BLOCK))?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut conn);
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
            _ => Ok(conn),
        }
    }

    fn claim_once(
        self: &Arc<Self>,
        conn: &mut redis::Connection,
        pool: &Arc<Pool>,
        stream: &str,
        in_flight: &Arc<InFlight>,
        timers: &mut Timers<'_>,
    ) -> redis::RedisResult<()> {
        let places_key = self.places_key(&pool.name);
        if timers.heartbeat.due() {
            // The lease heartbeat: `XCLAIM ... JUSTID` to itself resets the
            // idle time of each entry this claimer holds, without counting
            // a delivery. Only entries it really holds: one delivered in a
            // reply that never arrived must go idle (and be recovered).
            let held: Vec<String> = in_flight.held().iter().cloned().collect();
            if !held.is_empty() {
                redis::cmd("XCLAIM")
                    .arg(stream)
                    .arg(GROUP)
                    .arg(&self.id)
                    .arg(0)
                    .arg(&held)
                    .arg("JUSTID")
                    .query::<redis::Value>(conn)?;
            }
            let held = in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if !held.is_empty() {
                self.renew_script
                    .key(&places_key)
                    .arg(millis(self.config.lease))
                    .arg(&held)
                    .invoke::<i64>(conn)?;
            }
        }
        let max = pool.max_workers();
        let mut spare = max.saturating_sub(in_flight.held().len());
        if spare == 0 {
            in_flight.wait_while_full(max, BLOCK);
            return Ok(());
        }
        let mut places: Vec<String> = Vec::new();
        if let Some(cap) = self.global_cap(&pool.name) {
            places = self
                .acquire_script
                .key(&places_key)
                .key(format!("{places_key}:n"))
                .arg(spare)
                .arg(cap)
                .arg(&self.id)
                .arg(millis(self.config.lease))
                .invoke(conn)?;
            if places.is_empty() {
                // Every place is taken, here or elsewhere: look again soon.
                std::thread::sleep(BLOCK / 4);
                return Ok(());
            }
            spare = places.len();
        }
        let mut claimed = Vec::new();
        if *timers.recover {
            // After (re)connecting: this consumer's own pending entries
            // (`XREADGROUP ... 0`). One it does not hold was delivered in a
            // reply lost with the connection: run it now.
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.id)
                .arg("COUNT")
                .arg(1000)
                .arg("STREAMS")
                .arg(stream)
                .arg("0")
                .query(conn)?;
            let held = in_flight.held().clone();
            let lost: Vec<Claimed> = reply
                .map(|r| r.keys)
                .unwrap_or_default()
                .iter()
                .flat_map(|key| key.ids.iter())
                .filter(|entry| !held.contains(&entry.id))
                .map(Claimed::from)
                .collect();
            *timers.recover = lost.len() > spare;
            if !lost.is_empty() {
                log::warn!(
                    "taskmanager: recovered {} task(s) of module {} delivered while the connection was lost",
                    lost.len(),
                    pool.name
                );
            }
            claimed.extend(lost.into_iter().take(spare));
        }
        if claimed.is_empty() && timers.reclaim.due() {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(stream)
                .arg(GROUP)
                .arg(&self.id)
                .arg(millis(self.config.lease))
                .arg("0-0")
                .arg("COUNT")
                .arg(spare)
                .query(conn)?;
            if !reply.claimed.is_empty() {
                log::warn!(
                    "taskmanager: took over {} task(s) of module {} whose holder stopped renewing its lease",
                    reply.claimed.len(),
                    pool.name
                );
            }
            claimed.extend(reply.claimed.iter().map(Claimed::from));
        }
        if claimed.is_empty() {
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.id)
                .arg("COUNT")
                .arg(spare)
                .arg("BLOCK")
                .arg(millis(BLOCK))
                .arg("STREAMS")
                .arg(stream)
                .arg(">")
                .query(conn)?;
            for key in reply.map(|r| r.keys).unwrap_or_default() {
                claimed.extend(key.ids.iter().map(Claimed::from));
            }
        }
        if places.len() > claimed.len() {
            let unused = places.split_off(claimed.len());
            redis::cmd("ZREM").arg(&places_key).arg(&unused).query::<i64>(conn)?;
        }
        in_flight.held().extend(claimed.iter().map(|c| c.entry.clone()));
        in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).extend(places.iter().cloned());
        for (i, mut task) in claimed.into_iter().enumerate() {
            task.place = places.get(i).cloned();
            self.hand_over(pool, stream, task, in_flight);
        }
        Ok(())
    }

    /// Queues a claimed task on the pool: run its handler, then acknowledge.
    fn hand_over(self: &Arc<Self>, pool: &Arc<Pool>, stream: &str, task: Claimed, in_flight: &Arc<InFlight>) {
        let handler = self.handler(&pool.name, &task.name);
        let module = Arc::clone(&pool.name);
        let (me, stream, in_flight) = (Arc::clone(self), stream.to_owned(), Arc::clone(in_flight));
        let name: Arc<str> = Arc::from(task.name.as_str());
        let run = move || {
            let result = match (handler, serde_json::from_str::<Value>(&task.args)) {
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
            me.ack(&stream, &task, &result);
            if let Some(place) = &task.place {
                me.release_place(&module, place);
                in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| p != place);
            }
            in_flight.finish(&task.entry);
        };
        pool.dispatch(JobRef::new(Arc::new(OneShot::new(run, Vec::new(), Some(name)))), 0);
    }

    fn places_key(&self, module: &str) -> String {
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
        let ttl = millis(self.config.result_ttl);
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
