//! The result listener: completes the handles of tasks this manager sent,
//! as their results arrive (a message on its reply channel), and sweeps for
//! results whose message it missed (while reconnecting).

use std::time::Duration;

use super::{back_off, decode_result, Broker, Every};
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

    /// Reads (and deletes) the results of `tasks` that are in Redis and
    /// settles their handles.
    fn fetch(&self, tasks: &[String]) {
        if tasks.is_empty() {
            return;
        }
        let keys: Vec<String> = tasks.iter().map(|t| self.result_key(t)).collect();
        let found = self.with_conn(|conn| {
            let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(conn)?;
            let present: Vec<&String> =
                keys.iter().zip(&values).filter(|(_, v)| v.is_some()).map(|(k, _)| k).collect();
            if !present.is_empty() {
                redis::cmd("DEL").arg(&present).query::<i64>(conn)?;
            }
            Ok(values)
        });
        let values = match found {
            Ok(values) => values,
            Err(e) => {
                log::warn!("taskmanager: could not read results: {e}");
                return;
            }
        };
        for (task, value) in tasks.iter().zip(values) {
            let Some(text) = value else { continue };
            let cell = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(task);
            if let Some(cell) = cell {
                cell.settle(decode_result(&text));
            }
        }
    }
}
