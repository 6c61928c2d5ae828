//! W3C trace context (feature `redis`): the `traceparent` and `tracestate`
//! strings a named task carries through Redis from its submitter to the
//! worker that runs it, so that a tracer on both sides (OpenTelemetry, in
//! the Python package) continues one trace across processes. The core
//! only checks, carries and hands them over; it records no spans itself.
//!
//! A submitter sets them with
//! [`NamedTask::trace_context`](crate::NamedTask::trace_context); a
//! handler reads them, while it runs, with [`TraceContext::current`] (and
//! which task it runs with [`NamedRun::current`]).

use std::cell::RefCell;
use std::fmt;

/// The longest `tracestate` accepted (the W3C recommendation: 512
/// characters, 32 list members).
pub const MAX_TRACESTATE: usize = 512;

/// A W3C trace context: a `traceparent` header's value, and a
/// `tracestate` one if there is any. Made by [`TraceContext::new`], which
/// checks both.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: String,
}

/// Why [`TraceContext::new`] refused its strings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceContextError {
    /// Not a W3C `traceparent` (`<version>-<trace id>-<parent id>-<flags>`,
    /// lowercase hex of 2, 32, 16 and 2 digits; version `ff`, and an
    /// all-zero trace or parent id, are invalid).
    Traceparent(String),
    /// A `tracestate` longer than [`MAX_TRACESTATE`], or with a character
    /// outside printable ASCII.
    Tracestate(String),
}

impl fmt::Display for TraceContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceContextError::Traceparent(why) => write!(f, "invalid traceparent: {why}"),
            TraceContextError::Tracestate(why) => write!(f, "invalid tracestate: {why}"),
        }
    }
}

impl std::error::Error for TraceContextError {}

fn hex(part: &str, digits: usize) -> bool {
    part.len() == digits && part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_traceparent(value: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('-').collect();
    let shown = || format!("{value:?} is not <version>-<trace id>-<parent id>-<flags> in lowercase hex");
    if parts.len() < 4 || !hex(parts[0], 2) || !hex(parts[1], 32) || !hex(parts[2], 16) || !hex(parts[3], 2) {
        return Err(shown());
    }
    // A later version may add fields after the flags; version 00 has none.
    if parts[0] == "ff" || (parts[0] == "00" && parts.len() != 4) {
        return Err(shown());
    }
    if parts[1].bytes().all(|b| b == b'0') {
        return Err(format!("{value:?} has an all-zero trace id"));
    }
    if parts[2].bytes().all(|b| b == b'0') {
        return Err(format!("{value:?} has an all-zero parent id"));
    }
    Ok(())
}

impl TraceContext {
    /// A trace context of `traceparent` and, if not empty, `tracestate`
    /// (as an OpenTelemetry propagator injects them).
    ///
    /// # Errors
    /// [`TraceContextError`] if either is not what W3C Trace Context
    /// allows (see its variants).
    ///
    /// ```
    /// use taskmanager::TraceContext;
    /// let context = TraceContext::new("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")?;
    /// assert_eq!(context.tracestate(), None);
    /// assert!(TraceContext::new("00-xyz-00f067aa0ba902b7-01", "").is_err());
    /// # Ok::<(), taskmanager::TraceContextError>(())
    /// ```
    pub fn new(traceparent: &str, tracestate: &str) -> Result<Self, TraceContextError> {
        check_traceparent(traceparent).map_err(TraceContextError::Traceparent)?;
        if tracestate.len() > MAX_TRACESTATE {
            return Err(TraceContextError::Tracestate(format!(
                "{} characters, more than {MAX_TRACESTATE}",
                tracestate.len()
            )));
        }
        if let Some(c) = tracestate.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(TraceContextError::Tracestate(format!("{c:?} is not printable ASCII")));
        }
        Ok(TraceContext { traceparent: traceparent.to_owned(), tracestate: tracestate.to_owned() })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, if there is one.
    pub fn tracestate(&self) -> Option<&str> {
        (!self.tracestate.is_empty()).then_some(self.tracestate.as_str())
    }

    /// The trace context of the named task whose handler runs on this
    /// thread, as its submitter set it; None outside a handler, or for a
    /// task sent without one (a recurring tick, or a submitter that set
    /// none). Read it before the handler returns.
    pub fn current() -> Option<TraceContext> {
        CURRENT.with(|c| c.borrow().as_ref().and_then(|run| run.trace.clone()))
    }

    /// The entry fields that carry `context` through Redis, as field,
    /// value pairs: `traceparent`, and `tracestate` if there is one; none
    /// without a context.
    pub(crate) fn fields(context: Option<&TraceContext>) -> Vec<(&'static str, &str)> {
        let Some(context) = context else { return Vec::new() };
        let mut fields = vec![("traceparent", context.traceparent())];
        fields.extend(context.tracestate().map(|state| ("tracestate", state)));
        fields
    }

    /// A context as read back from Redis: checked at submission, it is
    /// taken as it is (an entry written by another client is not refused
    /// for it: a bad one is dropped, and the task runs).
    pub(crate) fn received(traceparent: String, tracestate: String) -> Option<TraceContext> {
        if traceparent.is_empty() || check_traceparent(&traceparent).is_err() {
            return None;
        }
        Some(TraceContext { traceparent, tracestate })
    }
}

/// The named task whose handler runs on this thread (feature `redis`):
/// what a tracer's span of the run is named and parented by.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamedRun {
    /// The task's id (as its handle's).
    pub task_id: String,
    /// The `name=` its submitter gave it, if any.
    pub label: Option<String>,
    /// Whether it is a tick of a recurring schedule (which carries no
    /// trace context: each tick is a new trace).
    pub tick: bool,
    /// Its submitter's trace context, if it sent one.
    pub trace: Option<TraceContext>,
}

