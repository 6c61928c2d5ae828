//! Delayed and recurring named tasks, kept in Redis so that they survive
//! any one process and fire once cluster-wide: the scheduler thread of
//! every worker process (`firing.rs`) calls the `FIRE` script, which moves
//! what is due into the modules' streams atomically.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::pace::millis;
use super::{Broker, RemoteCell};
use crate::err::SubmitError;
use crate::event::{Event, TaskRef};
use crate::pool::Pool;
use crate::recurrence::Recurrence;

/// What registering a shared schedule did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// It did not exist: made now.
    Created,
    /// It existed with this definition: kept as it was.
    Kept,
    /// It existed with another definition (interval, arguments): updated.
    Updated,
}

impl Broker {
    /// Schedules the named task to run once, `delay` from now by Redis's
    /// clock; returns its handle's cell (named `label`) once Redis has it.
    /// This manager lists it until then (`listing.rs`).
    // What a delayed `NamedTask` carries, one to one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn schedule(
        self: &Arc<Self>,
        pool: &Arc<Pool>,
        name: &str,
        label: Arc<str>,
        args: &Value,
        delay: Duration,
        retry: Option<&crate::retry::Retry>,
        ttl: Option<Duration>,
        trace: Option<&crate::trace_context::TraceContext>,
    ) -> Result<Arc<RemoteCell>, SubmitError> {
        let module: &str = &pool.name;
        let (task, cell) = self.new_waiting(pool, name, Arc::clone(&label))?;
        let (delayed, hash, reply) =
            (self.delayed_key(), format!("{}:t:{task}", self.config.prefix), self.reply_channel());
        let args = args.to_string();
        let sent = self.with_conn(|conn| {
            self.schedule_script
                .key(&delayed)
                .key(&hash)
                .key(self.recurring_key())
                .arg(millis(delay))
                .arg(&task)
                .arg(module)
                .arg(name)
                .arg(&args)
                .arg(&reply)
                .arg(self.wake_channel())
                .arg(retry.map(super::retrying::encode).unwrap_or_default())
                .arg(ttl.map(|t| millis(t).to_string()).unwrap_or_default())
                .arg(if *label == *name { "" } else { &label })
                .arg(trace.map_or("", |t| t.traceparent()))
                .arg(trace.and_then(|t| t.tracestate()).unwrap_or(""))
                .invoke::<i64>(conn)
        });
        sent.map_err(|e| self.not_sent(&task, &format!("SCHEDULE to {delayed}"), &e))?;
        cell.set_place(super::Place::Delayed);
        let core = crate::job::Waitable::core(&*cell);
        self.note_delayed(&task, core.id(), core.name(), &pool.name, delay);
        Ok(cell)
    }

    /// Takes a delayed task out of Redis before it falls due; true if it
    /// did (false: it fell due, and went to its stream).
    pub(super) fn unschedule(&self, task: &str) -> bool {
        let hash = format!("{}:t:{task}", self.config.prefix);
        let removed = self.with_conn(|conn| {
            redis::Script::new(&super::outcomes::unschedule_script())
                .key(self.delayed_key())
                .key(&hash)
                .arg(task)
                .arg(&self.config.prefix)
                .invoke::<(i64, i64)>(conn)
        });
        removed.is_ok_and(|(n, _)| n == 1)
    }

    /// Registers a recurring named task under `key` unless it exists (then
    /// its schedule stays as it is, or is updated if its definition
    /// changed); returns what this call did (see `scripts::RECUR`, and
    /// `calendar.rs` for a calendar `recurrence`). An interval schedule
    /// takes the interval and `run_now` of `recurrence`; a calendar one
    /// all of it (checked by the caller).
    pub(crate) fn recur(
        self: &Arc<Self>,
        module: &str,
        name: &str,
        args: &Value,
        recurrence: &Recurrence,
        key: &str,
    ) -> Result<Registration, SubmitError> {
        if !self.rt.life.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        // Remembered, to register again if Redis loses it (`epoch.rs`);
        // the listener is what notices.
        let declared = super::epoch::Declared {
            module: module.to_owned(),
            name: name.to_owned(),
            args: args.clone(),
            recurrence: recurrence.clone(),
        };
        let registered = self.register_schedule(key, &declared, recurrence.runs_now());
        if !matches!(registered, Err(SubmitError::InvalidSchedule { .. })) {
            self.epoch.lock().unwrap_or_else(|p| p.into_inner()).declared.insert(key.to_owned(), declared);
        }
        self.ensure_listener();
        registered
    }

    /// The `RECUR` call of [`recur`](Self::recur), for `schedule` under
    /// `key` (`RECUR_CALENDAR` for a calendar one).
    pub(super) fn register_schedule(
        &self,
        key: &str,
        schedule: &super::epoch::Declared,
        run_now: bool,
    ) -> Result<Registration, SubmitError> {
        if let Some(def) = super::calendar_tick::Def::of(&schedule.recurrence) {
            return self.register_calendar(key, schedule, &def, run_now);
        }
        let super::epoch::Declared { module, name, args, recurrence } = schedule;
        let interval = recurrence.interval();
        let first = if run_now { 0 } else { millis(interval) };
        let created = self.with_conn(|conn| {
            self.recur_script
                .key(self.recurring_key())
                .key(self.recurring_hash(key))
                .key(self.delayed_key())
                .key(self.calendar_key())
                .arg(module)
                .arg(name)
                .arg(args.to_string())
                .arg(millis(interval))
                .arg(first)
                .arg(key)
                .arg(self.wake_channel())
                .invoke::<i64>(conn)
        });
        created
            .map(|n| match n {
                1 => Registration::Created,
                2 => Registration::Updated,
                _ => Registration::Kept,
            })
            .map_err(|e| SubmitError::Broker(self.call_error(&format!("RECUR of {key}"), &e)))
    }

    /// Removes a recurring task cluster-wide; returns whether it existed. A
    /// run in progress finishes.
    pub(crate) fn cancel_recurring(&self, key: &str) -> Result<bool, SubmitError> {
        // Not to be registered again after a data loss (`epoch.rs`).
        self.epoch.lock().unwrap_or_else(|p| p.into_inner()).declared.remove(key);
        let removed = self.with_conn(|conn| {
            self.forget_script
                .key(self.recurring_key())
                .key(self.recurring_hash(key))
                .key(self.calendar_key())
                .arg(key)
                .invoke::<(i64, i64)>(conn)
        });
        let existed = removed.map(|(_, n)| n == 1).map_err(|e| {
            SubmitError::Broker(self.call_error(&format!("cancelling the schedule {key}"), &e))
        })?;
        if existed {
            self.rt.events.cancelled(|| schedule_ref(key));
        }
        Ok(existed)
    }

    /// Pauses (or resumes) a recurring task cluster-wide: its ticks pass
    /// without running. Returns whether this call changed it (false: it
    /// was so already, or does not exist), and then tells the event.
    pub(crate) fn pause_recurring(&self, key: &str, paused: bool) -> Result<bool, SubmitError> {
        let hash = self.recurring_hash(key);
        let set = self.with_conn(|conn| {
            redis::Script::new(super::scripts::PAUSE)
                .key(&hash)
                .arg(if paused { "1" } else { "0" })
                .invoke::<i64>(conn)
        });
        let changed = set
            .map(|n| n == 1)
            .map_err(|e| SubmitError::Broker(self.call_error(&format!("pausing {hash}"), &e)))?;
        if changed {
            self.rt.events.emit(log::Level::Info, || {
                let task = schedule_ref(key);
                if paused {
                    Event::Paused { task }
                } else {
                    Event::Resumed { task }
                }
            });
        }
        Ok(changed)
    }

    /// A recurring task's counts: ticks run, ticks skipped (the previous
    /// run had not finished, or, for a calendar schedule, missed by its
    /// misfire policy), and ticks coalesced into a run; None if it does
    /// not exist.
    pub(crate) fn recurring_counts(&self, key: &str) -> Result<Option<(u64, u64, u64)>, SubmitError> {
        let hash = self.recurring_hash(key);
        let counts = self.with_conn(|conn| {
            redis::cmd("HMGET").arg(&hash).arg("ticks").arg("skipped").arg("coalesced").query::<(
                Option<u64>,
                Option<u64>,
                Option<u64>,
            )>(conn)
        });
        match counts {
            Ok((Some(ticks), skipped, coalesced)) => {
                Ok(Some((ticks, skipped.unwrap_or(0), coalesced.unwrap_or(0))))
            }
            Ok((None, ..)) => Ok(None),
            Err(e) => Err(SubmitError::Broker(self.call_error(&format!("HMGET of {hash}"), &e))),
        }
    }
}

/// A shared schedule, as its events tell it: no number in this process
/// (0), its key as its name and broker id.
fn schedule_ref(key: &str) -> TaskRef {
    TaskRef { id: 0, name: key.to_owned(), broker_id: Some(key.to_owned()) }
}
