//! [`Builder`]: a manager's settings.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Manager;
use crate::batch::BatchRunner;
use crate::clock::{Clock, ManualClock, TimeListener};
use crate::err::ConfigError;
use crate::event::{Event, Events, Listener};
use crate::manager::TaskManager;
use crate::module::Module;
use crate::runtime::{Runtime, Settings};
use crate::threads::{SpawnHandler, ThreadRegistry};

/// Settings for a [`TaskManager`]; from [`TaskManager::builder`].
#[derive(Clone)]
pub struct Builder {
    spawn_handler: Option<SpawnHandler>,
    batch_runner: Option<Arc<dyn BatchRunner>>,
    listener: Option<Listener>,
    listener_level: log::Level,
    default_max_workers: usize,
    keep_alive: Duration,
    timer_slack: Duration,
    precise_ticks: bool,
    clock: Option<ManualClock>,
    /// See `wall_clock_skew`: ns.
    wall_skew: i64,
    #[cfg(feature = "redis")]
    broker: Option<crate::broker::BrokerConfig>,
}

impl Builder {
    /// `max_workers` of the manager's default module, which runs the tasks
    /// given to the manager itself. Default: the number of CPUs plus 4, at
    /// most 32 (Python's `ThreadPoolExecutor` default).
    pub fn default_max_workers(mut self, max_workers: usize) -> Self {
        self.default_max_workers = max_workers;
        self
    }

    /// How long an idle worker thread waits for work before it exits.
    /// Default: 60 seconds.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// How late the operating system may wake the timer thread, to batch
    /// wake-ups and save power (Linux's "timer slack"; elsewhere ignored).
    /// Default: 1 microsecond, instead of Linux's 50, since a scheduler's
    /// precision is the point. `Duration::ZERO` keeps the system's default.
    pub fn timer_slack(mut self, slack: Duration) -> Self {
        self.timer_slack = slack;
        self
    }

    /// Whether recurring runs start at their due times to within tens of
    /// microseconds, for one more wake-up per run.
    ///
    /// Between runs, the worker that ran a recurring task keeps it and
    /// sleeps until it is due: one wake-up per run, as cheap as a thread
    /// sleeping to each due time, and as punctual. A long sleep can end
    /// late by the time an idle CPU takes to wake (on this project's VMs,
    /// 100-150 microseconds; any thread sleeping to a deadline pays it).
    /// With `precise_ticks`, the worker wakes 200 microseconds early and
    /// sleeps the rest in a short sleep, which does not: runs start 20-40
    /// microseconds late instead, for about 11 microseconds more CPU per
    /// run (BENCHMARKS.md, recurring-cpu and drift). Default: off.
    /// One-shot scheduled tasks always get the early hand-off (it costs
    /// them nothing); with a batch runner (Python) or a manual clock this
    /// has no effect.
    pub fn precise_ticks(mut self, precise: bool) -> Self {
        self.precise_ticks = precise;
        self
    }

    /// Starts the manager's threads (its timer and its workers) with
    /// `handler` instead of `std::thread::Builder::spawn`: for a stack size,
    /// a priority or CPU affinity, a thread pool's own registration, or to
    /// test what happens when threads cannot be had. `handler(name, body)`
    /// must run `body` on a new thread and return `Ok`, or return the error
    /// that kept it from starting one (then `body` must not run).
    ///
    /// When a worker cannot be started, the work stays queued: an
    /// [`add_task`](Module::add_task) that finds no worker at all gets
    /// [`SubmitError::Spawn`](crate::SubmitError::Spawn); work that came due (scheduled, recurring) is
    /// retried with backoff (10 ms, doubling to 1 s) while the manager runs
    /// and while a shutdown waits, each failure logged at error and told as
    /// [`Event::SpawnFailed`]. The manager counts its threads out when their
    /// body returns; it joins only threads it started itself.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use taskmanager::TaskManager;
    ///
    /// let manager = TaskManager::builder()
    ///     .spawn_handler(|name, body| {
    ///         std::thread::Builder::new().name(name.into()).stack_size(256 * 1024).spawn(body).map(drop)
    ///     })
    ///     .build()?;
    /// manager.start_thread()?;
    /// assert_eq!(manager.add_task(|| 7)?.join()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_handler(
        mut self,
        handler: impl Fn(&str, Box<dyn FnOnce() + Send>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.spawn_handler = Some(Arc::new(handler));
        self
    }

    /// Wraps every batch of tasks a worker runs back to back; see
    /// [`BatchRunner`]. For runtimes that embed the manager.
    pub fn batch_runner(mut self, runner: Arc<dyn BatchRunner>) -> Self {
        self.batch_runner = Some(runner);
        self
    }

