//! [`ModuleBuilder`]: a [`Module`] with a name, a worker cap and a bounded
//! queue, set by name rather than by position.

use std::fmt;
use std::sync::Arc;

use crate::err::ConfigError;
use crate::manager::{Manager, TaskManager};
use crate::module::Module;

/// Made here, not in `module.rs`: a module knows nothing of its builder.
impl Module {
    /// A module of `manager` that runs at most `max_workers` tasks at once:
    /// the spec's `Module(task_manager=manager, max_workers=...)`. For a
    /// name or a bounded queue, use [`builder`](Self::builder).
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] if `max_workers` is 0.
    pub fn new(manager: &TaskManager, max_workers: usize) -> Result<Module, ConfigError> {
        Ok(Module::from_pool(manager.shared().add_pool(max_workers, usize::MAX, None)?, manager.shared()))
    }

    /// Settings for a module of `manager`, by name: its
    /// [`name`](ModuleBuilder::name), [`max_workers`](ModuleBuilder::max_workers)
    /// (by default the cap of the manager's
    /// [default module](TaskManager::default_module)) and
    /// [`max_queued`](ModuleBuilder::max_queued) (by default unbounded).
    ///
    /// ```
    /// use taskmanager::{Module, TaskManager};
    ///
    /// let manager = TaskManager::new();
    /// let poller = Module::builder(&manager).name("poller").max_workers(5).max_queued(100).build()?;
    /// assert_eq!(poller.name(), "poller");
    /// # Ok::<(), taskmanager::ConfigError>(())
    /// ```
    pub fn builder(manager: &TaskManager) -> ModuleBuilder {
        ModuleBuilder::new(manager)
    }
}

/// Settings for a [`Module`]; from [`Module::builder`].
///
/// Every setting is optional:
///
/// | setting | default |
/// |---------|---------|
/// | [`name`](Self::name) | `module-<n>`, numbered per manager (the manager's own module is `default`) |
/// | [`max_workers`](Self::max_workers) | the cap of the manager's [default module](TaskManager::default_module), [`Builder::default_max_workers`](crate::Builder::default_max_workers): CPUs + 4, at most 32, unless set |
/// | [`max_queued`](Self::max_queued) | unbounded |
///
/// ```
/// use taskmanager::{ConfigError, Module, SubmitError, TaskManager};
///
/// let manager = TaskManager::new();
/// let poller = Module::builder(&manager).name("poller").max_workers(5).max_queued(100).build()?;
/// assert_eq!((poller.name(), poller.max_workers()), ("poller", 5));
///
/// // Unset, the cap is the manager's default module's.
/// let plain = Module::builder(&manager).build()?;
/// assert_eq!(plain.max_workers(), manager.default_module().max_workers());
///
/// // Out-of-range settings are refused when building.
/// assert_eq!(Module::builder(&manager).max_workers(0).build().err(), Some(ConfigError::ZeroMaxWorkers));
/// assert_eq!(Module::builder(&manager).max_queued(0).build().err(), Some(ConfigError::ZeroQueueCapacity));
///
/// // Not started: tasks wait in the queue, and the 101st is refused.
/// for _ in 0..100 {
///     poller.add_task(|| ())?;
/// }
/// assert_eq!(poller.add_task(|| ()).err(), Some(SubmitError::QueueFull { capacity: 100 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ModuleBuilder {
    manager: Arc<Manager>,
    name: Option<Arc<str>>,
    max_workers: usize,
    /// `usize::MAX`: unbounded.
    max_queued: usize,
    #[cfg(feature = "redis")]
    global_max_workers: Option<usize>,
    retry: Option<crate::Retry>,
}

impl ModuleBuilder {
    pub(crate) fn new(manager: &TaskManager) -> Self {
        ModuleBuilder {
            manager: Arc::clone(manager.shared()),
            name: None,
            max_workers: manager.default_module().max_workers(),
            max_queued: usize::MAX,
            #[cfg(feature = "redis")]
            global_max_workers: None,
            retry: None,
        }
    }

    /// The module's name in listings ([`TaskManager::tasks`],
    /// [`Module::name`], events). Names need not be unique.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The most tasks the module runs at once, each on a thread of its own
    /// (the spec's `max_workers`). Must be at least 1.
    pub fn max_workers(mut self, max_workers: usize) -> Self {
        self.max_workers = max_workers;
        self
    }

    /// Bounds the module's queue, as Python's `max_queued=`: once
    /// `max_queued` tasks wait in it, [`add_task`](Module::add_task) (and a
    /// zero-delay or `run_now` submission) returns
    /// [`SubmitError::QueueFull`](crate::SubmitError::QueueFull) instead of
    /// letting the queue grow without bound. Must be at least 1.
    ///
    /// Tasks already accepted are never refused: a scheduled task that
    /// comes due, or a recurring task's next run, joins the queue even when
    /// it is full (they were accepted when scheduled), so the queue can
    /// briefly hold more than `max_queued`.
    pub fn max_queued(mut self, max_queued: usize) -> Self {
        self.max_queued = max_queued;
        self
    }

    /// Caps how many of the module's named tasks run at once across every
    /// process sharing the manager's broker, whatever each process's
    /// `max_workers` (which still caps its own threads). Places are leased:
    /// a process that dies frees its places after the broker lease. Every
    /// process should give the same cap. Needs a broker
    /// ([`Builder::broker`](crate::Builder::broker)).
    #[cfg(feature = "redis")]
    pub fn global_max_workers(mut self, max_workers: usize) -> Self {
        self.global_max_workers = Some(max_workers);
        self
    }

    /// The module's default [`Retry`](crate::Retry) for the tasks that can
    /// use one: its named tasks (each carries the policy to the worker
    /// that runs it) and the Python package's tasks. A Rust task run here
    /// retries only with [`Task::retry`](crate::Task::retry): its closure
    /// may be an `FnOnce`, which cannot run twice.
    pub fn retry(mut self, retry: crate::Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Makes the module.
    ///
    /// # Errors
    /// [`ConfigError::ZeroMaxWorkers`] if `max_workers` (or
    /// `global_max_workers`) is 0; [`ConfigError::ZeroQueueCapacity`] if
    /// `max_queued` is 0; [`ConfigError::Broker`] for a `global_max_workers`
    /// without a broker.
    pub fn build(self) -> Result<Module, ConfigError> {
        if self.max_queued == 0 {
            return Err(ConfigError::ZeroQueueCapacity);
        }
        #[cfg(feature = "redis")]
        let global = match (self.global_max_workers, self.manager.broker()) {
            (Some(0), _) => return Err(ConfigError::ZeroMaxWorkers),
            (Some(_), None) => {
                return Err(ConfigError::Broker("global_max_workers needs a broker (Builder::broker)".into()))
            }
            (Some(cap), Some(broker)) => Some((cap, std::sync::Arc::clone(broker))),
            (None, _) => None,
        };
        let pool = self.manager.add_pool(self.max_workers, self.max_queued, self.name)?;
        if let Some(retry) = self.retry {
            // A new pool: nothing set it before.
            let _ = pool.retry.set(std::sync::Arc::new(retry));
        }
        #[cfg(feature = "redis")]
        if let Some((cap, broker)) = global {
            broker.set_global_cap(&pool.name, cap);
        }
        Ok(Module::from_pool(pool, &self.manager))
    }
}

impl fmt::Debug for ModuleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max_queued = (self.max_queued != usize::MAX).then_some(self.max_queued);
        f.debug_struct("ModuleBuilder")
            .field("name", &self.name)
            .field("max_workers", &self.max_workers)
            .field("max_queued", &max_queued)
            .finish()
    }
}
