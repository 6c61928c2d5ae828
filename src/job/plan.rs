//! A recurring task's [`Plan`]: when its ticks fall (every interval on
//! the monotonic clock, or a calendar rule's times on the wall clock), its
//! [`Misfire`] policy, grace and jitter; and what a run's start and end
//! come to: which tick a run stands for, what it skipped, when the next is
//! due. The decisions themselves are `misfire.rs`'s; this file brings them
//! the right clock.
//!
//! Each tick has a *key*: its time plus the jitter drawn for it, on the
//! monotonic clock, where the timer waits. A calendar tick's key is
//! computed from the wall clock's offset at the time; when the wall clock
//! steps, the timer asks for it again ([`Plan::rekey`]).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::calendar::Cron;
use crate::misfire::{after_run, at_start, CronTicks, Grid, Misfire, Ticks};
use crate::schedule::{next_run, Nanos, Pacing};
use crate::sync::AtomicU64;

/// A moment on both clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    /// The monotonic clock (the manager's [`Nanos`]).
    pub(crate) mono: Nanos,
    /// The wall clock, in nanoseconds since the Unix epoch.
    pub(crate) wall: u64,
}

impl Times {
    /// The monotonic time at which the wall clock reads `wall`, if it does
    /// not step meanwhile; now, if that has passed.
    pub(crate) fn mono_at(&self, wall: u64) -> Nanos {
        self.mono.saturating_add(wall.saturating_sub(self.wall))
    }
}

/// When a recurring task's ticks fall.
pub(crate) enum Rule {
    /// Every interval (in the cell), on the monotonic clock.
    Every(Pacing),
    /// At a calendar rule's times, on the wall clock.
    Calendar {
        cron: Arc<Cron>,
        /// The pending tick, on the wall clock.
        tick: AtomicU64,
    },
}

/// See the module docs.
pub(crate) struct Plan {
    pub(crate) rule: Rule,
    misfire: Misfire,
    grace: Option<Duration>,
    /// The jitter's bound, in nanoseconds.
    jitter: u64,
    /// The jitter drawn for the pending tick.
    jittered: AtomicU64,
    /// The jitter's random state (xorshift).
    rng: AtomicU64,
}

/// What a run about to start does ([`Plan::begin`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Run now; `missed` ticks before it will never run, `coalesced` are
    /// folded into it.
    Run { missed: u64, coalesced: u64 },
    /// Do not run now: wait for the key `due` (None: no tick is left).
    /// `missed` ticks will never run.
    Wait { due: Option<Nanos>, missed: u64 },
}

/// How early a calendar run may start by the wall clock and still stand
/// for its tick: the timer hands work over a little ahead. Earlier, the
/// wall clock stepped back, and the run waits for its time.
const EARLY: u64 = 50_000_000;

impl Plan {
    pub(crate) fn new(rule: Rule, misfire: Misfire, grace: Option<Duration>, jitter: Nanos) -> Self {
        let seed = RandomState::new().hash_one(0u64) | 1;
        Plan { rule, misfire, grace, jitter, jittered: AtomicU64::new(0), rng: AtomicU64::new(seed) }
    }

    /// Whether the ticks follow the wall clock.
    pub(crate) fn is_calendar(&self) -> bool {
        matches!(self.rule, Rule::Calendar { .. })
    }

