//! The Redis key layout, in one place (`PROTOCOL.md`, "Redis", has it as
//! a table): every key and channel the broker uses, under its prefix `P`.
//! The Lua scripts (`scripts.rs`) build the same keys from the prefix where
//! they must (`FIRE`'s stream keys escape as [`Broker::stream_key`] does).

use super::Broker;

impl Broker {
    /// The stream of `module`'s task `name`: one per name, so that a worker
    /// reads only the tasks it can run (a task of a name it does not know
    /// waits for a worker that does). `%` and `/` are escaped in both parts
    /// (`stream_parts` reads them back).
    pub(super) fn stream_key(&self, module: &str, name: &str) -> String {
        format!("{}:s:{}/{}", self.config.prefix, escape(module), escape(name))
    }

    /// The module and task name of a stream key, if it is one of this
    /// prefix's.
    pub(super) fn stream_parts(&self, key: &str) -> Option<(String, String)> {
        let rest = key.strip_prefix(&self.config.prefix)?.strip_prefix(":s:")?;
        let (module, name) = rest.split_once('/')?;
        Some((unescape(module), unescape(name)))
    }

    /// `P:r:<task>`: a task's result, kept `result_ttl` for a submitter that
    /// missed its message.
    pub(super) fn result_key(&self, task: &str) -> String {
        format!("{}:r:{task}", self.config.prefix)
    }

    /// `P:done:<manager>`: where this manager hears its tasks' results.
    pub(super) fn reply_channel(&self) -> String {
        format!("{}:done:{}", self.config.prefix, self.id)
    }

    /// `P:reclaimed`: a hash, per worker, of the tasks taken over from it.
    pub(super) fn reclaimed_key(&self) -> String {
        format!("{}:reclaimed", self.config.prefix)
    }

    /// `P:workers`: the workers seen, scored by their last heartbeat.
    pub(super) fn workers_key(&self) -> String {
        format!("{}:workers", self.config.prefix)
    }

    /// `P:w:<worker>`: a worker's host, pid and modules.
    pub(super) fn worker_hash(&self, id: &str) -> String {
        format!("{}:w:{id}", self.config.prefix)
    }

    /// `P:wake`: wakes the workers' schedulers when something falls due
    /// sooner than everything scheduled.
    pub(super) fn wake_channel(&self) -> String {
        format!("{}:wake", self.config.prefix)
    }

    /// `P:delayed`: delayed one-shot tasks by due time (their fields in
    /// `P:t:<task>`).
    pub(super) fn delayed_key(&self) -> String {
        format!("{}:delayed", self.config.prefix)
    }

    /// `P:recur`: recurring schedules by next due time.
    pub(super) fn recurring_key(&self) -> String {
        format!("{}:recur", self.config.prefix)
    }

    /// The calendar schedules' set: keys scored by when their pending tick
    /// fires (ms, Redis's clock; `calendar.rs`).
    pub(super) fn calendar_key(&self) -> String {
        format!("{}:cal", self.config.prefix)
    }

    /// `P:rec:<key>`: a recurring schedule's fields and counts.
    pub(super) fn recurring_hash(&self, key: &str) -> String {
        format!("{}:rec:{key}", self.config.prefix)
    }

    /// `P:ready:<module>`: the module's streams that may hold entries no
    /// worker has read (added with each entry, taken out by `CLAIM` when it
    /// finds one drained): a claim reads those, not every stream.
    pub(super) fn ready_key(&self, module: &str) -> String {
        format!("{}:ready:{module}", self.config.prefix)
    }

    /// `P:cap:<module>`: the module's cluster-wide places
    /// (`global_max_workers`), scored by lease deadline.
    pub(super) fn places_key(&self, module: &str) -> String {
        format!("{}:cap:{module}", self.config.prefix)
    }
}

/// A key part with `%` and `/` escaped (see `Broker::stream_key`; the
/// `FIRE` script escapes the same way).
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('/', "%2F")
}

fn unescape(part: &str) -> String {
    part.replace("%2F", "/").replace("%25", "%")
}
