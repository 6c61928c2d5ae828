//! [`Runtime`]: the services every part of one manager shares (its life,
//! clock, settings, events and threads), below the timer, the module pools
//! and the manager that owns them. Nothing here knows a module.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::batch::BatchRunner;
use crate::clock::Clock;
use crate::event::Events;
use crate::lifecycle::Lifecycle;
use crate::metrics::Metrics;
use crate::schedule::Nanos;
use crate::sync::{AtomicU64, AtomicUsize};
use crate::threads::ThreadRegistry;
use crate::unwind::drop_payload;

/// See `Runtime::handoff_lead`: long enough to cover waking a worker (20 to
/// 60 us here, with a tail), short enough that a worker holding an early job
/// delays little else.
const HANDOFF_LEAD: Nanos = 200_000;
/// One manager's shared services. See the module docs.
pub(crate) struct Runtime {
    pub(crate) life: Lifecycle,
    pub(crate) clock: Clock,
    pub(crate) keep_alive: Duration,
    pub(crate) timer_slack: Duration,
    /// `Builder::precise_ticks`: see [`held_lead`](Self::held_lead).
    pub(crate) precise_ticks: bool,
    pub(crate) batch_runner: Option<Arc<dyn BatchRunner>>,
    pub(crate) events: Events,
    pub(crate) threads: Arc<ThreadRegistry>,
    /// Counts wake-ups of idle modules; see `Pool::announce_wake`.
    pub(crate) wakes: AtomicU64,
    /// The module (by address) whose wake-up was counted last.
    pub(crate) woken_module: AtomicUsize,
    /// Off until `TaskManager::enable_metrics` (see `metrics.rs`).
    pub(crate) metrics: Metrics,
}

/// A [`Runtime`]'s settings, from the manager's `Builder`.
pub(crate) struct Settings {
    pub(crate) clock: Clock,
    pub(crate) keep_alive: Duration,
    pub(crate) timer_slack: Duration,
    pub(crate) precise_ticks: bool,
    pub(crate) batch_runner: Option<Arc<dyn BatchRunner>>,
    pub(crate) events: Events,
    pub(crate) threads: ThreadRegistry,
}

impl Runtime {
    pub(crate) fn new(settings: Settings) -> Self {
        let Settings { clock, keep_alive, timer_slack, precise_ticks, batch_runner, events, threads } =
            settings;
        Runtime {
            life: Lifecycle::new(),
            clock,
            keep_alive,
            timer_slack,
            precise_ticks,
            batch_runner,
            events,
            threads: Arc::new(threads),
            wakes: AtomicU64::new(0),
            woken_module: AtomicUsize::new(0),
            metrics: Metrics::new(),
        }
    }

    /// Monotonic time since this manager was created.
    pub(crate) fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// Now on both clocks (see `Clock::wall`).
    pub(crate) fn times(&self) -> crate::job::Times {
        crate::job::Times { mono: self.clock.now(), wall: self.clock.wall() }
    }

    /// Runs `body` inside the batch runner's
    /// [`run_thread`](BatchRunner::run_thread) if there is one: the broker's
    /// result listener for its whole life, a worker while it holds a
    /// recurring task. Not a busy worker's whole life: with Python, daemon
    /// workers that kept an interpreter state and ran tasks back to back
    /// starved the exiting main thread of the GIL (2 hangs in about 300
    /// exits under load; 0 without).
    pub(crate) fn run_thread(&self, body: &mut (dyn FnMut() + Send)) {
        match &self.batch_runner {
            Some(runner) => runner.run_thread(body),
            None => body(),
        }
    }

    /// The batch runner's [`thread_exit`](BatchRunner::thread_exit); a
    /// panic is logged.
    pub(crate) fn thread_exit(&self) {
        if let Some(runner) = &self.batch_runner {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runner.thread_exit())) {
                log::error!("taskmanager: the batch runner's thread_exit panicked");
                drop_payload(payload);
            }
        }
    }

    /// How long before its due time the timer hands a job to its module,
    /// so that waking a worker overlaps the wait instead of following it;
    /// the worker then starts the job at its due time (`Pool::run`).
    /// None with a manual clock (time moves only when told) or a batch
    /// runner (a worker waiting inside a batch would hold the runner's lock,
    /// the GIL for Python, while it waits).
    pub(crate) fn handoff_lead(&self) -> Nanos {
        match (&self.clock, &self.batch_runner) {
            (Clock::Monotonic(..), None) => HANDOFF_LEAD,
            _ => 0,
        }
    }

    /// How long before a held recurring task's due time its worker wakes
    /// (see `Timer::check_held`): the hand-off lead with
    /// `Builder::precise_ticks`, else 0 (one wake-up per run).
    pub(crate) fn held_lead(&self) -> Nanos {
        if self.precise_ticks {
            self.handoff_lead()
        } else {
            0
        }
    }

    /// Waits until the clock reads `at`, asleep: the thread's timer slack
    /// (`Builder::timer_slack`, 1 us by default) keeps the sleep's
    /// overshoot to the wake-up's own latency. No spinning: a spin buys a
    /// few microseconds of lateness with the CPU of every run (see
    /// BENCHMARKS.md, recurring-cpu).
    ///
    /// Returns the clock's reading if `at` had come and there was no
    /// wait: the run's start time, without reading the clock again (each
    /// read costs about 30 ns here, more with the cache cold after a
    /// sleep). None after a sleep, whose end the caller must read: a sleep
    /// can overshoot by far more than its own length after a stall.
    pub(crate) fn wait_until(&self, at: Nanos) -> Option<Nanos> {
        if cfg!(loom) {
            return None;
        }
        let now = self.now();
        match self.clock.real_wait(at.saturating_sub(now)) {
            Some(wait) if !wait.is_zero() => {
                std::thread::sleep(wait);
                None
            }
            _ => Some(now),
        }
    }
}