    /// Calls `listener` with every [`Event`] (task started, finished,
    /// failed, ticks skipped, cancelled, paused, resumed), on the thread
    /// where it happens: keep it quick. Events also go to the `log` crate
    /// (target `taskmanager::events`) at their [level](Event::level),
    /// listener or not. A panicking listener is logged and ignored.
    pub fn listener(mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// The least severe [level](Event::level) of events the listener gets
    /// (default: all, `Trace`). `Level::Debug` spares it the `Started` of
    /// every run; `Level::Info` leaves only failures, skipped ticks,
    /// pauses and resumes.
    pub fn listener_level(mut self, level: log::Level) -> Self {
        self.listener_level = level;
        self
    }

    /// Reads time from `clock` instead of the monotonic clock, so tests
    /// decide when scheduled tasks fall due. See [`ManualClock`].
    pub fn clock(mut self, clock: &ManualClock) -> Self {
        self.clock = Some(clock.clone());
        self
    }

    /// Offsets this manager's reads of the wall clock by `skew_ms` (ms,
    /// either way), as a machine whose clock is wrong: for tests that
    /// prove that the Redis mode's calendar schedules do not depend on the
    /// processes' clocks (`tests/redis_calendar.rs`). Not for production.
    #[doc(hidden)]
    pub fn wall_clock_skew(mut self, skew_ms: i64) -> Self {
        self.wall_skew = skew_ms.saturating_mul(1_000_000);
        self
    }

    /// Sends named tasks ([`Module::add_named_task`]) through the Redis at
    /// `url` (`redis://[user:password@]host:port/db`), so that every process
    /// built with the same URL shares them; see `PROTOCOL.md`, "Redis".
    /// Checked by [`build`](Self::build); Redis is first reached at
    /// [`start_thread`](TaskManager::start_thread) or the first submission.
    ///
    /// The URL carries AUTH and TLS: `redis://:password@host:6379/0` for a
    /// `requirepass` password, `redis://user:password@host:6379/0` for an
    /// ACL user (percent-encode reserved characters in either), and
    /// `rediss://` for TLS, which trusts the system's root certificates, or
    /// the CA of [`broker_ca_file`](Self::broker_ca_file). A wrong password
    /// or an untrusted certificate fails each submission with
    /// [`SubmitError::Broker`](crate::SubmitError::Broker), saying so.
    #[cfg(feature = "redis")]
    pub fn broker(mut self, url: &str) -> Self {
        self.broker = Some(crate::broker::BrokerConfig::new(url));
        self
    }

    /// Prepended to every Redis key and channel (default `taskmanager`), so
    /// that several applications can share one Redis.
    #[cfg(feature = "redis")]
    pub fn broker_prefix(mut self, prefix: &str) -> Self {
        if let Some(config) = &mut self.broker {
            config.prefix = prefix.to_owned();
        }
        self
    }

    /// Makes this process a submitter only: it sends named tasks and gets
    /// their results, but never claims a task nor fires a shared schedule
    /// (the workers fire them)
    /// (a web process beside dedicated workers; see
    /// [`run_worker`](TaskManager::run_worker)). By default every started
    /// manager with a broker also works.
    #[cfg(feature = "redis")]
    pub fn submit_only(mut self) -> Self {
        if let Some(config) = &mut self.broker {
            config.claims = false;
        }
        self
    }

    /// How long a claimed task may go without its worker's heartbeat (sent
    /// every third of it) before another process takes it over (default
    /// 30 s). A live worker's long task is never taken over.
    #[cfg(feature = "redis")]
    pub fn broker_lease(mut self, lease: Duration) -> Self {
        if let Some(config) = &mut self.broker {
            config.lease = lease;
        }
        self
    }

    /// How many times a task may be delivered to workers that each die
    /// running it (`os._exit`, a segfault, the OOM killer) before it is
    /// moved to the dead-letter set instead of being delivered again
    /// (default 3; at least 1). A worker's graceful stop hands its tasks
    /// back without counting a delivery.
    #[cfg(feature = "redis")]
    pub fn broker_max_deliveries(mut self, deliveries: u32) -> Self {
        if let Some(config) = &mut self.broker {
            config.max_deliveries = deliveries.max(1);
        }
        self
    }

    /// How long a task of a name no live worker of the cluster can run
    /// waits in Redis before it is moved to the dead-letter set (default
    /// 1 h). Each task name has its own stream, read only by workers that
    /// registered the name; a task nobody reads waits, and once no live
    /// worker has read its name for this long, and it has waited this
    /// long itself, a worker's sweep dead-letters it (its handle ends with
    /// [`TaskError::DeadLettered`](crate::TaskError::DeadLettered)); once a
    /// worker has the name,
    /// [`requeue_dead_letters`](crate::TaskManager::requeue_dead_letters)
    /// runs it.
    ///
    /// The wait counts only while some worker of the cluster is alive: a
    /// stopped cluster is not an unknown name. The default is far longer
    /// than a restart or a rolling deploy, during which tasks of a new
    /// name may come before the workers that run it: those must never be
    /// dead-lettered. The sweep runs every tenth of the wait (at most every
    /// minute), so a task goes up to that much later. Every process should
    /// set the same wait.
    #[cfg(feature = "redis")]
    pub fn broker_unrunnable_after(mut self, wait: Duration) -> Self {
        if let Some(config) = &mut self.broker {
            config.unrunnable_after = wait.max(Duration::from_millis(1));
        }
        self
    }

    /// How long a task's result is kept in Redis (default 10 min), for its
    /// submitter (one that reconnects within it still gets the result) and
    /// for lookups by id from any process
    /// ([`TaskManager::lookup`](crate::TaskManager::lookup)); past it,
    /// Redis frees the memory. A task's own
    /// [`NamedTask::result_ttl`](crate::NamedTask::result_ttl) overrides it.
    #[cfg(feature = "redis")]
    pub fn broker_result_ttl(mut self, ttl: Duration) -> Self {
        if let Some(config) = &mut self.broker {
            config.result_ttl = ttl;
        }
        self
    }

    /// The most a call to Redis may take, connecting or waiting for a reply
    /// (default 5 s): past it, a submission fails with
    /// [`SubmitError::Broker`](crate::SubmitError::Broker).
    #[cfg(feature = "redis")]
    pub fn broker_timeout(mut self, timeout: Duration) -> Self {
        if let Some(config) = &mut self.broker {
            config.timeout = timeout;
        }
        self
    }

    /// Trusts the CA certificate(s) in the PEM file at `path`, and only
    /// those, for a `rediss://` broker: for a Redis whose certificate a
    /// private CA signed. Without it, TLS trusts the system's root
    /// certificates. The file is read by [`build`](Self::build), which
    /// fails with [`ConfigError::Broker`] if it cannot be read, holds no
    /// certificate, or the URL is not `rediss://`.
    ///
    /// ```no_run
    /// use taskmanager::TaskManager;
    ///
    /// let manager = TaskManager::builder()
    ///     .broker("rediss://:secret@redis.internal:6380/0")
    ///     .broker_ca_file("/etc/myapp/redis-ca.pem")
    ///     .build()?;
    /// # Ok::<(), taskmanager::ConfigError>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn broker_ca_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        if let Some(config) = &mut self.broker {
            config.ca_file = Some(path.as_ref().to_owned());
        }
        self
    }

    /// Builds the manager. It queues tasks at once and runs them from
    /// [`start_thread`](TaskManager::start_thread) on.
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] if `default_max_workers` is 0;
    /// [`ConfigError::Broker`] if the broker URL is not a Redis URL, or its
    /// CA file is not usable.
    pub fn build(self) -> Result<TaskManager, ConfigError> {
        if self.default_max_workers == 0 {
            return Err(ConfigError::ZeroMaxWorkers);
        }
        let rt = Runtime::new(Settings {
            clock: match &self.clock {
                Some(manual) => Clock::Manual(manual.clone()),
                None => Clock::Monotonic(Instant::now(), self.wall_skew),
            },
            keep_alive: self.keep_alive,
            timer_slack: self.timer_slack,
            precise_ticks: self.precise_ticks,
            batch_runner: self.batch_runner.clone(),
            events: Events::new(self.listener.clone(), self.listener_level),
            threads: ThreadRegistry::new(self.spawn_handler.clone()),
        });
        let shared = Arc::new(Manager::new(
            rt,
            #[cfg(feature = "redis")]
            self.broker.clone(),
        )?);
        if let Some(manual) = &self.clock {
            let listener: Arc<dyn TimeListener> = shared.timer().clone();
            manual.attach(Arc::downgrade(&listener));
        }
        let pool = shared.add_pool(self.default_max_workers, usize::MAX, Some(Arc::from("default")))?;
        let default_module = Module::from_pool(pool, &shared);
        Ok(TaskManager::from_parts(shared, default_module))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("default_max_workers", &self.default_max_workers)
            .field("keep_alive", &self.keep_alive)
            .field("timer_slack", &self.timer_slack)
            .field("spawn_handler", &self.spawn_handler.is_some())
            .field("batch_runner", &self.batch_runner.is_some())
            .field("listener", &self.listener.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Builder {
            spawn_handler: None,
            batch_runner: None,
            listener: None,
            listener_level: log::Level::Trace,
            default_max_workers: (cpus + 4).min(32),
            keep_alive: Duration::from_secs(60),
            timer_slack: Duration::from_micros(1),
            precise_ticks: false,
            clock: None,
            wall_skew: 0,
            #[cfg(feature = "redis")]
            broker: None,
        }
    }
}

/// How a [`TaskManager`] is made: these live beside [`Builder`], which
/// makes every one.
impl TaskManager {
    /// A manager with default settings (see [`Builder`]).
    pub fn new() -> TaskManager {
        Builder::default().build().unwrap_or_else(|_| unreachable!("default settings are valid"))
    }

    /// Settings for a new manager.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl Default for TaskManager {
    fn default() -> Self {
        TaskManager::new()
    }
}
