//! [`ReadyQueue`]: a module's tasks that are due, waiting for a worker, in
//! the order they came; optionally bounded.
//!
//! Every source of work ends here, so the pool's caps, wake-ups and
//! retirement are one code path: a submission (`try_push`), and through
//! the pool's [`Target`](crate::timer::driver::Target) the timer, a
//! recurring run and, with a broker, the Redis claimer (`push`). Workers
//! only ever pop from it; a second backend adds a source, never a second
//! queue (see `PROTOCOL.md`, "Where work waits").

use std::sync::atomic::Ordering::SeqCst;

use crate::job::JobRef;
use crate::schedule::Nanos;
use crate::sync::{AtomicUsize, Queue};

/// A job waiting for a worker.
pub(crate) struct Queued {
    pub(crate) job: JobRef,
    /// Its due time, if the timer handed it over ahead of it (else 0): the
    /// worker that takes it starts it then.
    pub(crate) not_before: Nanos,
    /// When it could first run (queued, or due), if metrics are on; else
    /// [`UNMEASURED`] (see `Pool::ready_at`).
    pub(crate) ready_at: Nanos,
}

/// A [`Queued::ready_at`] not taken: metrics were off when it was queued.
pub(crate) const UNMEASURED: Nanos = Nanos::MAX;

/// See the module docs. Lock-free; a bound costs one more atomic per push
/// and pop, which unbounded queues do not pay.
pub(crate) struct ReadyQueue {
    queue: Queue<Queued>,
    /// The most jobs [`try_push`](Self::try_push) lets wait; `usize::MAX`
    /// when unbounded.
    capacity: usize,
    /// Jobs in the queue, counted only when bounded.
    queued: AtomicUsize,
}

impl ReadyQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        ReadyQueue { queue: Queue::new(), capacity, queued: AtomicUsize::new(0) }
    }

    fn is_bounded(&self) -> bool {
        self.capacity != usize::MAX
    }

    /// Queues a new submission, unless the queue is full; then returns its
    /// capacity.
    pub(crate) fn try_push(&self, queued: Queued) -> Result<(), usize> {
        if self.is_bounded() {
            let capacity = self.capacity;
            self.queued
                .fetch_update(SeqCst, SeqCst, |n| (n < capacity).then_some(n + 1))
                .map_err(|_| capacity)?;
        }
        self.queue.push(queued);
        Ok(())
    }

    /// Queues a job accepted earlier (due from the timer, or a recurring
    /// run): never refused, even if full.
    pub(crate) fn push(&self, queued: Queued) {
        if self.is_bounded() {
            self.queued.fetch_add(1, SeqCst);
        }
        self.queue.push(queued);
    }

    /// Takes the next job, if any. Every job leaves the queue here.
    pub(crate) fn pop(&self) -> Option<Queued> {
        let queued = self.queue.pop()?;
        if self.is_bounded() {
            self.queued.fetch_sub(1, SeqCst);
        }
        Some(queued)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
