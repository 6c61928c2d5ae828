//! Calendar schedules in Redis ([`Recurrence::cron`](crate::Recurrence::cron)),
//! fired once cluster-wide. Lua cannot compute cron times, so the moves
//! are split: the hash `P:rec:<key>` holds the definition (`Def`, the
//! fields of `calendar_tick.rs`) and the pending tick (`due`, ms by
//! Redis's clock); `P:cal` holds the key, scored by when that tick fires.
//!
//! - Register (`RECUR_CALENDAR`): the first due is computed here from
//!   Redis's `TIME`; the script keeps an equal definition, updates a
//!   changed one (a new rule: a new first due), as `RECUR` does for
//!   intervals.
//! - Fire: `FIRE` (run by every worker's scheduler, `firing.rs`) returns
//!   the calendar keys due by Redis's clock; for each, this process reads
//!   the hash, decides in Rust (`calendar_tick::decide`, from the stored
//!   due and Redis's `now`, never its own clock), and commits with
//!   `FIRE_CALENDAR`, a compare-and-set: only if `due`, `running`, `paused`
//!   and `gen` (bumped by each update) are still as read does it add the
//!   tick, move `due` and the score, and count. Two processes that decide
//!   on the same state: one commits, the other finds it changed and does
//!   nothing. So a tick fires once however skewed the clocks.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::calendar_tick::{decide, Def, State};
use super::epoch::Declared;
use super::{Broker, Registration};
use crate::err::SubmitError;

/// Registers or updates a calendar schedule (see the module docs). If the
/// hash exists with the same module, name, arguments and definition, it is
/// kept (returns 0); else its fields are set (2), and if its rule (the
/// first four definition fields: cron, zone, gap, fold) changed, or it was
/// an interval schedule, its pending tick is the given first one. New: 1.
/// Wakes the schedulers if the first tick is sooner than everything
/// scheduled.
///
/// KEYS: calendar set, the hash, recurring set, delayed set. ARGV: module,
/// name, args, first due ms, its jitter ms, key, wake channel, then the
/// definition's field, value pairs.
const RECUR_CALENDAR: &str = r"
local function sooner(set, at)
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  return not first[2] or at < tonumber(first[2])
end
local key = ARGV[6]
local names, values, def = {'module', 'name', 'args'}, {ARGV[1], ARGV[2], ARGV[3]}, {}
for i = 8, #ARGV, 2 do
  names[#names + 1] = ARGV[i]; values[#values + 1] = ARGV[i + 1]
  def[#def + 1] = ARGV[i]; def[#def + 1] = ARGV[i + 1]
end
local function place()
  local at = tonumber(ARGV[4]) + tonumber(ARGV[5])
  redis.call('HSET', KEYS[2], 'due', ARGV[4], 'jittered', ARGV[5])
  if sooner(KEYS[1], at) and sooner(KEYS[3], at) and sooner(KEYS[4], at) then redis.call('PUBLISH', ARGV[7], at) end
  redis.call('ZADD', KEYS[1], at, key)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  local f = redis.call('HMGET', KEYS[2], unpack(names))
  local same, rule = true, true
  for i = 1, #names do
    if f[i] ~= values[i] then
      same = false
      if i >= 4 and i <= 7 then rule = false end
    end
  end
  if same then return 0 end
  redis.call('HSET', KEYS[2], 'module', ARGV[1], 'name', ARGV[2], 'args', ARGV[3], unpack(def))
  redis.call('HINCRBY', KEYS[2], 'gen', 1)
  if redis.call('HDEL', KEYS[2], 'interval') == 1 then rule = false end
  redis.call('ZREM', KEYS[3], key)
  if not rule then place() end
  return 2
end
redis.call('HSET', KEYS[2], 'module', ARGV[1], 'name', ARGV[2], 'args', ARGV[3], unpack(def))
redis.call('HSET', KEYS[2], 'paused', '0', 'running', '', 'ticks', 0, 'skipped', 0, 'coalesced', 0, 'gen', 0)
place()
return 1
";

/// The compare-and-set of a firing process's decision (see the module
/// docs): if the hash's `due`, `running`, `paused` and `gen` are still
/// `ARGV[2..5]`, sets the new due (none: the key leaves the set) and its
/// jitter, the score, adds to `skipped` and `coalesced`, and, given a tick
/// id, adds the tick to its stream (the fields of an interval tick) and
/// marks it running. Returns 1 if it committed, 0 if the state had changed
/// (another process fired it, or it was paused, updated or cancelled).
///
/// KEYS: calendar set, the hash, the task's stream, its module's ready
/// set. ARGV: key, due, running, paused, gen (as read), new due (empty:
/// none), score, jitter, tick id (empty: none), skipped, coalesced.
const FIRE_CALENDAR: &str = r"
local f = redis.call('HMGET', KEYS[2], 'due', 'running', 'paused', 'gen', 'name', 'args')
if f[1] ~= ARGV[2] or (f[2] or '') ~= ARGV[3] or (f[3] or '') ~= ARGV[4] or (f[4] or '') ~= ARGV[5] then
  return 0
end
if ARGV[6] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[2], 'due', ARGV[6], 'jittered', ARGV[8])
  redis.call('ZADD', KEYS[1], ARGV[7], ARGV[1])
end
if ARGV[10] ~= '0' then redis.call('HINCRBY', KEYS[2], 'skipped', ARGV[10]) end
if ARGV[11] ~= '0' then redis.call('HINCRBY', KEYS[2], 'coalesced', ARGV[11]) end
if ARGV[9] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[9], 'name', f[5], 'args', f[6], 'reply', '', 'rec', ARGV[1])
  redis.call('SADD', KEYS[4], KEYS[3])
  redis.call('HSET', KEYS[2], 'running', ARGV[9])
  redis.call('HINCRBY', KEYS[2], 'ticks', 1)
