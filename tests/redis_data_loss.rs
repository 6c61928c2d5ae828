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
