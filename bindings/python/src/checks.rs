//! Argument checks for the Python API. Each error names the argument and
//! says what was expected, and is raised at the call that passed it.
//!
//! They live in Rust, not in the Python half, because they run on every
//! submission: here they cost tens of nanoseconds instead of a microsecond.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyComplex, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use taskmanager::Recurrence;

/// The largest delay accepted, in seconds: about 500 years, well within
/// what the core's clock holds from now.
pub(crate) const MAX_DELAY: f64 = 500.0 * 365.0 * 24.0 * 3600.0;

/// `collections.abc.Mapping`, for kwargs that are not dicts.
static MAPPING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

pub(crate) fn type_name(value: &Bound<'_, PyAny>) -> String {
    if value.is_none() {
        return "None".to_owned();
    }
    value.get_type().name().map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

pub(crate) fn repr(value: &Bound<'_, PyAny>) -> String {
    value.repr().map_or_else(|_| type_name(value), |r| r.to_string())
}

/// `method`: anything callable.
pub(crate) fn method<'py>(method: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if method.is_callable() {
        return Ok(method.clone());
    }
    Err(not_callable(method, "method")?)
}

/// The error for a `name` that is not callable. A coroutine object (the
/// call `f()` of an `async def f`) gets its own message, and is closed so
/// that it does not warn that it was never awaited.
fn not_callable(value: &Bound<'_, PyAny>, name: &str) -> PyResult<PyErr> {
    if !crate::aio::is_coroutine(value)? {
        return Ok(PyTypeError::new_err(format!("{name} must be callable, got {}", type_name(value))));
    }
    let py = value.py();
    let function = match value.getattr_opt(intern!(py, "__qualname__")) {
        Ok(Some(q)) => q.cast::<PyString>().map_or_else(|_| "f".to_owned(), |s| s.to_string()),
        _ => "f".to_owned(),
    };
    value.call_method0(intern!(py, "close"))?;
    Ok(PyTypeError::new_err(format!(
        "{name} must be callable, got a coroutine object ({function}() was called, and its coroutine is now \
         closed); pass the async function itself: {function}, not {function}()"
    )))
}

/// `args`: None, a list or a tuple; returned as the tuple to call with.
pub(crate) fn args<'py>(py: Python<'py>, args: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyTuple>> {
    let Some(args) = args else { return Ok(PyTuple::empty(py)) };
    if let Ok(tuple) = args.cast_exact::<PyTuple>() {
        return Ok(tuple.clone());
    }
    if let Ok(list) = args.cast::<PyList>() {
        return Ok(list.to_tuple());
    }
    if let Ok(tuple) = args.cast::<PyTuple>() {
        return PyTuple::new(py, tuple.iter());
    }
    Err(PyTypeError::new_err(format!("args must be a list or tuple (or None), got {}", type_name(args))))
}

/// `kwargs`: None or a mapping with str keys; returned as a fresh dict, or
/// None when empty.
pub(crate) fn kwargs<'py>(
    py: Python<'py>,
    kwargs: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let Some(kwargs) = kwargs else { return Ok(None) };
    let dict = match kwargs.cast::<PyDict>() {
        Ok(dict) => dict.copy()?,
        Err(_) => {
            let mapping = MAPPING.import(py, "collections.abc", "Mapping")?;
            if !kwargs.is_instance(mapping)? {
                return Err(PyTypeError::new_err(format!(
                    "kwargs must be a dict (or None), got {}",
                    type_name(kwargs)
                )));
            }
            let dict = PyDict::new(py);
            dict.update(kwargs.cast::<pyo3::types::PyMapping>()?)?;
            dict
        }
    };
    for key in dict.keys() {
        if !key.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "kwargs keys must be str, got {} key {}",
                type_name(&key),
                repr(&key)
            )));
        }
    }
    Ok(if dict.is_empty() { None } else { Some(dict) })
}

