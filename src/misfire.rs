//! What a recurring task does with the ticks it could not run on time
//! ([`Misfire`]), as pure decisions over a schedule's ticks ([`Ticks`]):
//! no clock and no threads, so that every case is a unit test with plain
//! numbers. Times are nanoseconds on the schedule's own clock: the
//! monotonic clock for an interval, the wall clock (since the Unix epoch)
//! for a calendar schedule.
//!
//! A tick *passes* when its time comes; it *misfires* when its run cannot
//! start in time: the process was asleep or stopped, the module's workers
//! were busy, or the previous run was still going. Two moments decide:
//!
//! - **At a run's start** ([`at_start`]), every tick from the one the run
//!   was due for up to now has passed. The policy picks which of them this
//!   run stands for, or that none runs now.
//! - **At a run's end** ([`after_run`]), the ticks the run itself covered
//!   have passed: with [`Misfire::Skip`] they are skipped and the task
//!   waits for the first tick not before the end (the grid never bursts);
//!   otherwise the next tick is due at once and the start decides.

use std::time::{Duration, UNIX_EPOCH};

use crate::calendar::Cron;
use crate::schedule::to_nanos;

/// What a recurring task does with ticks it could not run on time.
///
/// Worked example: a task due every 10 s at 0, 10, 20, ... s starts at
/// 35 s (the process was suspended from 1 s to 35 s). Ticks 0 to 30 have
/// passed; a unit test checks each row:
///
/// | policy | grace | runs at 35 s for | missed | coalesced |
/// |--------|-------|------------------|--------|-----------|
/// | `Skip` | none | 30 s | 3 | 0 |
/// | `Skip` | 2 s | nothing: next at 40 s | 4 | 0 |
/// | `Coalesce` | any | 30 s (once, for all four) | 0 | 3 |
/// | `CatchUp { max: 2 }` | none | 20 s, then 30 s at once | 2 | 0 |
/// | `CatchUp { max: 9 }` | 10 s | 30 s (20 s is past the grace) | 3 | 0 |
///
/// A [`Pacing::FixedDelay`](crate::Pacing::FixedDelay) schedule has no
/// ticks to miss (each run is due an interval after the last one ended):
/// the policy does not apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misfire {
    /// Of the ticks passed, only the latest runs, and only if it is within
    /// the grace ([`Recurrence::grace`](crate::Recurrence::grace)); the
    /// others are skipped. A run that overruns ticks skips them, and the
    /// next run waits for the next tick. The default of interval schedules
    /// (with no grace: the latest tick always runs).
    Skip,
    /// However late, the ticks passed run once, as soon as possible: a
    /// daily job whose process slept through its time runs on waking, once.
    /// The grace only decides what is counted late. The default of
    /// calendar schedules.
    Coalesce,
    /// Each tick passed runs, one after another (never overlapping), up to
    /// the latest `max` of them and only those within the grace; older
    /// ones are skipped.
    CatchUp {
        /// How many passed ticks run at most (at least 1).
        max: u32,
    },
}

/// A schedule's tick times.
pub(crate) trait Ticks {
    /// The first tick strictly after `t`; None if there is none in range.
    fn after(&self, t: u64) -> Option<u64>;

    /// The ticks from `from` (itself a tick) up to `to`, both included:
    /// how many, and the latest `keep` of them, oldest first. Counting
    /// stops at [`COUNT_CAP`] ticks; the rest of a longer span is
    /// estimated from the rate of those counted.
    fn span(&self, from: u64, to: u64, keep: usize) -> (u64, Vec<u64>) {
        let mut latest = std::collections::VecDeque::with_capacity(keep.min(64));
        let (mut n, mut t) = (0u64, Some(from));
        while let Some(tick) = t.filter(|&t| t <= to) {
            n += 1;
            if keep > 0 {
                if latest.len() == keep {
                    latest.pop_front();
                }
                latest.push_back(tick);
            }
            if n == COUNT_CAP {
                let tail = self.tail(tick, to, keep.max(1));
                let rest = *tail.last().unwrap_or(&tick);
                let rate = (tick - from) / (n - 1).max(1);
                let estimate = (rest - tick).checked_div(rate).unwrap_or(0);
                let kept = if keep == 0 { Vec::new() } else { tail };
                return (n + estimate, kept);
            }
            t = self.after(tick);
        }
        (n, latest.into())
    }

