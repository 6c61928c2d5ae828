//! Named tasks (feature `redis`): the [`Module`] calls that send tasks
//! through the manager's broker by name, so that any process runs them, and
//! [`SharedSchedule`], the handle of a recurring one kept in Redis.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::broker::MIN_RESULT_TTL;
use crate::broker::{Broker, Registration};
use crate::err::{RemoteError, SubmitError};
use crate::handle::TaskHandle;
use crate::module::Module;
use crate::recurrence::Recurrence;
use crate::retry::Retry;
use crate::trace_context::TraceContext;

/// Named tasks, which cross processes through the manager's broker
/// ([`Builder::broker`](crate::Builder::broker)): every process registers
/// the same handlers under the same names, and any of them runs a task
/// submitted by any other.
impl Module {
    /// Registers `handler` as the task `name` of this module. Once the
    /// manager runs, this process claims the module's named tasks from the
    /// broker, as many at a time as the module has workers, and runs each on
    /// one of them. It claims only the names it registered: a task of a
    /// name this process does not know stays in Redis for a process that
    /// does (a rolling deploy's new task waits for an upgraded worker).
    ///
    /// A handler takes the task's JSON arguments and returns its JSON value,
    /// or a [`RemoteError`](RemoteError) that the submitter's handle
    /// reports as [`TaskError::Remote`](crate::TaskError::Remote); a panic
    /// is reported the same way. It may run more than once for one
    /// submission if its worker dies mid-run (delivery is at least once).
    pub fn register<F>(&self, name: &str, handler: F) -> Result<(), SubmitError>
    where
        F: Fn(Value) -> Result<Value, RemoteError> + Send + Sync + 'static,
    {
        let broker = self.broker()?;
        broker.register(&self.pool, name, Arc::new(handler));
        Ok(())
    }

    /// Sends the task `name` of this module, with `args`, to the broker: any
    /// process that registered `name` runs it. Returns once Redis has it;
    /// the handle's [`join`](TaskHandle::join) gives the handler's value.
    /// With the module's default [`Retry`](crate::Retry), if it has one;
    /// [`named_task`](Self::named_task) sets one per task.
    ///
    /// # Errors
    /// [`SubmitError::Broker`] if Redis did not take it within the broker
    /// timeout, or the manager has no broker; [`SubmitError::ShutDown`]
    /// once the manager is shutting down.
    pub fn add_named_task(&self, name: &str, args: Value) -> Result<TaskHandle<Value>, SubmitError> {
        self.named_task(name, args).submit()
    }

    /// Runs the task `name` of this module once, `delay` from now by
    /// Redis's clock, in whichever process claims it then. The schedule is
    /// kept in Redis: it survives the submitting process.
    ///
    /// # Errors
    /// As [`add_named_task`](Self::add_named_task).
    pub fn schedule_named_task(
        &self,
        delay: Duration,
        name: &str,
        args: Value,
    ) -> Result<TaskHandle<Value>, SubmitError> {
        self.named_task(name, args).delay(delay).submit()
    }

