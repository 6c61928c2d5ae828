//! A task found in its stream by id, for an operator (`python -m
//! taskmanager tasks ... show`): queued, or held by a worker. Streams are
//! not indexed by task id (an index would cost every task a write), so
//! this searches: every stream of the prefix (`SCAN`), at most
//! [`SEARCHED`] entries of each, one script call per stream. Never on a
//! task's own path.

use super::{Broker, GROUP};
use crate::err::SubmitError;

/// The most entries of one stream [`LOCATE`] looks at.
const SEARCHED: usize = 10_000;

/// A task waiting in, or claimed from, its stream
/// ([`TaskManager::locate`](crate::TaskManager::locate)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InStream {
    /// Its module.
    pub module: String,
    /// Its task name.
    pub name: String,
    /// The worker holding it (its id in the cluster, as
    /// [`WorkerInfo::id`](crate::WorkerInfo::id)); None: queued, no
    /// worker has claimed it.
    pub worker: Option<String>,
    /// How many times the group delivered its entry (0 while queued).
    pub deliveries: u64,
    /// Which attempt it is (1: the first; a retry's is more).
    pub attempt: u32,
}

/// Finds the entry of task `ARGV[2]` among the first `ARGV[3]` of a
/// stream; returns {its holder (empty: none), its deliveries, its attempt
/// (1 if the entry has none)}, or nil if it is not there.
///
/// KEYS: stream. ARGV: group, task id, most entries.
const LOCATE: &str = r"
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[3]))) do
  local f = e[2]
  local id, attempt = nil, '1'
  for j = 1, #f, 2 do
    if f[j] == 'id' then id = f[j + 1] elseif f[j] == 'attempt' and f[j + 1] ~= '' then attempt = f[j + 1] end
  end
  if id == ARGV[2] then
    local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    if ok and p[1] then return {p[1][2], p[1][4], attempt} end
    return {'', 0, attempt}
  end
end
return false
";

impl Broker {
    /// See [`InStream`]; None if no stream holds task `id`.
    pub(crate) fn locate(&self, id: &str) -> Result<Option<InStream>, SubmitError> {
        let found = self.with_conn(|conn| {
            let script = redis::Script::new(LOCATE);
            for stream in self.stream_keys(conn)? {
                let held: Option<(String, u64, u32)> =
                    script.key(&stream).arg(GROUP).arg(id).arg(SEARCHED).invoke(conn)?;
                if let (Some((worker, deliveries, attempt)), Some((module, name))) =
                    (held, self.stream_parts(&stream))
                {
                    let worker = Some(worker).filter(|w| !w.is_empty());
                    return Ok(Some(InStream { module, name, worker, deliveries, attempt }));
                }
            }
            Ok(None)
        });
        found.map_err(|e| {
            SubmitError::Broker(self.call_error(&format!("searching the streams for task {id}"), &e))
        })
    }
}

/// A task a worker has claimed from its stream and not yet acknowledged:
/// running, or about to ([`TaskManager::claimed_tasks`](crate::TaskManager::claimed_tasks)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    /// Its id (as its handle's `task_id`).
    pub id: String,
    /// Its module.
    pub module: String,
    /// Its name: the `name=` its submitter gave it, else its task name.
    pub name: String,
    /// The worker holding it (as [`WorkerInfo::id`](crate::WorkerInfo::id)).
    pub worker: String,
    /// How long since the worker claimed it (or last renewed its lease, by
    /// Redis's clock: the entry's idle time).
    pub idle: std::time::Duration,
    /// How many times the group delivered its entry.
    pub deliveries: u64,
}

/// The first `ARGV[2]` entries claimed from a stream: for each, {its
/// entry's `id` field, its `label` field, its holder, its idle time in ms,
/// its deliveries}.
///
/// KEYS: stream. ARGV: group, most entries.
const CLAIMED: &str = r"
local ok, pending = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[2]))
if not ok then return {} end
local out = {}
for _, p in ipairs(pending) do
  local e = redis.call('XRANGE', KEYS[1], p[1], p[1])
  local id, label = '', ''
  if e[1] then
    local f = e[1][2]
    for j = 1, #f, 2 do
      if f[j] == 'id' then id = f[j + 1] elseif f[j] == 'label' then label = f[j + 1] end
    end
  end
  out[#out + 1] = {id, label, p[2], p[3], p[4]}
end
return out
";

impl Broker {
    /// See [`ClaimedTask`]: at most `limit` of each stream, longest held
    /// first overall.
    pub(crate) fn claimed_tasks(&self, limit: usize) -> Result<Vec<ClaimedTask>, SubmitError> {
        let found = self.with_conn(|conn| {
            let script = redis::Script::new(CLAIMED);
            let mut claimed = Vec::new();
            for stream in self.stream_keys(conn)? {
                let Some((module, name)) = self.stream_parts(&stream) else { continue };
                let entries: Vec<(String, String, String, u64, u64)> =
                    script.key(&stream).arg(GROUP).arg(limit.max(1)).invoke(conn)?;
                for (id, label, worker, idle, deliveries) in entries {
                    let name = if label.is_empty() { name.clone() } else { label };
                    let idle = std::time::Duration::from_millis(idle);
                    claimed.push(ClaimedTask { id, module: module.clone(), name, worker, idle, deliveries });
                }
            }
            Ok(claimed)
        });
        let mut claimed =
            found.map_err(|e| SubmitError::Broker(self.call_error("reading the claimed tasks", &e)))?;
        claimed.sort_by_key(|t| std::cmp::Reverse(t.idle));
        claimed.truncate(limit);
        Ok(claimed)
    }
}
