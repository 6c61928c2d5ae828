//! The core's errors as Python exceptions.

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use taskmanager::SubmitError;

use crate::checks;

pyo3::create_exception!(
    _taskmanager,
    QueueFull,
    PyRuntimeError,
    "A bounded module's queue is full: the task was not accepted."
);

pub(crate) fn submit_error(e: SubmitError) -> PyErr {
    match e {
        SubmitError::QueueFull { capacity } => QueueFull::new_err(format!(
            "the module's queue is full ({capacity} tasks waiting); task not accepted"
        )),
        SubmitError::ShutDown => PyRuntimeError::new_err("cannot add a task: the task manager is shut down"),
        SubmitError::DelayTooLong { .. } => PyValueError::new_err("delay is too large"),
        // The binding checks intervals first (`checks::interval`): this is
        // the core's same rule, should one get through.
        SubmitError::IntervalTooShort { interval } => checks::interval_too_short(
            "delay",
            &interval.as_secs_f64().to_string(),
            checks::REOCCURRING_DELAY,
        ),
        // The broker (Redis) did not take it in time: a connection problem.
        SubmitError::Broker(why) => {
            pyo3::exceptions::PyConnectionError::new_err(format!("the broker did not take the task: {why}"))
        }
        // A schedule that cannot work: the core's reason names the setting.
        SubmitError::InvalidSchedule { reason } => PyValueError::new_err(reason),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
