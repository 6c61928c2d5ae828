//! How tasks ended, counted cluster-wide in Redis per task name: each
//! count is added by the script that records the outcome (`ACK` here,
//! `BURY` in `dead.rs`, `UNQUEUE` in `scripts.rs`, `UNSCHEDULE` here), so a
//! task costs no round trip more. Read back for
//! [`ClusterStats::outcomes`](crate::ClusterStats::outcomes).
//!
//! - `P:outcomes`: a hash of totals, fields `<outcome>:<module>/<name>`
//!   (module and name escaped as in the stream key: the registered task
//!   names, so the code bounds how many there are; never a `name=` label
//!   or a task id);
//! - `P:outcomes:<minute>` (minutes since the Unix epoch, Redis's clock):
//!   the same fields for that minute, expiring after 2 h, for rates.
//!
//! Outcomes: `succeeded`, `failed` (a run failed with no retry left, or
//! given up past its time limit), `retried` (a run failed and was
//! scheduled again), `dead_lettered` (however it got there), `cancelled`
//! (a handle's cancel that took the task out of Redis). Starts are not
//! counted: a module with one task name claims with a plain `XREADGROUP`,
//! and counting there would cost a call per claim.

use std::collections::{BTreeMap, HashMap};

use super::Broker;
use crate::cluster::{Outcomes, TaskOutcomes};

/// The minutes of buckets `cluster_stats` reads: the current one and the
/// five before it (rates over the last 1 and 5 minutes).
const READ_MINUTES: u64 = 6;

