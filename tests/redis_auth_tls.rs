//! AUTH and TLS through the broker URL, against a real `redis-server`: a
//! `requirepass` password (`redis://:pw@`), an ACL user (`redis://user:pw@`)
//! and TLS (`rediss://`, trusting a private CA with `broker_ca_file`) each
//! carry submissions, claims, results, delayed and recurring tasks; a wrong
//! password or an untrusted certificate fails the submission promptly,
//! saying which. The TLS server's certificates are made at test time with
//! the `openssl` CLI. Without `redis-server` (or `openssl`) these fail.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{
    Builder, ConfigError, JoinTimeoutError, Module, Recurrence, SubmitError, TaskHandle, TaskManager,
};

const PASSWORD: &str = "s3cret";

/// A key prefix of its own for each test.
fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("auth{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn builder(url: &str) -> Builder {
    TaskManager::builder().broker(url).broker_prefix(&prefix()).broker_timeout(Duration::from_secs(2))
}

fn value(handle: TaskHandle<Value>) -> Value {
    match handle.join_timeout(Duration::from_secs(30)) {
        Ok(value) => value,
        Err(JoinTimeoutError::Failed(e)) => panic!("the task failed: {e:?}"),
        Err(_) => panic!("no result within 30 s"),
    }
}

/// Runs named tasks end to end through `manager`'s broker: immediate ones
/// (submit, claim, result), a delayed one, and a recurring one until it
/// ticked three times.
fn runs_named_tasks(manager: &TaskManager) {
    let jobs = Module::builder(manager).name("jobs").max_workers(2).build().unwrap();
    jobs.register("double", |args: Value| Ok(json!(args.as_i64().unwrap_or(0) * 2))).unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&ticks);
    jobs.register("tick", move |_| Ok(json!(counted.fetch_add(1, Ordering::SeqCst)))).unwrap();
    manager.start_thread().unwrap();

    let handles: Vec<_> = (0..20).map(|i| jobs.add_named_task("double", json!(i)).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(value(handle), json!(i * 2));
    }
    let delayed = jobs.schedule_named_task(Duration::from_millis(200), "double", json!(21)).unwrap();
    assert_eq!(value(delayed), json!(42));
    let schedule = jobs
        .schedule_named_recurring(Recurrence::every(Duration::from_millis(100)), "tick", Value::Null)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the recurring task ticked {} times in 20 s",
            ticks.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(schedule.cancel().unwrap(), "the schedule existed");
    manager.shutdown();
}

/// The submission's error, which must come within the broker timeout (2 s)
/// and a margin, not hang.
fn submit_error(manager: &TaskManager) -> String {
    let started = Instant::now();
    let err = manager.default_module().add_named_task("x", json!(1)).unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the submission failed only after {took:?}");
    match err {
        SubmitError::Broker(why) => {
            eprintln!("figure: the submission failed after {took:?}: {why}");
            why
        }
        other => panic!("expected SubmitError::Broker, got {other:?}"),
    }
}

#[test]
fn a_password_in_the_url_carries_named_delayed_and_recurring_tasks() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", server.port());
    runs_named_tasks(&builder(&url).build().unwrap());
}

#[test]
fn an_acl_user_in_the_url_carries_named_delayed_and_recurring_tasks() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    // A user of its own, whose password is not the default user's: only an
    // AUTH that names the user gets in. (The space is percent-encoded.)
    server.command(&["ACL", "SETUSER", "worker", "on", ">w0rker pw", "~*", "&*", "+@all"]);
    let url = format!("redis://worker:w0rker%20pw@127.0.0.1:{}/0", server.port());
    runs_named_tasks(&builder(&url).build().unwrap());
}

#[test]
fn a_wrong_or_missing_password_fails_the_submission_saying_so() {
    let server = RedisServer::start_with(&["--requirepass", PASSWORD]);
    let wrong = format!("redis://:nope@127.0.0.1:{}/0", server.port());
    let why = submit_error(&builder(&wrong).build().unwrap());
    assert!(why.contains("refused the broker URL's user or password"), "{why}");
    let none = submit_error(&builder(&server.url()).build().unwrap());
    assert!(none.contains("requires authentication"), "{none}");
    let user = format!("redis://nobody:{PASSWORD}@127.0.0.1:{}/0", server.port());
    let why = submit_error(&builder(&user).build().unwrap());
    assert!(why.contains("refused the broker URL's user or password"), "{why}");
}

#[test]
fn a_rediss_url_with_the_ca_file_carries_named_delayed_and_recurring_tasks() {
    let server = RedisServer::start_tls(&["--requirepass", PASSWORD]);
    let url = server.tls_url().replace("rediss://", &format!("rediss://:{PASSWORD}@"));
    let manager = builder(&url).broker_ca_file(server.ca_file()).build().unwrap();
    runs_named_tasks(&manager);
}

#[test]
fn without_the_ca_file_the_certificate_is_refused_saying_so() {
    let server = RedisServer::start_tls(&[]);
    let why = submit_error(&builder(&server.tls_url()).build().unwrap());
    assert!(why.contains("not trusted") && why.contains("broker_ca_file"), "{why}");
    // A plain client on the TLS port gets no answer it can read: an error,
    // within the timeout, not a hang.
    let plain = server.tls_url().replace("rediss://", "redis://");
    submit_error(&builder(&plain).build().unwrap());
}

#[test]
fn an_unusable_ca_file_is_a_config_error() {
    let missing = std::env::temp_dir().join(format!("taskmanager-no-such-ca-{}.pem", std::process::id()));
    let err = builder("rediss://127.0.0.1:6380/0").broker_ca_file(&missing).build().unwrap_err();
    assert!(
        matches!(&err, ConfigError::Broker(why) if why.contains("cannot read") && why.contains("no-such-ca")),
        "{err:?}"
    );

    let empty = std::env::temp_dir().join(format!("taskmanager-empty-ca-{}.pem", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = builder("rediss://127.0.0.1:6380/0").broker_ca_file(&empty).build().unwrap_err();
    let _ = std::fs::remove_file(&empty);
    assert!(matches!(&err, ConfigError::Broker(why) if why.contains("no PEM certificate")), "{err:?}");

    let server = RedisServer::start_tls(&[]);
    let err = builder(&server.url()).broker_ca_file(server.ca_file()).build().unwrap_err();
    assert!(matches!(&err, ConfigError::Broker(why) if why.contains("rediss://")), "{err:?}");
}
