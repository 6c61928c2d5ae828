//! Pacing for the broker's loops: back-off between failed calls, and
//! periodic steps.

use std::time::{Duration, Instant};

/// Sleeps `backoff`, then doubles it up to 5 s: between failed calls.
pub(super) fn back_off(backoff: &mut Duration) {
    std::thread::sleep(*backoff);
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}

/// Milliseconds in `d`, for Redis arguments.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How often each periodic step of a loop runs.
pub(super) struct Every {
    period: Duration,
    last: Instant,
}

impl Every {
    pub(super) fn new(period: Duration) -> Self {
        Every { period, last: Instant::now() }
    }

    /// Like [`new`](Self::new), but due at once.
    pub(super) fn now_due(period: Duration) -> Self {
        let now = Instant::now();
        Every { period, last: now.checked_sub(period).unwrap_or(now) }
    }

    /// How long until it is due (zero if it is).
    pub(super) fn left(&self) -> Duration {
        self.period.saturating_sub(self.last.elapsed())
    }

    pub(super) fn due(&mut self) -> bool {
        if self.last.elapsed() < self.period {
            return false;
        }
        self.last = Instant::now();
        true
    }
}