end
return 1
";

impl Broker {
    /// The `RECUR_CALENDAR` call for `schedule` (a calendar one, `def`)
    /// under `key`: its first due from Redis's `TIME`.
    pub(super) fn register_calendar(
        &self,
        key: &str,
        schedule: &Declared,
        def: &Def,
        run_now: bool,
    ) -> Result<Registration, SubmitError> {
        let failed =
            |e: &redis::RedisError| SubmitError::Broker(self.call_error(&format!("RECUR of {key}"), e));
        let now = self.with_conn(redis_now).map_err(|e| failed(&e))?;
        let first = def.first(now, run_now).ok_or_else(|| SubmitError::InvalidSchedule {
            reason: format!("the cron expression {:?} has no time left to run at", def.cron.expression()),
        })?;
        let jitter = if run_now { 0 } else { draw(def.jitter_ms()) };
        let registered = self.with_conn(|conn| {
            let script = redis::Script::new(RECUR_CALENDAR);
            let mut call = script.prepare_invoke();
            call.key(self.calendar_key())
                .key(self.recurring_hash(key))
                .key(self.recurring_key())
                .key(self.delayed_key())
                .arg(&schedule.module)
                .arg(&schedule.name)
                .arg(schedule.args.to_string())
                .arg(first)
                .arg(jitter)
                .arg(key)
                .arg(self.wake_channel());
            for (field, value) in def.fields() {
                call.arg(field).arg(value);
            }
            call.invoke::<i64>(conn)
        });
        registered
            .map(|n| match n {
                1 => Registration::Created,
                2 => Registration::Updated,
                _ => Registration::Kept,
            })
            .map_err(|e| failed(&e))
    }

    /// Fires the calendar schedules `keys`, which `FIRE` found due at
    /// `now` (Redis's clock): decides each and commits it (see the module
    /// docs). Returns the soonest a committed one is due again (ms since
    /// the epoch; `now` if a commit found the state changed: look again at
    /// once), None if none was committed.
    pub(super) fn fire_calendars(
        &self,
        conn: &mut redis::Connection,
        now: u64,
        keys: &[String],
    ) -> redis::RedisResult<Option<u64>> {
        let mut soonest: Option<u64> = None;
        for key in keys {
            let hash = self.recurring_hash(key);
            let fields: HashMap<String, String> = redis::cmd("HGETALL").arg(&hash).query(conn)?;
            let def = match Def::read(&fields) {
                Ok(def) => def,
                Err(why) => {
                    log::warn!("taskmanager: the calendar schedule {key} cannot be fired here: {why}");
                    continue;
                }
            };
            let text = |name: &str| fields.get(name).cloned().unwrap_or_default();
            let number = |name: &str| text(name).parse::<u64>().ok();
            let Some(due) = number("due") else { continue };
            let state = State {
                due,
                jittered: number("jittered").unwrap_or(0),
                running: !text("running").is_empty(),
                paused: text("paused") == "1",
            };
            let commit = decide(&def, &state, now, &mut draw);
            let (module, name) = (text("module"), text("name"));
            let stream = self.stream_key(&module, &name);
            let committed = redis::Script::new(FIRE_CALENDAR)
                .key(self.calendar_key())
                .key(&hash)
                .key(&stream)
                .key(self.ready_key(&module))
                .arg(key)
                .arg(text("due"))
                .arg(text("running"))
                .arg(text("paused"))
                .arg(text("gen"))
                .arg(commit.due.map(|d| d.to_string()).unwrap_or_default())
                .arg(commit.score.max(commit.due.unwrap_or(0)).min(i64::MAX as u64))
                .arg(commit.jittered)
                .arg(commit.run.map(|t| format!("{key}@{t}")).unwrap_or_default())
                .arg(commit.skipped)
                .arg(commit.coalesced)
                .invoke::<i64>(conn)?;
            let again = if committed == 1 { commit.due.map(|_| commit.score) } else { Some(now) };
            soonest = match (soonest, again) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(soonest)
    }
}

/// Redis's clock, in ms since the epoch.
pub(super) fn redis_now(conn: &mut redis::Connection) -> redis::RedisResult<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(conn)?;
    Ok(secs * 1000 + micros / 1000)
}

/// A jitter in `0..=bound` ms.
fn draw(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    random % bound.saturating_add(1)
}
