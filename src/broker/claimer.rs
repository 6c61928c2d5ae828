//! A module's claimer: the thread that takes the module's tasks from Redis
//! into its pool, never more than the pool has free workers for, keeps
//! their leases alive and takes over tasks whose holder died (`lease.rs`).
//! It reads one stream per task name this process registered for the
//! module, and no other: a task it could not run is never taken.

use std::collections::HashSet;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use super::in_flight::{Ack, Entry, InFlight, Unsent};
use super::pace::{back_off, millis, Every};
use super::ticket::Claimed;
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

/// A claimer's streams (its module's, one per registered task name), and
/// those whose consumer group it made on this connection.
#[derive(Default)]
pub(super) struct Streams {
    pub(super) keys: Arc<Vec<String>>,
    grouped: HashSet<String>,
    /// Where the next claim starts among `keys` (rotates, for fairness).
    next: usize,
    /// Whether the last blocking read found nothing (see `read_new`).
    quiet: bool,
}

impl Streams {
    /// A new connection: groups are made again (Redis may have lost them).
    pub(super) fn reconnected(&mut self) {
        self.grouped.clear();
    }
}

impl Broker {
    /// The claimer's loop, until the manager stops running; then it drains
    /// (see [`drain`](Self::drain)).
    pub(super) fn claim(self: &Arc<Self>, pool: &Arc<Pool>, in_flight: &Arc<InFlight>) {
        let mut streams = Streams::default();
        let mut heartbeat = Every::new(self.config.lease / 3);
        // Taken over from the dead: checked at once, then every half lease.
        let mut reclaim = Every::now_due(self.config.lease / 2);
        let mut conn: Option<redis::Connection> = None;
        let mut backoff = Duration::from_millis(100);
        // Set on every new connection: see `claim_once`.
        let mut recover = true;
        while self.rt.life.phase() == Phase::Running {
            let Some(c) = self.connected(&mut conn, &pool.name, &mut backoff, &mut recover) else { continue };
            if recover {
                streams.reconnected();
            }
            let mut timers =
                Timers { heartbeat: &mut heartbeat, reclaim: &mut reclaim, recover: &mut recover };
            match self.claim_once(c, pool, &mut streams, in_flight, &mut timers) {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    log::warn!("taskmanager: broker error for module {}: {e}; reconnecting", pool.name);
                    conn = None;
                    back_off(&mut backoff);
                }
            }
        }
        // From now on finished tasks acknowledge themselves.
        self.ack_now(&pool.name, &in_flight.stop_queueing());
        self.drain(pool, in_flight, conn, &mut heartbeat);
    }

    /// The claimer's connection, made if there is none (then `fresh` is
    /// set); None (after a back-off) if Redis is unreachable.
    pub(super) fn connected<'c>(
        &self,
        conn: &'c mut Option<redis::Connection>,
        module: &str,
        backoff: &mut Duration,
        fresh: &mut bool,
    ) -> Option<&'c mut redis::Connection> {
        if conn.is_none() {
            match self.claimer_connection() {
                Ok(c) => {
                    *conn = Some(c);
                    *fresh = true;
                }
                Err(e) => {
                    log::warn!(
                        "taskmanager: broker unreachable for module {module} (key prefix {}): {e}; retrying",
                        self.config.prefix
                    );
                    back_off(backoff);
                    return None;
                }
            }
        }
        conn.as_mut()
    }

    fn claimer_connection(&self) -> redis::RedisResult<redis::Connection> {
        let mut conn = self.connect()?;
        conn.set_read_timeout(Some(self.config.timeout + BLOCK))?;
        self.load_scripts(&mut conn)?;
        Ok(conn)
    }

    /// Brings `streams` up to the names registered now (a name may be
    /// registered after the start), making the consumer group of each new
    /// one.
    fn update_streams(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        streams: &mut Streams,
    ) -> redis::RedisResult<()> {
        let keys = self.streams(module);
        if Arc::ptr_eq(&keys, &streams.keys) && !streams.grouped.is_empty() {
            // No name registered since the last step, groups made.
            return Ok(());
        }
        streams.keys = keys;
        for stream in streams.keys.iter() {
            if streams.grouped.contains(stream) {
                continue;
            }
            let mut create = redis::cmd("XGROUP");
            create.arg("CREATE").arg(stream).arg(GROUP).arg("0").arg("MKSTREAM");
            match create.query::<()>(conn) {
                Err(e) if e.code() != Some("BUSYGROUP") => return Err(e),
                _ => streams.grouped.insert(stream.clone()),
            };
        }
        Ok(())
    }

    /// One step: hands back what the pool dropped, renews leases when due,
    /// then claims as many entries as there are free workers, sending the
    /// acknowledgements of tasks finished since the last step with the
    /// read. Those it could not send are queued again.
    fn claim_once(
        self: &Arc<Self>,
        conn: &mut redis::Connection,
        pool: &Arc<Pool>,
        streams: &mut Streams,
        in_flight: &Arc<InFlight>,
        timers: &mut Timers<'_>,
    ) -> redis::RedisResult<()> {
        self.update_streams(conn, &pool.name, streams)?;
        self.return_unrun(conn, &pool.name, in_flight)?;
        if timers.heartbeat.due() {
            self.renew(conn, &pool.name, in_flight)?;
        }
        let mut unsent = Unsent::take(in_flight);
        let acks = &mut unsent.acks;
        let places_key = self.places_key(&pool.name);
        let held = in_flight.held().len();
        // A suspect runs alone: while one runs or waits for this claimer
        // to empty, nothing new is claimed (see `lease.rs`); once empty,
        // the take-over below runs at once and says whether one is left.
        let wants_alone = in_flight.alone.load(SeqCst);
        let alone = wants_alone && held > 0;
        let max = if alone { held } else { pool.max_workers() };
        let mut spare = max.saturating_sub(held);
        if spare == 0 {
            if acks.is_empty() {
                in_flight.wait_while_full(max, BLOCK);
            }
            return self.send_acks(conn, &pool.name, acks);
        }
        let mut places: Vec<String> = Vec::new();
        if let Some(cap) = self.global_cap(&pool.name) {
            // Places given back by the acks first.
            self.send_acks(conn, &pool.name, acks)?;
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
        if *timers.recover && !streams.keys.is_empty() {
            // After (re)connecting: this consumer's own pending entries
            // (`XREADGROUP ... 0`). One it does not hold was delivered in a
            // reply lost with the connection: run it now. (Finished tasks'
            // acknowledgements go first; one that finishes during the read
            // is found below.)
            self.send_acks(conn, &pool.name, acks)?;
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP").arg(GROUP).arg(&self.id).arg("COUNT").arg(1000).arg("STREAMS");
            read.arg(streams.keys.as_slice()).arg(vec!["0"; streams.keys.len()]);
            let reply: redis::Value = read.query(conn)?;
            // What this process has, as held or finished since the read: the
            // held set first, then the queued acknowledgements (a task
            // queues its acknowledgement before it stops being held, so it
            // is in one or the other).
            let mut known = in_flight.held().clone();
            known.extend(in_flight.queued_entries());
            let lost: Vec<Claimed> = self
                .readable(conn, &pool.name, &reply, None)?
                .into_iter()
                .filter(|c| !known.contains(&c.entry))
                .map(|c| Claimed { deliveries: None, ..c })
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
        } else {
            *timers.recover = false;
        }
        if claimed.is_empty() && (timers.reclaim.due() || (held == 0 && wants_alone)) {
            let (taken, alone) = self.take_over(conn, &pool.name, &streams.keys, spare, held == 0)?;
            in_flight.alone.store(alone, SeqCst);
            claimed.extend(taken);
            if alone && claimed.is_empty() {
                // Empty first, then take the suspect.
                return self.send_acks(conn, &pool.name, acks);
            }
        }
        if claimed.is_empty() {
            claimed = self.read_new(conn, &pool.name, streams, in_flight, spare, acks)?;
        }
        self.send_acks(conn, &pool.name, acks)?;
        if claimed.len() > spare {
            // A blocking read takes one entry of each stream with news: what
            // the free workers cannot take goes back at once.
            let extra: Vec<Entry> = claimed.split_off(spare).into_iter().map(|c| c.entry).collect();
            self.hand_back(conn, &pool.name, &extra, &[])?;
        }
        if places.len() > claimed.len() {
            let unused = places.split_off(claimed.len());
            redis::cmd("ZREM").arg(&places_key).arg(&unused).query::<i64>(conn)?;
        }
        if in_flight.abandoned() || self.rt.life.phase() != Phase::Running {
            // Shutdown began (or `give_up` ran) while this read was under
            // way: a draining worker claims nothing more.
            let entries: Vec<Entry> = claimed.into_iter().map(|c| c.entry).collect();
            self.hand_back(conn, &pool.name, &entries, &places)?;
            return Ok(());
        }
        in_flight.held().extend(claimed.iter().map(|c| c.entry.clone()));
        in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).extend(places.iter().cloned());
        for (i, mut task) in claimed.into_iter().enumerate() {
            task.place = places.get(i).cloned();
            self.hand_over(pool, task, in_flight);
        }
        Ok(())
    }

    /// Sends `acks` (emptied once sent) on its own.
    fn send_acks(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        acks: &mut Vec<Ack>,
    ) -> redis::RedisResult<()> {
        if let Some(cmd) = self.ack_cmd(module, acks) {
            self.eval::<i64>(conn, &cmd)?;
            acks.clear();
        }
        Ok(())
    }

    /// Claims up to `spare` new entries (the `CLAIM` script, across the
    /// module's streams), with the acknowledgements of tasks finished since
    /// the last step in the same round trip. With none to claim and none to
    /// acknowledge, waits up to [`BLOCK`] for an entry on any of its
    /// streams; meanwhile finished tasks acknowledge themselves.
    fn read_new(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        streams: &mut Streams,
        in_flight: &InFlight,
        spare: usize,
        acks: &mut Vec<Ack>,
    ) -> redis::RedisResult<Vec<Claimed>> {
        if streams.keys.is_empty() {
            // Nothing registered yet (a name may come later): idle a read's
            // time, acknowledging what finished.
            self.send_acks(conn, module, acks)?;
            in_flight.wait_while_full(0, BLOCK);
            return Ok(Vec::new());
        }
        // One stream (a module with one task name): the blocking read takes
        // as many as the free workers, one command a step. Several: the
        // blocking read is for an idle claimer (the last one found
        // nothing); while work flows, the CLAIM script takes exactly what
        // is free across them, fairly.
        let one = streams.keys.len() == 1;
        if acks.is_empty() && (one || streams.quiet) {
            if let Some(claimed) = self.wait_new(conn, module, streams, in_flight, spare)? {
                return Ok(claimed);
            }
        }
        // Tasks finished meanwhile (or since the last step): their
        // acknowledgements go in the same round trip, and the read does
        // not wait.
        acks.append(&mut in_flight.take_acks());
        let read = if one {
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP").arg(GROUP).arg(&self.id).arg("COUNT").arg(spare);
            read.arg("STREAMS").arg(streams.keys.as_slice()).arg(">");
            read
        } else {
            streams.next = (streams.next + 1) % streams.keys.len();
            let mut claim = redis::cmd("EVALSHA");
            claim.arg(self.claim_script.get_hash()).arg(streams.keys.len() + 1);
            claim.arg(self.ready_key(module)).arg(streams.keys.as_slice());
            claim.arg(GROUP).arg(&self.id).arg(spare).arg(streams.next);
            claim
        };
        let mut pipe = redis::pipe();
        if let Some(ack) = self.ack_cmd(module, acks) {
            pipe.add_command(ack).ignore();
        }
        let claimed: (redis::Value,) = match pipe.add_command(read).query(conn) {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                self.load_scripts(conn)?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        acks.clear();
        let claimed = self.readable(conn, module, &claimed.0, None)?;
        if !claimed.is_empty() || one {
            return Ok(claimed);
        }
        Ok(self.wait_new(conn, module, streams, in_flight, spare)?.unwrap_or_default())
    }

    /// Waits up to [`BLOCK`] for new entries on any of the streams, at most
    /// `spare` over them (with more streams than that, one of each stream
    /// with news: the caller hands back what the free workers cannot
    /// take), while finished tasks acknowledge themselves. None, without
    /// waiting, if some finished meanwhile: their acknowledgements go
    /// first.
    fn wait_new(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        streams: &mut Streams,
        in_flight: &InFlight,
        spare: usize,
    ) -> redis::RedisResult<Option<Vec<Claimed>>> {
        if !in_flight.begin_wait() {
            streams.quiet = false;
            return Ok(None);
        }
        let count = (spare / streams.keys.len()).max(1);
        let mut read = redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(GROUP).arg(&self.id).arg("COUNT").arg(count).arg("BLOCK").arg(millis(BLOCK));
        read.arg("STREAMS").arg(streams.keys.as_slice()).arg(vec![">"; streams.keys.len()]);
        let reply = read.query::<redis::Value>(conn);
        in_flight.end_wait();
        let claimed = self.readable(conn, module, &reply?, None)?;
        streams.quiet = claimed.is_empty();
        Ok(Some(claimed))
    }
}
