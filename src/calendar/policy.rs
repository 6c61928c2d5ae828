//! What a calendar schedule does when its zone's clocks jump: the two halves
//! of the DST policy.
//!
//! Both apply only to expressions that name their hours (`30 2 * * *`,
//! `0 9-17 * * *`). An expression whose hour field is every hour (`*`,
//! `*/1`, `0-23`) runs by real time at a transition whatever the policy:
//! at both passes of a repeated hour and not in a missing one (see
//! [`Cron`](crate::Cron)'s worked examples).

/// What a run whose wall-clock time does not exist (clocks spring forward
/// over it) does.
///
/// Europe/Berlin, 2025-03-30: at 02:00 CET the clocks go to 03:00 CEST, so
/// 02:00-02:59 does not happen. A daily `30 2 * * *` job:
///
/// | policy                      | runs that day        |
/// |-----------------------------|----------------------|
/// | [`Shift`](GapPolicy::Shift) | 03:00 CEST (01:00Z)  |
/// | [`Skip`](GapPolicy::Skip)   | none; next 2025-03-31 02:30 CEST |
///
/// Every missing time of one gap shifts to the same instant, so a job
/// with several (`*/20 2 * * *`) runs once there, and not again when its
/// own 03:00 comes.
///
/// An expression whose hour field is every hour (`30 * * * *`) never
/// shifts, whatever the policy: the skipped 02:30 is simply an hour that did
/// not happen, and 01:30 and 03:30 are an hour apart (see
/// [`Cron`](crate::Cron)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GapPolicy {
    /// Runs at the first instant after the missing time: the moment the
    /// clocks jump (03:00 CEST above). The default: a daily job (a backup,
    /// a report) must not silently miss a day, and running it at once is
    /// what Vixie cron (and cronie, Debian's cron) does for jobs "that would
    /// have run in the interval that has been skipped".
    #[default]
    Shift,
    /// Does not run: the time did not happen. For work that is only
    /// meaningful at that wall-clock time.
    Skip,
}

/// What a run whose wall-clock time happens twice (clocks fall back over
/// it) does.
///
/// Europe/Berlin, 2025-10-26: at 03:00 CEST the clocks go back to 02:00
/// CET, so 02:00-02:59 happens twice, first at UTC+2, then at UTC+1. A
/// daily `30 2 * * *` job:
///
/// | policy                       | runs that day                           |
/// |------------------------------|-----------------------------------------|
/// | [`First`](FoldPolicy::First)   | 02:30 CEST (00:30Z)                     |
/// | [`Second`](FoldPolicy::Second) | 02:30 CET (01:30Z)                      |
/// | [`Both`](FoldPolicy::Both)     | 02:30 CEST (00:30Z), 02:30 CET (01:30Z) |
///
/// An expression whose hour field is every hour (`30 * * * *`) runs at both
/// passes, whatever the policy: on a 25-hour day an hourly job runs 25
/// times (see [`Cron`](crate::Cron)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FoldPolicy {
    /// Runs once, at the first pass. The default: a daily job runs once a
    /// day, and at the earliest instant its time names, as Vixie cron does
    /// ("care is taken to avoid running jobs twice"), and as Python's
    /// `fold=0`, jiff's and Temporal's "compatible" disambiguation read a
    /// repeated time.
    #[default]
    First,
    /// Runs once, at the second pass: the time as it reads after the
    /// change, for work that must come after the whole first pass.
    Second,
    /// Runs at both passes: the wall clock shows the time twice, the job
    /// runs twice.
    Both,
}

/// Which pass of a repeated wall-clock time a run is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The time happens once.
    Only,
    /// Before the clocks fell back.
    First,
    /// After the clocks fell back.
    Second,
}

impl FoldPolicy {
    /// Whether a run on `pass` happens.
    pub(crate) fn runs(self, pass: Pass) -> bool {
        match (self, pass) {
            (_, Pass::Only) | (FoldPolicy::Both, _) => true,
            (FoldPolicy::First, pass) => pass == Pass::First,
            (FoldPolicy::Second, pass) => pass == Pass::Second,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fold_policy_runs_on_its_passes() {
        let passes = [Pass::Only, Pass::First, Pass::Second];
        let runs = |policy: FoldPolicy| passes.map(|p| policy.runs(p));
        assert_eq!(runs(FoldPolicy::First), [true, true, false]);
        assert_eq!(runs(FoldPolicy::Second), [true, false, true]);
        assert_eq!(runs(FoldPolicy::Both), [true, true, true]);
    }

    #[test]
    fn the_defaults_are_shift_and_first() {
        assert_eq!(GapPolicy::default(), GapPolicy::Shift);
        assert_eq!(FoldPolicy::default(), FoldPolicy::First);
    }
}
