//! What a claimer holds: the stream entries it handed to the pool
//! ([`InFlight`]), the acknowledgements of those that finished ([`Ack`]),
//! and those the pool dropped unrun, to hand back.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A stream entry: its stream (one per task name) and its id there.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Entry {
    pub(super) stream: String,
    pub(super) id: String,
}

/// `entries`' ids by stream, each stream once, in order.
pub(super) fn by_stream<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut streams: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        streams.entry(entry.stream.as_str()).or_default().push(entry.id.as_str());
    }
    streams
}

/// The entries this claimer handed to the pool that have not finished, and
/// the cluster-wide places they hold (with `global_max_workers`).
#[derive(Default)]
pub(super) struct InFlight {
    pub(super) entries: Mutex<HashSet<Entry>>,
    pub(super) done: Condvar,
    pub(super) places: Mutex<Vec<String>>,
    /// Entries the pool dropped unrun (a shutdown cancelled them), with
    /// their places: the claimer hands them back.
    pub(super) returned: Mutex<Vec<(Entry, Option<String>)>>,
    /// Set by [`Broker::give_up`]: the claimer holds nothing any more.
    pub(super) abandoned: AtomicBool,
    /// Whether its claimer thread runs (changed under `entries`' lock).
    pub(super) claiming: AtomicBool,
    /// Acknowledgements of finished tasks, for the claimer to send with
    /// its next round trip.
    pub(super) acks: Mutex<Acks>,
    /// Set while a suspect (a task whose earlier workers died with it, see
    /// `lease.rs`) runs here alone, or waits for this claimer to empty so
    /// that it may: nothing else is claimed meanwhile. Only the claimer
    /// thread changes it.
    pub(super) alone: AtomicBool,
}

/// See [`InFlight::acks`].
#[derive(Default)]
pub(super) struct Acks {
    queued: Vec<Ack>,
    /// While the claimer waits (a blocking read, a pause), and once it has
    /// stopped, a finished task sends its own acknowledgement (so its
    /// result is not held up, or lost).
    blocked: bool,
    stopped: bool,
}

/// A finished task's acknowledgement (see `outcomes::ack_script`).
pub(super) struct Ack {
    pub(super) entry: Entry,
    pub(super) task: String,
    pub(super) reply: String,
    pub(super) rec: String,
    pub(super) place: Option<String>,
    /// Whether the run succeeded (`result` is then `{"ok": ...}`).
    pub(super) ok: bool,
    pub(super) result: String,
    /// A failed run that retries: after how long (ms), as which attempt.
    pub(super) retry: Option<(u64, u32)>,
    /// The task's own result TTL in ms (empty: the worker's).
    pub(super) ttl: String,
}

impl InFlight {
    pub(super) fn held(&self) -> std::sync::MutexGuard<'_, HashSet<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn finish(&self, entry: &Entry) {
        self.held().remove(entry);
        self.done.notify_all();
    }

    fn acks(&self) -> std::sync::MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `ack` for the claimer's next round trip; gives it back if the
    /// task must send it itself (the claimer is blocked on a read, or gone).
    pub(super) fn queue_ack(&self, ack: Ack) -> Option<Ack> {
        let mut acks = self.acks();
        if acks.blocked || acks.stopped {
            return Some(ack);
        }
        acks.queued.push(ack);
        None
    }

    /// The queued acknowledgements, for the claimer to send.
    pub(super) fn take_acks(&self) -> Vec<Ack> {
        std::mem::take(&mut self.acks().queued)
    }

    /// The entries whose acknowledgements are queued.
    pub(super) fn queued_entries(&self) -> Vec<Entry> {
        self.acks().queued.iter().map(|ack| ack.entry.clone()).collect()
    }

    /// Acknowledgements the claimer could not send, to try again first.
    pub(super) fn requeue_acks(&self, mut failed: Vec<Ack>) {
        let mut acks = self.acks();
        failed.append(&mut acks.queued);
        acks.queued = failed;
    }

    /// Before the claimer waits (a blocking read, a pause): from now,
    /// finished tasks send their own acknowledgements. False (and nothing
    /// changes) if some are queued: the claimer sends those instead of
    /// waiting.
    pub(super) fn begin_wait(&self) -> bool {
        let mut acks = self.acks();
        if !acks.queued.is_empty() {
            return false;
        }
        acks.blocked = true;
        true
    }

    pub(super) fn end_wait(&self) {
        self.acks().blocked = false;
    }

    /// The claimer has stopped (or is given up on): finished tasks send
    /// their own acknowledgements from now on. Returns those queued, to
    /// send.
    pub(super) fn stop_queueing(&self) -> Vec<Ack> {
        let mut acks = self.acks();
        acks.stopped = true;
        std::mem::take(&mut acks.queued)
    }

    /// A claimed entry the pool dropped without running it.
    pub(super) fn unrun(&self, entry: &Entry, place: Option<String>) {
        self.returned.lock().unwrap_or_else(|p| p.into_inner()).push((entry.clone(), place));
        self.finish(entry);
    }

    pub(super) fn take_returned(&self) -> Vec<(Entry, Option<String>)> {
        std::mem::take(&mut *self.returned.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn forget_places(&self, gone: &[String]) {
        self.places.lock().unwrap_or_else(|p| p.into_inner()).retain(|p| !gone.contains(p));
    }

    /// Tells the claimer to stop: from now on it hands back at once
    /// whatever a read still returns, and ends.
    pub(super) fn abandon(&self) {
        self.abandoned.store(true, SeqCst);
        let _held = self.held();
        self.done.notify_all();
    }

    /// A claimer thread runs for this module from now (`false`: it ended).
    pub(super) fn set_claiming(&self, claiming: bool) {
        let _held = self.held();
        self.claiming.store(claiming, SeqCst);
        self.done.notify_all();
    }

    /// Waits up to `timeout` for the claimer thread to end: a read it sent
    /// before [`abandon`](Self::abandon) may still return entries (a copy
    /// just handed back among them), which it hands back itself.
    pub(super) fn wait_claimer_end(&self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        let mut held = self.held();
        while self.claiming.load(SeqCst) {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else { return };
            held = self.done.wait_timeout(held, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Takes what the claimer held: every entry, and the places of entries
    /// the pool dropped unrun (a running task's place frees itself when its
    /// lease runs out).
    pub(super) fn take_all(&self) -> (Vec<Entry>, Vec<String>) {
        let mut entries: Vec<Entry> = self.held().drain().collect();
        let mut places = Vec::new();
        for (entry, place) in self.take_returned() {
            entries.push(entry);
            places.extend(place);
        }
        self.done.notify_all();
        (entries, places)
    }

    pub(super) fn abandoned(&self) -> bool {
        self.abandoned.load(SeqCst)
    }

    /// Waits up to `timeout` for a task to finish while `max` run.
    pub(super) fn wait_while_full(&self, max: usize, timeout: Duration) {
        let held = self.held();
        if held.len() >= max {
            drop(self.done.wait_timeout(held, timeout).unwrap_or_else(|p| p.into_inner()));
        }
    }
}

/// Acknowledgements taken from the queue for one step: those still unsent
/// when it ends (an error cut the step short) are queued again.
pub(super) struct Unsent<'a> {
    pub(super) acks: Vec<Ack>,
    in_flight: &'a InFlight,
}

impl<'a> Unsent<'a> {
    pub(super) fn take(in_flight: &'a InFlight) -> Self {
        Unsent { acks: in_flight.take_acks(), in_flight }
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if !self.acks.is_empty() {
            self.in_flight.requeue_acks(std::mem::take(&mut self.acks));
        }
    }
}
