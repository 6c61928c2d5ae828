//! The synchronisation primitives of the core, from one place: std's, or
//! loom's when the crate is built for model checking
//! (`RUSTFLAGS="--cfg loom"`, see `tests/loom` in `src/loom_tests.rs`), so
//! the very same code runs in both.
//!
//! `Arc` stays std's everywhere: loom's cannot hold trait objects
//! (`Arc<dyn Job>`), and reference counting is std's to get right, not
//! ours. The module queue stays a crossbeam channel: loom sees its
//! operations as atomic steps, which is what they are to our protocol.

use std::sync::PoisonError;

#[cfg(loom)]
pub(crate) use loom::{
    sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, AtomicUsize},
    sync::{Condvar, Mutex, MutexGuard},
    thread, thread_local,
};

#[cfg(not(loom))]
pub(crate) use std::{
    sync::atomic::{fence, AtomicU32, AtomicU64, AtomicU8, AtomicUsize},
    sync::{Condvar, Mutex, MutexGuard},
    thread, thread_local,
};

/// Locks, ignoring poison: no code of ours panics while holding these locks
/// (user code always runs outside them), so the data is never half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Yields the CPU: a real yield normally; under loom, a scheduling point.
pub(crate) fn yield_now() {
    thread::yield_now();
}

/// Whether a thread has ended (so its handle can be dropped unjoined).
/// Loom's handles cannot tell; they are all kept and joined at shutdown.
#[cfg(not(loom))]
pub(crate) fn is_finished(handle: &thread::JoinHandle<()>) -> bool {
    handle.is_finished()
}

#[cfg(loom)]
pub(crate) fn is_finished(_: &thread::JoinHandle<()>) -> bool {
    false
}

/// A module's queue: an unbounded multi-producer, multi-consumer FIFO.
/// Normally a crossbeam channel (lock-free); under loom a mutex around a
/// `VecDeque`, so that loom sees the hand-off of each job (and the
/// happens-before it carries) between submitter and worker.
pub(crate) struct Queue<T> {
    #[cfg(not(loom))]
    tx: crossbeam_channel::Sender<T>,
    #[cfg(not(loom))]
    rx: crossbeam_channel::Receiver<T>,
    #[cfg(loom)]
    items: Mutex<std::collections::VecDeque<T>>,
}

#[cfg(not(loom))]
impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Queue { tx, rx }
    }

    pub(crate) fn push(&self, item: T) {
        // Cannot fail: `self.rx` keeps the channel open.
        let _ = self.tx.send(item);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(loom)]
impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        Queue { items: Mutex::new(std::collections::VecDeque::new()) }
    }

    pub(crate) fn push(&self, item: T) {
        self.items.lock().unwrap().push_back(item);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.items.lock().unwrap().pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
