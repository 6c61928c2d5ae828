//! When a scheduled task runs: the pacing of recurring runs and the pure arithmetic
//! of due times, kept free of threads and clocks so it can be tested with
//! plain numbers.
//!
//! Time here is [`Nanos`]: nanoseconds since the manager's epoch on the
//! monotonic clock. Wall-clock changes never move a deadline.

use std::time::Duration;

/// Nanoseconds since a manager's epoch, on the monotonic clock.
pub(crate) type Nanos = u64;

/// How a recurring task's next run is placed after a run ends.
///
/// Worked example, interval 10 ms, first run due at t = 10 ms, each run
/// starting on time and taking what the `took` column says. The policies
/// part after the first run, so each has its own due column:
///
/// | run | took  | [`FixedRate`](Pacing::FixedRate) due | `FixedRate` next due      | [`FixedDelay`](Pacing::FixedDelay) due | `FixedDelay` next due |
/// |-----|-------|-------|---------------------------|-------|-------|
/// | 1   | 2 ms  | 10 ms | 20 ms                     | 10 ms | 22 ms |
/// | 2   | 25 ms | 20 ms | 50 ms (30 and 40 skipped) | 22 ms | 57 ms |
///
/// Fixed rate keeps the 10 ms grid and skips the ticks run 2 overran;
/// fixed delay waits 10 ms after each run's end (12 + 10, 47 + 10). A unit
/// test reads this table and checks every cell.
///
/// Neither policy ever overlaps a run with the previous run of the same task,
/// and neither bursts to catch up after a stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pacing {
    /// Run k is due at `start + k * interval`, whatever each run took, so the
    /// schedule does not drift. A run that overran one or more intervals
    /// makes the missed ticks be skipped (counted in
    /// [`RecurringHandle::skipped_ticks`](crate::RecurringHandle::skipped_ticks)):
    /// the next run is the next point of the grid after the overrun, never a
    /// burst of catch-up runs.
    #[default]
    FixedRate,
    /// The next run is due `interval` after the previous run ended: the gap
    /// between runs is constant, and the schedule drifts by each run's
    /// duration.
    FixedDelay,
}

/// A duration in clock units, or `None` if it does not fit.
pub(crate) fn to_nanos(d: Duration) -> Option<Nanos> {
    u64::try_from(d.as_nanos()).ok()
}

/// The due time `delay` after `now`, or `None` past the clock's range.
pub(crate) fn due_after(now: Nanos, delay: Duration) -> Option<Nanos> {
    now.checked_add(to_nanos(delay)?)
}

/// The next run of a recurring task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NextRun {
    /// When the next run is due.
    pub(crate) due: Nanos,
    /// Grid points passed over because the previous run overran them
    /// (always 0 for [`Pacing::FixedDelay`]).
    pub(crate) skipped: u64,
}

