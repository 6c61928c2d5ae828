//! Tasks of a name no live worker can run, against a real `redis-server`
//! (`src/broker/unrunnable.rs`): after the wait
//! (`Builder::broker_unrunnable_after`, here 1-2 s) such a task goes to
//! the dead-letter set with the reason, and its handle settles
//! `DeadLettered`; a task of a name a live worker has is never touched,
//! however long it waits for that busy worker; a worker that starts
//! reading the name before the wait ends runs it; a requeued task runs once
//! a worker has its name; with no worker alive nothing is swept, and the
//! wait starts again when one comes back. Each test also dead-letters a
//! task of an unknown name (`ghost`), so each fails without the sweep.
//! Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Builder, Module, TaskError, TaskHandle, TaskLookup, TaskManager};

fn builder(server: &RedisServer, prefix: &str, wait: Duration) -> Builder {
    TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(prefix)
        .broker_timeout(Duration::from_secs(2))
        .broker_unrunnable_after(wait)
}

/// A started worker whose module `jobs` runs `names` (each echoes its
/// argument, after sleeping that many ms if it is a number).
fn worker(server: &RedisServer, prefix: &str, wait: Duration, names: &[&str]) -> (TaskManager, Module) {
    let manager = builder(server, prefix, wait).build().unwrap();
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    for name in names {
        jobs.register(name, |args: Value| {
            if let Some(ms) = args.as_u64() {
                std::thread::sleep(Duration::from_millis(ms));
            }
            Ok(args)
        })
        .unwrap();
    }
    manager.start_thread().unwrap();
    (manager, jobs)
}

/// A submit-only process's module `jobs` (it runs nothing, sweeps nothing).
fn submitter(server: &RedisServer, prefix: &str) -> (TaskManager, Module) {
    let manager = builder(server, prefix, Duration::from_secs(3600)).submit_only().build().unwrap();
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    (manager, jobs)
}

/// The reason a dead-lettered task's handle gives, or a panic.
fn dead_reason(handle: TaskHandle<Value>) -> String {
    match named::outcome(handle) {
        Err(TaskError::DeadLettered { reason }) => reason,
        other => panic!("expected DeadLettered, got {other:?}"),
    }
}

const REASON: &str = "no live worker can run task jobs/ghost: none has read it for ";

fn dead_ids(manager: &TaskManager) -> Vec<String> {
    manager.dead_letters(100).unwrap().into_iter().map(|d| d.id).collect()
}

#[test]
fn a_task_of_a_name_no_worker_has_is_dead_lettered_after_the_wait() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    let wait = Duration::from_secs(1);
    let (manager, jobs) = worker(&server, &prefix, wait, &["echo"]);
    let (sender, sent) = submitter(&server, &prefix);
    let started = Instant::now();
    let ghost = sent.add_named_task("ghost", json!(["x"])).unwrap();
    let id = ghost.broker_id().unwrap();
    let reason = dead_reason(ghost);
    let took = started.elapsed();
    assert!(reason.starts_with(REASON) && reason.ends_with(" s"), "{reason}");
    assert!(took >= wait, "dead-lettered after {took:?}, before the wait");
    println!(
        "figure: unknown name, wait 1 s: handle DeadLettered {:.2} s after the submission",
        took.as_secs_f64()
    );
    let dead = manager.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(
        (letter.id.as_str(), letter.module.as_str(), letter.name.as_str()),
        (id.as_str(), "jobs", "ghost")
    );
    assert_eq!(
        (letter.args.as_str(), letter.reason.as_str(), letter.deliveries),
        ("[\"x\"]", reason.as_str(), 0)
    );
    assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:jobs/ghost")]), "0", "out of its stream");
    assert_eq!(manager.lookup(&id).unwrap(), TaskLookup::Finished(Err(TaskError::DeadLettered { reason })));
    // The worker's own name is served as before.
    assert_eq!(named::outcome(sent.add_named_task("echo", json!("after")).unwrap()), Ok(json!("after")));
    assert_eq!(jobs.stats().completed, 1);
    sender.shutdown();
}

#[test]
fn every_waiting_entry_of_the_name_goes_but_one_a_consumer_holds() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    let (manager, _jobs) = worker(&server, &prefix, Duration::from_secs(1), &["echo"]);
    let (sender, sent) = submitter(&server, &prefix);
    let stream = format!("{prefix}:s:jobs/ghost");
    // Delivered to a consumer (as to a worker that died holding it):
    // pending, the lease's business, not the sweep's.
    let held = sent.add_named_task("ghost", json!("held")).unwrap();
    server.command(&["XGROUP", "CREATE", &stream, "taskmanager", "0"]);
    server.command(&["XREADGROUP", "GROUP", "taskmanager", "gone", "COUNT", "1", "STREAMS", &stream, ">"]);
    // More than one call's batch (100).
    let waiting: Vec<_> = (0..250).map(|i| sent.add_named_task("ghost", json!(i)).unwrap()).collect();
    for handle in waiting {
        assert!(dead_reason(handle).starts_with(REASON));
    }
    assert_eq!(manager.dead_letters(1000).unwrap().len(), 250);
    assert_eq!(server.command(&["XLEN", &stream]), "1", "the held entry stays");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!held.is_done());
    assert_eq!(server.command(&["XLEN", &stream]), "1");
    sender.shutdown();
}

