//! A named task's [`Retry`] as it travels in its stream entry (field
//! `retry`, JSON; field `attempt`, the attempt the entry is, 1 if absent):
//! the worker whose run failed decides, from these, whether and when the
//! task runs again, and its acknowledgement schedules that in Redis (see
//! `outcomes::ack_script`). A predicate ([`Retry::when`]) does not cross
//! processes: only the error kinds ([`Retry::on`]) do.

use std::time::Duration;

use serde_json::{json, Value};

use crate::retry::Retry;

/// The entry field of `retry`.
pub(super) fn encode(retry: &Retry) -> String {
    let (base, cap) = retry.backoff_bounds();
    json!({
        "retries": retry.retries(),
        "base": base.as_secs_f64(),
        "cap": cap.as_secs_f64(),
        "jitter": retry.jitter_share(),
        "on": retry.kinds(),
        "dead_letter": retry.dead_letters(),
    })
    .to_string()
}

/// The policy of an entry's `retry` field; None if it has none, or one
/// this version cannot read (logged: the task then runs once, as before).
pub(super) fn decode(text: &str) -> Option<Retry> {
    if text.is_empty() {
        return None;
    }
    let parsed = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        let seconds = |field: &str| v.get(field)?.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
        let retries = u32::try_from(v.get("retries")?.as_u64()?).ok()?;
        let on: Vec<String> =
            v.get("on")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
        Some(
            Retry::new(retries)
                .backoff(Duration::from_secs_f64(seconds("base")?), Duration::from_secs_f64(seconds("cap")?))
                .jitter(v.get("jitter")?.as_f64()?)
                .on(on)
                .dead_letter(v.get("dead_letter").and_then(Value::as_bool).unwrap_or(false)),
        )
    });
    if parsed.is_none() {
        log::warn!("taskmanager: a task's retry policy is unreadable, so it is not retried: {text}");
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_back_as_it_was_written() {
        let retry = Retry::new(4)
            .backoff(Duration::from_millis(250), Duration::from_secs(30))
            .jitter(0.25)
            .on(["builtins.OSError"]);
        let back = decode(&encode(&retry)).unwrap();
        assert_eq!(encode(&back), encode(&retry));
        assert_eq!(back.retries(), 4);
        assert_eq!(back.backoff_bounds(), (Duration::from_millis(250), Duration::from_secs(30)));
    }

    #[test]
    fn no_policy_or_an_unreadable_one_means_no_retry() {
        assert!(decode("").is_none());
        assert!(decode("{").is_none());
        assert!(decode(r#"{"retries": -1, "base": 1, "cap": 1, "jitter": 0, "on": []}"#).is_none());
        assert!(decode(r#"{"retries": 1, "base": "x", "cap": 1, "jitter": 0, "on": []}"#).is_none());
    }
}
