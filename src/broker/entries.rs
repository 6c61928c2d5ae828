//! What a read of a stream returned (`XREADGROUP`, `XCLAIM`, the `CLAIM`
//! script), entry by entry, from the raw reply: a task to run, or why it
//! cannot (a field name or value that is not UTF-8, no task name), so that
//! one bad entry is set apart (`dead.rs`) and never fails the whole read.

use redis::Value as Reply;

use super::in_flight::Entry;
use super::ticket::Claimed;

/// Why an entry cannot run, if it cannot: a field that is not UTF-8, or
/// no task name.
fn unreadable(fields: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    for (name, value) in fields {
        if std::str::from_utf8(name).is_err() {
            return Some(format!("unreadable entry: a field name is not UTF-8 ({:?})", lossy(name)));
        }
        if std::str::from_utf8(value).is_err() {
            return Some(format!("unreadable entry: the value of field {:?} is not UTF-8", lossy(name)));
        }
    }
    if !fields.iter().any(|(name, value)| name == b"name" && !value.is_empty()) {
        return Some("unreadable entry: it names no task (no field \"name\")".to_owned());
    }
    None
}

pub(super) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bytes(reply: &Reply) -> Option<&[u8]> {
    match reply {
        Reply::BulkString(b) => Some(b),
        Reply::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// One entry of a reply, `[id, [field, value, ...]]` (or `[id, nil]` for
/// an entry deleted while pending): a task to run, or why it cannot.
fn entry(stream: &str, reply: &Reply) -> Option<Result<Claimed, (Entry, String)>> {
    let Reply::Array(parts) = reply else { return None };
    let id = String::from_utf8(bytes(parts.first()?)?.to_vec()).ok()?;
    let entry = Entry { stream: stream.to_owned(), id };
    let Some(Reply::Array(flat)) = parts.get(1) else {
        return Some(Err((entry, "unreadable entry: it has no fields (deleted while pending)".to_owned())));
    };
    let fields: Vec<(Vec<u8>, Vec<u8>)> = flat
        .chunks(2)
        .map(|kv| {
            let part = |i: usize| kv.get(i).and_then(bytes).map(<[u8]>::to_vec).unwrap_or_default();
            (part(0), part(1))
        })
        .collect();
    if let Some(reason) = unreadable(&fields) {
        return Some(Err((entry, reason)));
    }
    let field = |name: &str| {
        fields.iter().find(|(k, _)| k == name.as_bytes()).map(|(_, v)| lossy(v)).unwrap_or_default()
    };
    Some(Ok(Claimed {
        task: field("id"),
        name: field("name"),
        label: field("label"),
        args: field("args"),
        reply: field("reply"),
        rec: field("rec"),
        place: None,
        retry: field("retry"),
        attempt: field("attempt").parse().unwrap_or(1),
        deliveries: Some(1),
        ttl: field("ttl"),
        trace: crate::trace_context::TraceContext::received(field("traceparent"), field("tracestate")),
        entry,
    }))
}

/// What a read returned, entry by entry: those that can run, and those
/// that cannot with why. A read's reply is `[[stream, [entry, ...]], ...]`
/// (`XREADGROUP`, the `CLAIM` script; nil when empty); `XCLAIM`'s is the
/// entries of `stream` alone.
pub(super) fn parse(reply: &Reply, stream: Option<&str>) -> (Vec<Claimed>, Vec<(Entry, String)>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut take = |stream: &str, entries: &[Reply]| {
        for result in entries.iter().filter_map(|e| entry(stream, e)) {
            match result {
                Ok(claimed) => good.push(claimed),
                Err(dead) => bad.push(dead),
            }
        }
    };
    match (reply, stream) {
        (Reply::Array(entries), Some(stream)) => take(stream, entries),
        (Reply::Array(keys), None) => {
            for key in keys {
                let Reply::Array(pair) = key else { continue };
                let (Some(name), Some(Reply::Array(entries))) = (pair.first().and_then(bytes), pair.get(1))
                else {
                    continue;
                };
                take(&lossy(name), entries);
            }
        }
        _ => {}
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Reply {
        Reply::BulkString(s.to_vec())
    }

    fn entry_reply(id: &str, fields: &[(&[u8], &[u8])]) -> Reply {
        let flat = fields.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect();
        Reply::Array(vec![bulk(id.as_bytes()), Reply::Array(flat)])
    }

    #[test]
    fn a_read_is_parsed_entry_by_entry_and_bad_entries_are_set_apart() {
        let good =
            entry_reply("1-0", &[(b"id", b"t1"), (b"name", b"send"), (b"args", b"[]"), (b"attempt", b"2")]);
        let bad_name = entry_reply("2-0", &[(b"\xff\xfe", b"x"), (b"name", b"send")]);
        let bad_value = entry_reply("3-0", &[(b"name", b"send"), (b"args", b"\xc3\x28")]);
        let nameless = entry_reply("4-0", &[(b"id", b"t4")]);
        let deleted = Reply::Array(vec![bulk(b"5-0"), Reply::Nil]);
        let reply = Reply::Array(vec![Reply::Array(vec![
            bulk(b"P:s:m/send"),
            Reply::Array(vec![good, bad_name, bad_value, nameless, deleted]),
        ])]);
        let (ok, bad) = parse(&reply, None);
        assert_eq!(ok.len(), 1);
        assert_eq!((ok[0].task.as_str(), ok[0].name.as_str(), ok[0].attempt), ("t1", "send", 2));
        assert_eq!(ok[0].trace, None);
        let ids: Vec<&str> = bad.iter().map(|(e, _)| e.id.as_str()).collect();
        assert_eq!(ids, ["2-0", "3-0", "4-0", "5-0"]);
        assert!(bad[0].1.contains("field name is not UTF-8"), "{}", bad[0].1);
        assert!(bad[1].1.contains("value of field \"args\""), "{}", bad[1].1);
        assert!(bad[2].1.contains("names no task"), "{}", bad[2].1);
        assert!(bad[3].1.contains("no fields"), "{}", bad[3].1);
        assert!(bad.iter().all(|(e, _)| e.stream == "P:s:m/send"));
    }

    #[test]
    fn an_entry_carries_its_trace_context_and_a_bad_one_is_dropped() {
        let parent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let traced =
            entry_reply("1-0", &[(b"name", b"n"), (b"traceparent", parent), (b"tracestate", b"k=v")]);
        let bad = entry_reply("2-0", &[(b"name", b"n"), (b"traceparent", b"junk")]);
        let (ok, _) = parse(&Reply::Array(vec![traced, bad]), Some("P:s:m/n"));
        let trace = ok[0].trace.as_ref().expect("a trace context");
        assert_eq!((trace.traceparent().as_bytes(), trace.tracestate()), (&parent[..], Some("k=v")));
        assert_eq!(ok[1].trace, None);
    }

    #[test]
    fn an_xclaim_reply_is_the_entries_of_one_stream() {
        let reply = Reply::Array(vec![entry_reply("9-1", &[(b"name", b"n")]), Reply::Nil]);
        let (ok, bad) = parse(&reply, Some("P:s:m/n"));
        assert_eq!((ok.len(), bad.len()), (1, 0));
        assert_eq!(ok[0].entry, Entry { stream: "P:s:m/n".into(), id: "9-1".into() });
        assert_eq!(parse(&Reply::Nil, None).0.len(), 0);
    }
}
