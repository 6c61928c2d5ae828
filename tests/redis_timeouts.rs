//! The broker timeout bounds each call to Redis as a whole (connect, write,
//! read), and a call that runs out says where Redis is, what the call was
//! and after how long. The "Redis" here is a real `redis-server` stopped
//! with SIGSTOP: it accepts connections (the kernel does) and never answers.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::process::Command;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::json;
use taskmanager::{SubmitError, TaskManager};

/// The server SIGSTOPped while this lives; SIGCONT when dropped (also when
/// the test panics), so the harness can shut it down.
struct Stopped(u32);

impl Stopped {
    fn new(server: &RedisServer) -> Stopped {
        let pid = server.pid().expect("a running server");
        signal("-STOP", pid);
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(which: &str, pid: u32) {
    let status = Command::new("kill").arg(which).arg(pid.to_string()).status().expect("kill runs");
    assert!(status.success(), "kill {which} {pid}");
}

/// A submission's error and how long it took.
fn submit(manager: &TaskManager) -> (String, Duration) {
    let started = Instant::now();
    let err = manager.default_module().add_named_task("x", json!(1)).map(drop).unwrap_err();
    let took = started.elapsed();
    match err {
        SubmitError::Broker(why) => (why, took),
        other => panic!("expected SubmitError::Broker, got {other:?}"),
    }
}

#[test]
fn a_submission_to_a_redis_that_never_answers_fails_within_the_timeout_saying_where_and_after_how_long() {
    let server = RedisServer::start();
    let timeout = Duration::from_secs(1);
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix("timeouts")
        .broker_timeout(timeout)
        .build()
        .unwrap();
    // One that goes through leaves its connection pooled.
    manager.default_module().add_named_task("x", json!(1)).unwrap();
    let _stopped = Stopped::new(&server);
    let limit = timeout.mul_f64(1.9);
    // On the pooled connection: the reply never comes.
    let (pooled, took_pooled) = submit(&manager);
    // On a new one: the connect's handshake never ends (it took the whole
    // timeout, then the reply another: 2 x the timeout).
    let (fresh, took_fresh) = submit(&manager);
    println!(
        "figure: timeout 1 s, Redis stopped: pooled call {took_pooled:.2?}, new connection {took_fresh:.2?}"
    );
    for (why, took) in [(&pooled, took_pooled), (&fresh, took_fresh)] {
        assert!(took >= timeout.mul_f64(0.9) && took < limit, "took {took:?}: {why}");
        let expected = format!(
            "Redis at 127.0.0.1:{} did not answer within 1.0 s (XADD to timeouts:s:default/x)",
            server.port()
        );
        assert!(why.starts_with(&expected), "{why}");
    }
}
