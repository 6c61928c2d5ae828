//! `taskmanager.Retry`: the core's [`Retry`] as Python gives it, and the
//! `retry=` argument of the submit calls and of `Module`. One rule picks
//! which exceptions retry, in this process and through a broker alike: an
//! exception retries if one of the classes of its MRO is listed in `on`,
//! compared by qualified name ([`exception_kinds`]).

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyTuple, PyType};

use taskmanager::Retry as CoreRetry;

/// How a failed task runs again: see the package docs (`Retry` in
/// `taskmanager/__init__.py` documents the arguments).
#[pyclass(frozen, module = "taskmanager", name = "Retry")]
pub(crate) struct Retry {
    pub(crate) policy: CoreRetry,
}

#[pymethods]
impl Retry {
    #[new]
    #[pyo3(signature = (retries=None, *, backoff=None, max_backoff=None, jitter=None, on=None, dead_letter=None))]
    fn new(
        retries: Option<&Bound<'_, PyAny>>,
        backoff: Option<&Bound<'_, PyAny>>,
        max_backoff: Option<&Bound<'_, PyAny>>,
        jitter: Option<&Bound<'_, PyAny>>,
        on: Option<&Bound<'_, PyAny>>,
        dead_letter: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let dead_letter = crate::checks::flag(dead_letter, "dead_letter", false)?;
        // The defaults are the core's (3 retries, 1 s doubling to 60 s,
        // jitter 0.5).
        let default = CoreRetry::new(3);
        let retries = retries.map_or(Ok(default.retries()), |r| count(r, "retries"))?;
        let base = backoff.map_or(Ok(default.backoff_bounds().0), |b| seconds(b, "backoff"))?;
        let cap =
            max_backoff.map_or(Ok(default.backoff_bounds().1.max(base)), |c| seconds(c, "max_backoff"))?;
        if cap < base {
            return Err(PyValueError::new_err(format!(
                "max_backoff ({}) must be at least backoff ({})",
                cap.as_secs_f64(),
                base.as_secs_f64()
            )));
        }
        let jitter = jitter.map_or(Ok(default.jitter_share()), |j| real(j, "jitter"))?;
        if !(0.0..=1.0).contains(&jitter) {
            return Err(PyValueError::new_err(format!("jitter must be from 0 to 1, got {jitter}")));
        }
        let kinds = match on {
            None => Vec::new(),
            Some(on) => classes(on)?,
        };
        let policy =
            CoreRetry::new(retries).backoff(base, cap).jitter(jitter).on(kinds).dead_letter(dead_letter);
        Ok(Retry { policy })
    }

    /// Retries after the first attempt, at most.
    #[getter]
    fn retries(&self) -> u32 {
        self.policy.retries()
    }

    /// The first wait, in seconds (doubled for each retry after it).
    #[getter]
    fn backoff(&self) -> f64 {
        self.policy.backoff_bounds().0.as_secs_f64()
    }

    /// The longest wait, in seconds.
    #[getter]
    fn max_backoff(&self) -> f64 {
        self.policy.backoff_bounds().1.as_secs_f64()
    }

    /// The share of each wait taken off at random.
    #[getter]
    fn jitter(&self) -> f64 {
        self.policy.jitter_share()
    }

    /// The qualified names of the exception classes retried (empty: all).
    #[getter]
    fn on(&self) -> Vec<String> {
        self.policy.kinds().to_vec()
    }

    /// With a broker: whether a task that used up its retries goes to the
    /// dead-letter set (its handle then raises `DeadLettered`).
    #[getter]
    fn dead_letter(&self) -> bool {
        self.policy.dead_letters()
    }

    /// The wait before retry `retry` (1 for the first), in seconds, with
    /// the random share `unit` (0 to 1; 0 is the longest wait).
    #[pyo3(signature = (retry, unit=0.0))]
    fn delay(&self, retry: u32, unit: f64) -> f64 {
        self.policy.delay(retry, unit).as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let (base, cap) = self.policy.backoff_bounds();
        let on = if self.policy.kinds().is_empty() {
            String::new()
        } else {
            let names: Vec<String> = self.policy.kinds().iter().map(|k| format!("'{k}'")).collect();
            format!(", on=[{}]", names.join(", "))
        };
        format!(
            "Retry(retries={}, backoff={:?}, max_backoff={:?}, jitter={:?}{on})",
            self.policy.retries(),
            base.as_secs_f64(),
            cap.as_secs_f64(),
            self.policy.jitter_share()
        )
    }
}

/// The `retry=` argument: None (no retry, or the module's default), an int
/// (that many retries, default backoff) or a `Retry`.
pub(crate) fn argument(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<CoreRetry>> {
    let Some(value) = value.filter(|v| !v.is_none()) else { return Ok(None) };
    if let Ok(retry) = value.cast::<Retry>() {
        return Ok(Some(retry.get().policy.clone()));
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        return Ok(Some(CoreRetry::new(count(value, "retry")?)));
    }
    Err(PyTypeError::new_err(format!(
        "retry must be an int (the number of retries) or a taskmanager.Retry, got {}",
        type_name(value)
    )))
}

/// The qualified names of the classes of `exception`'s MRO, most derived
/// first (`builtins.ConnectionRefusedError`, `builtins.ConnectionError`,
/// ...): what `on` is compared with.
pub(crate) fn exception_kinds(exception: &Bound<'_, PyAny>) -> Vec<String> {
    let mro = exception.get_type().mro();
    mro.iter()
        .filter_map(|class| class.cast_into::<PyType>().ok())
        .filter_map(|c| qualified(&c).ok())
        .collect()
}

fn qualified(class: &Bound<'_, PyType>) -> PyResult<String> {
    Ok(format!("{}.{}", class.module()?, class.qualname()?))
}

/// `on`: an exception class, or a tuple or list of them.
fn classes(on: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    let items: Vec<Bound<'_, PyAny>> = match on.cast::<PyTuple>() {
        Ok(tuple) => tuple.iter().collect(),
        Err(_) if on.is_instance_of::<pyo3::types::PyList>() => on.try_iter()?.collect::<PyResult<_>>()?,
        Err(_) => vec![on.clone()],
    };
    let base = on.py().get_type::<pyo3::exceptions::PyBaseException>();
    items
        .iter()
        .map(|item| match item.cast::<PyType>() {
            Ok(class) if class.is_subclass(&base)? => qualified(class),
            _ => Err(PyTypeError::new_err(format!(
                "on must be an exception class or a tuple of them, got {}",
                item.repr().map_or_else(|_| type_name(item), |r| r.to_string())
            ))),
        })
        .collect()
}

fn count(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, got {}", type_name(value))));
    }
    let n: i64 = value.extract().map_err(|_| PyValueError::new_err(format!("{name} is too large")))?;
    u32::try_from(n)
        .map_err(|_| PyValueError::new_err(format!("{name} must be from 0 to {}, got {n}", u32::MAX)))
}

fn real(value: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{name} must be a number, got bool")));
    }
    let x: f64 = value
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a number, got {}", type_name(value))))?;
    if !x.is_finite() {
        return Err(PyValueError::new_err(format!("{name} must be finite, got {x}")));
    }
    Ok(x)
}

fn seconds(value: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let x = real(value, name)?;
    if !(0.0..=crate::checks::MAX_DELAY).contains(&x) {
        return Err(PyValueError::new_err(format!(
            "{name} must be from 0 to {:.0} seconds, got {x}",
            crate::checks::MAX_DELAY
        )));
    }
    Ok(Duration::from_secs_f64(x))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map_or_else(|_| "object".to_owned(), |n| n.to_string())
}
