//! Argument checks for the Python API. Each error names the argument and
//! says what was expected, and is raised at the call that passed it.
//!
//! They live in Rust, not in the Python half, because they run on every
//! submission: here they cost tens of nanoseconds instead of a microsecond.

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// The largest delay accepted, in seconds: about 500 years, well within
/// what the core's clock holds from now.
pub(crate) const MAX_DELAY: f64 = 500.0 * 365.0 * 24.0 * 3600.0;

/// `collections.abc.Mapping`, for kwargs that are not dicts.
static MAPPING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn type_name(value: &Bound<'_, PyAny>) -> String {
    if value.is_none() {
        return "None".to_owned();
    }
    value.get_type().name().map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

fn repr(value: &Bound<'_, PyAny>) -> String {
    value.repr().map_or_else(|_| type_name(value), |r| r.to_string())
}

/// `method`: anything callable.
pub(crate) fn method<'py>(method: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if method.is_callable() {
        return Ok(method.clone());
    }
    Err(PyTypeError::new_err(format!("method must be callable, got {}", type_name(method))))
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
                    Err(PyTypeError::new_err(format!(
                        "callback[{i}] must be callable, got {}",
                        type_name(&cb)
                    )))
                }
            })
            .collect(),
        None if callback.is_callable() => Ok(vec![callback.clone().unbind()]),
        None => Err(PyTypeError::new_err(format!(
            "callback must be callable, a list or tuple of callables, or None; got {}",
            type_name(callback)
        ))),
    }
}

/// `delay`: a finite number of seconds, int or float (not bool), from 0 to
/// [`MAX_DELAY`].
pub(crate) fn delay(delay: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    let number = !delay.is_instance_of::<PyBool>()
        && (delay.is_instance_of::<PyFloat>() || delay.is_instance_of::<PyInt>());
    if !number {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number of seconds (int or float), got {}",
            type_name(delay)
        )));
    }
    let too_large = || {
        PyValueError::new_err(format!("{name} must be at most {MAX_DELAY:.0} seconds, got {}", repr(delay)))
    };
    let negative = || PyValueError::new_err(format!("{name} must be >= 0, got {}", repr(delay)));
    // An int too large for a float raises OverflowError here; its sign
    // says which bound it is past.
    let seconds: f64 =
        delay.extract().map_err(|_| if delay.lt(0).unwrap_or(false) { negative() } else { too_large() })?;
    if !seconds.is_finite() {
        return Err(PyValueError::new_err(format!("{name} must be finite, got {}", repr(delay))));
    }
    if seconds < 0.0 {
        return Err(negative());
    }
    if seconds > MAX_DELAY {
        return Err(too_large());
    }
    Ok(seconds)
}

/// A bool flag; None means `default`.
pub(crate) fn flag(value: Option<&Bound<'_, PyAny>>, name: &str, default: bool) -> PyResult<bool> {
    let Some(value) = value else { return Ok(default) };
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        Err(_) => Err(PyTypeError::new_err(format!("{name} must be a bool, got {}", type_name(value)))),
    }
}

/// Whether a task recurs: the spec spells it `reoccurring`; `recurring` is
/// accepted too, and the two must not disagree.
pub(crate) fn reoccurring(
    reoccurring: Option<&Bound<'_, PyAny>>,
    recurring: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let spec = flag(reoccurring, "reoccurring", false)?;
    let Some(recurring) = recurring else { return Ok(spec) };
    let alias = flag(Some(recurring), "recurring", false)?;
    if spec && !alias {
        return Err(PyValueError::new_err("reoccurring and recurring disagree; give only one"));
    }
    Ok(alias)
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