/// `callback`: None, one callable, or a list or tuple of callables.
pub(crate) fn callbacks(callback: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Py<PyAny>>> {
    let Some(callback) = callback else { return Ok(Vec::new()) };
    let many = if let Ok(list) = callback.cast::<PyList>() {
        Some(list.iter().collect::<Vec<_>>())
    } else if let Ok(tuple) = callback.cast::<PyTuple>() {
        Some(tuple.iter().collect())
    } else {
        None
    };
    match many {
        Some(many) => many
            .into_iter()
            .enumerate()
            .map(|(i, cb)| {
                if cb.is_callable() {
                    Ok(cb.unbind())
                } else {
                    Err(not_callable(&cb, &format!("callback[{i}]"))?)
                }
            })
            .collect(),
        None if callback.is_callable() => Ok(vec![callback.clone().unbind()]),
        None if crate::aio::is_coroutine(callback)? => Err(not_callable(callback, "callback")?),
        None => Err(PyTypeError::new_err(format!(
            "callback must be callable, a list or tuple of callables, or None; got {}",
            type_name(callback)
        ))),
    }
}

/// A real number of seconds as a float: an int or float (not bool), or
/// any other real number Python has, i.e. an object with `__index__` (numpy
/// integers) or `__float__` (`Decimal`, `Fraction`, numpy floats). Anything
/// else is a TypeError naming the argument. A value no float holds (a huge
/// int, Fraction or Decimal) is `negative()` or `too_large()` by its sign;
/// NaN and the infinities are left to the caller.
fn real_seconds(
    value: &Bound<'_, PyAny>,
    name: &str,
    negative: impl Fn() -> PyErr,
    too_large: impl Fn() -> PyErr,
) -> PyResult<f64> {
    // Floats and ints first: a cast and a conversion, nothing more.
    if let Ok(float) = value.cast_exact::<PyFloat>() {
        return Ok(float.value());
    }
    let beyond = || if value.lt(0).unwrap_or(false) { negative() } else { too_large() };
    if value.is_exact_instance_of::<PyInt>() {
        // An int too large for a float raises OverflowError here; its sign
        // says which bound it is past.
        return value.extract().map_err(|_| beyond());
    }
    if !is_real(value)? {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds (an int, a float or another real number, such as a \
             Decimal or a Fraction), got {}",
            type_name(value)
        )));
    }
    let py = value.py();
    if has_index(value)? {
        // An integer: exact, to the float nearest it.
        let int = value.call_method0(intern!(py, "__index__"))?;
        return int.extract().map_err(|_| beyond());
    }
    // Python's `float(value)`: `value` has `__float__` (see `is_real`), so
    // no string parsing can happen here.
    let float = py.get_type::<PyFloat>().call1((value,));
    let seconds = match float {
        Ok(float) => float.extract::<f64>()?,
        // A Fraction whose float would overflow.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => return Err(beyond()),
        // A Decimal signalling NaN: not a number of seconds.
        Err(e) if e.is_instance_of::<PyValueError>(py) => {
            return Err(PyValueError::new_err(format!("{name} must be finite, got {}", repr(value))))
        }
        Err(e) => return Err(e),
    };
    // A negative value too small for a float reads as -0.0: still negative.
    // (A value that cannot be compared is taken at its float's word.)
    if seconds == 0.0 && value.lt(0).unwrap_or(false) {
        return Err(negative());
    }
    // A finite value too large for a float (a Decimal) reads as infinite:
    // it is past a bound, not infinite itself.
    if seconds.is_infinite() && !value.eq(seconds).unwrap_or(true) {
        return Err(beyond());
    }
    Ok(seconds)
}

/// Whether `value` is a real number, bool aside: an int or float, or it
/// converts to one through `__index__` or `__float__`. Complex numbers are
/// not (numpy's convert, dropping the imaginary part, with a warning).
fn is_real(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyComplex>() {
        return Ok(false);
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        return Ok(true);
    }
    let class = value.get_type();
    // numpy's bool (`numpy.bool_`, named `bool` since numpy 2) is a bool.
    let name = class.name()?;
    if name == "bool_" || name == "bool" {
        return Ok(false);
    }
    let py = value.py();
    Ok(has_index(value)? || class.hasattr(intern!(py, "__float__"))?)
}

/// Whether `value`'s type has `__index__` (is an integer to Python).
fn has_index(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value.get_type().hasattr(intern!(value.py(), "__index__"))
}

/// `delay`: a real number of seconds (see [`real_seconds`]), finite, from 0
/// to [`MAX_DELAY`].
pub(crate) fn delay(delay: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    let negative = || PyValueError::new_err(format!("{name} must be >= 0, got {}", repr(delay)));
    let seconds = real_seconds(delay, name, negative, || too_large(delay, name))?;
    if !seconds.is_finite() {
        return Err(PyValueError::new_err(format!("{name} must be finite, got {}", repr(delay))));
    }
    if seconds < 0.0 {
        return Err(negative());
    }
    if seconds > MAX_DELAY {
        return Err(too_large(delay, name));
    }
    Ok(seconds)
}

