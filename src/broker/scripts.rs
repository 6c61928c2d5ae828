//! The Lua scripts that make the broker's multi-step moves atomic in Redis
//! (each runs alone on the server: no other client sees a half-done move).
//! Every one of them is here but those of the worker list (`cluster.rs`),
//! of the dead-letter set (`dead.rs`), a handle's question whether its
//! task runs (`remote.rs`), and the acknowledgement and the cancel of a
//! delayed task, which count outcomes (`outcomes.rs`), kept with their
//! concepts;
//! `PROTOCOL.md`, "Redis", has the key layout and a table of who calls
//! which.

/// Sends a task: `XADD`s its fields to its stream and marks the stream
/// ready (see `CLAIM`). Returns the entry's id.
///
/// KEYS: stream, the module's ready set. ARGV: field, value, ...
pub(super) const SUBMIT: &str = r"
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV))
redis.call('SADD', KEYS[2], KEYS[1])
return id
";

/// Claims up to `ARGV[3]` new entries for consumer `ARGV[2]` from the
/// module's streams that may have some (its ready set, `KEYS[1]`), among
/// those this claimer reads (`KEYS[2..]`, one per task name it knows),
/// starting at the ready stream `ARGV[4]` (mod their number; the claimer
/// rotates it, so a busy name does not starve the others), without
/// blocking; a stream found drained leaves the ready set (a new entry puts
/// it back). So a claim costs what has work, not every name the module
/// has. Returns what `XREADGROUP` on those streams would (`{{stream,
/// {{id, {field, value, ...}}, ...}}, ...}`), or nil if there was nothing.
/// A stream whose group is missing (Redis lost its data) is an error: the
/// claimer reconnects and makes the groups again.
///
/// KEYS: the ready set, then the claimer's streams. ARGV: group, consumer,
/// most entries, first stream.
pub(super) const CLAIM: &str = r"
local mine = {}
for i = 2, #KEYS do mine[KEYS[i]] = true end
local ready = redis.call('SMEMBERS', KEYS[1])
local out, got, want = {}, 0, tonumber(ARGV[3])
local n = #ready
for i = 0, n - 1 do
  if got >= want then break end
  local stream = ready[((tonumber(ARGV[4]) + i) % n) + 1]
  if mine[stream] then
    local asked = want - got
    local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', asked, 'STREAMS', stream, '>')
    local taken = 0
    if read then
      out[#out + 1] = read[1]
      taken = #read[1][2]
      got = got + taken
    end
    if taken < asked then redis.call('SREM', KEYS[1], stream) end
  end
end
if #out == 0 then return false end
return out
";

/// Takes a member out of a sorted set and deletes its hash, in one reply (a
/// pipeline's replies would each wait a whole read timeout on a Redis that
/// never answers). Returns {removed from the set, hash deleted}. A
/// schedule's key also leaves the further sets given (a calendar one is in
/// `P:cal`).
///
/// KEYS: sorted set, hash, further sorted sets. ARGV: member.
pub(super) const FORGET: &str = r"
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return {redis.call('ZREM', KEYS[1], ARGV[1]), redis.call('DEL', KEYS[2])}
";

/// Schedules a one-shot task `ARGV[1]` ms from now by the server's clock:
/// its fields go to a hash, its id to the sorted set of delayed tasks. If
/// it falls due before everything scheduled (delayed or recurring), it
/// publishes its due time on the wake channel: the sleeping schedulers
/// (`firing.rs`) fire again. Returns its due time.
///
/// KEYS: delayed set, task hash, recurring set. ARGV: delay ms, task id,
/// module, name, args, reply, wake channel, retry policy (see
/// `retrying.rs`), result TTL in ms (empty: the worker's), label (its
/// `name=`), traceparent, tracestate (its trace context; each empty: none).
pub(super) const SCHEDULE: &str = r"
local function sooner(set, due)
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  return not first[2] or due < tonumber(first[2])
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'module', ARGV[3], 'name', ARGV[4], 'args', ARGV[5], 'reply', ARGV[6],
  'retry', ARGV[8], 'attempt', '', 'ttl', ARGV[9], 'label', ARGV[10], 'traceparent', ARGV[11], 'tracestate', ARGV[12])
if sooner(KEYS[1], due) and sooner(KEYS[3], due) then redis.call('PUBLISH', ARGV[7], due) end
redis.call('ZADD', KEYS[1], due, ARGV[2])
return due
";