    /// A fresh jitter for the next tick: uniform in `0..=jitter`.
    fn draw(&self) -> Nanos {
        if self.jitter == 0 {
            return 0;
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        let drawn = x % self.jitter.saturating_add(1);
        self.jittered.store(drawn, Ordering::Relaxed);
        drawn
    }

    /// The first tick's key: now with `run_now`, else the first tick
    /// (with its jitter); `due` is set to the tick (a calendar's: its key).
    /// None if no tick is ever due.
    pub(crate) fn first(&self, due: &AtomicU64, interval: Nanos, now: Times, run_now: bool) -> Option<Nanos> {
        match &self.rule {
            Rule::Every(_) => {
                let tick = if run_now { now.mono } else { now.mono.checked_add(interval)? };
                due.store(tick, Ordering::Relaxed);
                let jitter = if run_now { 0 } else { self.draw() };
                tick.checked_add(jitter)
            }
            Rule::Calendar { cron, tick } => {
                // Run now: a tick of its own, before the rule's first.
                let first = if run_now { now.wall } else { CronTicks(cron).after(now.wall)? };
                tick.store(first, Ordering::Relaxed);
                let jitter = if run_now { 0 } else { self.draw() };
                let key = now.mono_at(first.saturating_add(jitter));
                due.store(key, Ordering::Relaxed);
                Some(key)
            }
        }
    }

    /// A run due at `due` (its tick) starts at `now`.
    pub(crate) fn begin(&self, due: &AtomicU64, interval: Nanos, now: Times) -> Begin {
        let jittered = self.jittered.load(Ordering::Relaxed);
        match &self.rule {
            // Each run is due an interval after the last ended: no tick
            // to miss.
            Rule::Every(Pacing::FixedDelay) => Begin::Run { missed: 0, coalesced: 0 },
            Rule::Every(Pacing::FixedRate) => {
                let grid = Grid(interval);
                let start = at_start(
                    &grid,
                    self.misfire,
                    self.grace,
                    due.load(Ordering::Relaxed),
                    now.mono.saturating_sub(jittered),
                );
                match start.run {
                    Some(t) => {
                        due.store(t, Ordering::Relaxed);
                        Begin::Run { missed: start.missed, coalesced: start.coalesced }
                    }
                    None => {
                        let next = start.next;
                        if let Some(next) = next {
                            due.store(next, Ordering::Relaxed);
                        }
                        Begin::Wait {
                            due: next.and_then(|n| n.checked_add(self.draw())),
                            missed: start.missed,
                        }
                    }
                }
            }
            Rule::Calendar { cron, tick } => {
                let pending = tick.load(Ordering::Relaxed);
                let key = pending.saturating_add(jittered);
                if now.wall.saturating_add(EARLY) < key {
                    // The wall clock stepped back: not its time yet.
                    let at = now.mono_at(key);
                    due.store(at, Ordering::Relaxed);
                    return Begin::Wait { due: Some(at), missed: 0 };
                }
                let start = at_start(
                    &CronTicks(cron),
                    self.misfire,
                    self.grace,
                    pending,
                    now.wall.saturating_sub(jittered),
                );
                match start.run {
                    Some(t) => {
                        tick.store(t, Ordering::Relaxed);
                        Begin::Run { missed: start.missed, coalesced: start.coalesced }
                    }
                    None => {
                        let Some(next) = start.next else {
                            return Begin::Wait { due: None, missed: start.missed };
                        };
                        tick.store(next, Ordering::Relaxed);
                        let at = now.mono_at(next.saturating_add(self.draw()));
                        due.store(at, Ordering::Relaxed);
                        Begin::Wait { due: Some(at), missed: start.missed }
                    }
                }
            }
        }
    }

    /// A run for the pending tick, started at `started`, ended at `end`:
    /// the next key, and how many ticks the run covered that will never
    /// run. None: no tick is left (or past the clock's range). A paused
    /// tick (`paused`) skips every tick passed, whatever the policy: a
    /// paused task catches up nothing.
    pub(crate) fn end(
        &self,
        due: &AtomicU64,
        interval: Nanos,
        started: Nanos,
        end: Times,
        paused: bool,
    ) -> Option<(Nanos, u64)> {
        let misfire = if paused { Misfire::Skip } else { self.misfire };
        let (next, skipped, key) = match &self.rule {
            Rule::Every(pacing) => {
                let ran = due.load(Ordering::Relaxed);
                let (next, skipped) = match (pacing, misfire) {
                    (Pacing::FixedRate, Misfire::Skip) | (Pacing::FixedDelay, _) => {
                        let next = next_run(*pacing, interval, ran, started, end.mono)?;
                        (next.due, next.skipped)
                    }
                    (Pacing::FixedRate, misfire) => after_run(&Grid(interval), misfire, ran, end.mono)?,
                };
                (next, skipped, next.checked_add(self.draw())?)
            }
            Rule::Calendar { cron, tick } => {
                let (next, skipped) =
                    after_run(&CronTicks(cron), misfire, tick.load(Ordering::Relaxed), end.wall)?;
                tick.store(next, Ordering::Relaxed);
                let key = end.mono_at(next.saturating_add(self.draw()));
                (key, skipped, key)
            }
        };
        due.store(next, Ordering::Relaxed);
        Some((key, skipped))
    }

    /// A calendar task's pending key, again, after the wall clock stepped
    /// (`due` is set to it); None for an interval.
    pub(crate) fn rekey(&self, due: &AtomicU64, now: Times) -> Option<Nanos> {
        let Rule::Calendar { tick, .. } = &self.rule else { return None };
        let key =
            now.mono_at(tick.load(Ordering::Relaxed).saturating_add(self.jittered.load(Ordering::Relaxed)));
        due.store(key, Ordering::Relaxed);
        Some(key)
    }

    /// A calendar task's pending tick, on the wall clock.
    pub(crate) fn next_wall(&self) -> Option<SystemTime> {
        let Rule::Calendar { tick, .. } = &self.rule else { return None };
        Some(UNIX_EPOCH + Duration::from_nanos(tick.load(Ordering::Relaxed)))
    }

    /// The calendar rule, if the ticks follow one.
    pub(crate) fn calendar(&self) -> Option<&Arc<Cron>> {
        match &self.rule {
            Rule::Every(_) => None,
            Rule::Calendar { cron, .. } => Some(cron),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Each key is its tick plus a jitter in `0..=bound`, the ticks stay
    /// on their grid, and the jitter spreads over the whole bound.
    #[test]
    fn jitter_delays_each_run_within_its_bound_and_never_moves_the_grid() {
        let plan = Plan::new(Rule::Every(Pacing::FixedRate), Misfire::Skip, None, 500 * MS);
        let due = AtomicU64::new(0);
        let now = Times { mono: 0, wall: 0 };
        let mut key = plan.first(&due, 1000 * MS, now, false).unwrap();
        let (mut least, mut most) = (u64::MAX, 0);
        for k in 1..=1000u64 {
            let tick = due.load(Ordering::Relaxed);
            assert_eq!(tick, k * 1000 * MS, "the grid does not move");
            let jitter = key - tick;
            assert!(jitter <= 500 * MS, "run {k}: {jitter} ns");
            (least, most) = (least.min(jitter), most.max(jitter));
            // The run starts at its key and takes 1 ms.
            let begun = plan.begin(&due, 1000 * MS, Times { mono: key, wall: 0 });
            assert_eq!(
                begun,
                Begin::Run { missed: 0, coalesced: 0 },
                "run {k}: lateness counts from the key"
            );
            key = plan.end(&due, 1000 * MS, key, Times { mono: key + MS, wall: 0 }, false).unwrap().0;
        }
        assert!(least < 25 * MS && most > 475 * MS, "spread over the bound: {least}..{most}");
    }

    #[test]
    fn a_calendar_key_follows_the_wall_clock_offset() {
        let cron = Arc::new(Cron::parse("0 * * * *").unwrap());
        let plan = Plan::new(Rule::Calendar { cron, tick: AtomicU64::new(0) }, Misfire::Coalesce, None, 0);
        let due = AtomicU64::new(0);
        // Mono 5 s at wall 10:30:00Z: the next tick, 11:00, is 30 min on.
        let wall = 1_767_609_000 * 1000 * MS;
        let key = plan.first(&due, 0, Times { mono: 5000 * MS, wall }, false).unwrap();
        assert_eq!(key, 5000 * MS + 1_800_000 * MS);
        // The wall clock stepped 10 min forward: 20 min to go.
        let key = plan.rekey(&due, Times { mono: 6000 * MS, wall: wall + 601_000 * MS }).unwrap();
        assert_eq!(key, 6000 * MS + 1_199_000 * MS);
        assert_eq!(due.load(Ordering::Relaxed), key);
        assert_eq!(plan.next_wall(), Some(UNIX_EPOCH + Duration::from_secs(1_767_610_800)));
    }
}