    /// The task `name` of this module with `args`, to set options on before
    /// [`submit`](NamedTask::submit):
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use taskmanager::{Module, Retry};
    /// # fn send(mailer: &Module) -> Result<(), taskmanager::SubmitError> {
    /// let handle = mailer
    ///     .named_task("send", serde_json::json!({"to": "a@example.com"}))
    ///     .retry(Retry::new(5).on(["builtins.ConnectionError"]))
    ///     .delay(Duration::from_secs(10))
    ///     .submit()?;
    /// # Ok(()) }
    /// ```
    pub fn named_task(&self, name: &str, args: Value) -> NamedTask<'_> {
        NamedTask {
            module: self,
            name: name.to_owned(),
            args,
            delay: None,
            retry: self.retry().cloned(),
            ttl: None,
            label: None,
            trace: None,
        }
    }

    /// Runs the task `name` of this module at each tick of `recurrence`,
    /// once per tick across every process, kept in Redis under
    /// `<module>.<name>`: every replica may register it at start-up and one
    /// schedule results (a registration with the same definition and
    /// arguments keeps it as it is; one with others updates it, as a deploy
    /// that changed them expects: see [`SharedSchedule::updated`]). A tick
    /// whose previous run has not finished is skipped: runs never overlap.
    ///
    /// Every interval ([`Recurrence::every`]): ticks sit on a fixed grid by
    /// Redis's clock; missed ticks are skipped, never run in a burst (the
    /// interval and `run_now` are what count here: its misfire policy,
    /// grace, jitter and pacing are the in-process timer's).
    ///
    /// At a calendar rule's times ([`Recurrence::cron`]): by the wall
    /// clock *of Redis* (`TIME`), never a process's own, so replicas whose
    /// clocks disagree still fire each tick once. Its
    /// [`Misfire`](crate::Misfire) policy, grace and jitter apply as
    /// in-process, to ticks that passed while no process fired (all
    /// stopped, or Redis unreachable); ticks that pass while the previous
    /// run still runs are skipped with [`Misfire::Skip`](crate::Misfire::Skip),
    /// and wait for it to end with the others. Each tick's jitter is drawn
    /// by the process that fires the tick before it.
    ///
    /// # Errors
    /// [`SubmitError::IntervalTooShort`] under
    /// [`Recurrence::MIN_INTERVAL`]; [`SubmitError::InvalidSchedule`] for a
    /// calendar schedule that cannot work (as
    /// [`Module::schedule_recurring`]); else as
    /// [`add_named_task`](Self::add_named_task).
    pub fn schedule_named_recurring(
        &self,
        recurrence: Recurrence,
        name: &str,
        args: Value,
    ) -> Result<SharedSchedule, SubmitError> {
        let key = format!("{}.{name}", self.pool.name);
        self.schedule_named_recurring_as(&key, recurrence, name, args)
    }

    /// [`schedule_named_recurring`](Self::schedule_named_recurring) under an
    /// explicit `key`: for one task with several schedules.
    pub fn schedule_named_recurring_as(
        &self,
        key: &str,
        recurrence: Recurrence,
        name: &str,
        args: Value,
    ) -> Result<SharedSchedule, SubmitError> {
        let broker = self.broker()?;
        if recurrence.calendar().is_some() {
            // Checked as in-process: one rule of what a schedule may be.
            crate::module::plan(&recurrence)?;
        } else if recurrence.interval() < Recurrence::MIN_INTERVAL {
            return Err(SubmitError::IntervalTooShort { interval: recurrence.interval() });
        }
        let registered = broker.recur(&self.pool.name, name, &args, &recurrence, key)?;
        Ok(SharedSchedule { broker: Arc::clone(broker), key: key.to_owned(), registered })
    }

    fn broker(&self) -> Result<&Arc<Broker>, SubmitError> {
        self.broker.as_ref().ok_or_else(no_broker)
    }
}

/// A named task about to be sent ([`Module::named_task`]).
#[must_use = "a named task is sent by `submit`"]
pub struct NamedTask<'a> {
    module: &'a Module,
    name: String,
    args: Value,
    delay: Option<Duration>,
    retry: Option<Retry>,
    ttl: Option<Duration>,
    label: Option<Arc<str>>,
    trace: Option<TraceContext>,
}

impl NamedTask<'_> {
    /// Names it for reports in this process, as
    /// [`Task::name`](crate::Task::name) does a task run here: its handle's
    /// [`name`](TaskHandle::name), and [`TaskManager::tasks`](crate::TaskManager::tasks)
    /// while it is delayed. By default the task's name. Stays in this
    /// process: workers know it by its task name.
    pub fn label(mut self, label: impl Into<Arc<str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sends `context` with it (as the entry's `traceparent` and
    /// `tracestate` fields: see PROTOCOL.md), for the worker's handler to
    /// read while it runs ([`TraceContext::current`]): a tracer continues
    /// the submitter's trace there. Kept across its retries and a delay.
    pub fn trace_context(mut self, context: TraceContext) -> Self {
        self.trace = Some(context);
        self
    }

    /// Keeps its result in Redis for `ttl` (instead of the workers'
    /// [`Builder::broker_result_ttl`](crate::Builder::broker_result_ttl)),
    /// for lookups by id ([`TaskManager::lookup`](crate::TaskManager::lookup));
    /// at least [`MIN_RESULT_TTL`], so that a submitter whose listener was
    /// reconnecting when the result came still finds it.
    pub fn result_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl.max(MIN_RESULT_TTL));
        self
    }

    /// For a task whose result nobody reads: it is kept only
    /// [`MIN_RESULT_TTL`] (for its submitter, should it miss the message),
    /// not the workers' result TTL.
    pub fn ignore_result(self) -> Self {
        self.result_ttl(MIN_RESULT_TTL)
    }

    /// Runs it `delay` from now, by Redis's clock.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Runs it again after a failure, as `retry` says, in whichever worker
    /// claims each attempt (instead of the module's default). The handle
    /// settles after the last attempt. Only [`Retry::on`]'s error kinds
    /// choose which failures retry: a [`Retry::when`] predicate does not
    /// cross processes, and is ignored here.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sends it: returns once Redis has it.
    ///
    /// # Errors
    /// As [`Module::add_named_task`].
    pub fn submit(self) -> Result<TaskHandle<Value>, SubmitError> {
        let broker = self.module.broker()?;
        let pool = &self.module.pool;
        let retry = self.retry.as_ref();
        let label = self.label.unwrap_or_else(|| Arc::from(self.name.as_str()));
        let trace = self.trace.as_ref();
        let cell = match self.delay {
            None => broker.submit(pool, &self.name, label, &self.args, retry, self.ttl, trace)?,
            Some(delay) => {
                broker.schedule(pool, &self.name, label, &self.args, delay, retry, self.ttl, trace)?
            }
        };
        Ok(TaskHandle::new(cell, None))
    }
}

