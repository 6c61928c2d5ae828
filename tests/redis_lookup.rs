//! Results by id against a real `redis-server`: a task sent by one process
//! is looked up by its id from another (the web pattern: enqueue in one
//! request, look up in a later one), its result kept for the workers'
//! result TTL (10 min by default) or the task's own; a delayed task, a
//! dead-lettered one and an unknown id each say what they are. Needs the
//! `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Module, TaskError, TaskLookup, TaskManager, MIN_RESULT_TTL};

fn manager(server: &RedisServer, submit_only: bool) -> TaskManager {
    let builder = TaskManager::builder().broker(&server.url()).broker_prefix("look");
    let manager = if submit_only { builder.submit_only() } else { builder }.build().unwrap();
    manager.start_thread().unwrap();
    manager
}

#[test]
fn a_result_is_looked_up_by_id_from_another_process_within_its_ttl() {
    let server = RedisServer::start();
    let worker = manager(&server, false);
    let jobs = Module::builder(&worker).name("jobs").build().unwrap();
    jobs.register("double", |v: Value| Ok(json!(v.as_i64().unwrap_or(0) * 2))).unwrap();
    jobs.register("fail", |_| Err(taskmanager::RemoteError::new("ValueError", "no"))).unwrap();
    // The web process: submits, keeps only the id, drops the handle.
    let web = manager(&server, true);
    let sender = Module::builder(&web).name("jobs").build().unwrap();
    let id = {
        let handle = sender.add_named_task("double", json!(21)).unwrap();
        handle.broker_id().expect("a task sent through the broker has an id")
    };
    let failed = sender.add_named_task("fail", json!(null)).unwrap().broker_id().unwrap();
    // Another process: looks it up.
    let other = manager(&server, true);
    assert_eq!(other.wait_result(&id, Duration::from_secs(20)).unwrap(), Some(Ok(json!(42))));
    assert_eq!(other.lookup(&id).unwrap(), TaskLookup::Finished(Ok(json!(42))), "kept after it was read");
    match other.wait_result(&failed, Duration::from_secs(20)).unwrap() {
        Some(Err(TaskError::Remote(e))) => assert_eq!(e.kind, "ValueError"),
        other => panic!("expected the remote ValueError, got {other:?}"),
    }
    // Kept the workers' result TTL: 10 min by default, whoever read it.
    let ttl: i64 = server.command(&["PTTL", &format!("look:r:{id}")]).parse().unwrap();
    assert!((590_000..=600_000).contains(&ttl), "{ttl}");
    // Unknown ids, and tasks not finished, say so (None within the timeout).
    assert_eq!(other.lookup("no-such-task").unwrap(), TaskLookup::Unknown);
    assert_eq!(other.wait_result("no-such-task", Duration::from_millis(100)).unwrap(), None);
    let later = sender.schedule_named_task(Duration::from_secs(60), "double", json!(1)).unwrap();
    match other.lookup(&later.broker_id().unwrap()).unwrap() {
        TaskLookup::Delayed(left) => {
            assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60), "{left:?}")
        }
        other => panic!("expected Delayed, got {other:?}"),
    }
    assert!(later.cancel());
    // A task's own TTL, and ignore_result (kept only a minute).
    let own = sender.named_task("double", json!(2)).result_ttl(Duration::from_secs(120)).submit().unwrap();
    let own_id = own.broker_id().unwrap();
    assert_eq!(own.join().unwrap(), json!(4));
    let ttl: i64 = server.command(&["PTTL", &format!("look:r:{own_id}")]).parse().unwrap();
    assert!((110_000..=120_000).contains(&ttl), "{ttl}");
    let ignored =
        sender.named_task("double", json!(3)).ignore_result().submit().unwrap().broker_id().unwrap();
    assert_eq!(other.wait_result(&ignored, Duration::from_secs(20)).unwrap(), Some(Ok(json!(6))));
    let ttl: i64 = server.command(&["PTTL", &format!("look:r:{ignored}")]).parse().unwrap();
    assert!(ttl <= MIN_RESULT_TTL.as_millis() as i64 && ttl > 50_000, "{ttl}");
    // A result its waiting handle received stays too: the id may be looked
    // up later (a quick task's result reaches its handle before a web
    // request drops it).
    let waited = sender.add_named_task("double", json!(4)).unwrap();
    let waited_id = waited.broker_id().unwrap();
    assert_eq!(waited.join().unwrap(), json!(8));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(other.lookup(&waited_id).unwrap(), TaskLookup::Finished(Ok(json!(8))));
    // In-process tasks have no broker id.
    assert_eq!(TaskManager::new().add_task(|| 1).unwrap().broker_id(), None);
    for m in [web, other, worker] {
        m.shutdown();
    }
}
