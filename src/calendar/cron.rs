//! The public face of a calendar schedule.

use std::iter::FusedIterator;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::Timestamp;

use super::error::CronError;
use super::parse::{parse, Parsed};
use super::policy::{FoldPolicy, GapPolicy};
use super::search::Rules;

/// A calendar schedule: a cron expression, read on the wall clock of a
/// time zone, with a policy for the times daylight saving skips or
/// repeats.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use taskmanager::{Cron, FoldPolicy};
///
/// let nightly = Cron::parse("30 2 * * *")?.zone("Europe/Berlin")?;
/// let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
/// // 2025-10-25 22:00 UTC; that night Berlin's clocks fall back at 03:00.
/// let evening = at(1_761_429_600);
/// // The first 02:30 (CEST, 00:30 UTC) only: the default FoldPolicy::First.
/// assert_eq!(nightly.next_after(evening), Some(at(1_761_438_600)));
/// // Or both 02:30s, an hour apart.
/// let twice = nightly.fold(FoldPolicy::Both);
/// let runs: Vec<_> = twice.upcoming(evening).take(2).collect();
/// assert_eq!(runs, [at(1_761_438_600), at(1_761_442_200)]);
/// # Ok::<(), taskmanager::CronError>(())
/// ```
///
/// # Expressions
///
/// Five fields, `minute hour day-of-month month day-of-week`, or six with
/// a `second` field first. Each field takes `*`, a value, a range `a-b`, a
/// step `*/n` or `a-b/n`, and lists of these (`1,15,30-40/5`). Months take
/// `JAN`-`DEC`; days of week `SUN`-`SAT` or 0-7 (0 and 7 are Sunday); names
/// in either case. Day of month also takes `L` (last day), `15W` (the
/// weekday nearest the 15th, within the month), `LW` (last weekday); day of
/// week `5L` (last Friday), `5#2` (second Friday), `5#L`. `?` is `*` in the
/// day fields. When both day fields are restricted, a day matching either
/// runs (Vixie cron's OR); `+` before the day of week asks for both (`0 0
/// 1 * +MON`: a 1st that is a Monday). Macros: `@yearly` (`@annually`),
/// `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly`. Errors are
/// [`CronError`]s naming the field; an expression no date matches (`0 0 30
/// 2 *`) is refused too.
///
/// # Daylight saving
///
/// Times the clocks skip follow [`GapPolicy`] (default
/// [`Shift`](GapPolicy::Shift): at the first instant after), times they
/// repeat follow [`FoldPolicy`] (default [`First`](FoldPolicy::First):
/// once, at the first pass). An expression whose hour field is every hour
/// (`0 * * * *`, `*/15 * * * *`) runs by real time whatever the policy: at
/// both passes of a repeated time, never in a skipped one; its neighbours
/// cover the skipped hour, and running twice is what "every hour" means
/// on a 25-hour day.
///
/// Europe/Berlin: on 2025-03-30 02:00-02:59 is skipped (CET to CEST at
/// 01:00Z); on 2025-10-26 it happens twice (CEST, then CET from 01:00Z).
/// "any" is every combination of the two policies; a test reads this table:
///
/// | expression     | day        | policy   | runs from 00:00Z to 02:59Z |
/// |----------------|------------|----------|----------------------------|
/// | `30 2 * * *`   | 2025-03-30 | `Shift`  | 01:00Z (03:00 CEST) |
/// | `30 2 * * *`   | 2025-03-30 | `Skip`   | none |
/// | `*/20 2 * * *` | 2025-03-30 | `Shift`  | 01:00Z (03:00 CEST: one run for 02:00, 02:20, 02:40) |
/// | `0 3 * * *`    | 2025-03-30 | any      | 01:00Z (03:00 CEST) |
/// | `30 2 * * *`   | 2025-10-26 | `First`  | 00:30Z (02:30 CEST) |
/// | `30 2 * * *`   | 2025-10-26 | `Second` | 01:30Z (02:30 CET) |
/// | `30 2 * * *`   | 2025-10-26 | `Both`   | 00:30Z (02:30 CEST), 01:30Z (02:30 CET) |
/// | `*/20 2 * * *` | 2025-10-26 | `First`  | 00:00Z, 00:20Z, 00:40Z (CEST) |
/// | `0 * * * *`    | 2025-03-30 | any      | 00:00Z (01:00 CET), 01:00Z (03:00 CEST), 02:00Z (04:00 CEST) |
/// | `30 * * * *`   | 2025-03-30 | any      | 00:30Z (01:30 CET), 01:30Z (03:30 CEST), 02:30Z (04:30 CEST) |
/// | `0 * * * *`    | 2025-10-26 | any      | 00:00Z (02:00 CEST), 01:00Z (02:00 CET), 02:00Z (03:00 CET) |
///
/// The zone is UTC unless [`zone`](Cron::zone) names another, never the
/// machine's. Zones come from the IANA database bundled with the crate
/// (2026f), so every machine gives the same answer.
#[derive(Debug, Clone)]
pub struct Cron {
    expression: String,
    parsed: Arc<Parsed>,
    tz: TimeZone,
    zone: String,
    gap: GapPolicy,
    fold: FoldPolicy,
}

