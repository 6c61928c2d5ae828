//! The dead-letter set against a real `redis-server`: entries that cannot
//! be read (bytes that are not UTF-8 in a field's name or value, no task
//! name) are set apart at once while the same claimer goes on serving the
//! others; the set lists them with the reason; requeue and purge; a
//! submitter waiting on a dead-lettered task hears it. (A poison task,
//! whose workers die running it, is tested with real worker processes in
//! tests/python/test_dead_letters.py.) Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::json;
use taskmanager::{Module, TaskError, TaskManager};

/// Writes an entry of raw bytes to `stream` and marks it ready, as a
/// buggy or foreign producer could.
fn xadd_raw(conn: &mut redis::Connection, stream: &str, ready: &str, fields: &[(&[u8], &[u8])]) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query::<String>(conn).unwrap();
    redis::cmd("SADD").arg(ready).arg(stream).query::<i64>(conn).unwrap();
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unreadable_entries_are_dead_lettered_and_the_claimer_serves_the_others() {
    let server = RedisServer::start();
    let prefix = named::prefix("d");
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").max_workers(2).build().unwrap();
    jobs.register("echo", Ok).unwrap();
    // A second name: the claimer then reads through the CLAIM script.
    jobs.register("other", Ok).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let (stream, ready) = (format!("{prefix}:s:jobs/echo"), format!("{prefix}:ready:jobs"));
    xadd_raw(&mut conn, &stream, &ready, &[(b"id", b"bad-key"), (b"\xff\xfename", b"echo")]);
    xadd_raw(
        &mut conn,
        &stream,
        &ready,
        &[(b"id", b"bad-value"), (b"name", b"echo"), (b"args", b"\xc3\x28")],
    );
    xadd_raw(&mut conn, &stream, &ready, &[(b"id", b"nameless"), (b"args", b"[]")]);
    manager.start_thread().unwrap();
    let handles: Vec<_> = (0..20).map(|i| jobs.add_named_task("echo", json!(i)).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(named::outcome(handle), Ok(json!(i)), "the claimer went on serving");
    }
    wait_for("three dead letters", || manager.dead_letters(10).unwrap().len() == 3);
    let dead = manager.dead_letters(10).unwrap();
    let mut ids: Vec<&str> = dead.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["bad-key", "bad-value", "nameless"]);
    for letter in &dead {
        assert!(letter.reason.starts_with("unreadable entry"), "{letter:?}");
        assert_eq!(letter.module, "jobs");
    }
    assert_eq!(server.command(&["XLEN", &stream]), "0", "nothing left in the stream");
    // After: still serving, through both reads.
    assert_eq!(named::outcome(jobs.add_named_task("other", json!("after")).unwrap()), Ok(json!("after")));
    assert_eq!(manager.purge_dead_letters().unwrap(), 3);
    assert!(manager.dead_letters(10).unwrap().is_empty());
    assert_eq!(server.command(&["KEYS", &format!("{prefix}:dead*")]), "");
}

#[test]
fn a_submitter_hears_its_task_was_dead_lettered_and_a_requeued_task_runs() {
    let server = RedisServer::start();
    let prefix = named::prefix("d");
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    jobs.register("echo", Ok).unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    // Submitted, then corrupted in place before any worker reads it: a
    // copy with the same id and reply channel but a bad argument byte.
    let submitter =
        TaskManager::builder().broker(&server.url()).broker_prefix(&prefix).submit_only().build().unwrap();
    let sender = Module::builder(&submitter).name("jobs").build().unwrap();
    let handle = sender.add_named_task("echo", json!("x")).unwrap();
    let stream = format!("{prefix}:s:jobs/echo");
    let entries: Vec<(String, Vec<(String, String)>)> = {
        let reply: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg(&stream).arg("-").arg("+").query(&mut conn).unwrap();
        reply
            .ids
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    e.map
                        .iter()
                        .map(|(k, v)| (k.clone(), redis::from_redis_value::<String>(v).unwrap()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(entries.len(), 1);
    let (entry_id, fields) = &entries[0];
    redis::cmd("XDEL").arg(&stream).arg(entry_id).query::<i64>(&mut conn).unwrap();
    let mut bad: Vec<(&[u8], &[u8])> = fields.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    bad.retain(|(k, _)| *k != b"args");
    bad.push((b"args", b"\"\xff\""));
    xadd_raw(&mut conn, &stream, &format!("{prefix}:ready:jobs"), &bad);
    manager.start_thread().unwrap();
    match named::outcome(handle) {
        Err(TaskError::DeadLettered { reason }) => assert!(reason.contains("not UTF-8"), "{reason}"),
        other => panic!("expected DeadLettered, got {other:?}"),
    }
    // Requeued as it was, it is dead-lettered again (it is still
    // unreadable); a readable one runs. Put a readable copy in the set by
    // hand: the requeue sends back exactly the fields kept.
    let dead = manager.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    let id = dead[0].id.clone();
    redis::cmd("HSET")
        .arg(format!("{prefix}:dead:{id}"))
        .arg("args")
        .arg("\"fixed\"")
        .arg("reply")
        .arg("")
        .query::<i64>(&mut conn)
        .unwrap();
    assert_eq!(manager.requeue_dead_letters(&[id, "no-such-id".to_owned()]).unwrap(), 1);
    wait_for("the requeued task to run", || jobs.stats().completed == 1);
    assert!(manager.dead_letters(10).unwrap().is_empty());
    submitter.shutdown();
}
