//! Calendar schedules, the expression: every field feature, macros, leap
//! days, errors that name the field, expressions that never run. In UTC
//! (the zones are tests/calendar_dst.rs's). 2025-01-01 is a Wednesday.

#[path = "support/calendar.rs"]
mod calendar;

use std::time::{Duration, SystemTime};

use calendar::{all, at, cron, first};
use taskmanager::{Cron, CronError, CronField, GapPolicy};

/// The first runs of `expression` (UTC) after `from`, as dates and times.
fn check(expression: &str, from: &str, expected: &[&str]) {
    let with_z: Vec<String> = expected.iter().map(|t| format!("{t}Z")).collect();
    let expected: Vec<&str> = with_z.iter().map(String::as_str).collect();
    assert_eq!(
        first(&cron(expression, "UTC"), &format!("{from}Z"), expected.len()),
        all(&expected),
        "{expression}"
    );
}

#[test]
fn values_ranges_steps_and_lists() {
    let start = "2025-01-01T00:00:00";
    check("*/15 * * * *", start, &["2025-01-01T00:15:00", "2025-01-01T00:30:00", "2025-01-01T00:45:00"]);
    check(
        "5,10-12,50-59/4 * * * *",
        start,
        &[
            "2025-01-01T00:05:00",
            "2025-01-01T00:10:00",
            "2025-01-01T00:11:00",
            "2025-01-01T00:12:00",
            "2025-01-01T00:50:00",
            "2025-01-01T00:54:00",
            "2025-01-01T00:58:00",
            "2025-01-01T01:05:00",
        ],
    );
    check(
        "0 9-17/4 * * *",
        start,
        &["2025-01-01T09:00:00", "2025-01-01T13:00:00", "2025-01-01T17:00:00", "2025-01-02T09:00:00"],
    );
    check("0 0 1 */5 *", start, &["2025-06-01T00:00:00", "2025-11-01T00:00:00", "2026-01-01T00:00:00"]);
}

#[test]
fn an_optional_seconds_field_comes_first() {
    let start = "2025-01-01T00:00:00";
    check("*/20 * * * * *", start, &["2025-01-01T00:00:20", "2025-01-01T00:00:40", "2025-01-01T00:01:00"]);
    check("30 0 12 * * *", start, &["2025-01-01T12:00:30", "2025-01-02T12:00:30"]);
}

#[test]
fn names_of_months_and_days_in_either_case() {
    check("0 0 1 jan,Jul *", "2025-01-01T00:00:00", &["2025-07-01T00:00:00", "2026-01-01T00:00:00"]);
    let weekdays =
        ["2025-01-06T00:00:00", "2025-01-07T00:00:00", "2025-01-08T00:00:00", "2025-01-09T00:00:00"];
    check("0 0 * * MON-FRI", "2025-01-03T00:00:00", &weekdays);
    check("0 0 * * 1-5", "2025-01-03T00:00:00", &weekdays);
    // FRI-SUN wraps to 5-7; 0, 7 and SUN are all Sunday.
    check(
        "0 0 * * FRI-SUN",
        "2025-01-01T00:00:00",
        &["2025-01-03T00:00:00", "2025-01-04T00:00:00", "2025-01-05T00:00:00", "2025-01-10T00:00:00"],
    );
    for sunday in ["0", "7", "SUN", "sun"] {
        check(
            &format!("0 0 * * {sunday}"),
            "2025-01-01T00:00:00",
            &["2025-01-05T00:00:00", "2025-01-12T00:00:00"],
        );
    }
}

