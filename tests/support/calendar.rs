//! Helpers for the calendar tests: instants written with their UTC offset,
//! so that an expected time is read without any zone database.
// Each test file uses some of these.
#![allow(dead_code)]

use std::time::SystemTime;

use jiff::Timestamp;
use taskmanager::Cron;

/// The instant of RFC 3339 text with an offset: `2025-03-30T03:00:00+02:00`.
pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// The instants of several such texts.
pub fn all(texts: &[&str]) -> Vec<Timestamp> {
    texts.iter().map(|text| at(text)).collect()
}

/// `expression` in `zone`, default policy.
pub fn cron(expression: &str, zone: &str) -> Cron {
    Cron::parse(expression).unwrap_or_else(|err| panic!("{expression}: {err}")).zone(zone).unwrap()
}

/// The runs of `cron` after `from` and before `until`.
pub fn runs(cron: &Cron, from: &str, until: &str) -> Vec<Timestamp> {
    let until = SystemTime::from(at(until));
    cron.upcoming(SystemTime::from(at(from)))
        .take_while(|&t| t < until)
        .map(|t| Timestamp::try_from(t).unwrap())
        .collect()
}

/// The first `n` runs of `cron` after `from`.
pub fn first(cron: &Cron, from: &str, n: usize) -> Vec<Timestamp> {
    cron.upcoming(SystemTime::from(at(from))).take(n).map(|t| Timestamp::try_from(t).unwrap()).collect()
}
