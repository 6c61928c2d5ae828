//! [`Retry`]: how a failed one-shot task is run again, the same policy for
//! a task run here ([`Task::retry`](crate::Task::retry)) and for a named
//! task sent through the broker (its policy travels in the task, and the
//! worker that saw the failure schedules the next attempt in Redis).
//!
//! A task has one handle across all its attempts: it settles after the
//! last (the first success, or the failure no retry follows). Between
//! attempts the task waits in the timer (in Redis: in the delayed set),
//! so a backoff holds no worker.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::err::TaskError;

/// Which failures a retry follows, beyond the error kinds of [`Retry::on`].
type Predicate = Arc<dyn Fn(&TaskError) -> bool + Send + Sync>;

/// How a failed task is run again: how many times, after what backoff,
/// and for which failures.
///
/// The wait before retry `n` (1 for the first) is `base * 2^(n-1)`, at
/// most `cap`, less a random share of up to `jitter` of it (so retries of
/// many tasks that failed together spread out): with the defaults (1 s,
/// 60 s, 0.5) the first retry comes 0.5 to 1 s after the failure, the
/// second 1 to 2 s, the seventh and later 30 to 60 s.
///
/// ```
/// use std::time::Duration;
/// use taskmanager::{Retry, Task, TaskManager};
///
/// let manager = TaskManager::new();
/// manager.start_thread()?;
/// let mut calls = 0;
/// let retry = Retry::new(3).backoff(Duration::from_millis(1), Duration::from_millis(10));
/// let flaky = Task::fallible(move || {
///     calls += 1;
///     if calls < 3 { Err("not yet") } else { Ok(calls) }
/// })
/// .retry(retry);
/// assert_eq!(manager.add_task(flaky)?.join()?, 3);
/// assert_eq!(manager.stats().retried, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Retry {
    retries: u32,
    base: Duration,
    cap: Duration,
    jitter: f64,
    on: Vec<String>,
    when: Option<Predicate>,
    dead_letter: bool,
}

impl Retry {
    /// Up to `retries` more attempts after the first (0: none), after every
    /// failure, with the default backoff (1 s doubling to 60 s, jitter 0.5).
    pub fn new(retries: u32) -> Self {
        Retry {
            retries,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter: 0.5,
            on: Vec::new(),
            when: None,
            dead_letter: false,
        }
    }

    /// For a named task: once it has used up its retries (its last attempt
    /// failed with an error of a kind it retries), it is moved to the
    /// broker's dead-letter set with that error, to be looked at and
    /// requeued, and its handle fails with
    /// [`TaskError::DeadLettered`](crate::TaskError::DeadLettered). A task
    /// run in this process has no dead-letter set: it just fails.
    pub fn dead_letter(mut self, dead_letter: bool) -> Self {
        self.dead_letter = dead_letter;
        self
    }

    /// Whether [`dead_letter`](Self::dead_letter) is set.
    pub fn dead_letters(&self) -> bool {
        self.dead_letter
    }

    /// Whether a task that failed with `error` at attempt `attempt` used up
    /// its retries: a retry would have followed had there been one left.
    pub fn exhausted(&self, attempt: u32, error: &TaskError) -> bool {
        attempt > self.retries && self.retries_error(error)
    }

    /// The first wait, doubled for each retry after it, up to `cap`.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.base = base;
        self.cap = cap.max(base);
        self
    }

    /// The share of each wait taken off at random, from 0 (waits exactly
    /// as [`backoff`](Self::backoff) says) to 1 (anywhere from none to
    /// all of it); clamped to that range.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        self
    }

    /// Retries only failures of these kinds: for a named task, a
    /// [`RemoteError`](crate::RemoteError) whose [`kind`](crate::RemoteError::kind)
    /// or one of whose [`kinds`](crate::RemoteError::kinds) is listed (the
    /// Python package lists each exception class's qualified name, so an
    /// entry retries its subclasses too). Without it, every failure is
    /// retried. The one filter that crosses processes.
    pub fn on<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.on = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// Retries only failures `predicate` accepts (with [`on`](Self::on),
    /// both must). A task run in this process only: a closure does not
    /// cross processes.
    pub fn when(mut self, predicate: impl Fn(&TaskError) -> bool + Send + Sync + 'static) -> Self {
        self.when = Some(Arc::new(predicate));
        self
    }

    /// Retries after the first attempt, at most.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The first wait and the longest.
    pub fn backoff_bounds(&self) -> (Duration, Duration) {
        (self.base, self.cap)
    }

    /// The share of each wait taken off at random.
    pub fn jitter_share(&self) -> f64 {
        self.jitter
    }

    /// The error kinds retried (empty: all).
    pub fn kinds(&self) -> &[String] {
        &self.on
    }

    /// Whether a task that failed with `error` at attempt `attempt` (1 for
    /// the first run) is run again.
    pub fn allows(&self, attempt: u32, error: &TaskError) -> bool {
        attempt <= self.retries && self.retries_error(error)
    }

    /// Whether `error` is of a kind this policy retries, whatever the
    /// attempt: not a cancellation, of a kind [`on`](Self::on) lists, and
    /// accepted by [`when`](Self::when).
    fn retries_error(&self, error: &TaskError) -> bool {
        let listed = match error {
            // An abandoned run may still be running: a retry beside it
            // would run its effects twice.
            TaskError::Cancelled | TaskError::TimeLimitExceeded { abandoned: true, .. } => return false,
            TaskError::Remote(e) => {
                self.lists(std::iter::once(e.kind.as_str()).chain(e.kinds.iter().map(String::as_str)))
            }
            // Failures of this process's code have no kind to match, but a
            // Python task's: see `allows_kinds`.
            _ => self.on.is_empty(),
        };
        listed && self.when.as_ref().map_or(true, |when| when(error))
    }

    /// The rule of [`on`](Self::on): no list, or one of `kinds` in it.
    fn lists<'a>(&self, mut kinds: impl Iterator<Item = &'a str>) -> bool {
        self.on.is_empty() || kinds.any(|k| self.on.iter().any(|on| on == k))
    }

    /// Whether a task that failed at attempt `attempt` with an error of
    /// classes `kinds` (most derived first) is run again: the rule of
    /// [`on`](Self::on), for a caller that knows its error's kinds itself
    /// (the Python package's tasks run here). A [`when`](Self::when)
    /// predicate, which needs a [`TaskError`], does not apply.
    pub fn allows_kinds<S: AsRef<str>>(&self, attempt: u32, kinds: &[S]) -> bool {
        attempt <= self.retries && self.lists(kinds.iter().map(AsRef::as_ref))
    }

    /// The wait before retry `retry` (1 for the first), from a random
    /// `unit` in [0, 1): see the type's docs.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        // 2^62 times any base is past every cap.
        let doublings = retry.saturating_sub(1).min(62) as i32;
        let full = (self.base.as_secs_f64() * 2f64.powi(doublings)).min(self.cap.as_secs_f64());
        Duration::from_secs_f64(full * (1.0 - self.jitter * unit.clamp(0.0, 1.0)))
    }

    /// [`delay`](Self::delay) with a fresh random share.
    pub fn next_delay(&self, retry: u32) -> Duration {
        self.delay(retry, if self.jitter == 0.0 { 0.0 } else { random_unit() })
    }
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("retries", &self.retries)
            .field("base", &self.base)
            .field("cap", &self.cap)
            .field("jitter", &self.jitter)
            .field("on", &self.on)
            .field("when", &self.when.as_ref().map(|_| "<predicate>"))
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}

