//! Calendar schedules at DST transitions: each policy at each kind of
//! transition, in zones whose clocks jump by an hour at night (Berlin in
//! Cron's docs, New York here), by half an hour (Lord Howe), at midnight
//! (Santiago, Havana, Nuuk), onto a leap day (Almaty, 2024), or by 45
//! minutes off the hour (Kathmandu). Expected times carry their offset.

#[path = "support/calendar.rs"]
mod calendar;

use std::time::SystemTime;

use calendar::{all, at, cron, first, runs};
use taskmanager::{Cron, FoldPolicy, GapPolicy};

const GAPS: [GapPolicy; 2] = [GapPolicy::Shift, GapPolicy::Skip];
const FOLDS: [FoldPolicy; 3] = [FoldPolicy::First, FoldPolicy::Second, FoldPolicy::Both];

/// Checks the runs between `from` and `until` under each gap policy.
fn gap(expression: &str, zone: &str, (from, until): (&str, &str), shift: &[&str], skip: &[&str]) {
    for (policy, expected) in [(GapPolicy::Shift, shift), (GapPolicy::Skip, skip)] {
        for fold in FOLDS {
            let cron = cron(expression, zone).gap(policy).fold(fold);
            assert_eq!(runs(&cron, from, until), all(expected), "{expression} in {zone}, {policy:?}");
        }
    }
}

/// Checks the runs between `from` and `until` under each fold policy.
fn fold(expression: &str, zone: &str, (from, until): (&str, &str), first: &[&str], second: &[&str]) {
    let both: Vec<&str> = first.iter().chain(second).copied().collect();
    for (policy, expected) in
        [(FoldPolicy::First, first), (FoldPolicy::Second, second), (FoldPolicy::Both, &both)]
    {
        for gap in GAPS {
            let cron = cron(expression, zone).fold(policy).gap(gap);
            assert_eq!(runs(&cron, from, until), all(expected), "{expression} in {zone}, {policy:?}");
        }
    }
}

/// Checks the same runs under every policy.
fn any_policy(expression: &str, zone: &str, (from, until): (&str, &str), expected: &[&str]) {
    gap(expression, zone, (from, until), expected, expected);
}

#[test]
fn new_york_spring_forward() {
    // 2025-03-09: 02:00 EST becomes 03:00 EDT; 02:00-02:59 is skipped.
    let day = ("2025-03-09T00:00:00-05:00", "2025-03-10T12:00:00-04:00");
    gap(
        "30 2 * * *",
        "America/New_York",
        day,
        &["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"],
        &["2025-03-10T02:30:00-04:00"],
    );
    // 03:00 itself is no shifted run: one run, not two.
    any_policy(
        "0 3 * * *",
        "America/New_York",
        day,
        &["2025-03-09T03:00:00-04:00", "2025-03-10T03:00:00-04:00"],
    );
    // Every hour: an hour of real time between runs, whatever the policy.
    let night = ("2025-03-09T00:30:00-05:00", "2025-03-09T04:30:00-04:00");
    any_policy(
        "0 * * * *",
        "America/New_York",
        night,
        &["2025-03-09T01:00:00-05:00", "2025-03-09T03:00:00-04:00", "2025-03-09T04:00:00-04:00"],
    );
}

#[test]
fn new_york_fall_back() {
    // 2025-11-02: 02:00 EDT becomes 01:00 EST; 01:00-01:59 happens twice.
    let day = ("2025-11-02T00:00:00-04:00", "2025-11-02T12:00:00-05:00");
    fold(
        "30 1 * * *",
        "America/New_York",
        day,
        &["2025-11-02T01:30:00-04:00"],
        &["2025-11-02T01:30:00-05:00"],
    );
    // Every half hour of real time: both passes, whatever the policy.
    let night = ("2025-11-02T00:15:00-04:00", "2025-11-02T02:15:00-05:00");
    any_policy(
        "*/30 * * * *",
        "America/New_York",
        night,
        &[
            "2025-11-02T00:30:00-04:00",
            "2025-11-02T01:00:00-04:00",
            "2025-11-02T01:30:00-04:00",
            "2025-11-02T01:00:00-05:00",
            "2025-11-02T01:30:00-05:00",
            "2025-11-02T02:00:00-05:00",
        ],
    );
}

