//! The calendar side of `schedule_task`: `cron=` (with `tz=`, `dst_gap=`,
//! `dst_fold=`), `at=`, and a recurring task's `misfire=`, `max_catch_up=`,
//! `grace=` and `jitter=`, checked into the core's types ([`Cron`],
//! [`Recurrence`], a wall-clock time), each error naming its argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use taskmanager::{Cron, FoldPolicy, GapPolicy, Misfire, Recurrence};

use crate::checks::{self, repr, type_name};

/// The calendar arguments of one `schedule_task` call, as given.
pub(crate) struct Given<'a, 'py> {
    pub(crate) cron: Option<&'a Bound<'py, PyAny>>,
    pub(crate) tz: Option<&'a Bound<'py, PyAny>>,
    pub(crate) dst_gap: Option<&'a Bound<'py, PyAny>>,
    pub(crate) dst_fold: Option<&'a Bound<'py, PyAny>>,
    pub(crate) at: Option<&'a Bound<'py, PyAny>>,
    pub(crate) misfire: Option<&'a Bound<'py, PyAny>>,
    pub(crate) max_catch_up: Option<&'a Bound<'py, PyAny>>,
    pub(crate) grace: Option<&'a Bound<'py, PyAny>>,
    pub(crate) jitter: Option<&'a Bound<'py, PyAny>>,
}

/// When a task runs, from exactly one of `delay`, `cron` and `at`.
pub(crate) enum When<'a, 'py> {
    /// `delay` seconds: once, or every `delay` with `reoccurring`.
    Delay(&'a Bound<'py, PyAny>),
    /// At a calendar rule's times.
    Cron(Box<Cron>),
    /// Once, at a wall-clock time.
    At(SystemTime),
}

/// How many runs `misfire="catch_up"` catches up at most, unless
/// `max_catch_up` says.
const MAX_CATCH_UP: u32 = 10;

impl<'a, 'py> Given<'a, 'py> {
    /// Which of `delay`, `cron` and `at` was given (exactly one must be),
    /// checked, with the arguments that belong to it.
    pub(crate) fn when(&self, delay: Option<&'a Bound<'py, PyAny>>) -> PyResult<When<'a, 'py>> {
        let given: Vec<&str> =
            [("delay", delay.is_some()), ("cron", self.cron.is_some()), ("at", self.at.is_some())]
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name))
                .collect();
        if given.len() != 1 {
            return Err(PyTypeError::new_err(match given.len() {
                0 => "schedule_task() needs one of delay (seconds), cron (an expression) or at (a datetime)"
                    .to_owned(),
                _ => format!("schedule_task() takes one of delay, cron and at, got {}", given.join(" and ")),
            }));
        }
        if self.cron.is_none() {
            for (name, value) in [("tz", self.tz), ("dst_gap", self.dst_gap), ("dst_fold", self.dst_fold)] {
                if value.is_some() {
                    return Err(PyValueError::new_err(format!("{name} applies to cron schedules only")));
                }
            }
        }
        if let Some(delay) = delay {
            return Ok(When::Delay(delay));
        }
        if let Some(at) = self.at {
            return Ok(When::At(wall_time(at)?));
        }
        let cron = self.cron.expect("one was given");
        Ok(When::Cron(Box::new(self.rule(cron)?)))
    }

    /// The cron rule: `cron` read in `tz` with the DST policies.
    fn rule(&self, cron: &Bound<'py, PyAny>) -> PyResult<Cron> {
        let expression = text(cron, "cron", "a cron expression such as \"0 9 * * MON-FRI\"")?;
        let mut rule = Cron::parse(&expression).map_err(|e| PyValueError::new_err(format!("cron: {e}")))?;
        if let Some(tz) = self.tz {
            let zone = zone_name(tz)?;
            rule = rule.zone(&zone).map_err(|e| PyValueError::new_err(format!("tz: {e}")))?;
        }
        if let Some(gap) = self.dst_gap {
            rule = rule.gap(match text(gap, "dst_gap", "\"shift\" or \"skip\"")?.as_str() {
                "shift" => GapPolicy::Shift,
                "skip" => GapPolicy::Skip,
                _ => return Err(choice("dst_gap", gap, "\"shift\" or \"skip\"")),
            });
        }
        if let Some(fold) = self.dst_fold {
            rule = rule.fold(match text(fold, "dst_fold", "\"first\", \"second\" or \"both\"")?.as_str() {
                "first" => FoldPolicy::First,
                "second" => FoldPolicy::Second,
                "both" => FoldPolicy::Both,
                _ => return Err(choice("dst_fold", fold, "\"first\", \"second\" or \"both\"")),
            });
        }
        Ok(rule)
    }

    /// Whether any argument of a recurring schedule's misfires and jitter
    /// was given (they do not apply to a one-shot task).
    pub(crate) fn recurring_only(&self) -> Option<&'static str> {
        [
            ("misfire", self.misfire),
            ("max_catch_up", self.max_catch_up),
            ("grace", self.grace),
            ("jitter", self.jitter),
        ]
        .into_iter()
        .find_map(|(name, value)| value.is_some().then_some(name))
    }

    /// `recurrence` with the misfire policy, grace and jitter given.
    pub(crate) fn apply(&self, mut recurrence: Recurrence) -> PyResult<Recurrence> {
        let choices = "\"skip\", \"coalesce\" or \"catch_up\"";
        let misfire = self.misfire.map(|m| text(m, "misfire", choices)).transpose()?;
        if self.max_catch_up.is_some() && misfire.as_deref() != Some("catch_up") {
            return Err(PyValueError::new_err("max_catch_up applies with misfire=\"catch_up\" only"));
        }
        match misfire.as_deref() {
            None => {}
            Some("skip") => recurrence = recurrence.misfire(Misfire::Skip),
            Some("coalesce") => recurrence = recurrence.misfire(Misfire::Coalesce),
            Some("catch_up") => {
                recurrence = recurrence.misfire(Misfire::CatchUp { max: self.catch_up_bound()? })
            }
            Some(_) => return Err(choice("misfire", self.misfire.expect("given"), choices)),
        }
        if let Some(grace) = self.grace {
            recurrence = recurrence.grace(checks::seconds(checks::delay(grace, "grace")?)?);
        }
        if let Some(jitter) = self.jitter {
            recurrence = recurrence.jitter(checks::seconds(checks::delay(jitter, "jitter")?)?);
        }
        Ok(recurrence)
    }

    fn catch_up_bound(&self) -> PyResult<u32> {
        let Some(value) = self.max_catch_up else { return Ok(MAX_CATCH_UP) };
        let wrong =
            || PyValueError::new_err(format!("max_catch_up must be an int from 1, got {}", repr(value)));
        if value.cast::<pyo3::types::PyBool>().is_ok() || value.cast::<pyo3::types::PyInt>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "max_catch_up must be an int, got {}",
                type_name(value)
            )));
        }
        let n: i64 = value.extract().map_err(|_| wrong())?;
        u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(wrong)
    }
}

