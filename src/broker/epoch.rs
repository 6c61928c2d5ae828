//! Redis data loss, noticed and told, never silent. A Redis restarted
//! without persistence (or flushed) has lost every task, result and
//! schedule it held: waiting handles would wait for good, and schedules
//! would stop firing until some process registered them again.
//!
//! `P:epoch` holds a value set once (`SET NX`) by the first process that
//! finds it missing. Each process remembers the value it saw; its result
//! listener reads it again every time it (re)connects (a restart drops
//! every connection, so it always reconnects after one). A different or
//! missing value means the data this process relied on is gone:
//!
//! - every handle still waiting for a result settles with
//!   [`TaskError::ResultLost`](crate::TaskError::ResultLost) saying so
//!   (their tasks, queued, delayed or running, and their results, are
//!   gone; a task that was running finishes, but its result has nowhere
//!   to go);
//! - every shared schedule this process registered is registered again
//!   (`RECUR` keeps one per key, so every replica doing it is harmless);
//! - it is logged at error level, with what was done.
//!
//! Bounded: the listener reconnects with a back-off of at most 5 s, so
//! this happens within about 5 s of Redis answering again.

use std::collections::HashMap;

use serde_json::Value;

use super::Broker;
use crate::recurrence::Recurrence;

/// A shared schedule as this process registered it, to register again.
#[derive(Clone, Debug)]
pub(super) struct Declared {
    pub(super) module: String,
    pub(super) name: String,
    pub(super) args: Value,
    pub(super) recurrence: Recurrence,
}

/// What this process knows of the data in Redis.
#[derive(Default)]
pub(super) struct Epoch {
    /// `P:epoch` as last seen; None before the first look.
    seen: Option<String>,
    /// The shared schedules it registered, by key.
    pub(super) declared: HashMap<String, Declared>,
}

impl Broker {
    /// `P:epoch`: see the module docs.
    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.config.prefix)
    }

    /// Reads `P:epoch` (setting it if missing); if it changed since the
    /// last look, Redis lost its data: handles and schedules are seen to
    /// (see the module docs). Called by the listener on every (re)connect,
    /// on its new connection (a pooled one may be a dead one from before).
    pub(super) fn check_epoch(&self, conn: &mut redis::Connection) {
        // Unique to this call: after a loss, this process may be the one
        // that sets it again, and it must differ from what it saw before.
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let fresh = format!("{}-{nanos:x}", self.id);
        let now = redis::cmd("SET")
            .arg(self.epoch_key())
            .arg(&fresh)
            .arg("NX")
            .query::<Option<String>>(conn)
            .and_then(|_| redis::cmd("GET").arg(self.epoch_key()).query::<Option<String>>(conn));
        let now = match now {
            Ok(Some(now)) => now,
            Ok(None) => return,
            Err(e) => {
                log::warn!("taskmanager: could not read {}: {e}", self.epoch_key());
                return;
            }
        };
        let (lost, schedules) = {
            let mut epoch = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
            let lost = epoch.seen.as_ref().is_some_and(|seen| *seen != now);
            epoch.seen = Some(now);
            (lost, if lost { epoch.declared.clone() } else { HashMap::new() })
        };
        if lost {
            self.after_data_loss(schedules);
        }
    }

    fn after_data_loss(&self, schedules: HashMap<String, Declared>) {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len();
        self.abandon_waiting(
            "Redis lost its data (it restarted without persistence, or was flushed): the task and its result \
             are gone; see the README's deployment section",
        );
        let mut again = 0;
        for (key, d) in &schedules {
            match self.register_schedule(key, d, false) {
                Ok(_) => again += 1,
                Err(e) => log::error!("taskmanager: could not register the schedule {key} again: {e}"),
            }
        }
        log::error!(
            "taskmanager: Redis at {} lost its data ({} changed): {waiting} waiting handle(s) settled with \
             ResultLost, {again} of {} shared schedule(s) registered again",
            self.client.get_connection_info().addr,
            self.epoch_key(),
            schedules.len()
        );
    }
}