    /// The latest `keep` ticks from `from` (a tick) up to `to`, oldest
    /// first: found by doubling a look-back window from `to`, as a
    /// calendar has no reverse search.
    fn tail(&self, from: u64, to: u64, keep: usize) -> Vec<u64> {
        let mut back = 1_000_000_000u64; // 1 s
        loop {
            let start = to.saturating_sub(back).max(from);
            let mut found = std::collections::VecDeque::new();
            let mut t = if start == from { Some(from) } else { self.after(start) };
            while let Some(tick) = t.filter(|&t| t <= to) {
                if found.len() == keep {
                    found.pop_front();
                }
                found.push_back(tick);
                t = self.after(tick);
            }
            if found.len() == keep || start == from {
                return found.into();
            }
            back = back.saturating_mul(2);
        }
    }
}

/// Ticks counted one by one in a span before the rest is estimated.
pub(crate) const COUNT_CAP: u64 = 100_000;

/// The ticks of a fixed-rate interval: a grid.
pub(crate) struct Grid(pub(crate) u64);

impl Ticks for Grid {
    fn after(&self, t: u64) -> Option<u64> {
        t.checked_add(self.0)
    }

    fn span(&self, from: u64, to: u64, keep: usize) -> (u64, Vec<u64>) {
        if to < from {
            return (0, Vec::new());
        }
        let n = (to - from) / self.0 + 1;
        let last = from + (n - 1) * self.0;
        let kept = n.min(keep as u64);
        (n, (0..kept).rev().map(|i| last - i * self.0).collect())
    }
}

/// A calendar rule's ticks, in wall-clock nanoseconds since the Unix
/// epoch: the in-process timer's (`job/plan.rs`) and the Redis mode's
/// (`broker/calendar_tick.rs`).
pub(crate) struct CronTicks<'a>(pub(crate) &'a Cron);

impl Ticks for CronTicks<'_> {
    /// None past the clock's range too (July 2554).
    fn after(&self, t: u64) -> Option<u64> {
        let next = self.0.next_after(UNIX_EPOCH + Duration::from_nanos(t))?;
        to_nanos(next.duration_since(UNIX_EPOCH).ok()?)
    }
}

/// What a run about to start does ([`at_start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// The tick this run stands for; None: it does not run now, and waits
    /// for `next`.
    pub(crate) run: Option<u64>,
    /// Ticks passed that will never run.
    pub(crate) missed: u64,
    /// Ticks folded into this run ([`Misfire::Coalesce`]).
    pub(crate) coalesced: u64,
    /// The tick to wait for, when nothing runs now.
    pub(crate) next: Option<u64>,
}

/// A run due for the tick `due` starts at `now`: which tick it stands
/// for, by `misfire` and `grace`.
pub(crate) fn at_start(
    ticks: &dyn Ticks,
    misfire: Misfire,
    grace: Option<Duration>,
    due: u64,
    now: u64,
) -> Start {
    let keep = match misfire {
        Misfire::CatchUp { max } => max.max(1) as usize,
        Misfire::Skip | Misfire::Coalesce => 1,
    };
    let (passed, latest) = ticks.span(due, now.max(due), keep);
    let in_grace = |t: u64| grace.map_or(true, |g| u128::from(now.saturating_sub(t)) <= g.as_nanos());
    let last = *latest.last().unwrap_or(&due);
    match misfire {
        Misfire::Coalesce => Start { run: Some(last), missed: 0, coalesced: passed - 1, next: None },
        Misfire::Skip | Misfire::CatchUp { .. } => match latest.iter().position(|&t| in_grace(t)) {
            Some(i) => {
                let run = latest[i];
                Start { run: Some(run), missed: passed - (latest.len() - i) as u64, coalesced: 0, next: None }
            }
            None => Start { run: None, missed: passed, coalesced: 0, next: ticks.after(last) },
        },
    }
}