/// A str argument `name`, else a TypeError saying what it should be.
fn text(value: &Bound<'_, PyAny>, name: &str, expected: &str) -> PyResult<String> {
    match value.cast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!("{name} must be {expected}, got {}", type_name(value)))),
    }
}

fn choice(name: &str, value: &Bound<'_, PyAny>, choices: &str) -> PyErr {
    PyValueError::new_err(format!("{name} must be {choices}, got {}", repr(value)))
}

/// `tz`: an IANA zone's name, or a `zoneinfo.ZoneInfo` (its `key`).
fn zone_name(tz: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = tz.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    let key = tz.getattr_opt("key")?;
    match key.as_ref().map(|k| k.cast::<PyString>()) {
        Some(Ok(key)) => Ok(key.to_cow()?.into_owned()),
        _ => Err(PyTypeError::new_err(format!(
            "tz must be an IANA time zone name such as \"Europe/Berlin\", or a zoneinfo.ZoneInfo, got {}",
            type_name(tz)
        ))),
    }
}

/// `at`: an aware `datetime`, as a wall-clock time. A naive one is
/// refused: which zone it means would be a guess.
fn wall_time(at: &Bound<'_, PyAny>) -> PyResult<SystemTime> {
    let py = at.py();
    let datetime = py.import("datetime")?.getattr("datetime")?;
    if !at.is_instance(&datetime)? {
        return Err(PyTypeError::new_err(format!(
            "at must be a timezone-aware datetime.datetime, got {}",
            type_name(at)
        )));
    }
    if at.call_method0("utcoffset")?.is_none() {
        return Err(PyValueError::new_err(format!(
            "at must be timezone-aware, got the naive {}: give it a tzinfo, e.g. \
             datetime(2027, 1, 1, 9, tzinfo=ZoneInfo(\"Europe/Berlin\")) or .replace(tzinfo=timezone.utc)",
            repr(at)
        )));
    }
    let seconds: f64 = at.call_method0("timestamp")?.extract()?;
    let offset = Duration::try_from_secs_f64(seconds.abs())
        .map_err(|_| PyValueError::new_err(format!("at is out of range: {}", repr(at))))?;
    let time = if seconds >= 0.0 { UNIX_EPOCH.checked_add(offset) } else { UNIX_EPOCH.checked_sub(offset) };
    time.ok_or_else(|| PyValueError::new_err(format!("at is out of range: {}", repr(at))))
}
