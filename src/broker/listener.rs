//! The result listener: completes the handles of tasks this manager sent,
//! as their results arrive (a message on its reply channel), and sweeps for
//! results whose message it missed (while reconnecting).

use std::time::Duration;

use super::pace::{back_off, Every};
use super::{decode_result, Broker};
use crate::lifecycle::Phase;

/// How long one wait for a message lasts: also how soon the listener
/// notices shutdown.
const TICK: Duration = Duration::from_millis(200);

impl Broker {
    /// The listener's loop, until the manager stops running; then every
    /// handle still waiting is told its result is lost.
    pub(super) fn listen(&self) {
        let channel = self.reply_channel();
        let mut backoff = Duration::from_millis(100);
        let mut sweep = Every::new(Duration::from_secs(1));
        'connect: while self.rt.life.phase() == Phase::Running {
            let mut conn = match self.connect() {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("taskmanager: result listener cannot reach the broker: {e}; retrying");
                    back_off(&mut backoff);
                    continue;
                }
            };
            let mut pubsub = conn.as_pubsub();
            if let Err(e) = pubsub.subscribe(&channel).and_then(|()| pubsub.set_read_timeout(Some(TICK))) {
                log::warn!("taskmanager: result listener cannot subscribe: {e}; retrying");
                back_off(&mut backoff);
                continue;
            }
            backoff = Duration::from_millis(100);
            // Results that came while this was not subscribed. (The
            // subscription stays: dropping `pubsub` would unsubscribe.)
            self.sweep();
            while self.rt.life.phase() == Phase::Running {
                match pubsub.get_message() {
                    Ok(message) => {
                        if let Ok(task) = message.get_payload::<String>() {
                            self.fetch(&[task]);
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => {
                        log::warn!("taskmanager: result listener lost the broker: {e}; reconnecting");
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

    /// Fetches the results of every waiting task that has one.
    fn sweep(&self) {
        let tasks: Vec<String> =
            self.waiting.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for chunk in tasks.chunks(500) {
            self.fetch(chunk);
        }
    }

    /// Reads the results of `tasks` that are in Redis, settles their
    /// handles, then deletes the results read. In that order: a deletion
    /// whose reply is lost (Redis going down) must not lose a result that
    /// was never handed over; a result not deleted expires.
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
        let mut read = Vec::new();
        for ((task, key), value) in tasks.iter().zip(&keys).zip(values) {
            let Some(text) = value else { continue };
            read.push(key);
            let cell = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(task);
            if let Some(cell) = cell {
                cell.settle(decode_result(&text));
            }
        }
        if !read.is_empty() {
            if let Err(e) = self.with_conn(|conn| redis::cmd("DEL").arg(&read).query::<i64>(conn)) {
                log::debug!("taskmanager: results read but not deleted ({e}); they expire");
            }
        }
    }
}
