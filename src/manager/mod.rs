//! A manager's state ([`Manager`]): its services, its timer, the registry of
//! its modules, and the steps of its life (start, shutdown). The public face
//! is in `api.rs` ([`TaskManager`]), its settings in `builder.rs`
//! ([`Builder`]), its task listing in `listing.rs`.
//!
//! See `PROTOCOL.md` for who owns what under which lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::err::{ConfigError, ShutdownTimedOut, StartError};
use crate::pool::{current_task, Pool};
use crate::report::{RunningTask, Stats};
use crate::runtime::Runtime;
use crate::sync::{lock, AtomicUsize, Mutex, MutexGuard};
use crate::threads::Threads;
use crate::timer::driver::{Target, Timer};

mod api;
#[cfg(feature = "redis")]
mod broker_api;
mod builder;
mod listing;

pub use api::TaskManager;
pub use builder::Builder;

/// State shared by a manager's public handles and module builders. Its
/// pools and timer do not point back to it: dropping the last
/// [`TaskManager`] drops it.
pub(crate) struct Manager {
    rt: Arc<Runtime>,
    timer: Arc<Timer<Pool>>,
    /// Modules that may hold queued work.
    modules: Mutex<Vec<Arc<Pool>>>,
    /// The stats of modules that left the registry (dropped, or all of
    /// them at the end of shutdown), so the manager's sum keeps them.
    retired: Mutex<Stats>,
    /// Modules made so far, for their default names.
    module_count: AtomicUsize,
    /// The Redis store, if the manager was built with a broker.
    #[cfg(feature = "redis")]
    broker: Option<Arc<crate::broker::Broker>>,
}

impl Manager {
    /// A manager over `rt`; with a broker configuration, one whose named
    /// tasks go through Redis.
    pub(crate) fn new(
        rt: Runtime,
        #[cfg(feature = "redis")] broker: Option<crate::broker::BrokerConfig>,
    ) -> Result<Manager, ConfigError> {
        let rt = Arc::new(rt);
        Ok(Manager {
            timer: Arc::new(Timer::new(Arc::clone(&rt))),
            #[cfg(feature = "redis")]
            broker: match broker {
                Some(config) => Some(Arc::new(crate::broker::Broker::new(Arc::clone(&rt), config)?)),
                None => None,
            },
            rt,
            modules: Mutex::new(Vec::new()),
            retired: Mutex::new(Stats::default()),
            module_count: AtomicUsize::new(0),
        })
    }

    #[cfg(feature = "redis")]
    pub(crate) fn broker(&self) -> Option<&Arc<crate::broker::Broker>> {
        self.broker.as_ref()
    }

    pub(crate) fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    pub(crate) fn timer(&self) -> &Arc<Timer<Pool>> {
        &self.timer
    }

    /// A new module's pool, registered (unless the manager is shut down, when
    /// it only refuses work). `capacity`: `usize::MAX` for unbounded.
    pub(crate) fn add_pool(
        &self,
        max_workers: usize,
        capacity: usize,
        name: Option<Arc<str>>,
    ) -> Result<Arc<Pool>, ConfigError> {
        if max_workers == 0 {
            return Err(ConfigError::ZeroMaxWorkers);
        }
        let name = name.unwrap_or_else(|| {
            let n = self.module_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Arc::from(format!("module-{n}"))
        });
        let pool = Arc::new(Pool::new(&self.timer, name, max_workers, capacity));
        if self.rt.life.phase().accepts() {
            let mut modules = lock(&self.modules);
            let (forgotten, kept): (Vec<_>, Vec<_>) = modules.drain(..).partition(|m| m.is_forgotten());
            *modules = kept;
            modules.push(Arc::clone(&pool));
            drop(modules);
            self.retire_stats(forgotten);
        }
        Ok(pool)
    }

    /// Adds the final stats of modules leaving the registry to `retired`.
    fn retire_stats(&self, modules: Vec<Arc<Pool>>) {
        if modules.is_empty() {
            return;
        }
        let mut retired = lock(&self.retired);
        for module in &modules {
            *retired += module.stats();
        }
        drop(retired);
        // Dropped outside the lock: the last reference to a module may
        // drop queued jobs, which cancels them.
        drop(modules);
    }

    fn modules(&self) -> Vec<Arc<Pool>> {
        lock(&self.modules).clone()
    }

