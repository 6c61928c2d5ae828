//! What crosses processes, converted once each way: a task's arguments
//! from Python objects to JSON values (checked, each error naming the part
//! that cannot cross), and its result from JSON back to Python objects.
//!
//! JSON's rules, as `json.dumps(..., allow_nan=False)` applies them: `None`,
//! bools, ints (here: those that fit 64 bits), finite floats, strings,
//! lists and tuples (they arrive as lists) and dicts with string keys.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Deeper nesting is refused: a structure that refers to itself would
/// otherwise never end.
const MAX_DEPTH: usize = 200;

/// `value` as JSON; a TypeError or ValueError naming `what` (the argument,
/// with the path inside it) says why it cannot cross.
pub(crate) fn to_json(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let mut path = what.to_owned();
    convert(value, &mut path, 0)
}

fn convert(value: &Bound<'_, PyAny>, path: &mut String, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{path} is nested more than {MAX_DEPTH} deep (or refers to itself), which cannot cross processes as JSON"
        )));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // Before int: bool is an int subclass.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.cast::<PyInt>().is_ok() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = value.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(PyValueError::new_err(format!(
            "{path} is an int beyond 64 bits, which cannot cross processes as JSON here; pass it as a str"
        )));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Number::from_f64(f.value()).map(Value::Number).ok_or_else(|| {
            PyValueError::new_err(format!("{path} is {}, which JSON cannot carry", f.value()))
        });
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return sequence(list.iter(), path, depth);
    }
    if let Ok(tuple) = value.cast::<PyTuple>() {
        return sequence(tuple.iter(), path, depth);
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut object = Map::new();
        for (key, item) in dict.iter() {
            let Ok(key) = key.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{path} has a key of type {}; JSON keys must be str",
                    type_name(&key)
                )));
            };
            let key = key.to_cow()?.into_owned();
            let len = path.len();
            path.push_str(&format!("[{}]", quoted(&key)));
            let item = convert(&item, path, depth + 1)?;
            path.truncate(len);
            object.insert(key, item);
        }
        return Ok(Value::Object(object));
    }
    Err(PyTypeError::new_err(format!(
        "{path} cannot cross processes as JSON ({}): arguments and results of tasks sent through a broker \
         must be None, bool, int, float, str, list, tuple or dict with str keys",
        type_name(value)
    )))
}

fn sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &mut String,
    depth: usize,
) -> PyResult<Value> {
    let mut array = Vec::new();
    for (i, item) in items.enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        array.push(convert(&item, path, depth + 1)?);
        path.truncate(len);
    }
    Ok(Value::Array(array))
}

/// `key` as Python's `repr` quotes a str, for paths like `kwargs['b']`.
pub(crate) fn quoted(key: &str) -> String {
    format!("'{}'", key.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().qualname().map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A JSON value as the Python object `json.loads` would make.
pub(crate) fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