/// Where the next run goes, given the due time of the run that just ended,
/// when it started and when it ended. `None` when the next due time is past
/// the clock's range.
///
/// Fixed rate: a run that started late (after a stall, or behind a busy
/// module) stands for the latest grid point it reached, so it is not
/// followed at once by runs for the ticks it missed. The next run is the
/// first grid point after the start that is not before `ended`; a grid point
/// equal to `ended` is still on time.
pub(crate) fn next_run(
    pacing: Pacing,
    interval: Nanos,
    due: Nanos,
    started: Nanos,
    ended: Nanos,
) -> Option<NextRun> {
    debug_assert!(interval > 0, "recurring interval must be positive");
    match pacing {
        Pacing::FixedDelay => Some(NextRun { due: ended.checked_add(interval)?, skipped: 0 }),
        Pacing::FixedRate => {
            let late_ticks = started.saturating_sub(due) / interval;
            let reached = due.checked_add(late_ticks.checked_mul(interval)?)?;
            let overrun = ended.saturating_sub(reached);
            let periods = (overrun / interval + u64::from(overrun % interval != 0)).max(1);
            let due = reached.checked_add(periods.checked_mul(interval)?)?;
            Some(NextRun { due, skipped: late_ticks + periods - 1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    /// A run due at `due` that started on time and ended at `ended`.
    fn rate(due: Nanos, ended: Nanos) -> NextRun {
        next_run(Pacing::FixedRate, 10 * MS, due, due.min(ended), ended).unwrap()
    }

    #[test]
    fn fixed_rate_keeps_the_grid_when_runs_are_short() {
        assert_eq!(rate(10 * MS, 12 * MS), NextRun { due: 20 * MS, skipped: 0 });
        // Started late but finished before the next tick: still on the grid.
        assert_eq!(rate(10 * MS, 19 * MS), NextRun { due: 20 * MS, skipped: 0 });
    }

    #[test]
    fn fixed_rate_skips_missed_ticks_without_bursting() {
        // The worked example in `Pacing`'s docs: due 20, ended 45.
        assert_eq!(rate(20 * MS, 45 * MS), NextRun { due: 50 * MS, skipped: 2 });
        // Overran exactly to a grid point: that point is still on time.
        assert_eq!(rate(10 * MS, 30 * MS), NextRun { due: 30 * MS, skipped: 1 });
        // A run that itself lasted 1 s skips the ticks it covered.
        assert_eq!(rate(0, 1_000 * MS + 1), NextRun { due: 1_010 * MS, skipped: 100 });
    }

    #[test]
    fn a_run_that_starts_late_stands_for_the_latest_tick_it_reached() {
        // Due at 10 ms, but the process stalled: it starts and ends at
        // exactly 1 s, itself a grid point. One run, not two back to back.
        let next = next_run(Pacing::FixedRate, 10 * MS, 10 * MS, 1_000 * MS, 1_000 * MS).unwrap();
        assert_eq!(next, NextRun { due: 1_010 * MS, skipped: 99 });
        // Started 25 ms late, took 1 ms: the next tick is 40, ticks 20 and
        // 30 are skipped.
        let next = next_run(Pacing::FixedRate, 10 * MS, 10 * MS, 35 * MS, 36 * MS).unwrap();
        assert_eq!(next, NextRun { due: 40 * MS, skipped: 2 });
    }

    #[test]
    fn fixed_rate_does_not_drift_over_many_runs() {
        // Each run takes 3 ms; run k is still due at k * 10 ms.
        let mut due = 10 * MS;
        for k in 2..=10_000u64 {
            due = rate(due, due + 3 * MS).due;
            assert_eq!(due, k * 10 * MS);
        }
    }

    #[test]
    fn fixed_rate_with_a_run_ending_before_its_due_time_moves_one_interval() {
        // Can happen for `run_now`'s first run, due at submission.
        assert_eq!(rate(10 * MS, 5 * MS), NextRun { due: 20 * MS, skipped: 0 });
    }

    #[test]
    fn fixed_delay_counts_from_the_end_of_the_run() {
        // The worked example in `Pacing`'s docs: run 2 due at 22 (12 + 10),
        // took 25, so ended at 47.
        let next = next_run(Pacing::FixedDelay, 10 * MS, 22 * MS, 22 * MS, 47 * MS).unwrap();
        assert_eq!(next, NextRun { due: 57 * MS, skipped: 0 });
    }

    /// The numbers (in ms) at the start of a table cell: "50 ms (30 and 40
    /// skipped)" gives [50, 30, 40].
    fn numbers(cell: &str) -> Vec<u64> {
        cell.split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .map(|n| n.parse().unwrap())
            .collect()
    }

    /// Every cell of the worked example in `Pacing`'s docs, read from this
    /// file's source, against `next_run` for both policies.
    #[test]
    fn the_pacing_docs_table_is_right() {
        let rows: Vec<Vec<&str>> = include_str!("schedule.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("/// | "))
            .map(|row| row.split('|').map(str::trim).collect::<Vec<_>>())
            .filter(|cells| cells[0].parse::<u64>().is_ok())
            .collect();
        assert_eq!(rows.len(), 2, "the table has two runs: {rows:?}");
        let interval = 10 * MS;
        // (due column, next due column) per policy.
        for (pacing, due_col, next_col) in [(Pacing::FixedRate, 2, 3), (Pacing::FixedDelay, 4, 5)] {
            let mut due = 10 * MS;
            for (k, cells) in rows.iter().enumerate() {
                assert_eq!(numbers(cells[0]), [k as u64 + 1], "runs are numbered in order");
                let took = numbers(cells[1])[0] * MS;
                assert_eq!(numbers(cells[due_col])[0] * MS, due, "{pacing:?} run {}: due", k + 1);
                let next = next_run(pacing, interval, due, due, due + took).unwrap();
                let next_cell = numbers(cells[next_col]);
                assert_eq!(next_cell[0] * MS, next.due, "{pacing:?} run {}: next due", k + 1);
                // The ticks listed as skipped are exactly those skipped.
                let skipped: Vec<u64> = next_cell[1..].iter().map(|t| t * MS).collect();
                let expected: Vec<u64> =
                    (1..=next.skipped).map(|i| next.due - (next.skipped + 1 - i) * interval).collect();
                assert_eq!(skipped, expected, "{pacing:?} run {}: skipped ticks", k + 1);
                due = next.due;
            }
        }
    }

    #[test]
    fn exhaustive_small_grid_invariants() {
        for interval in 1..=7u64 {
            for due in 0..20u64 {
                for started in due..due + 30 {
                    for ended in started..started + 30 {
                        let n = next_run(Pacing::FixedRate, interval, due, started, ended).unwrap();
                        assert!(n.due > started, "never again at the same instant");
                        assert!(n.due >= ended, "never before the run ended");
                        assert_eq!((n.due - due) % interval, 0, "stays on the grid");
                        let prev = n.due - interval;
                        assert!(prev < ended || prev <= started, "the first such grid point");
                        assert_eq!(n.skipped, (n.due - due) / interval - 1, "every tick between is counted");
                    }
                }
            }
        }
    }

    #[test]
    fn out_of_range_is_none_not_a_panic() {
        assert_eq!(next_run(Pacing::FixedRate, 10, u64::MAX - 5, u64::MAX - 5, u64::MAX - 5), None);
        assert_eq!(next_run(Pacing::FixedDelay, 10, 0, 0, u64::MAX - 5), None);
        assert_eq!(due_after(5, Duration::MAX), None);
        assert_eq!(due_after(u64::MAX - 1, Duration::from_nanos(2)), None);
        assert_eq!(due_after(5, Duration::from_millis(1)), Some(5 + MS));
    }
}
