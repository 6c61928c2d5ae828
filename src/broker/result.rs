//! A task's outcome as it is stored in Redis (`P:r:<id>`) and published
//! to its submitter: `{"ok": value}`, `{"err": {kind, message, traceback,
//! kinds}}`, or `{"dead": {reason}}` (the dead-letter set's); a run's
//! outcome also has `attempt` (1: the first run) and `deliveries` (how
//! many times the group delivered that attempt: more than 1 after a take-over).

use std::time::Duration;

use serde_json::{json, Value};

use crate::err::{RemoteError, TaskError};

/// The shortest a result is kept in Redis ([`NamedTask::result_ttl`](crate::NamedTask::result_ttl)):
/// long enough for a submitter whose listener is reconnecting (its back-off
/// is at most 5 s) to find it.
pub const MIN_RESULT_TTL: Duration = Duration::from_secs(60);

/// A task's outcome as stored in Redis, with the number of the attempt
/// that came to it and, where known, how many times that attempt's entry
/// was delivered (see `Claimed::deliveries`).
pub(super) fn encode_result(
    result: &Result<Value, RemoteError>,
    attempt: u32,
    deliveries: Option<u64>,
) -> String {
    let mut encoded = match result {
        Ok(value) => json!({ "ok": value }),
        Err(e) => json!({
            "err": { "kind": e.kind, "message": e.message, "traceback": e.traceback, "kinds": e.kinds },
        }),
    };
    encoded["attempt"] = json!(attempt);
    if let Some(deliveries) = deliveries {
        encoded["deliveries"] = json!(deliveries);
    }
    encoded.to_string()
}

pub(super) fn decode_result(text: &str) -> Result<Value, TaskError> {
    let lost = |why: &str| TaskError::ResultLost { reason: format!("result unreadable ({why}): {text}") };
    let value: Value = serde_json::from_str(text).map_err(|e| lost(&e.to_string()))?;
    if let Some(ok) = value.get("ok") {
        return Ok(ok.clone());
    }
    if let Some(dead) = value.get("dead") {
        let reason = dead.get("reason").and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(TaskError::DeadLettered { reason });
    }
    let err = value.get("err").ok_or_else(|| lost("neither ok nor err"))?;
    let field = |name: &str| err.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    Err(TaskError::Remote(RemoteError {
        kind: field("kind"),
        message: field("message"),
        traceback: field("traceback"),
        kinds: err
            .get("kinds")
            .and_then(Value::as_array)
            .map(|kinds| kinds.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
    }))
}