/// Moves due delayed tasks into their names' streams, and fires due
/// recurring ticks, by the server's clock; atomic, so each runs once
/// whichever process calls it. A recurring task's next due time moves on
/// its grid past now (missed ticks are skipped, never run in a burst), and
/// a tick whose previous run has not acknowledged yet is skipped (runs never
/// overlap). Calendar schedules due (`P:cal`) are only returned: the
/// caller decides and commits each (`calendar.rs`); a key whose hash is
/// gone, or is no calendar schedule any more, leaves the set. Returns
/// {ms until the next entry not yet returned (-1: none), now (ms), due
/// calendar keys...}, as text.
///
/// KEYS: delayed set, recurring set, calendar set. ARGV: prefix, at most
/// this many of each per call.
pub(super) const FIRE: &str = r"
-- A task's stream, as `Broker::stream_key` names it.
local function stream(prefix, module, name)
  local function escape(part) return (string.gsub(part, '[%%/]', {['%'] = '%25', ['/'] = '%2F'})) end
  return prefix .. ':s:' .. escape(module) .. '/' .. escape(name)
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local prefix = ARGV[1]
local limit = tonumber(ARGV[2])
local optional = {'retry', 'attempt', 'ttl', 'label', 'traceparent', 'tracestate'}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  local hash = prefix .. ':t:' .. id
  local f = redis.call('HMGET', hash, 'module', 'name', 'args', 'reply', unpack(optional))
  if f[1] then
    local key = stream(prefix, f[1], f[2])
    local fields = {'id', id, 'name', f[2], 'args', f[3], 'reply', f[4]}
    for j, k in ipairs(optional) do
      if f[j + 4] and f[j + 4] ~= '' then fields[#fields + 1] = k; fields[#fields + 1] = f[j + 4] end
    end
    redis.call('XADD', key, '*', unpack(fields))
    redis.call('SADD', prefix .. ':ready:' .. f[1], key)
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('DEL', hash)
end
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  local hash = prefix .. ':rec:' .. key
  local f = redis.call('HMGET', hash, 'module', 'name', 'args', 'interval', 'due', 'paused', 'running', 'ticks', 'skipped')
  if not f[1] then
    redis.call('ZREM', KEYS[2], key)
  else
    local interval = tonumber(f[4])
    local due = tonumber(f[5])
    -- The ticks due by now, the pending one included.
    local passed = math.floor((now - due) / interval) + 1
    local next_due = due + interval * passed
    redis.call('ZADD', KEYS[2], next_due, key)
    redis.call('HSET', hash, 'due', next_due)
    if f[6] == '1' or (f[7] and f[7] ~= '') then
      -- paused, or the previous run goes on: the grid moves on, nothing
      -- runs, every tick passed is skipped
      redis.call('HINCRBY', hash, 'skipped', passed)
    else
      -- one run for them all (no burst): the others are skipped
      if passed > 1 then redis.call('HINCRBY', hash, 'skipped', passed - 1) end
      local id = key .. '@' .. due
      local into = stream(prefix, f[1], f[2])
      redis.call('XADD', into, '*', 'id', id, 'name', f[2], 'args', f[3], 'reply', '', 'rec', key)
      redis.call('SADD', prefix .. ':ready:' .. f[1], into)
      redis.call('HSET', hash, 'running', id)
      redis.call('HINCRBY', hash, 'ticks', 1)
    end
  end
end
-- Calendar schedules: the caller decides and commits each (`calendar.rs`).
local due_calendars = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', prefix .. ':rec:' .. key, 'cron', 'interval')
  if f[1] and not f[2] then due_calendars[#due_calendars + 1] = key else redis.call('ZREM', KEYS[3], key) end
end
local next_due = -1
local firsts = {redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES'), redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES'),
  redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)}
for _, first in ipairs(firsts) do
  if first[2] then
    local wait = math.max(0, tonumber(first[2]) - now)
    if next_due < 0 or wait < next_due then next_due = wait end
  end
