//! Tasks no live worker can run. A task's name has a stream of its own,
//! read only by workers that registered the name, so a task of a name no
//! worker knows waits in Redis (right during a rolling deploy: nothing is
//! lost). Past a bounded wait (`BrokerConfig::unrunnable_after`, 1 h by
//! default) it goes to the dead-letter set (`dead.rs`) instead of waiting
//! unseen forever: listed, and requeued once a worker has the name.
//!
//! - **Who can run what**: each worker's heartbeat (`SEEN`, every lease/3)
//!   already writes the streams it reads in its hash `P:w:<id>`
//!   (`streams`); nothing is added to it.
//! - **The sweep**, by the scheduler thread of every worker, once per
//!   `Broker::sweep_period`; `START` lets one worker a period through
//!   (it moves `last` in `P:swept` atomically: no lock to release), and
//!   stamps every stream a live worker (heartbeat within the lease) reads
//!   with now in `P:runnable`. Then the sweeper lists the prefix's streams
//!   (`SCAN P:s:*`, as `cluster_stats` does) and calls `UNRUNNABLE` on each
//!   but its own. `SCAN`, not a set of streams kept by submissions: it
//!   finds every stream whoever wrote it (a submitter of an older version,
//!   which is what a rolling deploy has, or another producer), and costs
//!   the submit path nothing; its price is one pass over the keyspace per
//!   period for the whole cluster, at most once a minute.
//! - **The wait counts only while the cluster is up**: `P:swept`'s `since`
//!   is when sweeps began without a gap (a gap longer than two periods and
//!   a lease means no worker was alive, or none reached Redis), and a
//!   stream is unread since the later of `since` and its `P:runnable`
//!   stamp. A stopped cluster is not an unknown name: its tasks wait, and
//!   a worker that comes back first does not dead-letter the tasks of the
//!   workers that come back after it.
//! - **Atomic per entry**: `UNRUNNABLE` runs alone in Redis. It checks,
//!   in one step, that the stream is still unread (also against the live
//!   workers' hashes as they are now: a worker that announced itself since
//!   `START` keeps its streams) and that each entry is still undelivered
//!   (not pending in the group), and only then `XDEL`s it. A worker that
//!   read the entry first holds it (pending: left alone); one that reads
//!   after finds it gone. Never both run and dead-lettered. (A name a
//!   worker registers after its start is in its hash from its next
//!   heartbeat; what its claimer reads meanwhile is pending, so safe.)

use std::collections::HashSet;
use std::time::Duration;

use super::dead::{BURY, DEAD_FOR, MAX_DEAD};
use super::outcomes::TALLY;
use super::pace::millis;
use super::{Broker, GROUP};

/// Entries one `UNRUNNABLE` call looks at; it says where to go on.
const BATCH: usize = 100;

/// The streams the live workers read (heartbeat after `after` ms), as a
/// set, from their hashes' `streams` (one per line).
const LIVE: &str = r"
local function live(workers, prefix, after)
  local set = {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', workers, after, '+inf')) do
    local streams = redis.call('HGET', prefix .. ':w:' .. id, 'streams')
    for stream in string.gmatch(streams or '', '[^\n]+') do set[stream] = true end
  end
  return set
end
";

/// Begins a sweep unless one began within the period (by any worker):
/// moves `last`, resets `since` after a gap, and stamps the live workers'
/// streams with now in the runnable set. Returns how long the sweeps have
/// gone on without a gap (ms), or -1: not this worker's turn.
///
/// KEYS: `P:swept`, the worker set, `P:runnable`. ARGV: prefix, period ms,
/// lease ms.
fn start_script() -> String {
    format!(
        "{LIVE}{}",
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local period, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or 0)
if now - last < period then return -1 end
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or now)
if now - last > 2 * period + lease then since = now end
redis.call('HSET', KEYS[1], 'since', since, 'last', now)
for stream in pairs(live(KEYS[2], ARGV[1], now - lease)) do redis.call('ZADD', KEYS[3], now, stream) end
return now - since
"
    )
}