/// The counters in Lua, for the scripts that record outcomes. `tally`
/// counts outcome `what` of the task whose stream is `stream` (a key of
/// prefix `prefix`: its field is the stream key's part after `P:s:`);
/// `flush_tallies` adds what was counted to the totals and to this
/// minute's bucket, by Redis's clock, once per script call.
pub(super) const TALLY: &str = r"
local tallies = {}
local function tally(prefix, stream, what)
  local field = what .. ':' .. string.sub(stream, #prefix + 4)
  tallies[field] = (tallies[field] or 0) + 1
end
local function flush_tallies(prefix)
  if next(tallies) == nil then return end
  local t = redis.call('TIME')
  local minute = prefix .. ':outcomes:' .. string.format('%d', math.floor(tonumber(t[1]) / 60))
  for field, n in pairs(tallies) do
    redis.call('HINCRBY', prefix .. ':outcomes', field, n)
    redis.call('HINCRBY', minute, field, n)
  end
  redis.call('EXPIRE', minute, 7200)
  tallies = {}
end
";

/// Acknowledges tasks that ran, any number in one call (a claimer sends
/// those finished since its last round trip together). For each: `XACK`
/// and `XDEL` its stream entry and, if its submitter wants the result,
/// stores it at `P:r:<task id>` (with an expiry) and publishes `<task id>\n<result>` on the submitter's channel (the
/// listener settles from the message, with no read; the stored copy is for
/// a listener that missed it). An entry no longer pending for the group
/// (acknowledged already by a worker that reclaimed it) is skipped: one
/// result per task. Each acknowledged run is counted (`TALLY`):
/// `succeeded`, `failed` or `retried`.
///
/// A failed run that retries (a retry delay is given) publishes nothing:
/// in the same step its entry's fields go to the delayed task `P:t:<task
/// id>` with the next attempt's number, due after the delay (as `SCHEDULE`
/// makes one, waking the schedulers if it is the soonest). So a failed run
/// is never both acknowledged and lost, and its retry is scheduled once.
///
/// A recurring tick's ack also clears its task's running mark, so the next
/// tick may run, and counts the tick as failed if it failed; a calendar
/// schedule whose pending tick waited for the run is due again at once
/// (its score in `P:cal` comes forward to its due, and the schedulers
/// wake). A task's
/// cluster-wide place (`global_max_workers`) is given back, acked or not.
/// Returns how many were acknowledged.
///
/// KEYS: the module's place set (any key when there is no cap), the
/// delayed set, the recurring set.
/// ARGV: group, result TTL in ms, key prefix, module, wake channel, then
/// 11 per task: stream, entry id, task id, reply channel (empty: nobody
/// waits), recurring key (empty: not a tick), place (empty: none), 1 if it
/// succeeded (else 0), result JSON (an object), retry delay in ms (empty:
/// no retry), the retry's attempt number, the task's own result TTL in ms
/// (empty: the worker's; 0: the result is only published, never stored).
pub(super) fn ack_script() -> String {
    format!(
        "{TALLY}{}",
        r"
local function sooner(set, due)
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  return not first[2] or due < tonumber(first[2])
end
local n = 0
for i = 6, #ARGV, 11 do
  local stream, entry, task, reply, rec, place, ok, result, retry_ms, attempt, ttl =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7],
    ARGV[i + 8], ARGV[i + 9], ARGV[i + 10]
  if ttl == '' then ttl = ARGV[2] end
  local found = nil
  if retry_ms ~= '' then found = redis.call('XRANGE', stream, entry, entry)[1] end
  if redis.call('XACK', stream, ARGV[1], entry) == 1 then
    n = n + 1
    redis.call('XDEL', stream, entry)
    if rec ~= '' then
      local hash = ARGV[3] .. ':rec:' .. rec
      if redis.call('HGET', hash, 'running') == task then
        redis.call('HSET', hash, 'running', '')
        if ok ~= '1' then redis.call('HINCRBY', hash, 'failures', 1) end
        -- A calendar schedule whose ticks waited for this run: due again.
        local c = redis.call('HMGET', hash, 'cron', 'due', 'jittered')
        local score = c[1] and redis.call('ZSCORE', ARGV[3] .. ':cal', rec)
        if score and tonumber(c[2]) + tonumber(c[3] or 0) < tonumber(score) then
          redis.call('ZADD', ARGV[3] .. ':cal', tonumber(c[2]) + tonumber(c[3] or 0), rec)
          redis.call('PUBLISH', ARGV[5], c[2])
        end
      end
    end
    if found then
      tally(ARGV[3], stream, 'retried')
      local fields = {'module', ARGV[4], 'attempt', attempt}
      local f = found[2]
      for j = 1, #f, 2 do
        local k = f[j]
        if k == 'id' or k == 'name' or k == 'label' or k == 'args' or k == 'reply' or k == 'retry' or k == 'ttl'
          or k == 'traceparent' or k == 'tracestate' then
          fields[#fields + 1] = f[j]
          fields[#fields + 1] = f[j + 1]
        end
      end
      local t = redis.call('TIME')
      local due = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(retry_ms)
      redis.call('HSET', ARGV[3] .. ':t:' .. task, unpack(fields))
      if sooner(KEYS[2], due) and sooner(KEYS[3], due) then redis.call('PUBLISH', ARGV[5], due) end
      redis.call('ZADD', KEYS[2], due, task)
    else
      if ok == '1' then tally(ARGV[3], stream, 'succeeded') else tally(ARGV[3], stream, 'failed') end
      if reply ~= '' then
        if tonumber(ttl) > 0 then redis.call('SET', ARGV[3] .. ':r:' .. task, result, 'PX', ttl) end
        redis.call('PUBLISH', reply, task .. '\n' .. result)
      end
    end
  end
  if place ~= '' then redis.call('ZREM', KEYS[1], place) end
end
flush_tallies(ARGV[3])
return n
"
    )
}

/// Takes a delayed task (or one waiting to retry) out of the delayed set
/// and deletes its hash, in one reply, counting it `cancelled` if it was
/// there. Returns {removed from the set, hash deleted}.
///
/// KEYS: the delayed set, the task's hash. ARGV: task id, prefix.
pub(super) fn unschedule_script() -> String {
    format!(
        "{TALLY}{}",
        r"
local f = redis.call('HMGET', KEYS[2], 'module', 'name')
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 and f[1] and f[2] then
  local function escape(part) return (string.gsub(part, '[%%/]', {['%'] = '%25', ['/'] = '%2F'})) end
  tally(ARGV[2], ARGV[2] .. ':s:' .. escape(f[1]) .. '/' .. escape(f[2]), 'cancelled')
  flush_tallies(ARGV[2])
end
return {removed, redis.call('DEL', KEYS[2])}
"
    )
}

impl Broker {
    /// `P:outcomes`: the outcome totals (see the module docs).
    pub(super) fn outcomes_key(&self) -> String {
        format!("{}:outcomes", self.config.prefix)
    }

    /// Every task name's outcome counts: totals, and rates over the last
    /// 1 and 5 minutes from the per-minute buckets, as of Redis's `now`
    /// (ms). Sorted by module and name.
    pub(super) fn read_outcomes(
        &self,
        conn: &mut redis::Connection,
        now: u64,
    ) -> redis::RedisResult<Vec<TaskOutcomes>> {
        let minute = now / 60_000;
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.outcomes_key());
        for back in 0..READ_MINUTES {
            pipe.cmd("HGETALL").arg(format!("{}:{}", self.outcomes_key(), minute.saturating_sub(back)));
        }
        let hashes: Vec<HashMap<String, u64>> = pipe.query(conn)?;
        let mut tasks: BTreeMap<(String, String), (Outcomes, Vec<Outcomes>)> = BTreeMap::new();
        let buckets = READ_MINUTES as usize;
        for (which, hash) in hashes.into_iter().enumerate() {
            for (field, n) in hash {
                let Some((what, task)) = field.split_once(':') else { continue };
                let Some((module, name)) = self.stream_parts(&format!("{}:s:{task}", self.config.prefix))
                else {
                    continue;
                };
                let counts = tasks
                    .entry((module, name))
                    .or_insert_with(|| (Outcomes::default(), vec![Outcomes::default(); buckets]));
                let into = if which == 0 { &mut counts.0 } else { &mut counts.1[which - 1] };
                into.add(what, n);
            }
        }
        // The current minute has run this far: the oldest bucket of a
        // window counts for the part of it still inside the window.
        let elapsed = (now % 60_000) as f64 / 60_000.0;
        Ok(tasks
            .into_iter()
            .map(|((module, name), (total, minutes))| TaskOutcomes {
                per_minute_1: window(&minutes, 1, elapsed),
                per_minute_5: window(&minutes, 5, elapsed),
                module,
                name,
                total,
            })
            .collect())
    }
}

/// The rate per minute over the last `n` minutes: the `n` newest buckets
/// (the current one partial) and the part of the bucket before them that
/// is still within `n` minutes of now.
fn window(minutes: &[Outcomes], n: usize, elapsed: f64) -> Outcomes<f64> {
    let mut sum = Outcomes::<f64>::default();
    for (back, bucket) in minutes.iter().enumerate().take(n + 1) {
        let weight = if back == n { 1.0 - elapsed } else { 1.0 };
        sum.succeeded += bucket.succeeded as f64 * weight;
        sum.failed += bucket.failed as f64 * weight;
        sum.retried += bucket.retried as f64 * weight;
        sum.dead_lettered += bucket.dead_lettered as f64 * weight;
        sum.cancelled += bucket.cancelled as f64 * weight;
    }
    let n = n as f64;
    Outcomes {
        succeeded: sum.succeeded / n,
        failed: sum.failed / n,
        retried: sum.retried / n,
        dead_lettered: sum.dead_lettered / n,
        cancelled: sum.cancelled / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_its_buckets_and_the_part_of_the_one_before_still_inside_it() {
        let bucket = |n| Outcomes { succeeded: n, ..Outcomes::default() };
        let minutes = [bucket(6), bucket(12), bucket(30), bucket(0), bucket(0), bucket(60)];
        // A quarter into the current minute: the last minute is all of it
        // and three quarters of the one before.
        assert_eq!(window(&minutes, 1, 0.25).succeeded, 6.0 + 12.0 * 0.75);
        assert_eq!(window(&minutes, 5, 0.25).succeeded, (6.0 + 12.0 + 30.0 + 60.0 * 0.75) / 5.0);
    }
}
