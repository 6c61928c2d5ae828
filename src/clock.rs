//! Where a manager reads the time: the monotonic clock, or a [`ManualClock`]
//! that tests advance by hand.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::schedule::{to_nanos, Nanos};
use crate::sync::lock;
use crate::sync::{AtomicU64, Mutex};

/// A manager's clock.
#[derive(Debug)]
pub(crate) enum Clock {
    Monotonic(Instant),
    Manual(ManualClock),
}

impl Clock {
    pub(crate) fn now(&self) -> Nanos {
        match self {
            Clock::Monotonic(epoch) => u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Clock::Manual(clock) => clock.inner.now.load(Ordering::SeqCst),
        }
    }

    /// How long the timer may sleep for a deadline `wait` away: real time
    /// for the monotonic clock; for a manual clock, until it is advanced.
    pub(crate) fn real_wait(&self, wait: Nanos) -> Option<Duration> {
        match self {
            Clock::Monotonic(_) => Some(Duration::from_nanos(wait)),
            Clock::Manual(_) => None,
        }
    }
}

/// A clock that only moves when told to, for deterministic tests of code
/// that schedules tasks.
///
/// Give it to [`Builder::clock`](crate::Builder::clock); due times then
/// follow [`advance`](Self::advance) instead of real time. Tasks still run
/// on real threads, so wait for their handles as usual.
///
/// ```
/// use std::time::Duration;
/// use taskmanager::{ManualClock, Recurrence, TaskManager};
///
/// let clock = ManualClock::new();
/// let manager = TaskManager::builder().clock(&clock).build()?;
/// manager.start_thread()?;
/// let once = manager.schedule_task(Duration::from_secs(3600), || "an hour later")?;
/// assert!(!once.wait_timeout(Duration::from_millis(20)));
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(once.join()?, "an hour later");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

/// Told when a manual clock moves: a manager's timer, which then re-reads
/// the clock. (A trait, so that the clock knows no manager.)
pub(crate) trait TimeListener: Send + Sync {
    fn time_moved(&self);
}

#[derive(Default)]
struct ManualInner {
    now: AtomicU64,
    /// Managers to wake when time moves.
    listeners: Mutex<Vec<Weak<dyn TimeListener>>>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Moves time forward by `by` and wakes every manager using this clock,
    /// which then runs whatever became due.
    ///
    /// Saturates at the clock's range (about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = to_nanos(by).unwrap_or(u64::MAX);
        let _ =
            self.inner.now.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
        let listeners: Vec<Arc<dyn TimeListener>> = {
            let mut list = lock(&self.inner.listeners);
            list.retain(|m| m.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for listener in listeners {
            listener.time_moved();
        }
    }

    /// Time advanced so far.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.now.load(Ordering::SeqCst))
    }

    pub(crate) fn attach(&self, listener: Weak<dyn TimeListener>) {
        lock(&self.inner.listeners).push(listener);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").field("elapsed", &self.elapsed()).finish()
    }
}
