//! Tasks that follow the wall clock (a one-shot at a time, a calendar
//! task): the timer keeps their keys on the monotonic clock, and moves
//! them when the wall clock steps against it.

use std::sync::Arc;

use super::driver::{Target, Timer};
use super::state::{live, State, WALL_STEP};
use crate::job::Job;
use crate::sync::lock;

impl<T: Target> Timer<T> {
    /// Follows the wall clock for `job`: a one-shot due at the wall time
    /// `at`, or (None) a calendar task. Its key moves when the wall clock
    /// steps (see [`check_wall`](Self::check_wall)).
    pub(crate) fn follow_wall(&self, job: Arc<dyn Job>, at: Option<u64>) {
        // Dropped last, once no lock is held (see `live`).
        let mut held = Vec::new();
        let mut walled = lock(&self.walled);
        if walled.jobs.len() >= 64 && walled.jobs.len().is_power_of_two() {
            walled.jobs.retain(|(job, _)| live(job, &mut held));
        }
        if walled.offset.is_none() {
            walled.offset = Some(self.offset());
        }
        let first = walled.jobs.is_empty();
        walled.jobs.push((Arc::downgrade(&job), at));
        drop(walled);
        if first {
            // The timer thread reads the wall clock from now on (it does
            // while any task follows it: no wake-up needed for the next).
            // Taking its lock first, as `time_moved` does, means it is
            // either before its look at `walled` or already waiting.
            drop(lock(&self.state));
            self.wake.notify_all();
        }
    }

    /// The wall clock's offset from the monotonic one.
    fn offset(&self) -> i128 {
        let now = self.rt.times();
        i128::from(now.wall) - i128::from(now.mono)
    }

    /// Whether any task follows the wall clock; if the wall clock stepped
    /// since the keys were computed, moves their entries in `state` (the
    /// timer thread's, locked) to their new keys. What it returns is to be
    /// dropped, and the holders woken, once `state` is unlocked; so are the
    /// tasks it looked at, which it puts in `held`.
    pub(super) fn check_wall(&self, state: &mut State<T>, held: &mut Vec<Arc<dyn Job>>) -> WallCheck<T> {
        let mut check = WallCheck { follows: false, holders: Vec::new(), jobs: Vec::new() };
        let mut walled = lock(&self.walled);
        walled.prune_some(held);
        if walled.jobs.is_empty() {
            return check;
        }
        check.follows = true;
        let offset = self.offset();
        if walled.offset.is_some_and(|was| (offset - was).abs() < WALL_STEP) {
            return check;
        }
        walled.offset = Some(offset);
        walled.jobs.retain(|(job, _)| live(job, held));
        let jobs: Vec<(Arc<dyn Job>, Option<u64>)> =
            walled.jobs.iter().filter_map(|(job, at)| Some((job.upgrade()?, *at))).collect();
        drop(walled);
        log::info!("taskmanager: the wall clock stepped; {} task(s) that follow it move with it", jobs.len());
        let now = self.rt.times();
        for (job, at) in jobs {
            // Only an entry waiting in the timer (or a worker's hands)
            // moves: a running task computes its next key when it ends.
            if let Some((entry, held)) = state.remove(job.core()) {
                // A calendar task always has a key; were it to have none,
                // it would run at once, and its run waits for its time.
                let key = match at {
                    Some(at) => now.mono_at(at),
                    None => job.wall_rekey(now).unwrap_or(now.mono),
                };
                if held {
                    check.holders.push(Arc::clone(&entry.target));
                }
                state.push(key, entry);
            }
            check.jobs.push(job);
        }
        check
    }
}

/// What [`Timer::check_wall`] found.
pub(super) struct WallCheck<T> {
    /// Whether any task follows the wall clock.
    pub(super) follows: bool,
    /// Workers whose held entry moved to the heap: to be woken.
    pub(super) holders: Vec<Arc<T>>,
    /// The tasks moved, kept until the timer lock is released (the last
    /// reference to one drops its method).
    pub(super) jobs: Vec<Arc<dyn Job>>,
}
