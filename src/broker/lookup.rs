//! A task looked up by id, from any process sharing the broker: its result
//! while Redis keeps it (the workers' result TTL, or the task's own), or
//! where it waits. The web pattern: enqueue in one request, return the id
//! ([`TaskHandle::broker_id`](crate::TaskHandle::broker_id)), look it up
//! in a later request, in any process.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{decode_result, Broker};
use crate::err::{SubmitError, TaskError};

/// What Redis says of a task, by id ([`TaskManager::lookup`](crate::TaskManager::lookup)).
#[derive(Debug, Clone, PartialEq)]
pub enum TaskLookup {
    /// It ran: its value, or how it failed (as its handle says).
    Finished(Result<Value, TaskError>),
    /// It waits to run (delayed, or retrying) this long from now.
    Delayed(Duration),
    /// It is in the dead-letter set, for this reason.
    DeadLettered(String),
    /// Redis has nothing under this id that says more: queued or running
    /// (a stream entry is not found by task id), or its result expired,
    /// or no such task.
    Unknown,
}

/// How many times a task ran, as Redis records it
/// ([`TaskManager::attempts`](crate::TaskManager::attempts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// The attempt that ran last (1: the first run; each retry adds one);
    /// for a task waiting to retry, the attempt it waits to run.
    pub attempt: u32,
    /// How many times the group delivered that attempt to a worker (more
    /// than 1: taken over from workers that died running it); None where
    /// not recorded (a task waiting to run).
    pub deliveries: Option<u64>,
}

/// How often [`Broker::wait_result`] looks again.
const POLL: Duration = Duration::from_millis(50);

impl Broker {
    /// See [`TaskLookup`].
    pub(crate) fn lookup(&self, id: &str) -> Result<TaskLookup, SubmitError> {
        let read = self.with_conn(|conn| {
            redis::pipe()
                .cmd("GET")
                .arg(self.result_key(id))
                .cmd("ZSCORE")
                .arg(self.delayed_key())
                .arg(id)
                .cmd("HGET")
                .arg(format!("{}:dead:{id}", self.config.prefix))
                .arg("_reason")
                .cmd("TIME")
                .query::<(Option<String>, Option<f64>, Option<String>, (u64, u64))>(conn)
        });
        let (result, due, dead, (secs, micros)) =
            read.map_err(|e| SubmitError::Broker(self.call_error(&format!("looking up task {id}"), &e)))?;
        Ok(match (result, due, dead) {
            (Some(text), _, _) => TaskLookup::Finished(decode_result(&text)),
            (None, _, Some(reason)) => TaskLookup::DeadLettered(reason),
            (None, Some(due), None) => {
                let now = (secs * 1000 + micros / 1000) as f64;
                TaskLookup::Delayed(Duration::from_millis((due - now).max(0.0) as u64))
            }
            (None, None, None) => TaskLookup::Unknown,
        })
    }

    /// See [`Attempts`]: read from the task's stored result (`ACK` records
    /// them there), else from its delayed hash (a retry waiting: the next
    /// attempt), else from its dead letter. None if Redis has none of
    /// them.
    pub(crate) fn attempts(&self, id: &str) -> Result<Option<Attempts>, SubmitError> {
        let read = self.with_conn(|conn| {
            redis::pipe()
                .cmd("GET")
                .arg(self.result_key(id))
                .cmd("HGET")
                .arg(format!("{}:t:{id}", self.config.prefix))
                .arg("attempt")
                .cmd("HMGET")
                .arg(format!("{}:dead:{id}", self.config.prefix))
                .arg("attempt")
                .arg("_deliveries")
                .arg("_reason")
                .query::<(Option<String>, Option<String>, (Option<String>, Option<String>, Option<String>))>(
                    conn,
                )
        });
        let (result, waiting, (dead_attempt, dead_deliveries, dead)) = read.map_err(|e| {
            SubmitError::Broker(self.call_error(&format!("reading task {id}'s attempts"), &e))
        })?;
        let number = |text: Option<&str>| text.and_then(|t| t.parse::<u64>().ok());
        if let Some(Ok(stored)) = result.as_deref().map(serde_json::from_str::<Value>) {
            if let Some(attempt) = stored.get("attempt").and_then(Value::as_u64) {
                let deliveries = stored.get("deliveries").and_then(Value::as_u64);
                return Ok(Some(Attempts { attempt: attempt as u32, deliveries }));
            }
        }
        if let Some(waiting) = waiting {
            // Empty: a delayed task's first run.
            let attempt = number(Some(&waiting)).unwrap_or(1) as u32;
            return Ok(Some(Attempts { attempt, deliveries: None }));
        }
        if dead.is_some() {
            let attempt = number(dead_attempt.as_deref()).unwrap_or(1) as u32;
            return Ok(Some(Attempts { attempt, deliveries: number(dead_deliveries.as_deref()) }));
        }
        Ok(None)
    }

    /// Waits up to `timeout` for task `id`'s outcome: its result (or
    /// failure), or `DeadLettered`; None if none came in time.
    pub(crate) fn wait_result(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<Result<Value, TaskError>>, SubmitError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lookup(id)? {
                TaskLookup::Finished(outcome) => return Ok(Some(outcome)),
                TaskLookup::DeadLettered(reason) => return Ok(Some(Err(TaskError::DeadLettered { reason }))),
                TaskLookup::Delayed(_) | TaskLookup::Unknown => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}
