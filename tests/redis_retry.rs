//! Retries of named tasks against a real `redis-server`: the worker whose
//! run failed schedules the next attempt in Redis in the same step as its
//! acknowledgement; one handle across every attempt; the policy's error
//! kinds choose what retries; a module's default applies; a task that
//! waits to retry can be cancelled. Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Module, RemoteError, Retry, TaskError, TaskManager};

/// A started manager whose module `jobs` (with `workers` workers) has the
/// handler `flaky`, failing its first `failures` calls; and its calls.
fn started(failures: u32, workers: usize) -> (RedisServer, String, TaskManager, Module, Arc<AtomicU32>) {
    let server = RedisServer::start();
    let prefix = named::prefix("r");
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").max_workers(workers).build().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    jobs.register("flaky", flaky(failures, "Timeout", &calls)).unwrap();
    manager.start_thread().unwrap();
    (server, prefix, manager, jobs, calls)
}

/// Waits up to 10 s for `cond`.
fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Fast retries, no jitter.
fn quick(retries: u32) -> Retry {
    Retry::new(retries).backoff(Duration::from_millis(20), Duration::from_millis(80)).jitter(0.0)
}

/// A handler that fails with `kind` its first `failures` calls, then
/// returns the call's number.
fn flaky(
    failures: u32,
    kind: &'static str,
    calls: &Arc<AtomicU32>,
) -> impl Fn(Value) -> Result<Value, RemoteError> {
    let calls = Arc::clone(calls);
    move |_| {
        let n = calls.fetch_add(1, SeqCst) + 1;
        if n <= failures {
            let mut e = RemoteError::new(kind, format!("failure {n}"));
            e.kinds = vec![format!("app.{kind}"), "app.Transient".to_owned()];
            Err(e)
        } else {
            Ok(json!(n))
        }
    }
}

#[test]
fn a_failing_named_task_is_retried_through_redis_and_its_one_handle_gets_the_success() {
    let (server, prefix, manager, jobs, _calls) = started(2, 2);
    let started = Instant::now();
    let handle = jobs.named_task("flaky", json!([])).retry(quick(3)).submit().unwrap();
    assert_eq!(named::outcome(handle), Ok(json!(3)));
    // 20 ms, then 40 ms, by Redis's clock.
    assert!(started.elapsed() >= Duration::from_millis(60), "{:?}", started.elapsed());
    // The worker counted the run before it sent the result, as in-process.
    let stats = jobs.stats();
    assert_eq!((stats.completed, stats.failed, stats.retried), (1, 0, 2));
    manager.shutdown();
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:delayed")]), "0");
    assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:jobs/flaky")]), "0");
}

#[test]
fn the_last_failure_comes_back_once_the_retries_are_spent() {
    let (_server, _prefix, _manager, jobs, calls) = started(u32::MAX, 1);
    let handle = jobs.named_task("flaky", json!([])).retry(quick(2)).submit().unwrap();
    match named::outcome(handle) {
        Err(TaskError::Remote(e)) => assert_eq!(e.message, "failure 3"),
        other => panic!("expected the third failure, got {other:?}"),
    }
    wait_for(|| jobs.stats().failed == 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(SeqCst), 3);
    let stats = jobs.stats();
    assert_eq!((stats.failed, stats.retried), (1, 2));
}

#[test]
fn only_the_listed_error_kinds_retry_and_a_module_default_applies() {
    let server = RedisServer::start();
    let prefix = named::prefix("r");
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").retry(quick(5).on(["app.Transient"])).build().unwrap();
    let (transient, fatal) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    jobs.register("transient", flaky(1, "Timeout", &transient)).unwrap();
    jobs.register("fatal", move |_| {
        fatal.fetch_add(1, SeqCst);
        Err(RemoteError::new("ValueError", "bad input"))
    })
    .unwrap();
    manager.start_thread().unwrap();
    // The module's default: its kinds list app.Transient, a base of the
    // error's (its `kinds`).
    assert_eq!(named::outcome(jobs.add_named_task("transient", json!([])).unwrap()), Ok(json!(2)));
    match named::outcome(jobs.add_named_task("fatal", json!([])).unwrap()) {
        Err(TaskError::Remote(e)) => assert_eq!(e.kind, "ValueError"),
        other => panic!("expected the ValueError, got {other:?}"),
    }
    assert_eq!(jobs.stats().retried, 1, "the ValueError is not of a listed kind");
}

#[test]
fn a_named_task_waiting_to_retry_can_be_cancelled() {
    let (server, prefix, _manager, jobs, calls) = started(u32::MAX, 1);
    let slow = Retry::new(3).backoff(Duration::from_secs(60), Duration::from_secs(60)).jitter(0.0);
    let handle = jobs.named_task("flaky", json!([])).retry(slow).submit().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.command(&["ZCARD", &format!("{prefix}:delayed")]) != "1" {
        assert!(Instant::now() < deadline, "the retry was never scheduled");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(handle.cancel(), "a task waiting to retry cancels");
    assert_eq!(named::outcome(handle), Err(TaskError::Cancelled));
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:delayed")]), "0");
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_task_that_used_up_its_retries_is_dead_lettered_with_its_last_error_when_asked() {
    let (_server, _prefix, manager, jobs, calls) = started(u32::MAX, 1);
    let retry = quick(2).on(["app.Transient"]).dead_letter(true);
    let handle = jobs.named_task("flaky", json!([])).retry(retry.clone()).submit().unwrap();
    match named::outcome(handle) {
        Err(TaskError::DeadLettered { reason }) => {
            assert!(reason.starts_with("retries used up: attempt 3 failed"), "{reason}")
        }
        other => panic!("expected DeadLettered, got {other:?}"),
    }
    assert_eq!(calls.load(SeqCst), 3);
    let dead = manager.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    let error = dead[0].error.clone().expect("the last error is kept");
    assert_eq!((error.kind.as_str(), error.message.as_str()), ("Timeout", "failure 3"));
    assert_eq!(dead[0].deliveries, 3);
    // A failure of a kind it does not retry is a plain failure.
    jobs.register("fatal", |_| Err(RemoteError::new("ValueError", "bad input"))).unwrap();
    let fatal = jobs.named_task("fatal", json!([])).retry(retry).submit().unwrap();
    assert!(matches!(named::outcome(fatal), Err(TaskError::Remote(_))));
    assert_eq!(manager.dead_letters(10).unwrap().len(), 1);
}