    /// Sets every module's gauges (see `metrics.rs`), if metrics are on.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn sample_metrics(&self) {
        for module in self.modules() {
            module.sample_gauges();
        }
    }

    /// The sum of every module's stats, retired ones included.
    pub(crate) fn stats(&self) -> Stats {
        let mut total = *lock(&self.retired);
        for module in self.modules() {
            total += module.stats();
        }
        total
    }

    pub(crate) fn on_own_thread(&self) -> bool {
        self.rt.threads.is_own()
    }

    pub(crate) fn start(&self) -> Result<(), StartError> {
        if !self.timer.start()? {
            return Ok(());
        }
        crate::sync::fence(std::sync::atomic::Ordering::SeqCst);
        // Work queued before the start gets its workers now.
        for module in self.modules() {
            module.kick();
        }
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            broker.start();
        }
        Ok(())
    }

    /// Shutdown steps 1 to 3 (see `PROTOCOL.md`, "Shutdown"): stop
    /// accepting, close the timer (due entries run, the rest are cancelled),
    /// wake the workers. With `cancel_unstarted`, due entries and queued
    /// tasks are cancelled too. Returns how many tasks this call cancelled
    /// that way.
    pub(crate) fn begin_shutdown(&self, cancel_unstarted: bool) -> usize {
        if self.rt.life.inherited_or_forked() {
            // Its threads and work belong to the parent; its locks may have
            // been held there at the fork. Nothing here to stop.
            return 0;
        }
        let first = self.rt.life.begin_shutdown(|| self.rt.now()).accepts();
        let mut cancelled = 0;
        if first {
            cancelled += self.timer.close(cancel_unstarted);
        }
        let modules = self.modules();
        if first {
            for module in &modules {
                module.wake_all();
            }
        }
        if cancel_unstarted {
            cancelled += modules.iter().map(|m| m.cancel_queued()).sum::<usize>();
        }
        if first {
            // Work queued before a start that never came gets its workers.
            for module in &modules {
                module.kick();
            }
        }
        cancelled
    }

    /// Shutdown step 4: waits until every thread has ended (then joins them
    /// and returns true) or `deadline` passes (false). On one of this
    /// manager's own threads it cannot wait for itself, and returns false.
    pub(crate) fn await_termination(&self, deadline: Option<Instant>) -> bool {
        if self.rt.life.inherited_or_forked() {
            // None of its threads is in this process: nothing to wait for.
            return true;
        }
        if self.on_own_thread() {
            return false;
        }
        let Some(threads) = self.wait_threads(deadline, 0) else { return false };
        self.rt.threads.close(threads);
        self.rt.life.terminated();
        let modules = std::mem::take(&mut *lock(&self.modules));
        self.retire_stats(modules);
        true
    }

    pub(crate) fn cancel_pending(&self) -> usize {
        self.timer.cancel_all() + self.modules().iter().map(|m| m.cancel_queued()).sum::<usize>()
    }

    /// Waits until at most `live` threads are left (and no worker start is
    /// waiting to be retried) or `deadline` passes; then returns the thread
    /// registry, locked, or None. Retries due worker starts meanwhile: the
    /// timer thread, which does it while the manager runs, has ended.
    fn wait_threads(&self, deadline: Option<Instant>, live: usize) -> Option<MutexGuard<'_, Threads>> {
        loop {
            let retry_wait = self.timer.run_retries();
            let threads = self.rt.threads.lock();
            if threads.live <= live && retry_wait.is_none() {
                return Some(threads);
            }
            let until_deadline = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return None,
                },
                None => None,
            };
            let wait = match (until_deadline, retry_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            drop(self.rt.threads.wait(threads, wait));
        }
    }

    /// The one wait for a begun shutdown's end (`shutdown_timeout`,
    /// `run_worker`, and the Python package's `shutdown` and worker):
    /// waits in steps of at most [`DRAIN_STEP`], asking `interrupted`
    /// between them, until every task and thread has ended
    /// ([`Drain::Ended`]), `interrupted` says so ([`Drain::Interrupted`],
    /// nothing cancelled), or `deadline` passes: then what is queued is
    /// cancelled, what this process claimed from a broker is handed back,
    /// and the report says what was left ([`Drain::TimedOut`]).
    pub(crate) fn drain(&self, deadline: Option<Instant>, interrupted: &mut dyn FnMut() -> bool) -> Drain {
        loop {
            let step = Instant::now() + DRAIN_STEP;
            let until = deadline.map_or(step, |d| d.min(step));
            let ended = if self.on_own_thread() {
                self.wait_threads(Some(until), 1).is_some()
            } else {
                self.await_termination(Some(until))
            };
            if ended {
                return Drain::Ended;
            }
            if interrupted() {
                return Drain::Interrupted;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Drain::TimedOut(self.give_up());
            }
        }
    }

    /// `shutdown_timeout`: begins, waits until `deadline`, and past it
    /// cancels what is still queued and reports what still runs. Inside a
    /// task of this manager it waits for everything but that task.
    pub(crate) fn shutdown_until(&self, deadline: Instant) -> Result<(), ShutdownTimedOut> {
        self.begin_shutdown(false);
        match self.drain(Some(deadline), &mut || false) {
            Drain::TimedOut(report) => Err(report),
            Drain::Ended | Drain::Interrupted => Ok(()),
        }
    }

    /// A bounded wait ran out: cancels what is queued, hands back what was
    /// claimed from a broker, and says what was left.
    fn give_up(&self) -> ShutdownTimedOut {
        self.rt.life.give_up();
        let cancelled = self.modules().iter().map(|m| m.cancel_queued()).sum();
        #[allow(unused_mut)]
        let mut handed_back = 0;
        #[cfg(feature = "redis")]
        if let Some(broker) = &self.broker {
            // What this process claimed and has not finished goes back to
            // the cluster now, not after a lease.
            handed_back = broker.give_up();
        }
        let me = current_task();
        let running: Vec<RunningTask> =
            self.running_tasks().into_iter().filter(|t| Some(t.id) != me).collect();
        ShutdownTimedOut { still_running: running.len(), cancelled, running, handed_back }
    }

    pub(crate) fn running_tasks(&self) -> Vec<RunningTask> {
        self.modules().iter().flat_map(|m| m.running()).collect()
    }
}

/// How often [`Shared::drain`] asks whether it was interrupted: also how
/// soon a Ctrl-C reaches a Python `shutdown()` that waits.
pub(crate) const DRAIN_STEP: Duration = Duration::from_millis(50);

/// How a wait for a shutdown's end ended (see [`TaskManager::drain`]).
#[derive(Debug)]
pub enum Drain {
    /// Every task and thread ended.
    Ended,
    /// The deadline passed first: queued tasks were cancelled and what was
    /// claimed from a broker handed back; the report says what was left.
    TimedOut(ShutdownTimedOut),
    /// The caller's `interrupted` said to stop waiting; nothing was
    /// cancelled.
    Interrupted,
}