impl std::fmt::Debug for NamedTask<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedTask")
            .field("name", &self.name)
            .field("delay", &self.delay)
            .field("retry", &self.retry)
            .field("result_ttl", &self.ttl)
            .field("label", &self.label)
            .field("trace_context", &self.trace)
            .finish_non_exhaustive()
    }
}

fn no_broker() -> SubmitError {
    SubmitError::Broker("this task manager has no broker: build it with Builder::broker(url)".to_owned())
}

/// The handle of a recurring named task kept in Redis
/// ([`Module::schedule_named_recurring`]): it acts on the schedule
/// cluster-wide, from any process.
#[derive(Clone)]
pub struct SharedSchedule {
    broker: Arc<Broker>,
    key: String,
    registered: Registration,
}

impl SharedSchedule {
    /// The handle of the schedule `key`, registered (or not) elsewhere.
    pub(crate) fn existing(broker: Arc<Broker>, key: &str) -> Self {
        SharedSchedule { broker, key: key.to_owned(), registered: Registration::Kept }
    }

    /// The schedule's key in Redis.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the call that made this handle created the schedule (false:
    /// it existed, registered by this or another process).
    pub fn created(&self) -> bool {
        self.registered == Registration::Created
    }

    /// Whether the call that made this handle changed an existing
    /// schedule: it existed under this key with another interval (or
    /// calendar definition) or other arguments (a deploy changed them), and
    /// now has these. Counts and pause are kept; a new interval starts a
    /// new grid from now, a new calendar rule (expression, zone, DST
    /// policy) waits for its first time from now.
    pub fn updated(&self) -> bool {
        self.registered == Registration::Updated
    }

    /// Removes the schedule everywhere; returns whether it existed. A run in
    /// progress finishes.
    pub fn cancel(&self) -> Result<bool, SubmitError> {
        self.broker.cancel_recurring(&self.key)
    }

    /// Pauses the schedule everywhere: ticks pass without running, until
    /// [`resume`](Self::resume). Returns whether this call paused it (false:
    /// paused already, or it does not exist), as
    /// [`RecurringHandle::pause`](crate::RecurringHandle::pause) does; then
    /// this process tells [`Event::Paused`](crate::Event::Paused).
    pub fn pause(&self) -> Result<bool, SubmitError> {
        self.broker.pause_recurring(&self.key, true)
    }

    /// Resumes a paused schedule on its grid. Returns whether this call
    /// resumed it (false: not paused, or it does not exist).
    pub fn resume(&self) -> Result<bool, SubmitError> {
        self.broker.pause_recurring(&self.key, false)
    }

    /// Ticks run so far, cluster-wide, and ticks skipped: the previous run
    /// had not finished, the schedule was paused, a later tick ran for
    /// them (no burst), or (a calendar schedule) its
    /// [`Misfire`](crate::Misfire) policy missed them; None once cancelled.
    pub fn counts(&self) -> Result<Option<(u64, u64)>, SubmitError> {
        Ok(self.broker.recurring_counts(&self.key)?.map(|(ticks, skipped, _)| (ticks, skipped)))
    }

    /// Ticks folded into a later run by
    /// [`Misfire::Coalesce`](crate::Misfire::Coalesce), cluster-wide (0
    /// for an interval schedule); None once cancelled.
    pub fn coalesced(&self) -> Result<Option<u64>, SubmitError> {
        Ok(self.broker.recurring_counts(&self.key)?.map(|(_, _, coalesced)| coalesced))
    }
}

impl std::fmt::Debug for SharedSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSchedule")
            .field("key", &self.key)
            .field("registered", &self.registered)
            .finish()
    }
}
