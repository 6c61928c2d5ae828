//! A worker's life: take queued jobs, run them (each inside its own panic
//! guard), wait a little for more, then sleep until the keep-alive ends.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::context::{holder, Context};
use super::counts::{run_after_count, set_worker_slot, WorkerSlot};
use super::ready::Queued;
use super::Pool;
use crate::batch::BATCH;
use crate::event::Event;
use crate::job::Ran;
use crate::lifecycle::Phase;
use crate::limit::{set_place, Place};
use crate::sync::{fence, lock, yield_now};
use crate::threads::set_timer_slack;
use crate::timer::driver::{HeldNow, Target};
use crate::unwind::{drop_payload, drop_quietly};

/// How long a worker that ran out of work looks for more before it sleeps.
/// Spinning only, never yielding (see `wait_for_work`).
const SPIN: Duration = Duration::from_micros(SPIN_US);
const SPIN_US: u64 = 8;
/// Jobs since its last sleep that make a worker hot (see `next_soon`).
const HOT_STREAK: usize = 64;
/// How many times a hot worker yields before it sleeps.
const HOT_YIELDS: usize = 8;

impl Pool {
    /// A worker's life: run queued jobs; wait up to the keep-alive for more;
    /// retire when idle that long, or when the manager shuts down and the
    /// queue is empty.
    pub(super) fn work(self: Arc<Self>) {
        // Its waits for an early job's due time must be as precise as the
        // timer's own (see `Shared::handoff_lead`).
        set_timer_slack(self.rt.timer_slack);
        let slot = Arc::new(WorkerSlot::default());
        set_worker_slot(Some(Arc::clone(&slot)));
        set_place(Some(Arc::new(WorkerPlace { pool: Arc::downgrade(&self), slot: Arc::clone(&slot) })));
        lock(&self.workers).push(Arc::clone(&slot));
        let mut wakes_seen = self.rt.wakes.load(Relaxed);
        // Jobs run since this worker last slept.
        let mut streak = 0usize;
        // Whether the last job was a timer's hand-out (a tick), not a
        // submission: see `next_soon`.
        let mut tick = false;
        loop {
            while let Some(job) = self.next_soon(&slot, streak, tick) {
                tick = job.not_before != 0;
                self.run_batch(job, &slot);
                self.make_way(&mut wakes_seen);
                streak += 1;
            }
            streak = 0;
            slot.batch().flush(); // out of work: its metrics are due now
            let woke = if slot.holding.load(Relaxed) && self.rt.batch_runner.is_some() {
                self.run_held(&slot)
            } else {
                Some(self.wait_for_work(&slot))
            };
            match woke {
                // It ran its held task's ticks and holds it no more.
                None => (tick, streak) = (true, 1),
                Some(Woke::Queued(job) | Woke::Held(job)) => {
                    tick = job.not_before != 0;
                    self.run(job, &slot);
                    streak = 1;
                }
                // A detached worker's place went to another (see `detach`).
                Some(Woke::Idle) if slot.detached.load(SeqCst) || self.retire() => break,
                Some(Woke::Idle) => {}
            }
        }
        slot.batch().flush();
        let mut workers = lock(&self.workers);
        // Its counts move to the module's under the same lock a reader
        // takes, so a snapshot never counts them twice or not at all.
        self.counts.absorb(&slot.counts);
        workers.retain(|s| !Arc::ptr_eq(s, &slot));
        drop(workers);
        set_worker_slot(None);
        set_place(None);
        if slot.detached.load(SeqCst) {
            // Given up while it ran, it may have been counted idle since, and
            // woken for a job it now leaves: make sure a worker takes it.
            fence(SeqCst);
            self.kick();
        }
        self.rt.thread_exit();
    }

