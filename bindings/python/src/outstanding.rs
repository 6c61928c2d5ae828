//! Counting accepted tasks that have not ended, so the package can keep
//! the interpreter alive while work remains.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How many accepted tasks have not ended yet. Counting is one atomic
/// add; the lock is taken only when the count reaches zero, to wake whoever
/// waits for that.
#[derive(Default)]
pub(crate) struct Outstanding {
    pub(crate) count: AtomicUsize,
    pub(crate) lock: Mutex<()>,
    pub(crate) zero: Condvar,
}

impl Outstanding {
    pub(crate) fn enter(self: &Arc<Self>) -> Ticket {
        self.count.fetch_add(1, Ordering::Relaxed);
        Ticket(Arc::clone(self))
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no task is outstanding or `timeout` passes.
    pub(crate) fn wait_zero(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // The count is read under the lock, and the last ticket takes the
        // lock before notifying: a wake-up cannot fall between the two.
        while self.count() > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self.zero.wait_timeout(guard, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

/// One outstanding task; counted out when dropped.
pub(crate) struct Ticket(Arc<Outstanding>);

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.0.zero.notify_all();
        }
    }
}