fn too_large(value: &Bound<'_, PyAny>, name: &str) -> PyErr {
    PyValueError::new_err(format!("{name} must be at most {MAX_DELAY:.0} seconds, got {}", repr(value)))
}

/// A recurring task's interval from `value` (argument `name`): a real
/// number of seconds, from [`Recurrence::MIN_INTERVAL`], the core's rule,
/// to [`MAX_DELAY`]. Anything shorter, zero and negative values included,
/// is refused with that rule (`context` says what the interval is).
pub(crate) fn interval(value: &Bound<'_, PyAny>, name: &str, context: &str) -> PyResult<Duration> {
    let short = || interval_too_short(name, &repr(value), context);
    let seconds = real_seconds(value, name, short, || too_large(value, name))?;
    if !seconds.is_finite() {
        return Err(PyValueError::new_err(format!("{name} must be finite, got {}", repr(value))));
    }
    if seconds < Recurrence::MIN_INTERVAL.as_secs_f64() {
        return Err(short());
    }
    if seconds > MAX_DELAY {
        return Err(too_large(value, name));
    }
    // In range, so the conversion holds; at least MIN_INTERVAL, as the
    // float of MIN_INTERVAL is not below it.
    Duration::try_from_secs_f64(seconds).map_err(|_| too_large(value, name))
}

/// The interval rule's error: `name`, which was `shown`, is shorter than
/// [`Recurrence::MIN_INTERVAL`].
pub(crate) fn interval_too_short(name: &str, shown: &str, context: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{name} must be at least {} seconds {context}, got {shown}",
        Recurrence::MIN_INTERVAL.as_secs_f64()
    ))
}

/// How `interval` describes a reoccurring task's `delay`.
pub(crate) const REOCCURRING_DELAY: &str = "for a reoccurring task (it is the interval between runs)";

/// How `interval` describes `set_interval`'s `seconds`.
pub(crate) const NEW_INTERVAL: &str = "(the shortest interval between runs)";

/// A bool flag; None means `default`.
pub(crate) fn flag(value: Option<&Bound<'_, PyAny>>, name: &str, default: bool) -> PyResult<bool> {
    let Some(value) = value else { return Ok(default) };
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!("{name} must be a bool, got {}", type_name(value)))),
    }
}

/// Whether a task recurs: the spec spells it `reoccurring`; `recurring` is
/// accepted too. None (or leaving it out) means not given (a `delay`
/// task is then one-shot, a `cron` one recurs); given both, they must
/// agree.
pub(crate) fn reoccurring(
    reoccurring: Option<&Bound<'_, PyAny>>,
    recurring: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<bool>> {
    let spec = reoccurring.map(|v| flag(Some(v), "reoccurring", false)).transpose()?;
    let alias = recurring.map(|v| flag(Some(v), "recurring", false)).transpose()?;
    match (spec, alias) {
        (Some(spec), Some(alias)) if spec != alias => Err(PyValueError::new_err(format!(
            "reoccurring={} and recurring={} disagree; give only one",
            if spec { "True" } else { "False" },
            if alias { "True" } else { "False" },
        ))),
        (spec, alias) => Ok(spec.or(alias)),
    }
}

/// `name`: a str, or None for the method's own name (its `__qualname__`,
/// else `__name__`, else its type's name).
pub(crate) fn name(name: Option<&Bound<'_, PyAny>>, method: &Bound<'_, PyAny>) -> PyResult<Arc<str>> {
    if let Some(name) = name {
        return match name.cast::<PyString>() {
            Ok(s) => Ok(Arc::from(s.to_cow()?.as_ref())),
            Err(_) => {
                Err(PyTypeError::new_err(format!("name must be a str (or None), got {}", type_name(name))))
            }
        };
    }
    let py = method.py();
    for attribute in [intern!(py, "__qualname__"), intern!(py, "__name__")] {
        if let Ok(Some(value)) = method.getattr_opt(attribute) {
            if let Ok(s) = value.cast::<PyString>() {
                return Ok(Arc::from(s.to_cow()?.as_ref()));
            }
        }
    }
    Ok(Arc::from(type_name(method)))
}

pub(crate) fn seconds(delay: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(delay)
        .map_err(|_| PyValueError::new_err(format!("delay must be a finite number >= 0, got {delay}")))
}