#[test]
fn last_day_nearest_weekday_and_last_weekday() {
    check(
        "0 0 L * *",
        "2024-01-31T00:00:00",
        &["2024-02-29T00:00:00", "2024-03-31T00:00:00", "2024-04-30T00:00:00"],
    );
    // 15W: the 15th, or the nearest weekday in the month (2025-02-15 and
    // 03-15 are Saturdays, 06-15 a Sunday).
    check(
        "0 0 15W * *",
        "2025-01-01T00:00:00",
        &[
            "2025-01-15T00:00:00",
            "2025-02-14T00:00:00",
            "2025-03-14T00:00:00",
            "2025-04-15T00:00:00",
            "2025-05-15T00:00:00",
            "2025-06-16T00:00:00",
        ],
    );
    // 1W never leaves the month: 2025-02-01 and 03-01 are Saturdays.
    check(
        "0 0 1W * *",
        "2025-01-15T00:00:00",
        &["2025-02-03T00:00:00", "2025-03-03T00:00:00", "2025-04-01T00:00:00"],
    );
    // nW runs only in months that have day n (as Quartz; croniter would
    // take the last weekday of a shorter month): 31W skips February, April
    // and June; 2025-05-31 is a Saturday, 08-31 a Sunday.
    check(
        "0 0 31W * *",
        "2025-01-15T00:00:00",
        &[
            "2025-01-31T00:00:00",
            "2025-03-31T00:00:00",
            "2025-05-30T00:00:00",
            "2025-07-31T00:00:00",
            "2025-08-29T00:00:00",
        ],
    );
    // LW: 2025-05-31 is a Saturday, 08-31 a Sunday.
    check(
        "0 0 LW * *",
        "2025-05-01T00:00:00",
        &["2025-05-30T00:00:00", "2025-06-30T00:00:00", "2025-07-31T00:00:00", "2025-08-29T00:00:00"],
    );
}

#[test]
fn nth_and_last_weekday_of_the_month() {
    check(
        "0 0 * * 5#3",
        "2025-01-01T00:00:00",
        &["2025-01-17T00:00:00", "2025-02-21T00:00:00", "2025-03-21T00:00:00"],
    );
    check("0 0 * * MON#1", "2025-01-01T00:00:00", &["2025-01-06T00:00:00", "2025-02-03T00:00:00"]);
    // A fifth Friday only some months have.
    check(
        "0 0 * * 5#5",
        "2025-01-01T00:00:00",
        &["2025-01-31T00:00:00", "2025-05-30T00:00:00", "2025-08-29T00:00:00", "2025-10-31T00:00:00"],
    );
    let last_fridays = ["2025-01-31T00:00:00", "2025-02-28T00:00:00", "2025-03-28T00:00:00"];
    for last_friday in ["5L", "5#L", "FRIL", "fri#L"] {
        check(&format!("0 0 * * {last_friday}"), "2025-01-01T00:00:00", &last_fridays);
    }
}

#[test]
fn day_of_month_or_day_of_week_and_plus_for_both() {
    // Both restricted: either (the 13th, and every Friday).
    check(
        "0 0 13 * FRI",
        "2025-01-01T00:00:00",
        &["2025-01-03T00:00:00", "2025-01-10T00:00:00", "2025-01-13T00:00:00", "2025-01-17T00:00:00"],
    );
    // `+`: both (Friday the 13th).
    check(
        "0 0 13 * +FRI",
        "2025-01-01T00:00:00",
        &["2025-06-13T00:00:00", "2026-02-13T00:00:00", "2026-03-13T00:00:00"],
    );
    // `?` is `*`.
    check("0 0 ? * MON", "2025-01-01T00:00:00", &["2025-01-06T00:00:00", "2025-01-13T00:00:00"]);
}

#[test]
fn macros() {
    let start = "2025-06-01T10:30:00";
    check("@yearly", start, &["2026-01-01T00:00:00"]);
    check("@annually", start, &["2026-01-01T00:00:00"]);
    check("@monthly", start, &["2025-07-01T00:00:00"]);
    check("@weekly", start, &["2025-06-08T00:00:00"]); // a Sunday
    check("@daily", start, &["2025-06-02T00:00:00"]);
    check("@MIDNIGHT", start, &["2025-06-02T00:00:00"]);
    check("@hourly", start, &["2025-06-01T11:00:00"]);
}