#[test]
fn a_search_from_inside_a_fold_knows_its_pass() {
    let next =
        |policy: FoldPolicy, from: &str| first(&cron("30 1 * * *", "America/New_York").fold(policy), from, 1);
    // From 01:45 of the first pass, the second pass's 01:30 is still ahead.
    let first_pass = "2025-11-02T01:45:00-04:00";
    assert_eq!(next(FoldPolicy::Both, first_pass), all(&["2025-11-02T01:30:00-05:00"]));
    assert_eq!(next(FoldPolicy::Second, first_pass), all(&["2025-11-02T01:30:00-05:00"]));
    assert_eq!(next(FoldPolicy::First, first_pass), all(&["2025-11-03T01:30:00-05:00"]));
    // From 01:45 of the second pass, both are behind.
    for policy in FOLDS {
        assert_eq!(
            next(policy, "2025-11-02T01:45:00-05:00"),
            all(&["2025-11-03T01:30:00-05:00"]),
            "{policy:?}"
        );
    }
    // From 01:15 of the second pass, under Second its 01:30 is next.
    assert_eq!(next(FoldPolicy::Second, "2025-11-02T01:15:00-05:00"), all(&["2025-11-02T01:30:00-05:00"]));
}

#[test]
fn lord_howe_half_hour_spring_forward() {
    // 2025-10-05: 02:00 (+10:30) becomes 02:30 (+11); 02:00-02:29 is skipped.
    let day = ("2025-10-05T00:00:00+10:30", "2025-10-05T12:00:00+11:00");
    gap("15 2 * * *", "Australia/Lord_Howe", day, &["2025-10-05T02:30:00+11:00"], &[]);
    // Two skipped times, one shifted run.
    gap("0,20 2 * * *", "Australia/Lord_Howe", day, &["2025-10-05T02:30:00+11:00"], &[]);
    let night = ("2025-10-05T01:35:00+10:30", "2025-10-05T02:45:00+11:00");
    any_policy(
        "*/10 * * * *",
        "Australia/Lord_Howe",
        night,
        &[
            "2025-10-05T01:40:00+10:30",
            "2025-10-05T01:50:00+10:30",
            "2025-10-05T02:30:00+11:00",
            "2025-10-05T02:40:00+11:00",
        ],
    );
    // On the hour: 02:00 is skipped, not shifted to 02:30 (which would
    // put a run 30 minutes before 03:00's).
    let hours = ("2025-10-05T00:30:00+10:30", "2025-10-05T03:30:00+11:00");
    any_policy(
        "0 * * * *",
        "Australia/Lord_Howe",
        hours,
        &["2025-10-05T01:00:00+10:30", "2025-10-05T03:00:00+11:00"],
    );
}

#[test]
fn lord_howe_half_hour_fall_back() {
    // 2025-04-06: 02:00 (+11) becomes 01:30 (+10:30); 01:30-01:59 twice.
    let day = ("2025-04-06T00:00:00+11:00", "2025-04-06T12:00:00+10:30");
    fold(
        "45 1 * * *",
        "Australia/Lord_Howe",
        day,
        &["2025-04-06T01:45:00+11:00"],
        &["2025-04-06T01:45:00+10:30"],
    );
    // Every quarter hour: every 15 minutes of real time.
    let night = ("2025-04-06T01:10:00+11:00", "2025-04-06T02:20:00+10:30");
    any_policy(
        "*/15 * * * *",
        "Australia/Lord_Howe",
        night,
        &[
            "2025-04-06T01:15:00+11:00",
            "2025-04-06T01:30:00+11:00",
            "2025-04-06T01:45:00+11:00",
            "2025-04-06T01:30:00+10:30",
            "2025-04-06T01:45:00+10:30",
            "2025-04-06T02:00:00+10:30",
            "2025-04-06T02:15:00+10:30",
        ],
    );
    // On the hour: 01:00 and 02:00 are no repeated times; 90 real minutes
    // lie between them.
    any_policy("0 * * * *", "Australia/Lord_Howe", night, &["2025-04-06T02:00:00+10:30"]);
}