#[test]
fn a_task_a_busy_live_worker_can_run_waits_past_the_wait_untouched() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    // The busy worker sweeps once at its start, then every minute (a wait
    // of 1 h); the other, every 100 ms (a wait of 1 s): the sweeps that
    // find the waiting task are another worker's, which cannot run it.
    let (busy, jobs) = worker(&server, &prefix, Duration::from_secs(3600), &["slow"]);
    let (manager, _other) = worker(&server, &prefix, Duration::from_secs(1), &["echo"]);
    let (sender, sent) = submitter(&server, &prefix);
    let started = Instant::now();
    // One worker thread: the second waits 3 s in the stream, unread.
    let first = sent.add_named_task("slow", json!(3000)).unwrap();
    let second = sent.add_named_task("slow", json!("second")).unwrap();
    let ghost = sent.add_named_task("ghost", json!(null)).unwrap();
    assert!(dead_reason(ghost).starts_with(REASON));
    while started.elapsed() < Duration::from_millis(2500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!second.is_done(), "the second ended (ran or was dead-lettered) before the first");
    assert_eq!(named::outcome(first), Ok(json!(3000)));
    assert_eq!(named::outcome(second), Ok(json!("second")));
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(manager.dead_letters(10).unwrap().len(), 1, "only the ghost");
    assert_eq!(jobs.stats().completed, 2);
    busy.shutdown();
    sender.shutdown();
}

#[test]
fn a_worker_that_starts_reading_a_name_before_the_wait_ends_runs_its_task() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    let wait = Duration::from_secs(2);
    let (manager, _jobs) = worker(&server, &prefix, wait, &["echo"]);
    let (sender, sent) = submitter(&server, &prefix);
    let late = sent.add_named_task("late", json!("late")).unwrap();
    let ghost = sent.add_named_task("ghost", json!(null)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (newer, newer_jobs) = worker(&server, &prefix, wait, &["late"]);
    assert_eq!(named::outcome(late), Ok(json!("late")));
    assert!(dead_reason(ghost).starts_with(REASON));
    let ids = dead_ids(&manager);
    assert_eq!(ids.len(), 1, "only the ghost: {ids:?}");
    assert_eq!(newer_jobs.stats().completed, 1);
    newer.shutdown();
    sender.shutdown();
}

#[test]
fn a_requeued_task_runs_once_a_worker_has_its_name() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    let wait = Duration::from_secs(1);
    let (manager, _jobs) = worker(&server, &prefix, wait, &["echo"]);
    let (sender, sent) = submitter(&server, &prefix);
    let ghost = sent.add_named_task("ghost", json!("boo")).unwrap();
    let id = ghost.broker_id().unwrap();
    assert!(dead_reason(ghost).starts_with(REASON));
    let (newer, newer_jobs) = worker(&server, &prefix, wait, &["ghost"]);
    assert_eq!(manager.requeue_dead_letters(std::slice::from_ref(&id)).unwrap(), 1);
    assert!(manager.dead_letters(10).unwrap().is_empty());
    // Its result replaces the dead-letter notice kept under its id.
    let deadline = Instant::now() + Duration::from_secs(20);
    while manager.lookup(&id).unwrap() != TaskLookup::Finished(Ok(json!("boo"))) {
        assert!(Instant::now() < deadline, "the requeued task never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(newer_jobs.stats().completed, 1);
    newer.shutdown();
    sender.shutdown();
}

#[test]
fn with_no_worker_alive_nothing_is_swept_and_the_wait_starts_again_with_one() {
    let server = RedisServer::start();
    let prefix = named::prefix("u");
    let wait = Duration::from_secs(2);
    // A short lease: a gap of more than two sweep periods and a lease (here
    // 0.9 s) with no worker alive restarts the wait.
    let lease = Duration::from_millis(500);
    let make = || {
        let manager = builder(&server, &prefix, wait).broker_lease(lease).build().unwrap();
        let jobs = Module::builder(&manager).name("jobs").build().unwrap();
        jobs.register("echo", Ok).unwrap();
        manager.start_thread().unwrap();
        manager
    };
    let first = make();
    let (sender, sent) = submitter(&server, &prefix);
    let ghost = sent.add_named_task("ghost", json!(null)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    first.shutdown();
    // Longer than the wait, with no worker: the task waits.
    std::thread::sleep(wait + Duration::from_millis(500));
    let stream = format!("{prefix}:s:jobs/ghost");
    assert_eq!(server.command(&["XLEN", &stream]), "1");
    assert!(!ghost.is_done());
    let back = Instant::now();
    let second = make();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(server.command(&["XLEN", &stream]), "1", "dead-lettered as the cluster came back");
    assert!(dead_reason(ghost).starts_with(REASON));
    let took = back.elapsed();
    assert!(took >= wait, "dead-lettered {took:?} after a worker came back, before the wait");
    println!(
        "figure: unknown name, wait 2 s, 2.5 s with no worker: dead-lettered {:.2} s after a worker came back",
        took.as_secs_f64()
    );
    assert_eq!(dead_ids(&second).len(), 1);
    second.shutdown();
    sender.shutdown();
}