    /// Sleeps until a job is queued (and returns it), the keep-alive passes
    /// or the manager shuts down (`Idle`). A worker that holds a recurring
    /// entry (see `Timer::reschedule`) sleeps no later than its due time,
    /// and then returns it; the keep-alive does not end it meanwhile.
    ///
    /// The sleep is a plain condition-variable wait, with no spinning or
    /// yielding first: a worker that yields while other modules' workers
    /// keep every core busy can wait a whole scheduler slice (milliseconds)
    /// before it runs again and falls asleep, and a job queued meanwhile
    /// waits with it. Asleep, it is woken at once.
    fn wait_for_work(&self, slot: &WorkerSlot) -> Woke {
        let deadline = Instant::now() + self.rt.keep_alive;
        let timer = self.timer();
        // Held under `park`, so that a cancel or shutdown that takes the
        // held entry, and then wakes this module's idle workers (taking
        // `park` first), cannot fall between the check and the sleep.
        let mut parked = lock(&self.park);
        loop {
            if slot.detached.load(SeqCst) {
                self.give_back(slot);
                return Woke::Idle;
            }
            if let Some(job) = self.pop() {
                return Woke::Queued(job); // `run` gives any held entry back first
            }
            let now = Instant::now();
            let mut until = deadline;
            if slot.holding.load(Relaxed) {
                match timer.check_held(holder(slot)) {
                    HeldNow::Gone => slot.holding.store(false, Relaxed),
                    HeldNow::Due(due, job) => {
                        slot.holding.store(false, Relaxed);
                        return Woke::Held(Queued { job, not_before: due.max(1), ready_at: due });
                    }
                    HeldNow::Waiting(due) => {
                        let hand_off = due.saturating_sub(self.rt.held_lead());
                        let wait = self.rt.clock.real_wait(hand_off.saturating_sub(self.rt.now()));
                        until = now + wait.unwrap_or(Duration::ZERO);
                    }
                }
            }
            if self.rt.life.phase() != Phase::Running || now >= until {
                self.give_back(slot);
                return Woke::Idle;
            }
            // Counted idle only while about to sleep, so that submitters
            // take the lock and make the wake-up call only when a worker
            // really sleeps. The fence pairs with the submitter's between
            // its push and its read of `idle`: either it sees this worker
            // idle (and notifies, once the lock held here is released by
            // the wait), or the check below sees its job.
            self.idle.fetch_add(1, SeqCst);
            fence(SeqCst);
            if self.ready.is_empty() && self.rt.life.phase() == Phase::Running {
                parked = self.wake.wait_timeout(parked, until - now).unwrap_or_else(|e| e.into_inner()).0;
            }
            self.idle.fetch_sub(1, SeqCst);
        }
    }

    /// For a worker that holds a recurring task, with a batch runner: waits
    /// for and runs its ticks inside one [`run_thread`](crate::BatchRunner::run_thread)
    /// call, so that the runner's per-thread state lives across them. For
    /// Python that is an interpreter thread state, which each GIL take of a
    /// thread Python did not start would otherwise make and free again: the
    /// larger part of a Python tick's CPU (BENCHMARKS.md, py-recurring-cpu).
    /// Only while holding: a worker busy with a stream of tasks keeps none
    /// (see `Runtime::run_thread` for why). Returns the first wake-up that
    /// is not its tick, or None once a tick's run left it holding nothing.
    fn run_held(self: &Arc<Self>, slot: &WorkerSlot) -> Option<Woke> {
        let mut woke = None;
        self.rt.run_thread(&mut || loop {
            match self.wait_for_work(slot) {
                Woke::Held(job) => {
                    self.run(job, slot);
                    if !slot.holding.load(Relaxed) {
                        return;
                    }
                }
                other => {
                    woke = Some(other);
                    return;
                }
            }
        });
        woke
    }

    /// The next queued job, waiting a few microseconds for one before
    /// giving up: a producer that is a little slower than its workers then
    /// rarely has to wake a parked worker with a system call.
    ///
    /// A `hot` worker (one that has run many jobs since it last slept) also
    /// yields the CPU a few times before giving up: its producer is likely
    /// runnable and waiting for a core, and will refill the queue. A worker
    /// that is not hot never yields (see `wait_for_work` for why that
    /// matters: a job for a worker that gave up its slice waits with it).
    ///
    /// A worker that ran a single job since it woke, and that job was a
    /// timer's hand-out (`tick`), does neither: its next job is likely far
    /// off, and the spin would cost CPU on every tick of a recurring task.
    /// After a submitted job it spins: a producer is likely at work, and a
    /// worker that parked after each job would cost it a wake-up call per
    /// job (throughput-1p fell from 5 M to 3.5 M tasks/s that way).
    fn next_soon(&self, slot: &WorkerSlot, streak: usize, tick: bool) -> Option<Queued> {
        if slot.detached.load(SeqCst) {
            return None;
        }
        if let Some(job) = self.pop() {
            return Some(job);
        }
        let hot = streak >= HOT_STREAK;
        if cfg!(loom) || (tick && streak < 2) {
            // A spin measured in real time would make the models
            // non-deterministic; sleeping is what they check.
            return None;
        }
        let until = Instant::now() + SPIN;
        let mut pauses = 1u32;
        loop {
            for _ in 0..pauses {
                std::hint::spin_loop();
            }
            if let Some(job) = self.pop() {
                return Some(job);
            }
            if Instant::now() >= until {
                break;
            }
            pauses = (pauses * 2).min(64);
        }
        if hot {
            for _ in 0..HOT_YIELDS {
                yield_now();
                if let Some(job) = self.pop() {
                    return Some(job);
                }
            }
        }
        None
    }

