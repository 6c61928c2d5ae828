//! What the Redis-mode test files share: a key prefix per test, a handle's
//! outcome within a bound, and a manager on the test's server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use taskmanager::{JoinTimeoutError, TaskError, TaskHandle, TaskManager};

use super::redis_server::RedisServer;

/// A key prefix of its own for each test (`tag` tells the files apart).
pub fn prefix(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{tag}{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// What a handle's task came to, waiting up to 30 s.
pub fn outcome(handle: TaskHandle<Value>) -> Result<Value, TaskError> {
    match handle.join_timeout(Duration::from_secs(30)) {
        Ok(value) => Ok(value),
        Err(JoinTimeoutError::Failed(e)) => Err(e),
        Err(_) => panic!("no result within 30 s"),
    }
}

/// A manager (not started) on `server`, under `prefix`, with a 2 s broker
/// timeout.
pub fn manager(server: &RedisServer, prefix: &str) -> TaskManager {
    TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(prefix)
        .broker_timeout(Duration::from_secs(2))
        .build()
        .expect("a redis:// URL builds")
}
