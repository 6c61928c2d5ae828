//! Where the wall-clock times an expression matches land on a zone's time
//! line.
//!
//! croner finds civil (wall-clock) matches; the zone maps civil times to
//! instants one to one, except at its transitions. So the walk goes through
//! the zone's *spans* (stretches of one UTC offset, between transitions) in
//! time order. Inside a span, civil time and instants run in step, so its
//! matches come in instant order. Between two spans is either a gap (civil
//! times no instant has: the policy may shift them to the transition) or a
//! fold (civil times both spans have: the end of the earlier span is the
//! first pass, the start of the later span the second).

use std::ops::ControlFlow;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::policy::{FoldPolicy, GapPolicy, Pass};

/// What the walk needs of a schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    pub(crate) pattern: &'a croner::Cron,
    /// The hour field is every hour: runs by real time at transitions.
    pub(crate) every_hour: bool,
    pub(crate) tz: &'a TimeZone,
    pub(crate) gap: GapPolicy,
    pub(crate) fold: FoldPolicy,
}

impl Rules<'_> {
    /// The first run strictly after `t`, or `None` if there is none within
    /// the horizon (year 2600, `parse::LAST_YEAR`).
    pub(crate) fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let matches = &mut Matches { pattern: self.pattern, known: None };
        let mut span = Span::at(self.tz, t);
        // In t's own span: the matches after t's wall-clock time. (croner
        // drops t's fraction of a second: matches are whole seconds, so the
        // first one after the truncated time is the first after t.)
        let mut from = span.civil(t);
        let mut inclusive = false;
        loop {
            if let ControlFlow::Break(found) = self.in_span(matches, &span, from, inclusive) {
                return found;
            }
            span = span.next(self.tz)?;
            if self.shifts_gap_before(matches, &span) {
                return span.start.map(|(at, _)| at);
            }
            from = span.civil_start()?;
            inclusive = true;
        }
    }

    /// The first run in `span` at or after (`inclusive`) wall-clock time
    /// `from`: `Break(Some)`; `Continue` if none is in this span;
    /// `Break(None)` if croner finds no later match at all.
    fn in_span(
        &self,
        matches: &mut Matches,
        span: &Span,
        mut from: DateTime,
        mut inclusive: bool,
    ) -> ControlFlow<Option<Timestamp>> {
        loop {
            let Some(civil) = matches.next(from, inclusive) else {
                return ControlFlow::Break(None);
            };
            if span.civil_end().is_some_and(|end| civil >= end) {
                return ControlFlow::Continue(());
            }
            let pass = span.pass(civil);
            if self.every_hour || self.fold.runs(pass) {
                return ControlFlow::Break(span.instant(civil));
            }
            match (pass, span.start) {
                // The policy skips the second pass: go on from its end.
                (Pass::Second, Some((at, before))) => {
                    from = before.to_datetime(at);
                    inclusive = true;
                }
                // The first pass runs to the end of the span.
                _ => return ControlFlow::Continue(()),
            }
        }
    }

    /// Whether the policy runs the matches that fell into the gap just
    /// before `span` at the instant the span starts.
    fn shifts_gap_before(&self, matches: &mut Matches, span: &Span) -> bool {
        if self.every_hour || self.gap != GapPolicy::Shift {
            return false;
        }
        let Some((missing_from, missing_to)) = span.gap_before() else {
            return false;
        };
        matches.next(missing_from, true).is_some_and(|civil| civil < missing_to)
    }
}

/// croner's civil matches, remembering the last answer: the walk asks again
/// from each span's start, and a rare expression (February 29th on a
/// Thursday) would otherwise be searched for once per span until it comes.
struct Matches<'a> {
    pattern: &'a croner::Cron,
    /// `(lo, found)`: no match in `[lo, found)`, and `found` is one.
    known: Option<(DateTime, DateTime)>,
}

impl Matches<'_> {
    /// The first match at (`inclusive`) or after `from`.
    fn next(&mut self, from: DateTime, inclusive: bool) -> Option<DateTime> {
        // Matches are whole seconds: "after `from`" is "at or after
        // `from` + 1 ns", even when croner drops `from`'s fraction.
        let lo = if inclusive { from } else { from.checked_add(SignedDuration::from_nanos(1)).ok()? };
        if let Some((known_lo, found)) = self.known {
            if known_lo <= lo && lo <= found {
                return Some(found);
            }
        }
        let found = self.pattern.find_next_occurrence(&from, inclusive).ok()?;
        self.known = Some((lo, found));
        Some(found)
    }
}

/// A stretch of time with one UTC offset.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The transition it starts at, with the offset before it; `None`
    /// before the zone's first transition.
    start: Option<(Timestamp, Offset)>,
    offset: Offset,
    /// The transition it ends at, with the offset after it; `None` after
    /// the zone's last (never, for a zone with a DST rule).
    end: Option<(Timestamp, Offset)>,
}

impl Span {
    /// The span that holds `t`.
    fn at(tz: &TimeZone, t: Timestamp) -> Span {
        // `preceding` yields transitions strictly before its argument; one
        // exactly at `t` starts `t`'s span.
        let just_after = t.checked_add(SignedDuration::from_nanos(1)).unwrap_or(t);
        let start = tz.preceding(just_after).next().map(|transition| {
            let at = transition.timestamp();
            let just_before = at.checked_sub(SignedDuration::from_nanos(1)).unwrap_or(at);
            (at, tz.to_offset(just_before))
        });
        Span { start, offset: tz.to_offset(t), end: following(tz, t) }
    }

    /// The span after this one.
    fn next(&self, tz: &TimeZone) -> Option<Span> {
        let (at, offset) = self.end?;
        Some(Span { start: Some((at, self.offset)), offset, end: following(tz, at) })
    }

    fn civil(&self, t: Timestamp) -> DateTime {
        self.offset.to_datetime(t)
    }

    fn instant(&self, civil: DateTime) -> Option<Timestamp> {
        self.offset.to_timestamp(civil).ok()
    }

    fn civil_start(&self) -> Option<DateTime> {
        self.start.map(|(at, _)| self.civil(at))
    }

    /// The wall-clock time the span ends at (exclusive).
    fn civil_end(&self) -> Option<DateTime> {
        self.end.map(|(at, _)| self.civil(at))
    }

    /// The wall-clock times skipped just before the span, if the clocks
    /// sprang forward at its start: `[from, to)`.
    fn gap_before(&self) -> Option<(DateTime, DateTime)> {
        let (at, before) = self.start?;
        (before < self.offset).then(|| (before.to_datetime(at), self.civil(at)))
    }

    /// Which pass a wall-clock time of this span is on: the second if the
    /// span began by falling back over it, the first if it ends so.
    fn pass(&self, civil: DateTime) -> Pass {
        if let Some((at, before)) = self.start {
            if before > self.offset && civil < before.to_datetime(at) {
                return Pass::Second;
            }
        }
        if let Some((at, after)) = self.end {
            if after < self.offset && civil >= after.to_datetime(at) {
                return Pass::First;
            }
        }
        Pass::Only
    }
}

/// The first transition after `t`, with the offset it brings.
fn following(tz: &TimeZone, t: Timestamp) -> Option<(Timestamp, Offset)> {
    tz.following(t).next().map(|transition| (transition.timestamp(), transition.offset()))
}
