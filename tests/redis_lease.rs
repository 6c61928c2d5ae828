//! Leases against a real `redis-server`: a worker's heartbeat renews only
//! the entries the group still has as its own. One taken over by another
//! worker (while this process was paused, say) stays with the taker; a
//! plain `XCLAIM` heartbeat took it back. Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::json;
use taskmanager::{Module, TaskManager};

/// The consumer the group has `stream`'s one pending entry under, and the
/// entry's id, if one is pending.
fn holder(server: &RedisServer, stream: &str) -> Option<(String, String)> {
    // Through a script that answers nothing while the group does not exist yet.
    let script = "local ok, r = pcall(redis.call, 'XPENDING', KEYS[1], 'taskmanager', '-', '+', 10) \
                  if ok then return r else return {} end";
    let reply = server.command(&["EVAL", script, "1", stream]);
    let mut parts = reply.lines();
    let id = parts.next().filter(|id| !id.is_empty())?.to_owned();
    Some((id, parts.next()?.to_owned()))
}

#[test]
fn the_heartbeat_renews_only_entries_still_its_own() {
    let server = RedisServer::start();
    let prefix = named::prefix("lease");
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(&prefix)
        .broker_lease(Duration::from_millis(900))
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(held);
    jobs.register("hold", move |_| {
        held.lock().unwrap().recv_timeout(Duration::from_secs(20)).ok();
        Ok(json!("released"))
    })
    .unwrap();
    manager.start_thread().unwrap();
    let handle = jobs.named_task("hold", json!([])).submit().unwrap();
    let stream = format!("{prefix}:s:jobs/hold");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (id, worker) = loop {
        if let Some(pending) = holder(&server, &stream) {
            break pending;
        }
        assert!(Instant::now() < deadline, "never claimed");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Another worker takes it over, as after this one's lease ran out.
    server.command(&["XCLAIM", &stream, "taskmanager", "intruder", "0", &id, "JUSTID"]);
    // Three heartbeats (a third of the lease each) later it is still theirs.
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        holder(&server, &stream),
        Some((id, "intruder".to_owned())),
        "taken back from the taker ({worker})"
    );
    // The intruder renews nothing, so the entry goes idle and this worker
    // may take it over again, as any lapsed lease: release a re-run too.
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert!(handle.wait_timeout(Duration::from_secs(10)));
    manager.shutdown();
}
