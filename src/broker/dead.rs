//! The dead-letter set: where a task goes that must not run again as it
//! is, with the reason, so that it never stops a claimer nor loops through
//! the cluster, and an operator can look at it, requeue it or purge it.
//!
//! - **Unreadable entries**: a stream entry read in any form (a field name
//!   or value that is not UTF-8, a missing `name`) is parsed entry by
//!   entry ([`parse`]); one that cannot be is dead-lettered at once, and
//!   the claimer serves the others of the same read.
//! - **Poison tasks**: an entry taken over from dead workers
//!   `max_deliveries` times (each delivery's worker died before it
//!   acknowledged: `os._exit`, a segfault, the OOM killer) is
//!   dead-lettered instead of being delivered once more (`lease.rs`).
//! - **Retries used up**, with `Retry::dead_letter` (`ticket.rs`).
//! - **Tasks no live worker can run**: undelivered entries of a stream no
//!   live worker has read for `unrunnable_after` (`unrunnable.rs`).
//!
//! The set: `P:dead`, a sorted set of ids by the time they died, and a
//! hash `P:dead:<id>` per task with the entry's own fields as they were
//! (bytes; Redis and Lua are binary-safe) and ours prefixed `_` (reason,
//! stream, module, entry, time, deliveries). Bounded: past
//! [`MAX_DEAD`] entries or [`DEAD_FOR`] of age, the oldest go. A
//! submitter waiting on a dead-lettered task gets
//! [`TaskError::DeadLettered`](crate::TaskError::DeadLettered) at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value as Reply;

use super::entries::{lossy, parse};
use super::in_flight::Entry;
use super::outcomes::TALLY;
use super::pace::millis;
use super::ticket::Claimed;
use super::{Broker, GROUP};
use crate::err::SubmitError;

/// The most tasks the set keeps; the oldest go first.
pub(crate) const MAX_DEAD: usize = 10_000;
/// How long a task stays in the set.
pub(crate) const DEAD_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// The dead-letter set's moves in Lua, shared by `DEAD` and `UNRUNNABLE`
/// (`unrunnable.rs`), whose KEYS both begin with the stream and the set,
/// and ARGV with the group, prefix, module, result TTL ms, most kept and
/// kept for ms. `bury` puts an entry taken out of its stream (`found`, its
/// `XRANGE` reply; nil if it was gone) in the set with its reason, and
/// tells its submitter (`{"dead": ...}` stored and published); returns the
/// task's id, and counts it `dead_lettered` (`TALLY`, `outcomes.rs`, goes
/// before it; the script calls `flush_tallies`). `trim` drops the oldest
/// past the count and the age.
pub(super) const BURY: &str = r"
local function bury(entry, found, reason, deliveries, err, now)
  local id, reply = entry, ''
  local fields = {}
  if found then
    fields = found[2]
    for j = 1, #fields, 2 do
      if fields[j] == 'id' and fields[j + 1] ~= '' then id = fields[j + 1]
      elseif fields[j] == 'reply' then reply = fields[j + 1] end
    end
  end
  local hash = ARGV[2] .. ':dead:' .. id
  redis.call('DEL', hash)
  if #fields > 0 then redis.call('HSET', hash, unpack(fields)) end
  redis.call('HSET', hash, '_reason', reason, '_stream', KEYS[1], '_module', ARGV[3], '_entry', entry,
    '_at', now, '_deliveries', deliveries)
  if err ~= '' then redis.call('HSET', hash, '_error', err) end
  redis.call('ZADD', KEYS[2], now, id)
  tally(ARGV[2], KEYS[1], 'dead_lettered')
  if reply ~= '' then
    local result = cjson.encode({dead = {reason = reason}})
    redis.call('SET', ARGV[2] .. ':r:' .. id, result, 'PX', ARGV[4])
    redis.call('PUBLISH', reply, id .. '\n' .. result)
  end
  return id
end
local function trim(now)
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[6]))
  local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
  if over > #old then old = redis.call('ZRANGE', KEYS[2], 0, over - 1) end
  for _, id in ipairs(old) do
    redis.call('DEL', ARGV[2] .. ':dead:' .. id)
    redis.call('ZREM', KEYS[2], id)
  end