end
local out = {tostring(next_due), tostring(now)}
for _, key in ipairs(due_calendars) do out[#out + 1] = key end
return out
";

/// Registers a recurring task under its key. If the key exists with the
/// same definition (module, name, arguments, interval), its schedule is
/// kept as it is: every replica registers the same task at start-up, and
/// one schedule results, on one grid. If the definition changed (a deploy
/// changed the interval or the arguments), it is updated in place, its
/// counts and pause kept; a new interval starts a new grid from now. The
/// first run is `ARGV[5]` ms from now (0 with `run_now`); if that is
/// before everything scheduled, it wakes the schedulers, as `SCHEDULE`
/// does. Returns 1 if this call created it, 2 if it updated it, 0 if it
/// kept it.
///
/// A calendar schedule updated to an interval loses its calendar fields
/// and leaves the calendar set.
///
/// KEYS: recurring set, its hash, delayed set, calendar set. ARGV: module,
/// name, args, interval ms, first delay ms, key, wake channel.
pub(super) const RECUR: &str = r"
local function sooner(set, due)
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  return not first[2] or due < tonumber(first[2])
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = now + tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local f = redis.call('HMGET', KEYS[2], 'module', 'name', 'args', 'interval')
  if f[1] == ARGV[1] and f[2] == ARGV[2] and f[3] == ARGV[3] and f[4] == ARGV[4] then return 0 end
  redis.call('HSET', KEYS[2], 'module', ARGV[1], 'name', ARGV[2], 'args', ARGV[3], 'interval', ARGV[4])
  -- Was it a calendar schedule? Not any more.
  redis.call('HDEL', KEYS[2], 'cron', 'zone', 'gap', 'fold', 'misfire', 'grace', 'jitter', 'kind', 'jittered', 'gen')
  redis.call('ZREM', KEYS[4], ARGV[6])
  if f[4] ~= ARGV[4] then
    redis.call('HSET', KEYS[2], 'due', due)
    if sooner(KEYS[1], due) and sooner(KEYS[3], due) then redis.call('PUBLISH', ARGV[7], due) end
    redis.call('ZADD', KEYS[1], due, ARGV[6])
  end
  return 2
end
redis.call('HSET', KEYS[2], 'module', ARGV[1], 'name', ARGV[2], 'args', ARGV[3], 'interval', ARGV[4],
  'due', due, 'paused', '0', 'running', '', 'ticks', 0, 'skipped', 0)
if sooner(KEYS[1], due) and sooner(KEYS[3], due) then redis.call('PUBLISH', ARGV[7], due) end
redis.call('ZADD', KEYS[1], due, ARGV[6])
return 1
";

/// Takes up to `ARGV[1]` of a module's cluster-wide worker places (a
/// sorted set of holders scored by lease deadline, by the server's clock),
/// after freeing the places of holders whose lease ran out (dead
/// processes). Returns the members it added, named
/// `ARGV[3]:<n>`, n from a counter.
///
/// KEYS: the module's place set, its counter. ARGV: wanted, cap, holder,
/// lease ms.
pub(super) const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1])
local take = math.min(tonumber(ARGV[1]), free)
local taken = {}
for i = 1, take do
  local n = redis.call('INCR', KEYS[2])
  local member = ARGV[3] .. ':' .. n
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), member)
  taken[i] = member
end
return taken
";

/// Extends the leases of the places `ARGV[2..]` still held (by the
/// server's clock). KEYS: the module's place set. ARGV: lease ms, members.
pub(super) const RENEW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
return #ARGV - 1
";

/// Pauses (`ARGV[1]` = 1) or resumes (0) a recurring task, if it exists:
/// `FIRE` moves a paused task's due time on its grid and adds no tick.
/// Returns 1 if this call changed it (0: it does not exist, or was paused,
/// or running, already).
///
/// KEYS: the task's hash. ARGV: 1 or 0.
pub(super) const PAUSE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local was = redis.call('HGET', KEYS[1], 'paused')
if (was == '1') == (ARGV[1] == '1') then return 0 end
redis.call('HSET', KEYS[1], 'paused', ARGV[1])
return 1
";

/// Takes a task out of its module's stream if no worker has claimed it (it
/// is not pending in the group; no group yet means no worker ever read it).
/// Returns 1 if it did, and then counts it `cancelled` (`outcomes.rs`,
/// whose `TALLY` goes before this).
///
/// KEYS: stream. ARGV: group, entry id, prefix.
pub(super) const UNQUEUE: &str = r"
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if ok and #pending > 0 then return 0 end
local removed = redis.call('XDEL', KEYS[1], ARGV[2])
if removed == 1 then
  tally(ARGV[3], KEYS[1], 'cancelled')
  flush_tallies(ARGV[3])
end
return removed
";

/// Hands claimed tasks back to the cluster (a draining or stopping
/// worker): each entry `ARGV[3..]` still pending for the group and held by
/// consumer `ARGV[2]` is acknowledged, copied to the end of its stream as a
/// new entry (any worker may claim it at once, without waiting for a lease
/// to run out) and deleted. An entry no longer held by that consumer
/// (acknowledged, or taken over by another worker) is left alone. Returns
/// how many went back.
///
/// KEYS: stream, its module's ready set. ARGV: group, consumer, entry ids.
pub(super) const HAND_BACK: &str = r"
local n = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    if found[1] then
      redis.call('XADD', KEYS[1], '*', unpack(found[1][2]))
      n = n + 1
    end
  end
end
if n > 0 then redis.call('SADD', KEYS[2], KEYS[1]) end
return n
";
