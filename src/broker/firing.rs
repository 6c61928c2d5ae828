//! The scheduler thread of a worker process: calls `FIRE` (which moves what
//! is due into the streams, see `scripts.rs`), then sleeps until the next
//! due time, with no call to Redis meanwhile.
//!
//! Waking: a process that schedules a delayed task or registers a recurring
//! one due sooner than everything already scheduled publishes on
//! `P:wake` (in the same script), and every scheduler, subscribed there
//! before its first `FIRE`, wakes and fires again. Due times are by
//! Redis's clock, and `FIRE` returns the wait (not the time), so the
//! processes' clocks do not matter. Only processes that claim fire: a
//! `submit_only` process never calls `FIRE` (its schedules fire in the
//! workers, which run them anyway). Idle cost: BENCHMARKS.md, "Idle cost
//! against Redis".

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pace::Every;
use super::Broker;
use crate::lifecycle::Phase;

/// The longest the scheduler sleeps without a call to Redis, however far
/// the next due time: a safety net for a wake-up that never comes (a
/// process of an older version, which does not publish, scheduling
/// something sooner; Redis's clock jumping), at the cost of one `FIRE`
/// (6 commands) per process per period.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// How often a sleeping scheduler looks at the manager's phase: how soon it
/// notices shutdown (a local wait, not a call to Redis).
const POLL: Duration = Duration::from_millis(50);

/// Most entries of each kind one `FIRE` call moves.
const FIRE_BATCH: usize = 200;

impl Broker {
    /// Starts the scheduler thread if this process claims tasks and it is
    /// not running yet: at the manager's start, or when a process becomes a
    /// worker after it (`set_claims`).
    pub(super) fn start_firing(self: &Arc<Self>) {
        if !self.claims.load(SeqCst) || self.firing.swap(true, SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        if let Err(e) = self.rt.threads.spawn("taskmanager-scheduler", move || me.fire_loop()) {
            self.firing.store(false, SeqCst);
            log::error!("taskmanager: could not start the broker's scheduler: {e}");
        }
    }

    /// The scheduler thread, until the manager stops running: subscribes to
    /// the wake channel, then fires and sleeps (see the module docs). The
    /// subscription is made again whenever it is lost, before the next
    /// `FIRE`: what was published meanwhile is found by that call.
    fn fire_loop(&self) {
        let mut backoff = Duration::from_millis(100);
        // This worker's heartbeat in the cluster's list: at once, then every
        // third of the lease; a sleep ends for it.
        let mut seen = Every::now_due(self.config.lease / 3);
        // The sweep for tasks no live worker can run (`unrunnable.rs`).
        let mut sweep = Every::now_due(self.sweep_period());
        'connect: while self.running() {
            let mut conn = match self.connect() {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("taskmanager: scheduler cannot reach the broker: {e}; retrying");
                    self.pause(&mut backoff);
                    continue;
                }
            };
            // Dropping `wake` would unsubscribe: it lives as long as `conn`.
            let mut wake = conn.as_pubsub();
            if let Err(e) = wake.subscribe(self.wake_channel()) {
                log::warn!("taskmanager: scheduler cannot subscribe to wake-ups: {e}; retrying");
                self.pause(&mut backoff);
                continue;
            }
            while self.running() {
                let next = match self.fire(&mut seen, &mut sweep) {
                    Ok(next) => next,
                    Err(e) => {
                        log::warn!("taskmanager: scheduler cannot reach the broker: {e}; retrying");
                        self.pause(&mut backoff);
                        continue 'connect;
                    }
                };
                backoff = Duration::from_millis(100);
                let until = Instant::now() + next.min(MAX_SLEEP).min(seen.left()).min(sweep.left());
                if !self.sleep_until(&mut wake, until) {
                    continue 'connect;
                }
            }
        }
        self.leave();
    }

    fn running(&self) -> bool {
        self.rt.life.phase() == Phase::Running
    }

    /// One `FIRE` (after the heartbeat, when due; then the sweep for tasks
    /// no live worker can run, when due); returns how long until the next
    /// due entry.
    fn fire(&self, seen: &mut Every, sweep: &mut Every) -> redis::RedisResult<Duration> {
        let (delayed, recurring, calendar) = (self.delayed_key(), self.recurring_key(), self.calendar_key());
        let wait = self.with_conn(|conn| {
            if seen.due() {
                self.announce(conn)?;
            }
            let fired = self
                .fire_script
                .key(&delayed)
                .key(&recurring)
                .key(&calendar)
                .arg(&self.config.prefix)
                .arg(FIRE_BATCH)
                .invoke::<Vec<String>>(conn)?;
            let number = |i: usize| fired.get(i).and_then(|n| n.parse::<i64>().ok()).unwrap_or(-1);
            let (mut wait, now) = (number(0), u64::try_from(number(1)).unwrap_or(0));
            let due_calendars = fired.get(2..).unwrap_or_default();
            if let Some(again) = self.fire_calendars(conn, now, due_calendars)? {
                let again = i64::try_from(again.saturating_sub(now)).unwrap_or(i64::MAX);
                wait = if wait < 0 { again } else { wait.min(again) };
            }
            if due_calendars.len() >= FIRE_BATCH {
                wait = 0; // more are due
            }
            if self.is_worker() && sweep.due() {
                match self.sweep_unrunnable(conn) {
                    // Redis refused a step (not the connection): firing goes on.
                    Err(e) if e.kind() == redis::ErrorKind::ResponseError => {
                        log::warn!("taskmanager: the sweep for tasks no worker can run failed: {e}");
                    }
                    other => drop(other?),
                }
            }
            Ok(wait)
        })?;
        // -1: nothing is scheduled.
        Ok(u64::try_from(wait).map_or(MAX_SLEEP, Duration::from_millis))
    }

    /// Sleeps until `until`, a wake-up, or shutdown, whichever is first;
    /// false if the subscription was lost.
    fn sleep_until(&self, wake: &mut redis::PubSub<'_>, until: Instant) -> bool {
        while self.running() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            if let Err(e) = wake.set_read_timeout(Some(left.min(POLL))) {
                log::warn!("taskmanager: scheduler lost its wake-ups: {e}; subscribing again");
                return false;
            }
            match wake.get_message() {
                // Something falls due sooner than this sleep would end.
                Ok(_) => return true,
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    log::warn!("taskmanager: scheduler lost its wake-ups: {e}; subscribing again");
                    return false;
                }
            }
        }
        true
    }

    /// Sleeps `backoff` (then doubles it up to 5 s), in slices, ending at
    /// shutdown: a stopping worker does not wait out a back-off.
    fn pause(&self, backoff: &mut Duration) {
        let until = Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(Duration::from_secs(5));
        while self.running() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}