/// A run for the tick `ran` ended at `end`: the tick the task is due at
/// next, and how many ticks the run covered that will never run (only
/// with [`Misfire::Skip`]; the other policies leave them to
/// [`at_start`]). None: no tick is left.
pub(crate) fn after_run(ticks: &dyn Ticks, misfire: Misfire, ran: u64, end: u64) -> Option<(u64, u64)> {
    let next = ticks.after(ran)?;
    if misfire != Misfire::Skip || next >= end {
        return Some((next, 0));
    }
    // Skipped: the ticks before `end` (one equal to it is on time).
    let (covered, latest) = ticks.span(next, end - 1, 1);
    let last = latest.last().copied().unwrap_or(next);
    Some((ticks.after(last)?, covered))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A calendar-like schedule with uneven ticks: each in the list.
    struct List(Vec<u64>);

    impl Ticks for List {
        fn after(&self, t: u64) -> Option<u64> {
            self.0.iter().copied().find(|&x| x > t)
        }
    }

    fn words(cell: &str) -> Vec<u64> {
        cell.split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect()
    }

    /// Every row of `Misfire`'s worked example, read from this file.
    #[test]
    fn the_misfire_docs_table_is_right() {
        let rows: Vec<Vec<String>> = include_str!("misfire.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("/// | `"))
            .map(|row| row.split('|').map(|c| c.trim().trim_matches('`').to_owned()).collect())
            .collect();
        assert_eq!(rows.len(), 5, "{rows:?}");
        let grid = Grid(10 * S);
        for row in rows {
            let policy = match row[0].as_str() {
                "Skip" => Misfire::Skip,
                "Coalesce" => Misfire::Coalesce,
                other => Misfire::CatchUp { max: words(other)[0] as u32 },
            };
            let grace = words(&row[1]).first().map(|&s| Duration::from_secs(s));
            let start = at_start(&grid, policy, grace, 0, 35 * S);
            let runs = words(&row[2]);
            let (missed, coalesced) = (words(&row[3])[0], words(&row[4])[0]);
            assert_eq!((start.missed, start.coalesced), (missed, coalesced), "{row:?}");
            if row[2].starts_with("nothing") {
                assert_eq!((start.run, start.next), (None, Some(runs[0] * S)), "{row:?}");
                continue;
            }
            assert_eq!(start.run, Some(runs[0] * S), "{row:?}");
            // Catching up: the next tick is due at once, and runs.
            if runs.len() > 1 && row[2].contains("then") {
                let (next, skipped) = after_run(&grid, policy, runs[0] * S, 35 * S).unwrap();
                assert_eq!((next, skipped), (runs[1] * S, 0), "{row:?}");
                let then = at_start(&grid, policy, grace, next, 35 * S);
                assert_eq!((then.run, then.missed), (Some(runs[1] * S), 0), "{row:?}");
            }
        }
    }

    #[test]
    fn on_time_runs_its_own_tick_and_misses_nothing() {
        for policy in [Misfire::Skip, Misfire::Coalesce, Misfire::CatchUp { max: 3 }] {
            let start = at_start(&Grid(10), policy, Some(Duration::ZERO), 20, 20);
            assert_eq!(start, Start { run: Some(20), missed: 0, coalesced: 0, next: None }, "{policy:?}");
            // Early (the timer hands over a little ahead): the same.
            assert_eq!(at_start(&Grid(10), policy, None, 20, 18).run, Some(20), "{policy:?}");
        }
    }

    #[test]
    fn after_a_run_skip_waits_for_the_grid_and_the_others_come_back_at_once() {
        let grid = Grid(10);
        assert_eq!(after_run(&grid, Misfire::Skip, 10, 12), Some((20, 0)));
        assert_eq!(after_run(&grid, Misfire::Skip, 20, 45), Some((50, 2)), "30 and 40 skipped");
        assert_eq!(after_run(&grid, Misfire::Skip, 10, 30), Some((30, 1)), "a tick at the end is on time");
        assert_eq!(after_run(&grid, Misfire::Coalesce, 20, 45), Some((30, 0)));
        assert_eq!(after_run(&grid, Misfire::CatchUp { max: 5 }, 20, 45), Some((30, 0)));
        // Then Coalesce folds 30 and 40 into one run at 45.
        assert_eq!(at_start(&grid, Misfire::Coalesce, None, 30, 45).coalesced, 1);
    }

    #[test]
    fn uneven_ticks_count_and_choose_alike() {
        // 09:00 on weekdays, in seconds: Friday, then Monday.
        let days = List(vec![0, 3 * 86_400, 4 * 86_400, 5 * 86_400]);
        let start = at_start(&days, Misfire::CatchUp { max: 2 }, None, 0, 4 * 86_400 + 5);
        assert_eq!((start.run, start.missed), (Some(3 * 86_400), 1));
        let start = at_start(&days, Misfire::Skip, Some(Duration::from_nanos(3)), 0, 4 * 86_400 + 5);
        assert_eq!((start.run, start.missed, start.next), (None, 3, Some(5 * 86_400)));
        assert_eq!(after_run(&days, Misfire::Skip, 5 * 86_400, 6 * 86_400), None, "no tick is left");
    }

    #[test]
    fn a_long_span_is_counted_to_the_cap_then_estimated() {
        // Every tick of a one-second grid, as a calendar would give them.
        struct Seconds;
        impl Ticks for Seconds {
            fn after(&self, t: u64) -> Option<u64> {
                Some(t + S)
            }
        }
        let day = 86_400 * S;
        let (n, latest) = Seconds.span(0, 10 * day, 3);
        assert_eq!(n, 864_001, "exact: the grid is regular");
        assert_eq!(latest, [10 * day - 2 * S, 10 * day - S, 10 * day]);
        assert_eq!(Grid(S).span(0, 10 * day, 2), (864_001, vec![10 * day - S, 10 * day]));
    }
}
