//! A calendar schedule in Redis, as pure values: its definition as the
//! fields of its hash `P:rec:<key>` ([`Def`]), its state as read
//! ([`State`]), and what the firing process commits for it ([`decide`]):
//! no clock and no Redis here, so every case is a unit test with plain
//! numbers. Times are ms since the Unix epoch by Redis's clock; the
//! decisions themselves are `misfire.rs`'s, over [`CronTicks`].
//!
//! Lua cannot compute cron times, so the process that fires computes the
//! next due in Rust, from the *stored* due and Redis's `TIME` (never its
//! own clock), and commits it with a compare-and-set (`calendar.rs`).

use std::collections::HashMap;
use std::time::Duration;

use super::pace::millis as ms;
use crate::calendar::{Cron, FoldPolicy, GapPolicy};
use crate::misfire::{after_run, at_start, CronTicks, Misfire, Ticks};
use crate::recurrence::Recurrence;

const NS: u64 = 1_000_000;

/// A calendar schedule's definition: everything any process needs to
/// compute its next due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Def {
    pub(super) cron: Cron,
    pub(super) misfire: Misfire,
    pub(super) grace: Option<Duration>,
    pub(super) jitter: Duration,
}

impl Def {
    /// A calendar `recurrence`'s definition; None for an interval.
    pub(super) fn of(recurrence: &Recurrence) -> Option<Def> {
        Some(Def {
            cron: recurrence.calendar()?.clone(),
            misfire: recurrence.misfire_policy(),
            grace: recurrence.grace_time(),
            jitter: recurrence.jitter_bound(),
        })
    }

    /// The hash fields that hold it, in order (`RECUR_CALENDAR` compares
    /// and stores them); the first four decide the ticks.
    pub(super) fn fields(&self) -> [(&'static str, String); 8] {
        let gap = match self.cron.gap_policy() {
            GapPolicy::Shift => "shift",
            GapPolicy::Skip => "skip",
        };
        let fold = match self.cron.fold_policy() {
            FoldPolicy::First => "first",
            FoldPolicy::Second => "second",
            FoldPolicy::Both => "both",
        };
        let misfire = match self.misfire {
            Misfire::Skip => "skip".to_owned(),
            Misfire::Coalesce => "coalesce".to_owned(),
            Misfire::CatchUp { max } => format!("catch_up:{max}"),
        };
        [
            ("cron", self.cron.expression().to_owned()),
            ("zone", self.cron.zone_name().to_owned()),
            ("gap", gap.to_owned()),
            ("fold", fold.to_owned()),
            ("misfire", misfire),
            ("grace", self.grace.map(|g| ms(g).to_string()).unwrap_or_default()),
            ("jitter", ms(self.jitter).to_string()),
            ("kind", "calendar".to_owned()),
        ]
    }

    /// The definition a hash holds; an error saying which field is wrong
    /// (a hash of a newer version's grammar, or edited by hand).
    pub(super) fn read(f: &HashMap<String, String>) -> Result<Def, String> {
        let get = |name: &str| f.get(name).map(String::as_str).unwrap_or("");
        let cron = Cron::parse(get("cron")).map_err(|e| format!("cron: {e}"))?;
        let cron = cron.zone(get("zone")).map_err(|e| format!("zone: {e}"))?;
        let cron = cron.gap(match get("gap") {
            "skip" => GapPolicy::Skip,
            "shift" => GapPolicy::Shift,
            other => return Err(format!("gap: {other:?}")),
        });
        let cron = cron.fold(match get("fold") {
            "first" => FoldPolicy::First,
            "second" => FoldPolicy::Second,
            "both" => FoldPolicy::Both,
            other => return Err(format!("fold: {other:?}")),
        });
        let misfire = match get("misfire") {
            "skip" => Misfire::Skip,
            "coalesce" => Misfire::Coalesce,
            other => match other.strip_prefix("catch_up:").and_then(|n| n.parse().ok()) {
                Some(max) if max > 0 => Misfire::CatchUp { max },
                _ => return Err(format!("misfire: {other:?}")),
            },
        };
        let millis = |name: &str| get(name).parse::<u64>().map(Duration::from_millis);
        let grace = if get("grace").is_empty() { None } else { Some(millis("grace").map_err(|_| "grace")?) };
        let jitter = millis("jitter").map_err(|_| "jitter")?;
        Ok(Def { cron, misfire, grace, jitter })
    }

    /// The first tick after `now`, or `now` itself with `run_now` (a tick
    /// of its own, as in-process); None if the rule has no time left.
    pub(super) fn first(&self, now: u64, run_now: bool) -> Option<u64> {
        if run_now {
            return Some(now);
        }
        self.after(now)
    }

    fn after(&self, t: u64) -> Option<u64> {
        CronTicks(&self.cron).after(t.checked_mul(NS)?).map(|n| n / NS)
    }

    /// The jitter's bound in ms.
    pub(super) fn jitter_ms(&self) -> u64 {
        ms(self.jitter)
    }
}

/// A schedule's state as the firing process read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct State {
    /// The pending tick.
    pub(super) due: u64,
    /// The jitter drawn for it: it fires at `due + jittered`.
    pub(super) jittered: u64,
    /// Whether a tick is in flight (its run not yet acknowledged).
    pub(super) running: bool,
    /// Whether it is paused.
    pub(super) paused: bool,
}

