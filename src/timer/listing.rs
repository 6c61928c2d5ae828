//! What the timer lists: its recurring tasks (registered for listings,
//! as a recurring task is in the timer, a queue or a worker's hands in
//! turn) and its pending entries.

use std::sync::Arc;

use super::driver::{Target, Timer};
use super::state::live;
use crate::job::Job;
use crate::schedule::Nanos;
use crate::sync::lock;

impl<T: Target> Timer<T> {
    /// Remembers a recurring task for listings.
    pub(crate) fn register_recurring(&self, job: Arc<dyn Job>, module: &Arc<str>) {
        // Dropped last, once no lock is held (see `live`).
        let mut held = Vec::new();
        let mut recurring = lock(&self.recurring);
        if recurring.len() >= 64 && recurring.len().is_power_of_two() {
            recurring.retain(|(job, _)| live(job, &mut held));
        }
        recurring.push((Arc::downgrade(&job), Arc::clone(module)));
    }

    /// The recurring tasks that have not ended, with their modules' names.
    pub(crate) fn recurring(&self) -> Vec<(Arc<dyn Job>, Arc<str>)> {
        // Dropped last, once no lock is held (see `live`).
        let mut held = Vec::new();
        let mut recurring = lock(&self.recurring);
        recurring.retain(|(job, _)| live(job, &mut held));
        recurring.iter().filter_map(|(job, module)| Some((job.upgrade()?, Arc::clone(module)))).collect()
    }

    /// Calls `f` with every pending entry's due time, job and target, under
    /// the timer lock.
    pub(crate) fn for_each_pending(&self, mut f: impl FnMut(Nanos, &dyn Job, &T)) {
        let state = lock(&self.state);
        for (due, entry) in state.iter() {
            if let Some(job) = entry.job.job() {
                f(due, job, &entry.target);
            }
        }
    }

    /// Pending entries.
    pub(crate) fn len(&self) -> usize {
        lock(&self.state).len()
    }
}
