//! What idle processes do in Redis: a `submit_only` process fires no
//! schedule (only workers call `FIRE`), and an idle worker sleeps until the
//! next due time, woken when another process schedules something sooner.
//! Against a real `redis-server`; the costs are in BENCHMARKS.md ("Idle
//! cost against Redis", `benches/idle_cost.py`).
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Module, TaskManager};

fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("idle{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A started manager with module `jobs` (handler `echo`).
fn started(server: &RedisServer, prefix: &str, submit_only: bool) -> (TaskManager, Module) {
    let mut builder = TaskManager::builder().broker(&server.url()).broker_prefix(prefix);
    if submit_only {
        builder = builder.submit_only();
    }
    let manager = builder.build().unwrap();
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    jobs.register("echo", |args: Value| Ok(args)).unwrap();
    manager.start_thread().unwrap();
    (manager, jobs)
}

/// Calls of `command` since the server started, from `INFO commandstats`.
fn calls(server: &RedisServer, command: &str) -> u64 {
    let info = server.command(&["INFO", "commandstats"]);
    let line = info.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:")));
    line.and_then(|l| l.split(['=', ',']).nth(1)).map_or(0, |n| n.parse().unwrap())
}

#[test]
fn a_submit_only_process_fires_nothing_and_a_worker_fires_what_it_scheduled() {
    let server = RedisServer::start();
    let prefix = prefix();
    let (_submitter, jobs) = started(&server, &prefix, true);
    let handle = jobs.schedule_named_task(Duration::from_millis(200), "echo", json!("late")).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Past its due time, still delayed: nothing called FIRE (the only
    // script that calls ZRANGEBYSCORE, besides a worker's heartbeat).
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:delayed")]), "1");
    assert_eq!(calls(&server, "zrangebyscore"), 0);
    let (_worker, _) = started(&server, &prefix, false);
    assert_eq!(handle.join_timeout(Duration::from_secs(10)).unwrap(), json!("late"));
}

#[test]
fn a_long_idle_worker_is_woken_by_a_schedule_from_another_process_and_fires_it_on_time() {
    let server = RedisServer::start();
    let prefix = prefix();
    let (_worker, _) = started(&server, &prefix, false);
    let (_submitter, jobs) = started(&server, &prefix, true);
    // Nothing scheduled: the worker sleeps (its safety net is 5 s).
    std::thread::sleep(Duration::from_secs(3));
    let fires = calls(&server, "evalsha");
    let sent = Instant::now();
    let handle = jobs.schedule_named_task(Duration::from_millis(200), "echo", json!("woken")).unwrap();
    assert_eq!(handle.join_timeout(Duration::from_secs(10)).unwrap(), json!("woken"));
    let took = sent.elapsed();
    println!("figure: 0.2 s delayed task to a worker idle for 3 s: result after {took:.2?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_millis(1500), "{took:?}");
    // Idle, it called nearly nothing: at most a few FIREs and heartbeats in
    // 3 s (it was 60 FIREs: one per 50 ms).
    assert!(fires < 20, "{fires} EVALSHA calls");
}

#[test]
fn a_worker_that_stops_cleanly_leaves_the_consumer_groups_it_read() {
    let server = RedisServer::start();
    let prefix = format!("hy{}", std::process::id());
    let consumers = |name: &str| {
        server.command(&["XINFO", "CONSUMERS", &format!("{prefix}:s:jobs/{name}"), "taskmanager"])
    };
    for round in 0..3 {
        let manager = TaskManager::builder().broker(&server.url()).broker_prefix(&prefix).build().unwrap();
        let jobs = Module::builder(&manager).name("jobs").build().unwrap();
        jobs.register("echo", Ok).unwrap();
        jobs.register("other", Ok).unwrap();
        manager.start_thread().unwrap();
        let handle = jobs.add_named_task("echo", serde_json::json!(round)).unwrap();
        assert_eq!(handle.join().unwrap(), serde_json::json!(round));
        assert!(!consumers("echo").is_empty(), "a member while it works");
        manager.shutdown();
    }
    // Three workers came and went: none is left a member of either group.
    assert_eq!(consumers("echo"), "");
    assert_eq!(consumers("other"), "");
}