impl Cron {
    /// Parses `expression`, in UTC, with the default DST policy.
    pub fn parse(expression: &str) -> Result<Cron, CronError> {
        Ok(Cron {
            expression: expression.trim().to_string(),
            parsed: parse(expression)?,
            tz: TimeZone::UTC,
            zone: String::from("UTC"),
            gap: GapPolicy::default(),
            fold: FoldPolicy::default(),
        })
    }

    /// Reads the expression in the IANA zone `name` (`"Europe/Berlin"`,
    /// `"America/New_York"`, `"UTC"`; matched without regard to case).
    /// [`CronError::UnknownZone`] if the database has no such zone.
    pub fn zone(mut self, name: &str) -> Result<Cron, CronError> {
        let tz = TimeZoneDatabase::bundled()
            .get(name)
            .map_err(|_| CronError::UnknownZone { zone: name.to_string() })?;
        self.zone = tz.iana_name().unwrap_or(name).to_string();
        self.tz = tz;
        Ok(self)
    }

    /// Sets what a run whose time the clocks skip does;
    /// [`GapPolicy::Shift`] by default.
    pub fn gap(mut self, gap: GapPolicy) -> Cron {
        self.gap = gap;
        self
    }

    /// Sets what a run whose time the clocks repeat does;
    /// [`FoldPolicy::First`] by default.
    pub fn fold(mut self, fold: FoldPolicy) -> Cron {
        self.fold = fold;
        self
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone's IANA name, as the database spells it.
    pub fn zone_name(&self) -> &str {
        &self.zone
    }

    /// The gap policy.
    pub fn gap_policy(&self) -> GapPolicy {
        self.gap
    }

    /// The fold policy.
    pub fn fold_policy(&self) -> FoldPolicy {
        self.fold
    }

    /// The first run strictly after `t`; `None` if there is none up to the
    /// end of the year 2600 (the horizon: past a manager's clock, which
    /// ends in 2554), or `t` is outside the years -9999 to 9999.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        let t = Timestamp::try_from(t).ok()?;
        let rules = Rules {
            pattern: &self.parsed.pattern,
            every_hour: self.parsed.every_hour,
            tz: &self.tz,
            gap: self.gap,
            fold: self.fold,
        };
        rules.next_after(t).map(SystemTime::from)
    }

    /// The runs after `t`, in order: [`next_after`](Cron::next_after)
    /// again and again.
    pub fn upcoming(&self, t: SystemTime) -> Upcoming<'_> {
        Upcoming { cron: self, after: Some(t) }
    }
}

/// Two rules are equal when they have the same expression (as given,
/// trimmed), zone and policies.
impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        (&self.expression, &self.zone, self.gap, self.fold)
            == (&other.expression, &other.zone, other.gap, other.fold)
    }
}

impl Eq for Cron {}

/// The runs of a [`Cron`] after a time, in order; from [`Cron::upcoming`].
#[derive(Debug, Clone)]
pub struct Upcoming<'a> {
    cron: &'a Cron,
    after: Option<SystemTime>,
}

impl Iterator for Upcoming<'_> {
    type Item = SystemTime;

    fn next(&mut self) -> Option<SystemTime> {
        self.after = self.cron.next_after(self.after?);
        self.after
    }
}

