//! Where a manager reads the time: the monotonic clock, or a [`ManualClock`]
//! that tests advance by hand.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::schedule::{to_nanos, Nanos};
use crate::sync::lock;
use crate::sync::{AtomicU64, Mutex};

/// A manager's clock.
#[derive(Debug)]
pub(crate) enum Clock {
    /// The monotonic clock from an epoch, and the system's wall clock
    /// offset by a skew in ns (0 but in tests, `Builder::wall_clock_skew`).
    Monotonic(Instant, i64),
    Manual(ManualClock),
}

impl Clock {
    pub(crate) fn now(&self) -> Nanos {
        match self {
            Clock::Monotonic(epoch, _) => u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Clock::Manual(clock) => clock.inner.now.load(Ordering::SeqCst),
        }
    }

    /// The wall clock, in nanoseconds since the Unix epoch (0 before it):
    /// what calendar schedules follow. It may step, back or forward; the
    /// monotonic [`now`](Self::now) never does.
    pub(crate) fn wall(&self) -> u64 {
        match self {
            Clock::Monotonic(_, skew) => wall_nanos(SystemTime::now()).saturating_add_signed(*skew),
            Clock::Manual(clock) => clock.inner.wall.load(Ordering::SeqCst),
        }
    }

    /// How long the timer may sleep for a deadline `wait` away: real time
    /// for the monotonic clock; for a manual clock, until it is advanced.
    pub(crate) fn real_wait(&self, wait: Nanos) -> Option<Duration> {
        match self {
            Clock::Monotonic(..) => Some(Duration::from_nanos(wait)),
            Clock::Manual(_) => None,
        }
    }
}

/// Nanoseconds since the Unix epoch; 0 before it, saturating far after.
pub(crate) fn wall_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| to_nanos(d).unwrap_or(u64::MAX))
}

/// A clock that only moves when told to, for deterministic tests of code
/// that schedules tasks.
///
/// Give it to [`Builder::clock`](crate::Builder::clock); due times then
/// follow [`advance`](Self::advance) instead of real time. Tasks still run
/// on real threads, so wait for their handles as usual.
///
/// It has a wall clock too, for calendar schedules
/// ([`Recurrence::cron`](crate::Recurrence::cron),
/// [`Module::schedule_task_at`](crate::Module::schedule_task_at)): at the
/// Unix epoch for [`new`](Self::new), at a given time for
/// [`starting_at`](Self::starting_at). [`advance`](Self::advance) moves
/// both; [`set_wall`](Self::set_wall) steps the wall clock alone, as an
/// NTP step, a changed system time or a suspend and resume do.
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
    /// The wall clock, in nanoseconds since the Unix epoch.
    wall: AtomicU64,
    /// Managers to wake when time moves.
    listeners: Mutex<Vec<Weak<dyn TimeListener>>>,
}

impl ManualClock {
    /// A clock at zero, its wall clock at the Unix epoch.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// A clock at zero, its wall clock at `wall`.
    pub fn starting_at(wall: SystemTime) -> Self {
        let clock = ManualClock::default();
        clock.inner.wall.store(wall_nanos(wall), Ordering::SeqCst);
        clock
    }

    /// The wall clock's time.
    pub fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.inner.wall.load(Ordering::SeqCst))
    }

    /// Steps the wall clock to `wall` (back or forward) without moving
    /// the monotonic clock, and wakes every manager using this clock:
    /// calendar schedules then follow the new time, interval schedules
    /// keep theirs.
    pub fn set_wall(&self, wall: SystemTime) {
        self.inner.wall.store(wall_nanos(wall), Ordering::SeqCst);
        self.tell();
    }

    /// Moves time forward by `by`, the wall clock with it, and wakes every
    /// manager using this clock, which then runs whatever became due.
    ///
    /// Saturates at the clock's range (about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = to_nanos(by).unwrap_or(u64::MAX);
        let _ =
            self.inner.now.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
        let _ =
            self.inner.wall.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_add(by)));
        self.tell();
    }

    /// Wakes every manager using this clock.
    fn tell(&self) {
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
        f.debug_struct("ManualClock").field("elapsed", &self.elapsed()).field("wall", &self.wall()).finish()
    }
}