end
";

/// Moves entries still pending for the group out of their stream into the
/// dead-letter set with their reasons, and tells their submitters. An entry
/// no longer pending (acknowledged meanwhile) is left alone. Then trims the
/// set by count and age. Returns how many it moved.
///
/// KEYS: stream, the dead-letter set. ARGV: group, prefix, module, result
/// TTL ms, most kept, kept for ms, then per entry: entry id, reason,
/// deliveries, last error (a result's JSON, `result.rs`; empty: none).
fn dead_script() -> String {
    format!(
        "{TALLY}{BURY}{}",
        r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local n = 0
for i = 7, #ARGV, 4 do
  local entry, reason, deliveries, err = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local found = redis.call('XRANGE', KEYS[1], entry, entry)[1]
  if redis.call('XACK', KEYS[1], ARGV[1], entry) == 1 then
    redis.call('XDEL', KEYS[1], entry)
    bury(entry, found, reason, deliveries, err, now)
    n = n + 1
  end
end
trim(now)
flush_tallies(ARGV[2])
return n
"
    )
}

/// Puts dead-lettered tasks back in their streams, as they were first sent
/// (their own fields; a retry starts again at attempt 1), and out of the
/// set. Returns how many went back.
///
/// KEYS: the dead-letter set. ARGV: prefix, then the ids.
const REQUEUE: &str = r"
local n = 0
for i = 2, #ARGV do
  local hash = ARGV[1] .. ':dead:' .. ARGV[i]
  local all = redis.call('HGETALL', hash)
  local fields, stream, module = {}, nil, nil
  for j = 1, #all, 2 do
    local k, v = all[j], all[j + 1]
    if k == '_stream' then stream = v
    elseif k == '_module' then module = v
    elseif string.sub(k, 1, 1) ~= '_' and k ~= 'attempt' then
      fields[#fields + 1] = k
      fields[#fields + 1] = v
    end
  end
  if stream and #fields > 0 then
    redis.call('XADD', stream, '*', unpack(fields))
    redis.call('SADD', ARGV[1] .. ':ready:' .. module, stream)
    n = n + 1
  end
  redis.call('DEL', hash)
  redis.call('ZREM', KEYS[1], ARGV[i])
end
return n
";

/// A task in the dead-letter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The task's id (its entry's id, if it had none).
    pub id: String,
    /// Its module and task name (empty if unreadable).
    pub module: String,
    /// The task's name.
    pub name: String,
    /// Its JSON arguments as sent (bytes that are not UTF-8 shown as U+FFFD).
    pub args: String,
    /// Why it is here.
    pub reason: String,
    /// How many times it was delivered to a worker (0 for a task no live
    /// worker could run).
    pub deliveries: u64,
    /// When it was dead-lettered, by Redis's clock.
    pub dead_at: SystemTime,
    /// Its last run's failure (type, message and traceback), for a task
    /// that used up its retries ([`Retry::dead_letter`](crate::Retry::dead_letter)).
    pub error: Option<crate::RemoteError>,
}

impl Broker {
    /// The entries of a read that can run; those that cannot are moved to
    /// the dead-letter set now (logged), so one bad entry never stops the
    /// claimer that read it.
    pub(super) fn readable(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        reply: &Reply,
        stream: Option<&str>,
    ) -> redis::RedisResult<Vec<Claimed>> {
        let (good, bad) = parse(reply, stream);
        for (entry, reason) in &bad {
            self.dead_letter(conn, module, entry, reason, 1, None)?;
        }
        Ok(good)
    }

    /// Moves `entry`, pending for this group, to the dead-letter set.
    /// Counts `n` tasks of `stream` dead-lettered, in the metrics (if on).
    pub(super) fn count_dead(&self, stream: &str, n: u64) {
        if !self.rt.metrics.is_on() || n == 0 {
            return;
        }
        if let Some((module, name)) = self.stream_parts(stream) {
            if let Some(series) = self.rt.metrics.task(&Arc::from(module), Some(&Arc::from(name))) {
                series.dead_lettered(n);
            }
        }
    }

    pub(super) fn dead_letter(
        &self,
        conn: &mut redis::Connection,
        module: &str,
        entry: &Entry,
        reason: &str,
        deliveries: u64,
        error: Option<&str>,
    ) -> redis::RedisResult<()> {
        log::error!(
            "taskmanager: task {} of {} moved to the dead-letter set {}: {reason}",
            entry.id,
            entry.stream,
            self.dead_key()
        );
        self.count_dead(&entry.stream, 1);
        redis::Script::new(&dead_script())
            .key(&entry.stream)
            .key(self.dead_key())
            .arg(GROUP)
            .arg(&self.config.prefix)
            .arg(module)
            .arg(millis(self.config.result_ttl).max(1))
            .arg(MAX_DEAD)
            .arg(millis(DEAD_FOR))
            .arg(&entry.id)
            .arg(reason)
            .arg(deliveries)
            .arg(error.unwrap_or(""))
            .invoke::<i64>(conn)
            .map(drop)
    }

    /// `P:dead`: the dead-letter set (ids by time).
    pub(super) fn dead_key(&self) -> String {
        format!("{}:dead", self.config.prefix)
    }

    /// The dead-letter set, newest first, at most `limit`.
    pub(crate) fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, SubmitError> {
        let listed = self.with_conn(|conn| {
            let ids: Vec<(String, u64)> = redis::cmd("ZREVRANGE")
                .arg(self.dead_key())
                .arg(0)
                .arg(limit.saturating_sub(1))
                .arg("WITHSCORES")
                .query(conn)?;
            let mut pipe = redis::pipe();
            for (id, _) in &ids {
                pipe.cmd("HGETALL").arg(format!("{}:dead:{id}", self.config.prefix));
            }
            let hashes: Vec<Vec<(Vec<u8>, Vec<u8>)>> = pipe.query(conn)?;
            Ok(ids
                .into_iter()
                .zip(hashes)
                .filter(|(_, h)| !h.is_empty())
                .map(|((id, at), h)| letter(id, at, &h))
                .collect())
        });
        listed.map_err(|e| SubmitError::Broker(self.call_error("reading the dead-letter set", &e)))
    }

    /// Puts the dead-lettered tasks `ids` back in their streams; how many.
    pub(crate) fn requeue_dead(&self, ids: &[String]) -> Result<usize, SubmitError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let requeued = self.with_conn(|conn| {
            redis::Script::new(REQUEUE)
                .key(self.dead_key())
                .arg(&self.config.prefix)
                .arg(ids)
                .invoke::<usize>(conn)
        });
        requeued.map_err(|e| SubmitError::Broker(self.call_error("requeuing dead letters", &e)))
    }

    /// Empties the dead-letter set; how many it held.
    pub(crate) fn purge_dead(&self) -> Result<usize, SubmitError> {
        let purged = self.with_conn(|conn| {
            let ids: Vec<String> = redis::cmd("ZRANGE").arg(self.dead_key()).arg(0).arg(-1).query(conn)?;
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("DEL").arg(format!("{}:dead:{id}", self.config.prefix)).ignore();
            }
            pipe.cmd("DEL").arg(self.dead_key()).ignore();
            pipe.query::<()>(conn)?;
            Ok(ids.len())
        });
        purged.map_err(|e| SubmitError::Broker(self.call_error("purging the dead-letter set", &e)))
    }
}

fn letter(id: String, at: u64, hash: &[(Vec<u8>, Vec<u8>)]) -> DeadLetter {
    let field = |name: &str| {
        hash.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| lossy(v)).unwrap_or_default()
    };
    DeadLetter {
        id,
        module: field("_module"),
        name: field("name"),
        args: field("args"),
        reason: field("_reason"),
        deliveries: field("_deliveries").parse().unwrap_or(1),
        dead_at: UNIX_EPOCH + Duration::from_millis(at),
        error: match super::result::decode_result(&field("_error")) {
            Err(crate::TaskError::Remote(e)) => Some(e),
            _ => None,
        },
    }
}
