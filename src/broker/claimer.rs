//! A module's claimer: the thread that takes the module's tasks from Redis
//! into its pool, never more than the pool has free workers for, keeps
//! their leases alive, and takes over tasks whose holder died.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::streams::{StreamClaimReply, StreamPendingCountReply, StreamReadReply};

use super::pace::{back_off, millis, Every};
use super::ticket::{Ack, Claimed, InFlight};
use super::{Broker, GROUP};
use crate::lifecycle::Phase;
use crate::pool::Pool;

/// How long one read waits for new tasks: also how soon a claimer notices
/// shutdown.
pub(super) const BLOCK: Duration = Duration::from_millis(200);

/// The claimer's periodic steps.
struct Timers<'a> {
    heartbeat: &'a mut Every,
    reclaim: &'a mut Every,
    /// Whether to look for entries delivered in a lost reply.
    recover: &'a mut bool,
}

impl Broker {
    /// The claimer's loop, until the manager stops running; then it drains
    /// (see [`drain`](Self::drain)).
    pub(super) fn claim(self: &Arc<Self>, pool: &Arc<Pool>, in_flight: &Arc<InFlight>) {
        let stream = self.stream_key(&pool.name);
        let mut heartbeat = Every::new(self.config.lease / 3);
        // Taken over from the dead: checked at once, then every half lease.
        let mut reclaim = Every::now_due(self.config.lease / 2);
        let mut conn: Option<redis::Connection> = None;
        let mut backoff = Duration::from_millis(100);
        // Set on every new connection: see `claim_once`.
        let mut recover = true;
        while self.rt.life.phase() == Phase::Running {
            let Some(c) = self.connected(&mut conn, &stream, &mut backoff, &mut recover) else { continue };
            let mut timers =
                Timers { heartbeat: &mut heartbeat, reclaim: &mut reclaim, recover: &mut recover };
            match self.claim_once(c, pool, &stream, in_flight, &mut timers) {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    log::warn!("taskmanager: broker error for module {}: {e}; reconnecting", pool.name);
                    conn = None;
                    back_off(&mut backoff);
                }
            }
        }
        // From now on finished tasks acknowledge themselves.
        self.ack_now(&pool.name, &stream, &in_flight.stop_queueing());
        self.drain(pool, &stream, in_flight, conn, &mut heartbeat);
    }

    /// The claimer's connection, made if there is none (then `fresh` is
    /// set); None (after a back-off) if Redis is unreachable.
    pub(super) fn connected<'c>(
        &self,
        conn: &'c mut Option<redis::Connection>,
        stream: &str,
        backoff: &mut Duration,
        fresh: &mut bool,
    ) -> Option<&'c mut redis::Connection> {
        if conn.is_none() {
            match self.claimer_connection(stream) {
                Ok(c) => {
                    *conn = Some(c);
                    *fresh = true;
                }
                Err(e) => {
                    log::warn!("taskmanager: broker unreachable ({stream}): {e}; retrying");
                    back_off(backoff);
                    return None;
                }
            }
        }
        conn.as_mut()
    }

    fn claimer_connection(&self, stream: &str) -> redis::RedisResult<redis::Connection> {
        let mut conn = self.connect()?;
        conn.set_read_timeout(Some(self.config.timeout + BLOCK))?;
        self.load_scripts(&mut conn)?;
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

    /// One step: hands back what the pool dropped, renews leases when due,
    /// then claims as many entries as there are free workers, sending the
    /// acknowledgements of tasks finished since the last step with the
    /// read. Those it could not send are queued again.
    fn claim_once(
        self: &Arc<Self>,
        conn: &mut redis::Connection,
        pool: &Arc<Pool>,
        stream: &str,
        in_flight: &Arc<InFlight>,
        timers: &mut Timers<'_>,
    ) -> redis::RedisResult<()> {
        self.return_unrun(conn, &pool.name, stream, in_flight)?;
        if timers.heartbeat.due() {
            self.renew(conn, &pool.name, stream, in_flight)?;
        }
        let mut unsent = Unsent::take(in_flight);
        let acks = &mut unsent.acks;
        let places_key = self.places_key(&pool.name);
        let max = pool.max_workers();
        let mut spare = max.saturating_sub(in_flight.held().len());
        if spare == 0 {
            if acks.is_empty() {
                in_flight.wait_while_full(max, BLOCK);
            }
            return self.send_acks(conn, &pool.name, stream, acks);
        }
        let mut places: Vec<String> = Vec::new();
        if let Some(cap) = self.global_cap(&pool.name) {
            // Places given back by the acks first.
            self.send_acks(conn, &pool.name, stream, acks)?;
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
                // Every place is taken, here or elsewhere: look again soon
                // (finished tasks meanwhile acknowledge themselves).
                if in_flight.begin_wait() {
                    std::thread::sleep(BLOCK / 4);
                    in_flight.end_wait();
                }
                return Ok(());
            }
            spare = places.len();
        }
        let mut claimed = Vec::new();
        if *timers.recover {
            // After (re)connecting: this consumer's own pending entries
            // (`XREADGROUP ... 0`). One it does not hold was delivered in a
            // reply lost with the connection: run it now. (Finished tasks'
            // acknowledgements go first, so theirs are not among them.)
            self.send_acks(conn, &pool.name, stream, acks)?;
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
            claimed.extend(self.take_over(conn, &pool.name, stream, spare)?);
        }
        if claimed.is_empty() {
            claimed = self.read_new(conn, &pool.name, stream, in_flight, spare, acks)?;
        }
        self.send_acks(conn, &pool.name, stream, acks)?;
        if places.len() > claimed.len() {
            let unused = places.split_off(claimed.len());
            redis::cmd("ZREM").arg(&places_key).arg(&unused).query::<i64>(conn)?;
        }
        if in_flight.abandoned() || self.rt.life.phase() != Phase::Running {
            // Shutdown began (or `give_up` ran) while this read was under
            // way: a draining worker claims nothing more.
            let entries: Vec<String> = claimed.iter().map(|c| c.entry.clone()).collect();
            self.hand_back(conn, &pool.name, stream, &entries, &places)?;
            return Ok(());
        }
        in_flight.held().extend(claimed.iter().map(|c| c.entry.clone()));
        in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).extend(places.iter().cloned());
        for (i, mut task) in claimed.into_iter().enumerate() {
            task.place = places.get(i).cloned();
            self.hand_over(pool, stream, task, in_flight);
        }
        Ok(())
    }

    /// Sends `acks` (emptied once sent) on its own.
    fn send_acks(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        stream: &str,
        acks: &mut Vec<Ack>,
    ) -> redis::RedisResult<()> {
        if let Some(cmd) = self.ack_cmd(module, stream, acks) {
            self.eval::<i64>(conn, &cmd)?;
            acks.clear();
        }
        Ok(())
    }

    /// Reads up to `spare` new entries. With acknowledgements to send, they
    /// go in the same round trip and the read does not wait; without, the
    /// read waits up to [`BLOCK`] for an entry, and meanwhile finished
    /// tasks acknowledge themselves.
    fn read_new(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        stream: &str,
        in_flight: &InFlight,
        spare: usize,
        acks: &mut Vec<Ack>,
    ) -> redis::RedisResult<Vec<Claimed>> {
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(GROUP).arg(&self.id).arg("COUNT").arg(spare);
        if acks.is_empty() {
            if in_flight.begin_wait() {
                read.arg("BLOCK").arg(millis(BLOCK)).arg("STREAMS").arg(stream).arg(">");
                let reply = read.query::<Option<StreamReadReply>>(conn);
                in_flight.end_wait();
                return Ok(claimed_from(reply?));
            }
            // Tasks finished meanwhile: send theirs with the read.
            acks.append(&mut in_flight.take_acks());
        }
        read.arg("STREAMS").arg(stream).arg(">");
        let mut pipe = redis::pipe();
        if let Some(ack) = self.ack_cmd(module, stream, acks) {
            pipe.add_command(ack).ignore();
        }
        let (reply,): (Option<StreamReadReply>,) = pipe.add_command(read).query(conn)?;
        acks.clear();
        Ok(claimed_from(reply))
    }

    /// Takes over up to `spare` entries whose holder stopped renewing their
    /// lease (a dead process), and counts them against that holder in the
    /// cluster's `reclaimed` hash. `XCLAIM` with the lease as its minimum
    /// idle time re-checks each entry atomically: one renewed meanwhile, or
    /// taken by another live worker first, is left alone.
    fn take_over(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        stream: &str,
        spare: usize,
    ) -> redis::RedisResult<Vec<Claimed>> {
        let lease = millis(self.config.lease);
        let stale: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .arg("IDLE")
            .arg(lease)
            .arg("-")
            .arg("+")
            .arg(spare)
            .query(conn)?;
        if stale.ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = stale.ids.iter().map(|p| p.id.as_str()).collect();
        let reply: StreamClaimReply =
            redis::cmd("XCLAIM").arg(stream).arg(GROUP).arg(&self.id).arg(lease).arg(&ids).query(conn)?;
        let mut from: HashMap<&str, u64> = HashMap::new();
        for entry in &reply.ids {
            if let Some(p) = stale.ids.iter().find(|p| p.id == entry.id) {
                *from.entry(p.consumer.as_str()).or_default() += 1;
            }
        }
        for (holder, n) in &from {
            log::warn!(
                "taskmanager: took over {n} task(s) of module {module} from {holder}, which stopped renewing \
                 its lease"
            );
            redis::cmd("HINCRBY").arg(self.reclaimed_key()).arg(holder).arg(n).query::<i64>(conn)?;
        }
        Ok(reply.ids.iter().map(Claimed::from).collect())
    }
}

/// Acknowledgements taken from the queue for one step: those still unsent
/// when it ends (an error cut the step short) are queued again.
struct Unsent<'a> {
    acks: Vec<Ack>,
    in_flight: &'a InFlight,
}

impl<'a> Unsent<'a> {
    fn take(in_flight: &'a InFlight) -> Self {
        Unsent { acks: in_flight.take_acks(), in_flight }
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if !self.acks.is_empty() {
            self.in_flight.requeue_acks(std::mem::take(&mut self.acks));
        }
    }
}

fn claimed_from(reply: Option<StreamReadReply>) -> Vec<Claimed> {
    reply
        .map(|r| r.keys)
        .unwrap_or_default()
        .iter()
        .flat_map(|key| key.ids.iter())
        .map(Claimed::from)
        .collect()
}
