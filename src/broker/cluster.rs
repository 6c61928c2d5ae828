//! The cluster as Redis sees it: each worker's heartbeat in the worker
//! list, and [`ClusterStats`] read back for `cluster_stats`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, UNIX_EPOCH};

use redis::streams::{StreamInfoConsumersReply, StreamInfoGroupsReply};

use super::pace::millis;
use super::{Broker, GROUP};
use crate::cluster::{ClusterStats, ModuleLoad, ScheduleInfo, WorkerInfo};
use crate::err::SubmitError;

/// Workers not seen for this long leave the list.
const FORGET: Duration = Duration::from_secs(24 * 3600);

impl Broker {
    /// Whether this process claims tasks (and so is listed as a worker).
    pub(super) fn is_worker(&self) -> bool {
        self.claims.load(std::sync::atomic::Ordering::SeqCst)
            && self.modules.lock().unwrap_or_else(|p| p.into_inner()).values().any(|r| r.claiming)
    }

    /// This worker's heartbeat in the worker list (see `scripts::SEEN`).
    pub(super) fn announce(&self, conn: &mut redis::Connection) -> redis::RedisResult<()> {
        if !self.is_worker() {
            return Ok(());
        }
        let mut modules: Vec<String> = {
            let registered = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            registered.keys().map(|m| m.to_string()).collect()
        };
        modules.sort();
        self.seen_script
            .key(self.workers_key())
            .key(self.worker_hash(&self.id))
            .arg(&self.config.prefix)
            .arg(millis(FORGET))
            .arg(&self.id)
            .arg(super::hostname())
            .arg(std::process::id())
            .arg(modules.join(","))
            .arg(self.streams_read())
            .arg(GROUP)
            .invoke::<i64>(conn)
            .map(drop)
    }

    /// The streams this process's modules read, one per line, sorted.
    fn streams_read(&self) -> String {
        let mut streams: Vec<String> = {
            let registered = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            registered.values().flat_map(|r| r.streams.iter().cloned()).collect()
        };
        streams.sort();
        streams.join("\n")
    }

    /// Takes this worker off the list, and out of the consumer groups
    /// where it holds nothing: it stopped cleanly (`scripts::leave`).
    pub(super) fn leave(&self) {
        if !self.is_worker() {
            return;
        }
        let streams = self.streams_read();
        let left = self.with_conn(|conn| {
            self.leave_script
                .key(self.workers_key())
                .key(self.worker_hash(&self.id))
                .arg(&self.id)
                .arg(GROUP)
                .arg(&streams)
                .invoke::<i64>(conn)
        });
        if let Err(e) = left {
            log::warn!("taskmanager: could not take this worker off the cluster's list: {e}");
        }
    }

    /// The cluster's stats, read from Redis (not atomically: each part is
    /// as of its own read).
    pub(crate) fn cluster_stats(&self) -> Result<ClusterStats, SubmitError> {
        self.with_conn(|conn| self.read_cluster(conn))
            .map_err(|e| SubmitError::Broker(self.call_error("reading the cluster's stats", &e)))
    }

    /// Every task stream of this prefix, sorted: by `SCAN`, not `KEYS`, so
    /// that a Redis shared with other apps is not blocked.
    pub(super) fn stream_keys(&self, conn: &mut redis::Connection) -> redis::RedisResult<Vec<String>> {
        let mut streams: Vec<String> = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:s:*", self.config.prefix))
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("stream")
                .query(conn)?;
            streams.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        streams.sort();
        streams.dedup();
        Ok(streams)
    }

    /// The delayed tasks (and those waiting to retry), counted per module
    /// from their hashes, a thousand a round trip: not part of
    /// `cluster_stats` (whose `delayed` is one `ZCARD`), which programs
    /// may read often, whatever waits.
    pub(crate) fn delayed_by_module(&self) -> Result<BTreeMap<String, usize>, SubmitError> {
        self.with_conn(|conn| self.count_delayed(conn))
            .map_err(|e| SubmitError::Broker(self.call_error("counting the delayed tasks per module", &e)))
    }

