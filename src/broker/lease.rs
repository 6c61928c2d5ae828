//! Leases: a claimed entry belongs to its claimer while the claimer's
//! heartbeat keeps resetting its idle time in the consumer group; an entry
//! idle longer than the lease belongs to a dead process, and a live
//! claimer takes it over. So a long task of a live worker is never re-run,
//! and a dead worker's tasks run again after at most a lease.

use std::collections::HashMap;

use redis::streams::StreamPendingCountReply;

use super::in_flight::{by_stream, Entry, InFlight};
use super::pace::millis;
use super::ticket::Claimed;
use super::{Broker, GROUP};

impl Broker {
    /// The lease heartbeat: `XCLAIM ... JUSTID` to itself resets the idle
    /// time of each entry this claimer holds, without counting a delivery
    /// ([`HOLD`]). Only entries it really holds: one delivered in a reply
    /// that never arrived must go idle (and be recovered); and only while
    /// the group still has it as this claimer's: one taken over while this
    /// process was paused stays with the taker. Also extends the leases of
    /// its cluster-wide places.
    pub(super) fn renew(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        in_flight: &InFlight,
    ) -> redis::RedisResult<()> {
        let held: Vec<Entry> = in_flight.held().iter().cloned().collect();
        for (stream, ids) in by_stream(&held) {
            self.hold_script.key(stream).arg(GROUP).arg(&self.id).arg(&ids).invoke::<i64>(conn)?;
        }
        let held = in_flight.places.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !held.is_empty() {
            self.renew_script
                .key(self.places_key(module))
                .arg(millis(self.config.lease))
                .arg(&held)
                .invoke::<i64>(conn)?;
        }
        Ok(())
    }

    /// Takes over up to `spare` entries whose holder stopped renewing their
    /// lease (a dead process), and counts them against that holder in the
    /// cluster's `reclaimed` hash. `XCLAIM` with the lease as its minimum
    /// idle time re-checks each entry atomically: one renewed meanwhile, or
    /// taken by another live worker first, is left alone.
    ///
    /// Poison: the stream counts each entry's deliveries, and a worker
    /// that dies takes every task it held down with it, the innocent
    /// beside the guilty. So an entry delivered `max_deliveries` times is
    /// dead-lettered, not delivered again; and a *suspect* (delivered twice
    /// already, or whose next delivery is its last) runs alone: it is taken
    /// only by a claimer that holds nothing (`empty`), which then claims
    /// nothing else until it ends. A worker that dies running a suspect
    /// alone dies of it, so the blame that reaches `max_deliveries` falls on
    /// the task that killed its workers, not on its neighbours. Returns
    /// the entries taken, and whether a suspect was taken or skipped (the
    /// claimer then empties itself to take it alone).
    pub(super) fn take_over(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        streams: &[String],
        spare: usize,
        empty: bool,
    ) -> redis::RedisResult<(Vec<Claimed>, bool)> {
        let lease = millis(self.config.lease);
        let max = u64::from(self.config.max_deliveries.max(1));
        let mut taken = Vec::new();
        let mut alone = false;
        let mut from: HashMap<String, u64> = HashMap::new();
        for stream in streams {
            let want = spare - taken.len();
            if want == 0 || (alone && !taken.is_empty()) {
                break;
            }
            let stale: StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(stream)
                .arg(GROUP)
                .arg("IDLE")
                .arg(lease)
                .arg("-")
                .arg("+")
                .arg(want)
                .query(conn)?;
            let mut claim = Vec::new();
            for p in &stale.ids {
                let delivered = p.times_delivered as u64;
                if delivered >= max {
                    let entry = Entry { stream: stream.clone(), id: p.id.clone() };
                    let reason = format!(
                        "poison task: delivered {delivered} times, and each worker that had it stopped (died?) \
                         before finishing it, the last time with nothing else running; the last worker was {}",
                        p.consumer
                    );
                    self.dead_letter(conn, module, &entry, &reason, delivered, None)?;
                } else if delivered >= 2 || delivered + 1 >= max {
                    alone = true;
                    if empty && taken.is_empty() && claim.is_empty() {
                        claim.push(p);
                        break;
                    }
                } else if !alone {
                    claim.push(p);
                }
            }
            if claim.is_empty() {
                continue;
            }
            let ids: Vec<&str> = claim.iter().map(|p| p.id.as_str()).collect();
            let reply: redis::Value =
                redis::cmd("XCLAIM").arg(stream).arg(GROUP).arg(&self.id).arg(lease).arg(&ids).query(conn)?;
            for mut claimed in self.readable(conn, module, &reply, Some(stream))? {
                if let Some(p) = claim.iter().find(|p| p.id == claimed.entry.id) {
                    *from.entry(p.consumer.clone()).or_default() += 1;
                    // This XCLAIM delivered it once more.
                    claimed.deliveries = Some(p.times_delivered as u64 + 1);
                }
                taken.push(claimed);
            }
        }
        for (holder, n) in &from {
            log::warn!(
                "taskmanager: took over {n} task(s) of module {module} from {holder}, which stopped renewing \
                 its lease"
            );
            redis::cmd("HINCRBY").arg(self.reclaimed_key()).arg(holder).arg(n).query::<i64>(conn)?;
        }
        Ok((taken, alone))
    }
}

/// Renews this claimer's lease on the given entries of one stream, each
/// only if the group still has it pending for this claimer: a plain
/// `XCLAIM` would take back an entry another worker took over while this
/// process was paused (then both renewed it, and ownership and the
/// `reclaimed` counts flipped back and forth). Returns how many it renewed.
///
/// KEYS: the stream. ARGV: group, this claimer's id, then entry ids.
pub(super) const HOLD: &str = r"
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
";