/// A number in [0, 1), different each call: splitmix64 over a per-thread
/// state seeded from the clock and the thread. Jitter needs spread, not
/// secrecy; a crate for it would be the only one.
pub(crate) fn random_unit() -> f64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    std::thread_local! {
        static STATE: Cell<u64> = Cell::new({
            // RandomState is seeded per process by the OS; hashing the
            // thread's id spreads threads apart.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(std::process::id().into());
            std::hash::Hash::hash(&std::thread::current().id(), &mut h);
            h.finish()
        });
    }
    STATE.with(|state| {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // 53 random bits, as an f64's mantissa holds.
        (z >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::err::RemoteError;

    #[test]
    fn waits_double_from_the_base_up_to_the_cap_less_the_jitter_share() {
        let retry = Retry::new(10).backoff(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.5);
        let ms = |retry_n, unit| retry.delay(retry_n, unit).as_millis();
        assert_eq!(
            [ms(1, 0.0), ms(2, 0.0), ms(3, 0.0), ms(4, 0.0), ms(5, 0.0), ms(40, 0.0)],
            [100, 200, 400, 800, 1000, 1000]
        );
        // The random share takes off at most `jitter` of the wait.
        assert_eq!(ms(1, 0.999_999), 50);
        assert_eq!(ms(4, 0.5), 600);
        for _ in 0..1000 {
            let d = retry.next_delay(2);
            assert!(d > Duration::from_millis(100) && d <= Duration::from_millis(200), "{d:?}");
        }
    }

    #[test]
    fn attempts_past_the_retries_and_cancellations_are_not_retried() {
        let retry = Retry::new(2);
        let failed = TaskError::Failed { message: "x".into() };
        assert!(retry.allows(1, &failed) && retry.allows(2, &failed));
        assert!(!retry.allows(3, &failed));
        assert!(!retry.allows(1, &TaskError::Cancelled));
        assert!(!Retry::new(0).allows(1, &failed));
    }

    #[test]
    fn kinds_and_predicates_choose_which_failures_retry() {
        let retry = Retry::new(5).on(["builtins.ConnectionError"]);
        let mut remote = RemoteError::new("ConnectionRefusedError", "no");
        assert!(!retry.allows(1, &TaskError::Remote(remote.clone())));
        remote.kinds = vec!["builtins.ConnectionRefusedError".into(), "builtins.ConnectionError".into()];
        assert!(retry.allows(1, &TaskError::Remote(remote)));
        assert!(!retry.allows(1, &TaskError::Failed { message: "x".into() }));
        assert!(retry.allows_kinds(1, &["mod.Sub", "builtins.ConnectionError"]));
        assert!(!retry.allows_kinds(6, &["builtins.ConnectionError"]));
        assert!(!retry.allows_kinds(1, &["mod.Sub"]));
        assert!(Retry::new(1).allows_kinds::<&str>(1, &[]));

        let only_panics = Retry::new(5).when(|e| matches!(e, TaskError::Panicked { .. }));
        assert!(only_panics.allows(1, &TaskError::Panicked { message: "p".into() }));
        assert!(!only_panics.allows(1, &TaskError::Failed { message: "f".into() }));
    }

    #[test]
    fn the_random_share_spreads_over_the_unit_interval() {
        let draws: Vec<f64> = (0..10_000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
        assert!(draws.iter().any(|u| *u < 0.01) && draws.iter().any(|u| *u > 0.99));
    }
}