impl FusedIterator for Upcoming<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `2025-03-30` plus `HH:MM` UTC as a `SystemTime`.
    fn utc(day: &str, hh_mm: &str) -> SystemTime {
        let ts: Timestamp = format!("{day}T{hh_mm}:00Z").parse().unwrap();
        SystemTime::from(ts)
    }

    /// Every row of the worked example in `Cron`'s docs, read from this
    /// file's source: the runs from 00:00Z to 02:59Z under the row's
    /// policies.
    #[test]
    fn the_dst_docs_table_is_right() {
        let rows: Vec<Vec<&str>> = include_str!("cron.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("/// | `"))
            .map(|row| row.split('|').map(|cell| cell.trim().trim_matches('`')).collect())
            .collect();
        assert_eq!(rows.len(), 11, "{rows:?}");
        let gaps = [GapPolicy::Shift, GapPolicy::Skip];
        let folds = [FoldPolicy::First, FoldPolicy::Second, FoldPolicy::Both];
        for row in rows {
            let (expression, day, policy, runs) = (row[0], row[1], row[2], row[3]);
            let policies: Vec<(GapPolicy, FoldPolicy)> = match policy {
                "Shift" => vec![(GapPolicy::Shift, FoldPolicy::default())],
                "Skip" => vec![(GapPolicy::Skip, FoldPolicy::default())],
                "First" => vec![(GapPolicy::default(), FoldPolicy::First)],
                "Second" => vec![(GapPolicy::default(), FoldPolicy::Second)],
                "Both" => vec![(GapPolicy::default(), FoldPolicy::Both)],
                "any" => gaps.iter().flat_map(|&g| folds.iter().map(move |&f| (g, f))).collect(),
                other => panic!("unknown policy {other}"),
            };
            // The `HH:MMZ` times of the cell, in order.
            let expected: Vec<SystemTime> = runs
                .split([' ', ',', '('])
                .filter_map(|word| word.strip_suffix('Z'))
                .map(|hh_mm| utc(day, hh_mm))
                .collect();
            assert_eq!(expected.is_empty(), runs == "none", "{row:?}");
            for (gap, fold) in policies {
                let cron =
                    Cron::parse(expression).unwrap().zone("Europe/Berlin").unwrap().gap(gap).fold(fold);
                let start = utc(day, "00:00") - Duration::from_nanos(1);
                let end = utc(day, "03:00");
                let got: Vec<SystemTime> = cron.upcoming(start).take_while(|&t| t < end).collect();
                assert_eq!(got, expected, "{expression} on {day} with {gap:?}, {fold:?}");
            }
        }
    }

    #[test]
    fn an_unknown_zone_is_named() {
        let err = Cron::parse("@daily").unwrap().zone("Europe/Atlantis").unwrap_err();
        assert_eq!(err, CronError::UnknownZone { zone: "Europe/Atlantis".into() });
        assert!(err.to_string().contains("'Europe/Atlantis'"), "{err}");
        let cron = Cron::parse("@daily").unwrap().zone("europe/berlin").unwrap();
        assert_eq!(cron.zone_name(), "Europe/Berlin");
    }

    #[test]
    fn old_names_are_links_to_the_same_zone() {
        let eastern = Cron::parse("0 12 * * *").unwrap().zone("US/Eastern").unwrap();
        let new_york = Cron::parse("0 12 * * *").unwrap().zone("America/New_York").unwrap();
        let july = utc("2025-07-01", "00:00");
        assert_eq!(eastern.next_after(july), new_york.next_after(july));
        assert_eq!(eastern.next_after(july), Some(utc("2025-07-01", "16:00")));
    }

    #[test]
    fn the_search_ends_at_the_parsers_horizon_without_a_panic() {
        let new_year = Cron::parse("0 0 1 1 *").unwrap();
        assert_eq!(new_year.next_after(utc("2599-06-01", "00:00")), Some(utc("2600-01-01", "00:00")));
        assert_eq!(new_year.next_after(utc("2600-06-01", "00:00")), None);
        assert_eq!(new_year.upcoming(utc("2598-06-01", "00:00")).count(), 2);
        assert_eq!(new_year.next_after(utc("4999-06-01", "00:00")), None, "past the horizon");
        // Before 1970 too.
        assert_eq!(new_year.next_after(utc("1901-06-01", "00:00")), Some(utc("1902-01-01", "00:00")));
        // Past what jiff represents (year 9999): none, no panic.
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400 * 1_000_000_000);
        assert_eq!(new_year.next_after(far), None);
    }

    #[test]
    fn the_default_zone_is_utc() {
        let cron = Cron::parse("0 12 * * *").unwrap();
        assert_eq!(cron.zone_name(), "UTC");
        assert_eq!(cron.next_after(utc("2025-03-30", "00:00")), Some(utc("2025-03-30", "12:00")));
    }

    #[test]
    fn a_cron_can_go_to_another_thread() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<Cron>();
    }
}