impl NamedRun {
    /// The named task whose handler runs on this thread; None outside a
    /// handler.
    pub fn current() -> Option<NamedRun> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// Runs `f` with `run` as [`current`](Self::current) on this thread.
    pub(crate) fn scoped<R>(run: NamedRun, f: impl FnOnce() -> R) -> R {
        struct Reset(Option<NamedRun>);
        impl Drop for Reset {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.replace(Some(run)));
        let _reset = Reset(previous);
        f()
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("traceparent", &self.traceparent)
            .field("tracestate", &self.tracestate())
            .finish()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<NamedRun>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_w3c_traceparent_is_accepted_and_bad_ones_are_refused() {
        let context = TraceContext::new(PARENT, "vendor=abc,other=1").unwrap();
        assert_eq!((context.traceparent(), context.tracestate()), (PARENT, Some("vendor=abc,other=1")));
        assert!(
            TraceContext::new("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "").is_ok()
        );
        for bad in [
            "",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(
                matches!(TraceContext::new(bad, ""), Err(TraceContextError::Traceparent(_))),
                "{bad:?} accepted"
            );
        }
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE);
        assert!(matches!(TraceContext::new(PARENT, &long), Err(TraceContextError::Tracestate(_))));
        assert!(matches!(TraceContext::new(PARENT, "a=b\nc=d"), Err(TraceContextError::Tracestate(_))));
    }

    #[test]
    fn the_current_context_is_set_only_within_its_scope() {
        assert_eq!((TraceContext::current(), NamedRun::current()), (None, None));
        let context = TraceContext::received(PARENT.to_owned(), String::new());
        let run = |trace| NamedRun { task_id: "t".to_owned(), label: None, tick: false, trace };
        let seen = NamedRun::scoped(run(context.clone()), || {
            let inner = NamedRun::scoped(run(None), TraceContext::current);
            (TraceContext::current(), inner, NamedRun::current().map(|r| r.task_id))
        });
        assert_eq!(seen, (context, None, Some("t".to_owned())));
        assert_eq!((TraceContext::current(), NamedRun::current()), (None, None));
        assert_eq!(TraceContext::received("junk".to_owned(), String::new()), None);
    }
}