    fn count_delayed(&self, conn: &mut redis::Connection) -> redis::RedisResult<BTreeMap<String, usize>> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut start = 0_usize;
        loop {
            let ids: Vec<String> =
                redis::cmd("ZRANGE").arg(self.delayed_key()).arg(start).arg(start + 999).query(conn)?;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGET").arg(format!("{}:t:{id}", self.config.prefix)).arg("module");
            }
            let modules: Vec<Option<String>> = pipe.query(conn)?;
            for module in modules.into_iter().flatten() {
                *counts.entry(module).or_default() += 1;
            }
            if ids.len() < 1000 {
                return Ok(counts);
            }
            start += ids.len();
        }
    }

    fn read_cluster(&self, conn: &mut redis::Connection) -> redis::RedisResult<ClusterStats> {
        let lease = self.config.lease;
        let now = super::calendar::redis_now(conn)?;
        let mut stats = ClusterStats::default();
        let mut holding: HashMap<String, usize> = HashMap::new();
        // One stream per task name: a module's load is its streams' sum.
        let mut loads: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for stream in self.stream_keys(conn)? {
            let Some((module, _name)) = self.stream_parts(&stream) else { continue };
            let groups: StreamInfoGroupsReply = redis::cmd("XINFO").arg("GROUPS").arg(&stream).query(conn)?;
            let group = groups.groups.iter().find(|g| g.name == GROUP);
            // The group's lag is what no worker has read; XLEN only when
            // Redis cannot tell it (or no worker ever read the stream).
            let (queued, running) = match group.and_then(|g| g.lag.map(|lag| (lag, g.pending))) {
                Some(counts) => counts,
                None => {
                    let len: usize = redis::cmd("XLEN").arg(&stream).query(conn)?;
                    let pending = group.map_or(0, |g| g.pending);
                    (len.saturating_sub(pending), pending)
                }
            };
            if group.is_some() {
                let consumers: StreamInfoConsumersReply =
                    redis::cmd("XINFO").arg("CONSUMERS").arg(&stream).arg(GROUP).query(conn)?;
                for c in consumers.consumers {
                    *holding.entry(c.name).or_default() += c.pending;
                }
            }
            let load = loads.entry(module).or_default();
            load.0 += queued;
            load.1 += running;
        }
        stats.modules =
            loads.into_iter().map(|(name, (queued, running))| ModuleLoad { name, queued, running }).collect();
        stats.delayed = redis::cmd("ZCARD").arg(self.delayed_key()).query(conn)?;
        stats.outcomes = self.read_outcomes(conn, now)?;
        stats.dead_letters = redis::cmd("ZCARD").arg(self.dead_key()).query(conn)?;
        let reclaimed: HashMap<String, u64> = redis::cmd("HGETALL").arg(self.reclaimed_key()).query(conn)?;
        stats.reclaimed = reclaimed.values().sum();
        let seen: Vec<(String, u64)> =
            redis::cmd("ZRANGE").arg(self.workers_key()).arg(0).arg(-1).arg("WITHSCORES").query(conn)?;
        for (id, at) in seen {
            let fields: HashMap<String, String> =
                redis::cmd("HGETALL").arg(self.worker_hash(&id)).query(conn)?;
            let last_seen = Duration::from_millis(now.saturating_sub(at));
            stats.workers.push(WorkerInfo {
                host: fields.get("host").cloned().unwrap_or_default(),
                pid: fields.get("pid").and_then(|p| p.parse().ok()).unwrap_or(0),
                modules: fields
                    .get("modules")
                    .map(|m| m.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
                last_seen,
                alive: last_seen <= lease,
                running: holding.get(&id).copied().unwrap_or(0),
                reclaimed_from: reclaimed.get(&id).copied().unwrap_or(0),
                id,
            });
        }
        stats.workers.sort_by(|a, b| b.alive.cmp(&a.alive).then(a.last_seen.cmp(&b.last_seen)));
        let mut schedules: Vec<(String, u64)> = Vec::new();
        for set in [self.recurring_key(), self.calendar_key()] {
            let scored: Vec<(String, u64)> =
                redis::cmd("ZRANGE").arg(set).arg(0).arg(-1).arg("WITHSCORES").query(conn)?;
            schedules.extend(scored);
        }
        schedules.sort_by_key(|&(_, at)| at);
        for (key, at) in schedules {
            let fields: HashMap<String, String> =
                redis::cmd("HGETALL").arg(self.recurring_hash(&key)).query(conn)?;
            if fields.is_empty() {
                continue; // cancelled, its set entry not yet dropped
            }
            let number = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
            stats.schedules.push(ScheduleInfo {
                module: text("module"),
                name: text("name"),
                interval: Duration::from_millis(number("interval")),
                cron: fields.get("cron").cloned(),
                zone: fields.get("cron").and(fields.get("zone")).cloned(),
                next_due: Duration::from_millis(at.saturating_sub(now)),
                next_run: Some(UNIX_EPOCH + Duration::from_millis(number("due"))),
                paused: text("paused") == "1",
                running: !text("running").is_empty(),
                ticks: number("ticks"),
                skipped: number("skipped"),
                coalesced: number("coalesced"),
                failures: number("failures"),
                key,
            });
        }
        Ok(stats)
    }
}

/// Takes consumer `c` out of the group of each stream in `streams` (one
/// per line) where it holds nothing pending: a stopped or long-dead
/// worker leaves no member behind. (One that still holds entries stays
/// until they are taken over: deleting it would drop them from the
/// group's pending list, and they would never run.)
const RELEASE: &str = r"
local function release(streams, group, c)
  for stream in string.gmatch(streams or '', '[^\n]+') do
    local ok, pending = pcall(redis.call, 'XPENDING', stream, group, '-', '+', 1, c)
    if ok and #pending == 0 then pcall(redis.call, 'XGROUP', 'DELCONSUMER', stream, group, c) end
  end
end
";

/// A worker's heartbeat in the cluster's worker list (a sorted set scored
/// by the server's clock, plus a hash per worker, with the streams it
/// reads), for `cluster_stats`. Also forgets workers not seen for
/// `ARGV[2]` ms (what was reclaimed from them, and their consumers, see
/// `RELEASE`).
///
/// KEYS: worker set, this worker's hash. ARGV: prefix, forget after ms,
/// worker id, host, pid, modules (comma-separated), streams (one per
/// line), group.
pub(super) fn seen_script() -> String {
    format!(
        "{RELEASE}{}",
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local before = now - tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', before)) do
  release(redis.call('HGET', ARGV[1] .. ':w:' .. id, 'streams'), ARGV[8], id)
  redis.call('DEL', ARGV[1] .. ':w:' .. id)
  redis.call('HDEL', ARGV[1] .. ':reclaimed', id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', before)
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('HSET', KEYS[2], 'host', ARGV[4], 'pid', ARGV[5], 'modules', ARGV[6], 'streams', ARGV[7])
return now
"
    )
}

/// A worker that stops cleanly: off the worker list, and out of the
/// groups of the streams it read (see `RELEASE`): those its last heartbeat
/// listed, and those it knows now (one it began to read since is not in
/// the hash yet).
///
/// KEYS: worker set, its hash. ARGV: worker id, group, streams (one per
/// line).
pub(super) fn leave_script() -> String {
    format!(
        "{RELEASE}{}",
        r"
release(redis.call('HGET', KEYS[2], 'streams'), ARGV[2], ARGV[1])
release(ARGV[3], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"
    )
}
