//! [`TaskManager`]: the public face of a manager, and its drop.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Drain, Manager};
use crate::err::{ShutdownTimedOut, StartError, SubmitError};
use crate::handle::{RecurringHandle, TaskHandle};
use crate::module::Module;
use crate::recurrence::Recurrence;
use crate::report::{RunningTask, Stats, TaskInfo};
use crate::task::{Method, MethodMut, Task};

/// Queues tasks and runs them when due: the spec's `TaskManager`.
///
/// Cheap to clone; all clones are the same manager. When the last clone is
/// dropped the manager shuts down as [`shutdown`](Self::shutdown) does.
/// [`Module`]s do not count: they do not keep a manager running. A task
/// that holds a clone of its own manager keeps it from shutting down on
/// drop; give tasks a `Module` instead.
///
/// ```
/// use std::time::Duration;
/// use taskmanager::{Recurrence, TaskManager};
///
/// let manager = TaskManager::new();
/// manager.start_thread()?;
/// let sum = manager.add_task(|| (1..=10).sum::<u32>())?;
/// let later = manager.schedule_task(Duration::from_millis(20), || "later")?;
/// let ticks = manager.schedule_recurring(Recurrence::every(Duration::from_millis(5)), || ())?;
/// assert_eq!(sum.join()?, 55);
/// assert_eq!(later.join()?, "later");
/// manager.shutdown(); // the recurring task is cancelled
/// assert!(ticks.is_done());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TaskManager {
    inner: Arc<Owner>,
}

/// What the user's clones share; dropping it shuts the manager down.
struct Owner {
    shared: Arc<Manager>,
    default_module: Module,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let shared = &self.shared;
        if shared.runtime().life.inherited_or_forked() {
            return; // see `after_fork_in_child`
        }
        shared.begin_shutdown(false);
        if !shared.runtime().life.gave_up() {
            shared.await_termination(None);
            return;
        }
        // A bounded shutdown gave up on these already and said so: wait
        // no more (that wait could be forever), let them finish alone.
        if !shared.await_termination(Some(Instant::now())) {
            let running = shared.running_tasks();
            let names: Vec<&str> = running.iter().map(|t| t.name.as_str()).collect();
            log::warn!(
                "taskmanager: manager dropped after a shutdown that timed out; {} task(s) still running are \
                 left to finish in the background ({})",
                running.len(),
                names.join(", ")
            );
        }
    }
}

impl TaskManager {
    /// The manager [`Builder::build`](crate::Builder::build) made: its state and default module.
    pub(super) fn from_parts(shared: Arc<Manager>, default_module: Module) -> TaskManager {
        TaskManager { inner: Arc::new(Owner { shared, default_module }) }
    }

    pub(crate) fn shared(&self) -> &Arc<Manager> {
        &self.inner.shared
    }

    /// Starts running tasks in the background: the spec's `start_thread`.
    /// Tasks submitted before it wait until now. Calling it again is
    /// harmless.
    ///
    /// # Errors
    /// [`StartError::ShutDown`] after shutdown; [`StartError::Spawn`] if the
    /// timer thread could not be started.
    pub fn start_thread(&self) -> Result<(), StartError> {
        self.inner.shared.start()
    }

    /// The module that runs tasks given to the manager itself.
    pub fn default_module(&self) -> &Module {
        &self.inner.default_module
    }