/// What the firing process commits for a due schedule (if its state is
/// still what it read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Commit {
    /// The new pending tick; None: no tick is left (it leaves `P:cal`).
    pub(super) due: Option<u64>,
    /// When to look at it again (its score in `P:cal`): the due plus its
    /// jitter; or, while a run keeps its ticks waiting, the next tick
    /// after now (the run's ack brings it forward).
    pub(super) score: u64,
    /// The jitter drawn for the new due.
    pub(super) jittered: u64,
    /// The tick to run now (its id is `<key>@<tick>`).
    pub(super) run: Option<u64>,
    /// Ticks that will never run (missed, or passed during a run with
    /// [`Misfire::Skip`]).
    pub(super) skipped: u64,
    /// Ticks folded into this run.
    pub(super) coalesced: u64,
}

/// What a due schedule (`state.due + state.jittered <= now`) does at
/// `now`, by Redis's clock; `draw(bound)` draws a jitter in `0..=bound`.
///
/// - Paused: its ticks pass without running, counted skipped (as
///   in-process, and as an interval schedule's); it waits for the first
///   tick after now.
/// - A run in flight (runs never overlap): with [`Misfire::Skip`] the
///   ticks passed are skipped and it waits for the next one, as an overrun
///   does in-process; with the other policies the ticks wait, and the
///   run's ack makes the schedule due again (then the policy decides, as
///   at a run's end in-process).
/// - Else [`at_start`] picks the tick to run (or none) and counts what
///   it missed or folded; [`after_run`] gives the next due.
///
/// Lateness is counted from the jittered time, as in-process.
pub(super) fn decide(def: &Def, state: &State, now: u64, draw: &mut dyn FnMut(u64) -> u64) -> Commit {
    let ticks = CronTicks(&def.cron);
    let at = now.saturating_sub(state.jittered).max(state.due);
    let (due, at_ns) = (state.due.saturating_mul(NS), at.saturating_mul(NS));
    let waiting = |next: Option<u64>,
                   run: Option<u64>,
                   skipped: u64,
                   coalesced: u64,
                   draw: &mut dyn FnMut(u64) -> u64| {
        let next = next.map(|n| n / NS);
        let jittered = next.map_or(0, |_| draw(def.jitter_ms()));
        let mut score = next.map_or(u64::MAX, |n| n.saturating_add(jittered));
        if run.is_some() && score <= now {
            // Due at once, but its previous tick runs now: look again at
            // the next tick, or sooner when that run's ack says it ended.
            score = def.after(now).unwrap_or(u64::MAX);
        }
        Commit { due: next, score, jittered, run, skipped, coalesced }
    };
    if state.paused {
        // Every tick passed is skipped, as in-process.
        let (passed, _) = ticks.span(due, at_ns, 0);
        return waiting(ticks.after(at_ns), None, passed, 0, draw);
    }
    if state.running {
        if def.misfire != Misfire::Skip {
            let score = def.after(now).unwrap_or(u64::MAX);
            return Commit {
                score,
                jittered: state.jittered,
                due: Some(state.due),
                run: None,
                skipped: 0,
                coalesced: 0,
            };
        }
        // The ticks from the pending one up to now pass during the run.
        let (covered, latest) = ticks.span(due, at_ns, 1);
        let next = ticks.after(latest.last().copied().unwrap_or(due));
        return waiting(next, None, covered, 0, draw);
    }
    let start = at_start(&ticks, def.misfire, def.grace, due, at_ns);
    match start.run {
        None => waiting(start.next, None, start.missed, 0, draw),
        Some(tick) => {
            let (next, skipped) =
                after_run(&ticks, def.misfire, tick, at_ns).map_or((None, 0), |(n, s)| (Some(n), s));
            waiting(next, Some(tick / NS), start.missed + skipped, start.coalesced, draw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;
    /// 2026-01-05 00:00:00 UTC, a Monday, in ms.
    const T0: u64 = 1_767_571_200_000;

    fn every_second(misfire: Misfire, grace: Option<Duration>) -> Def {
        Def { cron: Cron::parse("* * * * * *").unwrap(), misfire, grace, jitter: Duration::ZERO }
    }

    fn due(at: u64) -> State {
        State { due: at, ..State::default() }
    }

    fn no_jitter(_: u64) -> u64 {
        0
    }

    #[test]
    fn on_time_runs_its_tick_and_waits_for_the_next() {
        let def = every_second(Misfire::Coalesce, None);
        let c = decide(&def, &due(T0), T0 + 3, &mut no_jitter);
        let want =
            Commit { due: Some(T0 + S), score: T0 + S, jittered: 0, run: Some(T0), skipped: 0, coalesced: 0 };
        assert_eq!(c, want);
    }

    /// Misfire's worked example, on a 10 s calendar rule: the process
    /// that fires comes back at 35 s.
    #[test]
    fn after_a_gap_each_policy_decides_as_in_process() {
        let cron = Cron::parse("*/10 * * * * *").unwrap();
        let def = |misfire, grace| Def { cron: cron.clone(), misfire, grace, jitter: Duration::ZERO };
        let now = T0 + 35 * S;
        let c = decide(&def(Misfire::Skip, None), &due(T0), now, &mut no_jitter);
        assert_eq!((c.run, c.skipped, c.coalesced, c.due), (Some(T0 + 30 * S), 3, 0, Some(T0 + 40 * S)));
        let c = decide(&def(Misfire::Skip, Some(Duration::from_secs(2))), &due(T0), now, &mut no_jitter);
        assert_eq!((c.run, c.skipped, c.due, c.score), (None, 4, Some(T0 + 40 * S), T0 + 40 * S));
        let c = decide(&def(Misfire::Coalesce, None), &due(T0), now, &mut no_jitter);
        assert_eq!((c.run, c.skipped, c.coalesced, c.due), (Some(T0 + 30 * S), 0, 3, Some(T0 + 40 * S)));
        // Catching up: 20 s runs now, 30 s once that run's ack comes.
        let c = decide(&def(Misfire::CatchUp { max: 2 }, None), &due(T0), now, &mut no_jitter);
        assert_eq!((c.run, c.skipped, c.due), (Some(T0 + 20 * S), 2, Some(T0 + 30 * S)));
        assert_eq!(c.score, T0 + 40 * S, "its run is in flight: the next tick, or the ack, brings it back");
        let running = State { due: T0 + 30 * S, running: true, ..State::default() };
        let c = decide(&def(Misfire::CatchUp { max: 2 }, None), &running, now, &mut no_jitter);
        assert_eq!((c.run, c.due, c.skipped), (None, Some(T0 + 30 * S), 0), "waits for the ack");
        let c = decide(&def(Misfire::CatchUp { max: 2 }, None), &due(T0 + 30 * S), now + 5, &mut no_jitter);
        assert_eq!((c.run, c.skipped, c.due), (Some(T0 + 30 * S), 0, Some(T0 + 40 * S)));
    }

    #[test]
    fn a_run_in_flight_makes_skip_skip_and_the_others_wait() {
        let running = State { due: T0 + S, running: true, ..State::default() };
        let skip = decide(&every_second(Misfire::Skip, None), &running, T0 + 3 * S + 5, &mut no_jitter);
        assert_eq!((skip.run, skip.skipped, skip.due), (None, 3, Some(T0 + 4 * S)));
        let coalesce =
            decide(&every_second(Misfire::Coalesce, None), &running, T0 + 3 * S + 5, &mut no_jitter);
        assert_eq!((coalesce.run, coalesce.due, coalesce.score), (None, Some(T0 + S), T0 + 4 * S));
        // The ack came: the three ticks run once.
        let c = decide(&every_second(Misfire::Coalesce, None), &due(T0 + S), T0 + 3 * S + 9, &mut no_jitter);
        assert_eq!((c.run, c.coalesced), (Some(T0 + 3 * S), 2));
    }

    #[test]
    fn paused_ticks_pass_counted_as_skipped() {
        let paused = State { due: T0, paused: true, ..State::default() };
        let c = decide(&every_second(Misfire::Coalesce, None), &paused, T0 + 2 * S + 1, &mut no_jitter);
        assert_eq!(
            c,
            Commit {
                due: Some(T0 + 3 * S),
                score: T0 + 3 * S,
                jittered: 0,
                run: None,
                skipped: 3,
                coalesced: 0
            }
        );
    }

    #[test]
    fn jitter_delays_the_score_and_lateness_counts_from_it() {
        let mut def = every_second(Misfire::Skip, Some(Duration::from_millis(100)));
        def.jitter = Duration::from_millis(500);
        // Fired 450 ms after its tick, 400 ms of it jitter: 50 ms late.
        let state = State { due: T0, jittered: 400, ..State::default() };
        let c = decide(&def, &state, T0 + 450, &mut |bound| bound / 2);
        assert_eq!((c.run, c.due, c.jittered, c.score), (Some(T0), Some(T0 + S), 250, T0 + S + 250));
    }

    #[test]
    fn the_definition_round_trips_through_the_hash() {
        let cron =
            Cron::parse("0 9 * * MON-FRI").unwrap().zone("Europe/Berlin").unwrap().fold(FoldPolicy::Both);
        let def = Def {
            cron,
            misfire: Misfire::CatchUp { max: 3 },
            grace: Some(Duration::from_secs(300)),
            jitter: Duration::from_secs(30),
        };
        let fields: HashMap<String, String> =
            def.fields().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(Def::read(&fields), Ok(def));
        let mut bad = fields;
        bad.insert("misfire".to_owned(), "catch_up:0".to_owned());
        assert!(Def::read(&bad).unwrap_err().starts_with("misfire"));
    }
}