#[test]
fn leap_days_follow_the_gregorian_calendar() {
    check("0 0 29 2 *", "2025-01-01T00:00:00", &["2028-02-29T00:00:00", "2032-02-29T00:00:00"]);
    // 2100 is no leap year: eight years between two leap days.
    check("0 0 29 2 *", "2097-01-01T00:00:00", &["2104-02-29T00:00:00"]);
    check("0 0 L 2 *", "2099-03-01T00:00:00", &["2100-02-28T00:00:00", "2101-02-28T00:00:00"]);
    // February 29th on a Thursday: 2024, then 2052.
    check("0 12 29 2 +THU", "2024-03-01T00:00:00", &["2052-02-29T12:00:00"]);
}

#[test]
fn the_next_run_is_strictly_after_the_time_given() {
    let noon = cron("0 12 * * *", "UTC");
    let at_noon = SystemTime::from(at("2025-01-01T12:00:00Z"));
    assert_eq!(noon.next_after(at_noon), Some(SystemTime::from(at("2025-01-02T12:00:00Z"))));
    assert_eq!(noon.next_after(at_noon - Duration::from_nanos(1)), Some(at_noon));
    // A fraction of a second past a match: the next whole second.
    let every_second = cron("* * * * * *", "UTC");
    let half_past = at_noon + Duration::from_millis(500);
    assert_eq!(every_second.next_after(half_past), Some(at_noon + Duration::from_secs(1)));
}

#[test]
fn errors_name_the_field_and_why() {
    for (expression, field, message) in [
        ("60 * * * *", CronField::Minute, "minute field '60': number out of bounds (accepts 0-59)"),
        ("0 24 * * *", CronField::Hour, "hour field '24': number out of bounds (accepts 0-23)"),
        ("0 0 32 * *", CronField::DayOfMonth, "day of month field '32': number out of bounds"),
        ("0 0 * DEC-FOO *", CronField::Month, "month field 'DEC-FOO': 'FOO' is not a name"),
        ("0 0 * * 1#6", CronField::DayOfWeek, "day of week field '1#6': "),
        ("0 0 * JAN MON#0", CronField::DayOfWeek, "day of week field 'MON#0': "),
        ("*/0 * * * * *", CronField::Second, "second field '*/0': step cannot be zero"),
        ("0 0/5 * * *", CronField::Hour, "hour field '0/5': "),
    ] {
        let err = Cron::parse(expression).unwrap_err();
        assert!(matches!(&err, CronError::Field { field: f, .. } if *f == field), "{expression}: {err:?}");
        assert!(err.to_string().starts_with(message), "{expression}: {err}");
    }
    assert_eq!(Cron::parse("0 0 * *").unwrap_err(), CronError::FieldCount { found: 4 });
    assert!(matches!(Cron::parse("@fortnightly"), Err(CronError::UnknownMacro { .. })));
}

#[test]
fn an_expression_no_date_matches_is_refused() {
    for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *"] {
        let err = Cron::parse(expression).unwrap_err();
        assert_eq!(err, CronError::NeverFires { expression: expression.to_string() });
        assert!(err.to_string().contains("never run"), "{err}");
    }
}

#[test]
fn a_policy_that_skips_every_match_ends_the_search_instead_of_looping() {
    // 02:30 on the last Sunday of March is always in Berlin's gap: with
    // Skip it never runs, and the walk gives up at croner's horizon.
    let never = cron("30 2 * 3 0L", "Europe/Berlin").gap(GapPolicy::Skip);
    assert_eq!(never.next_after(SystemTime::from(at("2025-01-01T00:00:00Z"))), None);
    // Germany had no summer time from 1950 to 1979, and began it on April
    // 6th in 1980: those years' last Sundays of March had a 02:30.
    let runs: Vec<_> = never.upcoming(SystemTime::UNIX_EPOCH).collect();
    assert_eq!(runs.len(), 11);
    assert_eq!(runs[10], SystemTime::from(at("1980-03-30T02:30:00+01:00")));
    // With Shift it runs at 03:00 CEST each year.
    let shifted = cron("30 2 * 3 0L", "Europe/Berlin");
    assert_eq!(
        first(&shifted, "2025-01-01T00:00:00Z", 2),
        all(&["2025-03-30T03:00:00+02:00", "2026-03-29T03:00:00+02:00"])
    );
}