    /// [`Module::add_task`] on the [default module](Self::default_module):
    /// the spec's `TaskManager.add_task`.
    ///
    /// # Errors
    /// As [`Module::add_task`].
    pub fn add_task<F, T>(&self, task: impl Into<Task<F, T>>) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        self.default_module().add_task(task)
    }

    /// [`Module::schedule_task`] on the [default module](Self::default_module):
    /// the spec's `TaskManager.schedule_task` without `reoccurring`.
    ///
    /// # Errors
    /// As [`Module::schedule_task`].
    pub fn schedule_task<F, T>(
        &self,
        delay: Duration,
        task: impl Into<Task<F, T>>,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        self.default_module().schedule_task(delay, task)
    }

    /// [`Module::schedule_task_at`] on the [default module](Self::default_module):
    /// runs a task once at a wall-clock time.
    ///
    /// # Errors
    /// As [`Module::schedule_task_at`].
    pub fn schedule_task_at<F, T>(
        &self,
        at: std::time::SystemTime,
        task: impl Into<Task<F, T>>,
    ) -> Result<TaskHandle<T>, SubmitError>
    where
        F: Method<T>,
        T: Send + 'static,
    {
        self.default_module().schedule_task_at(at, task)
    }

    /// [`Module::schedule_recurring`] on the [default module](Self::default_module):
    /// the spec's `TaskManager.schedule_task` with `reoccurring`.
    ///
    /// # Errors
    /// As [`Module::schedule_recurring`].
    pub fn schedule_recurring<F, T>(
        &self,
        recurrence: Recurrence,
        task: impl Into<Task<F, T>>,
    ) -> Result<RecurringHandle, SubmitError>
    where
        F: MethodMut<T>,
        T: Send + 'static,
    {
        self.default_module().schedule_recurring(recurrence, task)
    }

    /// Shuts down and waits:
    ///
    /// 1. stops accepting (later submissions get [`SubmitError::ShutDown`]);
    /// 2. runs every task already due: queued ones, and scheduled ones whose
    ///    time has come (a recurring task runs its due run, then stops);
    /// 3. cancels scheduled and recurring tasks not yet due (their handles
    ///    say cancelled);
    /// 4. waits for the running tasks and joins every thread.
    ///
    /// A task that never returns makes this wait forever; see
    /// [`shutdown_timeout`](Self::shutdown_timeout). Called from inside a
    /// task, it does steps 1 to 3 and returns without waiting, since the task
    /// cannot wait for itself. Calling it again waits for the same end.
    pub fn shutdown(&self) {
        let shared = &self.inner.shared;
        shared.begin_shutdown(false);
        shared.await_termination(None);
    }

    /// [`shutdown`](Self::shutdown), waiting at most `timeout` for running
    /// and queued tasks.
    ///
    /// # Errors
    /// [`ShutdownTimedOut`] if tasks were still running at the deadline; then
    /// queued tasks that had not started are cancelled, and the running ones
    /// finish in the background.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), ShutdownTimedOut> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.inner.shared.shutdown_until(deadline),
            None => {
                self.shutdown();
                Ok(())
            }
        }
    }

    /// After a shutdown has begun: waits for its end until `deadline`
    /// (None: no limit), asking `interrupted` every 50 ms whether to stop
    /// waiting (a second signal, a Ctrl-C). The one wait behind
    /// [`shutdown_timeout`](Self::shutdown_timeout) and
    /// [`run_worker`](Self::run_worker): at the deadline queued tasks are
    /// cancelled and, with a broker, what this process claimed and has not
    /// finished is handed back ([`Drain::TimedOut`]); an interrupted wait
    /// cancels nothing.
    pub fn drain(&self, deadline: Option<Instant>, mut interrupted: impl FnMut() -> bool) -> Drain {
        self.inner.shared.drain(deadline, &mut interrupted)
    }

    /// Shuts down without starting anything more: stops accepting, cancels
    /// every task that has not started (queued, due or not yet due), then
    /// waits for the running ones and joins every thread. Returns how many
    /// queued or due tasks it cancelled (scheduled tasks not yet due are
    /// cancelled as by every shutdown, and not counted).
    pub fn shutdown_now(&self) -> usize {
        let cancelled = self.begin_shutdown_now();
        self.inner.shared.await_termination(None);
        cancelled
    }

    /// [`shutdown_now`](Self::shutdown_now) without the wait: cancels every
    /// task that has not started, before any worker could start it, and
    /// returns at once with the count. Follow with
    /// [`await_termination`](Self::await_termination) to wait for the
    /// running ones.
    pub fn begin_shutdown_now(&self) -> usize {
        self.inner.shared.begin_shutdown(true)
    }

    /// Begins [`shutdown`](Self::shutdown) (steps 1 to 3) and returns at
    /// once; queued and due tasks go on running in the background. Follow
    /// with [`await_termination`](Self::await_termination) to wait for the
    /// end.
    pub fn begin_shutdown(&self) {
        self.inner.shared.begin_shutdown(false);
    }

    /// After a shutdown has begun, waits until every task has ended and every
    /// thread is joined, or `timeout` passes; returns whether it ended.
    /// Cancels nothing. Returns false at once when called inside a task of
    /// this manager, which cannot wait for itself.
    pub fn await_termination(&self, timeout: Duration) -> bool {
        self.inner.shared.await_termination(Instant::now().checked_add(timeout))
    }

    /// Cancels every task waiting to start: queued in any module, or
    /// scheduled (recurring ones included), due or not. Running tasks go on;
    /// a recurring task that is running now keeps its schedule. The manager
    /// keeps accepting new tasks. Returns how many tasks it cancelled.
    pub fn cancel_pending(&self) -> usize {
        self.inner.shared.cancel_pending()
    }

    /// With a broker: whether this process only submits (see
    /// [`Builder::submit_only`](crate::Builder::submit_only)) or also
    /// claims tasks; call it before [`start_thread`](Self::start_thread)
    /// (after it, `false` starts claiming at once, but `true` stops no
    /// claimer already running). [`run_worker`](Self::run_worker) sets it
    /// to `false`: being a worker is the process's role, whatever the
    /// shared program built.
    #[cfg(feature = "redis")]
    pub fn set_submit_only(&self, submit_only: bool) {
        if let Some(broker) = self.inner.shared.broker() {
            broker.set_claims(!submit_only);
        }
    }

    /// With a broker, once shutdown has begun: hands every task this
    /// process claimed and has not finished back to the cluster now, where
    /// other workers run it at once, instead of after its lease. A task
    /// still running here goes on; its result, if it finishes, is dropped
    /// (the re-run elsewhere gives the one result). Returns how many went
    /// back: 0 without a broker or before shutdown.
    /// [`shutdown_timeout`](Self::shutdown_timeout) does this when it times
    /// out.
    #[cfg(feature = "redis")]
    pub fn hand_back_claimed(&self) -> usize {
        let shared = &self.inner.shared;
        match shared.broker() {
            Some(broker) if !shared.runtime().life.phase().accepts() => broker.give_up(),
            _ => 0,
        }
    }

    /// The tasks running right now, in every module, by id and name.
    pub fn running_tasks(&self) -> Vec<RunningTask> {
        self.inner.shared.running_tasks()
    }

    /// The scheduled one-shot tasks not yet due and every recurring task
    /// that has not ended, soonest first: name, module, time until the next
    /// run, interval, runs and failures so far, and state.
    ///
    /// With a broker (feature `redis`), also the delayed named tasks this
    /// manager sent (`schedule_named_task`) that still wait in Redis, due
    /// by Redis's clock: one call to Redis when there are any (if it cannot
    /// answer, they are listed as this process last knew them). Shared
    /// recurring schedules are in `cluster_stats`.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.inner.shared.tasks()
    }

    /// The [`Stats`] of every module of this manager (its default module
    /// included), summed: what is queued, running and pending in the timer
    /// now, and what has completed, failed or been cancelled so far.
    /// Modules that were dropped, and all of them once shutdown is over,
    /// keep counting in the sum.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    /// Turns on this manager's metrics (feature `metrics`): counters,
    /// gauges and histograms of its tasks by module and task name, through
    /// the [`metrics`](https://docs.rs/metrics) facade, to the recorder the
    /// application installed (a Prometheus exporter, say). Off until then:
    /// a task costs nothing more. Names, labels and what each measures: see
    /// the README's "Metrics". At most 1,000 task names are labelled; the
    /// rest count as `task="_other"`. Each worker hands its counts to the
    /// recorder in batches (every 64 runs, when it runs out of work, and at
    /// [`sample_metrics`](Self::sample_metrics)): call that before a
    /// scrape.
    ///
    /// ```
    /// let manager = taskmanager::TaskManager::new();
    /// manager.enable_metrics(); // the recorder installed with `metrics::set_global_recorder`
    /// ```
    #[cfg(feature = "metrics")]
    pub fn enable_metrics(&self) {
        let shared = &self.inner.shared;
        shared.runtime().metrics.enable();
        shared.sample_metrics();
    }

    /// Hands every worker's batch of counts to the recorder and sets every
    /// module's gauges (queued, running, workers, timers pending) from its
    /// counts now. Gauges move only then (setting them at
    /// every run would cost each run more than all its counters): call it
    /// before each scrape, or every few seconds from a recurring task.
    /// Nothing without [`enable_metrics`](Self::enable_metrics).
    #[cfg(feature = "metrics")]
    pub fn sample_metrics(&self) {
        self.inner.shared.sample_metrics();
    }

    /// Whether the calling thread is one of this manager's (a worker running
    /// a task or callback, or the timer). Blocking waits for the manager's
    /// own end cannot work there.
    pub fn is_manager_thread(&self) -> bool {
        self.inner.shared.on_own_thread()
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        !self.inner.shared.runtime().life.phase().accepts()
    }
}

impl fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.inner.shared;
        f.debug_struct("TaskManager")
            .field("phase", &shared.runtime().life.phase())
            .field("scheduled", &shared.timer().len())
            .field("threads", &shared.runtime().threads.lock().live)
            .finish()
    }
}