/// Moves a stream's undelivered entries older than the wait to the
/// dead-letter set, if no live worker has read the stream for the wait
/// (see the module docs), up to `ARGV[10]` entries from `ARGV[11]` (`-`,
/// or `(<id>` to go on after one). An entry pending in the group (a worker
/// holds it) is left alone. A recurring tick's schedule loses its running
/// mark (its next tick may fire). Returns {how many moved, where to go on
/// (empty: done)}.
///
/// KEYS: stream, the dead-letter set, `P:runnable`, `P:swept`, the worker
/// set. ARGV: group, prefix, module, result TTL ms, most kept, kept for ms
/// (as `DEAD`), wait ms, lease ms, reason (the seconds follow), most
/// entries, first entry.
fn unrunnable_script() -> String {
    format!(
        "{TALLY}{BURY}{LIVE}{}",
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local wait = tonumber(ARGV[7])
if now <= wait then return {0, ''} end
local old = redis.call('XRANGE', KEYS[1], ARGV[11], string.format('%.0f', now - wait), 'COUNT', ARGV[10])
if #old == 0 then return {0, ''} end
local since = tonumber(redis.call('HGET', KEYS[4], 'since') or now)
local read = tonumber(redis.call('ZSCORE', KEYS[3], KEYS[1]) or 0)
local unread = now - math.max(since, read)
if unread < wait then return {0, ''} end
if live(KEYS[5], ARGV[2], now - tonumber(ARGV[8]))[KEYS[1]] then
  redis.call('ZADD', KEYS[3], now, KEYS[1])
  return {0, ''}
end
local reason = ARGV[9] .. string.format('%.0f', math.floor(unread / 1000)) .. ' s'
local n = 0
for _, found in ipairs(old) do
  local entry = found[1]
  local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if not (ok and #pending > 0) then
    redis.call('XDEL', KEYS[1], entry)
    local id = bury(entry, found, reason, 0, '', now)
    local f = found[2]
    for j = 1, #f, 2 do
      if f[j] == 'rec' and f[j + 1] ~= '' then
        local hash = ARGV[2] .. ':rec:' .. f[j + 1]
        if redis.call('HGET', hash, 'running') == id then redis.call('HSET', hash, 'running', '') end
      end
    end
    n = n + 1
  end
end
if n > 0 then
  trim(now)
  flush_tallies(ARGV[2])
end
local next = ''
if #old == tonumber(ARGV[10]) then next = '(' .. old[#old][1] end
return {n, next}
"
    )
}

impl Broker {
    /// How often this worker offers to sweep: a tenth of the wait, at
    /// least 100 ms and at most a minute (a task goes at most that late).
    pub(super) fn sweep_period(&self) -> Duration {
        (self.config.unrunnable_after / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// `P:runnable`: per stream, when a sweep last saw a live worker read it.
    fn runnable_key(&self) -> String {
        format!("{}:runnable", self.config.prefix)
    }

    /// `P:swept`: `last`, when the last sweep began; `since`, since when
    /// sweeps have gone on without a gap.
    fn swept_key(&self) -> String {
        format!("{}:swept", self.config.prefix)
    }

    /// One sweep, unless a worker of the cluster swept within the period
    /// (see the module docs); returns how many tasks it moved.
    pub(super) fn sweep_unrunnable(&self, conn: &mut redis::Connection) -> redis::RedisResult<usize> {
        let (runnable, swept, workers) = (self.runnable_key(), self.swept_key(), self.workers_key());
        let lease = millis(self.config.lease);
        let up: i64 = redis::Script::new(&start_script())
            .key(&swept)
            .key(&workers)
            .key(&runnable)
            .arg(&self.config.prefix)
            .arg(millis(self.sweep_period()))
            .arg(lease)
            .invoke(conn)?;
        if up < 0 {
            return Ok(0);
        }
        let own: HashSet<String> = {
            let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules.values().flat_map(|r| r.streams.iter().cloned()).collect()
        };
        let script = redis::Script::new(&unrunnable_script());
        let mut moved = 0;
        for stream in self.stream_keys(conn)? {
            if own.contains(&stream) {
                continue;
            }
            let Some((module, name)) = self.stream_parts(&stream) else { continue };
            let reason = format!("no live worker can run task {module}/{name}: none has read it for ");
            let mut from = "-".to_owned();
            loop {
                let (n, next): (usize, String) = script
                    .key(&stream)
                    .key(self.dead_key())
                    .key(&runnable)
                    .key(&swept)
                    .key(&workers)
                    .arg(GROUP)
                    .arg(&self.config.prefix)
                    .arg(&module)
                    .arg(millis(self.config.result_ttl).max(1))
                    .arg(MAX_DEAD)
                    .arg(millis(DEAD_FOR))
                    .arg(millis(self.config.unrunnable_after))
                    .arg(lease)
                    .arg(&reason)
                    .arg(BATCH)
                    .arg(&from)
                    .invoke(conn)?;
                if n > 0 {
                    self.count_dead(&stream, n as u64);
                    log::error!(
                        "taskmanager: {n} task(s) of {stream} moved to the dead-letter set {}: {reason}{} s or more",
                        self.dead_key(),
                        self.config.unrunnable_after.as_secs()
                    );
                }
                moved += n;
                if next.is_empty() {
                    break;
                }
                from = next;
            }
        }
        Ok(moved)
    }
}
