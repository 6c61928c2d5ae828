//! The result listener: completes the handles of tasks this manager sent,
//! as their results arrive (a message on its reply channel), and sweeps for
//! results whose message it missed (while reconnecting). Results' stored
//! copies stay for their TTL (10 min by default), whoever read them: any
//! process may look a task's result up by id meanwhile (`lookup.rs`).
//! (Deleting a copy once a handle here had it raced the web pattern: a
//! quick task's result reached its handle before the request dropped it,
//! and the id it returned then found nothing.)

use std::time::Duration;

use super::pace::{back_off, Every};
use std::sync::Arc;

use super::{decode_result, Broker, RemoteCell};
use crate::err::TaskError;

/// How long one wait for a message lasts: also how soon the listener
/// notices shutdown.
const TICK: Duration = Duration::from_millis(200);

impl Broker {
    /// The listener's loop, until the manager stops accepting tasks (it
    /// may start before the manager does: see `ensure_listener`); then every
    /// handle still waiting is told its result is lost.
    pub(super) fn listen(&self) {
        self.rt.run_thread(&mut || self.listen_until_stopped());
    }

    fn listen_until_stopped(&self) {
        let channel = self.reply_channel();
        let mut backoff = Duration::from_millis(100);
        let mut sweep = Every::new(Duration::from_secs(1));
        'connect: while self.rt.life.phase().accepts() {
            let mut conn = match self.connect() {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("taskmanager: result listener cannot reach the broker: {e}; retrying");
                    back_off(&mut backoff);
                    continue;
                }
            };
            // Did Redis lose its data meanwhile (`epoch.rs`)?
            self.check_epoch(&mut conn);
            let mut pubsub = conn.as_pubsub();
            if let Err(e) = pubsub.subscribe(&channel).and_then(|()| pubsub.set_read_timeout(Some(TICK))) {
                log::warn!("taskmanager: result listener cannot subscribe: {e}; retrying");
                back_off(&mut backoff);
                continue;
            }
            backoff = Duration::from_millis(100);
            log::debug!("taskmanager: result listener subscribed to {channel}");
            // Results that came while this was not subscribed. (The
            // subscription stays: dropping `pubsub` would unsubscribe.)
            self.sweep();
            while self.rt.life.phase().accepts() {
                match pubsub.get_message() {
                    Ok(message) => {
                        if let Ok(payload) = message.get_payload::<String>() {
                            self.settle_from(&payload);
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        log::warn!("taskmanager: result listener lost the broker: {e}; reconnecting");
                        // The pooled connections predate the loss: likely
                        // dead too (a restarted Redis closed them all), and
                        // each would fail one call.
                        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                        continue 'connect;
                    }
                }
                if sweep.due() {
                    self.sweep();
                }
            }
        }
        self.abandon_waiting("the task manager shut down before the result arrived; the task runs anyway");
    }

    /// The handle waiting for `task`'s result, if its user still holds it;
    /// either way `task` waits no more.
    fn take_waiting(&self, task: &str) -> Option<Arc<RemoteCell>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(task)?.upgrade()
    }

    /// Settles every handle still waiting: called when the listener ends,
    /// and when Redis lost its data (`epoch.rs`).
    pub(super) fn abandon_waiting(&self, reason: &str) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
        for cell in waiting.into_values().filter_map(|cell| cell.upgrade()) {
            cell.settle(Err(TaskError::ResultLost { reason: reason.to_owned() }));
        }
    }

    /// Settles a handle from its result message (`<task id>\n<result>`).
    fn settle_from(&self, payload: &str) {
        let Some((task, text)) = payload.split_once('\n') else {
            // Only an id: read the stored result.
            return self.fetch(&[payload.to_owned()]);
        };
        if let Some(cell) = self.take_waiting(task) {
            cell.settle(decode_result(text));
        }
    }

    /// Fetches the results of every waiting task that has one (and forgets
    /// tasks whose handles were dropped).
    fn sweep(&self) {
        let tasks: Vec<String> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.retain(|_, cell| cell.strong_count() > 0);
            waiting.keys().cloned().collect()
        };
        for chunk in tasks.chunks(500) {
            self.fetch(chunk);
        }
    }

    /// Reads the results of `tasks` that are in Redis and settles their
    /// handles.
    fn fetch(&self, tasks: &[String]) {
        if tasks.is_empty() {
            return;
        }
        let keys: Vec<String> = tasks.iter().map(|t| self.result_key(t)).collect();
        let values =
            match self.with_conn(|conn| redis::cmd("MGET").arg(&keys).query::<Vec<Option<String>>>(conn)) {
                Ok(values) => values,
                Err(e) => {
                    log::warn!("taskmanager: could not read results: {e}");
                    return;
                }
            };
        for (task, value) in tasks.iter().zip(values) {
            let Some(text) = value else { continue };
            if let Some(cell) = self.take_waiting(task) {
                cell.settle(decode_result(&text));
            }
        }
    }
}