#[test]
fn santiago_midnight_transitions() {
    // 2025-09-07: Sunday 00:00 (-04) becomes 01:00 (-03): midnight is
    // skipped. A daily midnight job runs at 01:00 or not at all.
    let spring = ("2025-09-06T12:00:00-04:00", "2025-09-07T12:00:00-03:00");
    gap("0 0 * * *", "America/Santiago", spring, &["2025-09-07T01:00:00-03:00"], &[]);
    gap("30 0 * * SUN", "America/Santiago", spring, &["2025-09-07T01:00:00-03:00"], &[]);
    let night = ("2025-09-06T22:30:00-04:00", "2025-09-07T02:30:00-03:00");
    any_policy(
        "0 * * * *",
        "America/Santiago",
        night,
        &["2025-09-06T23:00:00-04:00", "2025-09-07T01:00:00-03:00", "2025-09-07T02:00:00-03:00"],
    );
    // 2025-04-06: Sunday 00:00 (-03) becomes Saturday 23:00 (-04): the
    // Saturday's last hour happens twice, midnight once.
    let autumn = ("2025-04-05T12:00:00-03:00", "2025-04-06T12:00:00-04:00");
    fold(
        "30 23 * * *",
        "America/Santiago",
        autumn,
        &["2025-04-05T23:30:00-03:00"],
        &["2025-04-05T23:30:00-04:00"],
    );
    fold(
        "30 23 * * SAT",
        "America/Santiago",
        autumn,
        &["2025-04-05T23:30:00-03:00"],
        &["2025-04-05T23:30:00-04:00"],
    );
    any_policy("0 0 * * *", "America/Santiago", autumn, &["2025-04-06T00:00:00-04:00"]);
}

#[test]
fn havana_and_nuuk_midnight_transitions() {
    // Havana 2025-03-09: 00:00 (-05) becomes 01:00 (-04).
    let spring = ("2025-03-08T12:00:00-05:00", "2025-03-09T12:00:00-04:00");
    gap("0 0 * * *", "America/Havana", spring, &["2025-03-09T01:00:00-04:00"], &[]);
    // Havana 2025-11-02: 01:00 (-04) becomes 00:00 (-05): midnight twice.
    let autumn = ("2025-11-01T12:00:00-04:00", "2025-11-02T12:00:00-05:00");
    fold(
        "0 0 * * *",
        "America/Havana",
        autumn,
        &["2025-11-02T00:00:00-04:00"],
        &["2025-11-02T00:00:00-05:00"],
    );
    // Nuuk 2025-03-29: Saturday 23:00 (-02) becomes Sunday 00:00 (-01). A
    // shifted Saturday run lands on Sunday.
    let spring = ("2025-03-29T12:00:00-02:00", "2025-03-30T12:00:00-01:00");
    gap("30 23 * * SAT", "America/Nuuk", spring, &["2025-03-30T00:00:00-01:00"], &[]);
}

#[test]
fn almaty_changed_its_offset_on_a_leap_day() {
    // 2024-03-01 00:00 (+06) became 2024-02-29 23:00 (+05), for good: the
    // last hour of the leap day happened twice.
    let night = ("2024-02-29T12:00:00+06:00", "2024-03-01T12:00:00+05:00");
    fold(
        "30 23 29 2 *",
        "Asia/Almaty",
        night,
        &["2024-02-29T23:30:00+06:00"],
        &["2024-02-29T23:30:00+05:00"],
    );
    any_policy("0 0 1 3 *", "Asia/Almaty", night, &["2024-03-01T00:00:00+05:00"]);
    let leap_days = first(&cron("30 23 29 2 *", "Asia/Almaty"), "2024-03-01T00:00:00+05:00", 1);
    assert_eq!(leap_days, all(&["2028-02-29T23:30:00+05:00"]));
}

#[test]
fn kathmandu_is_45_minutes_off_the_hour() {
    assert_eq!(
        first(&cron("0 0 * * *", "Asia/Kathmandu"), "2024-12-31T18:00:00Z", 2),
        all(&["2024-12-31T18:15:00Z", "2025-01-01T18:15:00Z"])
    );
}

#[test]
fn the_zone_is_never_the_machines() {
    // Parsed without a zone: UTC, whatever TZ says.
    let noon = Cron::parse("0 12 * * *").unwrap();
    let from = SystemTime::from(at("2025-07-01T00:00:00Z"));
    assert_eq!(noon.next_after(from), Some(SystemTime::from(at("2025-07-01T12:00:00Z"))));
}
