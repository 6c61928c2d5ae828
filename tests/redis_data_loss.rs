//! Redis losing its data is noticed, never silent: restarted without
//! persistence, every handle waiting on it settles with `ResultLost`
//! (saying so) within seconds, and the shared schedules this process
//! registered fire again, with no process registering them by hand.
//! Against a real `redis-server`, restarted by the harness. Needs the
//! `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::json;
use taskmanager::{JoinTimeoutError, Module, Recurrence, TaskError, TaskManager};

#[test]
fn a_redis_restart_without_persistence_settles_waiting_handles_and_schedules_fire_again() {
    let mut server = RedisServer::start();
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix("loss")
        .broker_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&ticks);
    jobs.register("tick", move |_| Ok(json!(counted.fetch_add(1, SeqCst)))).unwrap();
    manager.start_thread().unwrap();
    jobs.schedule_named_recurring(Recurrence::every(Duration::from_millis(100)), "tick", json!(null))
        .unwrap();
    // Tasks no worker here runs (no handler "later"): they wait in Redis,
    // queued or delayed, their handles waiting.
    let queued: Vec<_> = (0..10).map(|i| jobs.add_named_task("later", json!(i)).unwrap()).collect();
    let delayed: Vec<_> = (0..10)
        .map(|i| jobs.schedule_named_task(Duration::from_secs(3600), "later", json!(i)).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks.load(SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the schedule never fired");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.restart();
    let restarted = Instant::now();
    for handle in queued.into_iter().chain(delayed) {
        match handle.join_timeout(Duration::from_secs(20)) {
            Err(JoinTimeoutError::Failed(TaskError::ResultLost { reason })) => {
                assert!(reason.contains("Redis lost its data"), "{reason}")
            }
            Err(JoinTimeoutError::Timeout(_)) => panic!("a waiting handle never settled after the restart"),
            other => panic!("expected ResultLost, got {:?}", other.map_err(|e| format!("{e:?}"))),
        }
    }
    let settled = restarted.elapsed();
    assert!(settled < Duration::from_secs(15), "settled after {settled:?}");
    // The schedule is registered again and fires again.
    let before = ticks.load(SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks.load(SeqCst) < before + 3 {
        assert!(Instant::now() < deadline, "the schedule did not fire again after the restart");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.command(&["ZCARD", "loss:recur"]), "1");
    manager.shutdown();
}

/// What a crash of Redis (SIGKILL, under load) costs with each persistence
/// setting: submissions accepted before it, and how each handle ended. The
/// figures the README's deployment section quotes come from this test
/// (`cargo test --features redis --test redis_data_loss -- --nocapture`).
#[derive(Debug, Default)]
struct Crash {
    accepted: usize,
    completed: usize,
    lost: usize,
}

fn crash_under_load(args: &[&str]) -> Crash {
    let mut server = RedisServer::start_with(args);
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix("crash")
        .broker_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").max_workers(2).build().unwrap();
    jobs.register("work", |args| {
        std::thread::sleep(Duration::from_millis(2));
        Ok(args)
    })
    .unwrap();
    manager.start_thread().unwrap();
    let mut handles = Vec::new();
    let started = Instant::now();
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(2) {
        if !killed && started.elapsed() > Duration::from_secs(1) {
            // A backlog waits in Redis (two workers, 2 ms a task, take
            // 1,000 a second; about 2,000 a second are sent).
            server.kill();
            server.restart();
            killed = true;
        }
        if let Ok(handle) = jobs.add_named_task("work", json!(handles.len())) {
            handles.push(handle);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut crash = Crash { accepted: handles.len(), ..Crash::default() };
    for handle in handles {
        match handle.join_timeout(Duration::from_secs(60)) {
            Ok(_) => crash.completed += 1,
            Err(JoinTimeoutError::Failed(TaskError::ResultLost { .. })) => crash.lost += 1,
            Err(JoinTimeoutError::Timeout(_)) => panic!("a handle never settled ({args:?})"),
            Err(JoinTimeoutError::Failed(e)) => panic!("unexpected failure {e} ({args:?})"),
        }
    }
    manager.shutdown();
    eprintln!("persistence {args:?}: {crash:?}");
    crash
}

#[test]
fn what_a_redis_crash_under_load_loses_with_each_persistence_setting() {
    // No persistence: the backlog is lost, and every handle says so.
    let none = crash_under_load(&[]);
    assert_eq!(none.completed + none.lost, none.accepted);
    assert!(none.lost > 0, "{none:?}");
    // AOF, fsync every second or every write: a crash of the Redis process
    // (the machine staying up) loses no accepted task.
    for fsync in ["everysec", "always"] {
        let aof = crash_under_load(&["--appendonly", "yes", "--appendfsync", fsync]);
        assert_eq!((aof.lost, aof.completed), (0, aof.accepted), "appendfsync {fsync}");
    }
}