    /// Runs `first` and, with a batch runner, up to a batch of the jobs
    /// queued behind it inside one `run_batch` call.
    fn run_batch(self: &Arc<Self>, first: Queued, slot: &WorkerSlot) {
        let Some(runner) = &self.rt.batch_runner else {
            return self.run(first, slot);
        };
        let mut first = Some(first);
        let mut batch = || {
            let more = std::iter::from_fn(|| if slot.detached.load(SeqCst) { None } else { self.pop() });
            let jobs = first.take().into_iter().chain(more).take(BATCH);
            for job in jobs {
                self.run(job, slot);
            }
        };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| runner.run_batch(&mut batch))) {
            log::error!("taskmanager: the batch runner panicked");
            drop_payload(payload);
        }
        // A runner that never called `batch` must not lose the job.
        if let Some(job) = first {
            self.run(job, slot);
        }
    }

    /// Gives the recurring entry this worker holds, if any, back to the
    /// timer: it has other work, or ends.
    fn give_back(&self, slot: &WorkerSlot) {
        // A load, not a swap: only this worker writes the flag, and this
        // runs before every job.
        if slot.holding.load(Relaxed) {
            slot.holding.store(false, Relaxed);
            self.timer().give_back(holder(slot));
        }
    }

    fn run(self: &Arc<Self>, queued: Queued, slot: &WorkerSlot) {
        self.give_back(slot);
        let Queued { job, not_before, ready_at } = queued;
        let mut started = None;
        if not_before != 0 {
            started = self.rt.wait_until(not_before);
            if self.rt.life.shut_down_before(not_before) {
                // Handed over early, and shutdown came before it was due.
                self.cancel(job);
                return;
            }
        }
        let named = job.label().is_some_and(|(_, named)| named);
        if named {
            *lock(&slot.named) = job.share();
        }
        // Events: nothing is built unless someone listens. (The job tells
        // `Started` itself: only it knows whether a recurring tick runs.)
        let events = &self.rt.events;
        let watched =
            if events.wanted(log::Level::Warn) { job.share().map(|job| (job, Instant::now())) } else { None };
        let (cx, metered) = (Context::new(self, slot, started, (ready_at, not_before)), self.metered(&job));
        // Jobs catch their users' panics: this is the last line of defence.
        let ran = match catch_unwind(AssertUnwindSafe(|| job.run(&cx))) {
            Ok(ran) => {
                // Completed and failed runs were counted as they ended
                // (`RunContext::count_run`): what is left is a cancel.
                if ran.cancelled {
                    self.count_cancelled_run(slot, metered);
                }
                ran
            }
            Err(payload) => {
                log::error!("taskmanager: a task panicked outside its own guard");
                drop_payload(payload);
                Ran::default()
            }
        };
        slot.current.store(0, Relaxed);
        // Counted: what the run deferred until then (a Redis task's
        // acknowledgement, which sends its result) goes now, before events.
        run_after_count();
        if let Some((job, started)) = watched {
            let duration = started.elapsed();
            if ran.failed {
                let task = job.core().task_ref();
                events.emit(log::Level::Warn, || Event::Failed { task, error: ran.error, duration });
            } else if ran.completed {
                events.emit(log::Level::Debug, || Event::Finished { task: job.core().task_ref(), duration });
            }
            if ran.cancelled {
                // Cancelled while queued (or, recurring, during this run):
                // the timer and shutdown did not see it go.
                events.cancelled(|| job.core().task_ref());
            }
            drop_quietly(job);
        }
        if named {
            // Dropped outside the lock: the last reference drops the task's
            // result, whose `Drop` is user code.
            let ran = lock(&slot.named).take();
            drop_quietly(ran);
        }
    }

    /// Gives `slot`'s worker's place to a new thread: its run went past its
    /// time limit and does not return (see `limit.rs`). It runs nothing
    /// else, and exits once that run returns, without retiring (its place
    /// is no longer its own).
    fn detach(self: &Arc<Self>, slot: &WorkerSlot) {
        if slot.detached.swap(true, SeqCst) {
            return;
        }
        self.alive.fetch_sub(1, SeqCst);
        fence(SeqCst);
        self.kick();
    }

    /// Gives up this worker's place; returns false if work arrived while
    /// leaving and the place could be taken back, so the worker stays.
    fn retire(&self) -> bool {
        self.alive.fetch_sub(1, SeqCst);
        fence(SeqCst);
        self.ready.is_empty() || !self.reserve()
    }
}

/// A worker's place, for the time-limit watchdog (see `limit.rs`).
struct WorkerPlace {
    pool: Weak<Pool>,
    slot: Arc<WorkerSlot>,
}

impl Place for WorkerPlace {
    fn give_up(&self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.detach(&self.slot);
        }
    }

    fn count_abandoned(&self) {
        self.slot.counts.count_abandoned();
    }
}

/// What a worker's wait for work came to.
enum Woke {
    /// A job from the queue.
    Queued(Queued),
    /// The recurring task the worker held, now due.
    Held(Queued),
    /// Nothing: the keep-alive passed, or the manager is shutting down.
    Idle,
}
