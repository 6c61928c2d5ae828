//! The outcome counters the broker keeps in Redis per task name
//! (`P:outcomes`, and a bucket a minute for rates), read back in
//! `ClusterStats::outcomes`; the dead-letter count; each module's delayed
//! tasks (`delayed_by_module`); and a finished task's attempts, as its stored result
//! records them. Against a real `redis-server`. Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use redis_server::RedisServer;
use serde_json::json;
use taskmanager::{Attempts, Module, Outcomes, RemoteError, Retry, TaskError, TaskManager};

fn quick(retries: u32) -> Retry {
    Retry::new(retries).backoff(Duration::from_millis(20), Duration::from_millis(40)).jitter(0.0)
}

/// A redis-server, a prefix tagged `tag`, a manager on them (not started)
/// and its module `jobs` with `workers` workers.
fn jobs(tag: &str, workers: usize) -> (RedisServer, String, TaskManager, Module) {
    let server = RedisServer::start();
    let prefix = named::prefix(tag);
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").max_workers(workers).build().unwrap();
    (server, prefix, manager, jobs)
}

#[test]
fn every_outcome_is_counted_once_per_task_name_with_rates_and_the_attempts_are_kept_with_the_result() {
    let (server, prefix, manager, jobs) = jobs("o", 2);
    jobs.register("ok", Ok).unwrap();
    jobs.register("bad", |_| Err(RemoteError::new("ValueError", "bad input"))).unwrap();
    // Fails its first call only.
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    jobs.register("flaky", move |_| match counted.fetch_add(1, SeqCst) {
        0 => Err(RemoteError::new("Timeout", "first call")),
        n => Ok(json!(n + 1)),
    })
    .unwrap();
    manager.start_thread().unwrap();

    for i in 0..4 {
        assert_eq!(named::outcome(jobs.add_named_task("ok", json!([i])).unwrap()), Ok(json!([i])));
    }
    for _ in 0..2 {
        assert!(matches!(
            named::outcome(jobs.add_named_task("bad", json!([])).unwrap()),
            Err(TaskError::Remote(_))
        ));
    }
    // One retried then dead-lettered: 2 retried, 1 dead-lettered, no failure.
    let buried = jobs.named_task("bad", json!([])).retry(quick(2).dead_letter(true)).submit().unwrap();
    assert!(matches!(named::outcome(buried), Err(TaskError::DeadLettered { .. })));
    // One that succeeds on its second attempt.
    let flaky = jobs.named_task("flaky", json!([])).retry(quick(1)).submit().unwrap();
    let flaky_id = flaky.broker_id().unwrap();
    assert_eq!(named::outcome(flaky), Ok(json!(2)));
    // One delayed and cancelled; one delayed and left waiting.
    let cancelled = jobs.schedule_named_task(Duration::from_secs(60), "ok", json!([])).unwrap();
    assert!(cancelled.cancel());
    let _waiting = jobs.schedule_named_task(Duration::from_secs(60), "ok", json!([])).unwrap();

    let stats = manager.cluster_stats().unwrap();
    let of = |name: &str| {
        let found: Vec<_> = stats.outcomes.iter().filter(|t| t.module == "jobs" && t.name == name).collect();
        assert_eq!(found.len(), 1, "{:?}", stats.outcomes);
        found[0].clone()
    };
    let ok = of("ok");
    assert_eq!(ok.total, Outcomes { succeeded: 4, cancelled: 1, ..Outcomes::default() });
    assert_eq!(of("bad").total, Outcomes { failed: 2, retried: 2, dead_lettered: 1, ..Outcomes::default() });
    assert_eq!(of("flaky").total, Outcomes { succeeded: 1, retried: 1, ..Outcomes::default() });
    // Everything happened within the last minute or two.
    assert!(ok.per_minute_1.succeeded > 0.0 && ok.per_minute_1.succeeded <= 4.0, "{ok:?}");
    assert!(ok.per_minute_5.succeeded > 0.0 && ok.per_minute_5.succeeded <= 4.0 / 5.0 + 1e-9, "{ok:?}");
    assert_eq!(stats.dead_letters, 1);
    let load = stats.modules.iter().find(|m| m.name == "jobs").unwrap();
    assert_eq!((load.queued, load.running), (0, 0), "{:?}", stats.modules);
    assert_eq!(stats.delayed, 1);
    assert_eq!(manager.delayed_by_module().unwrap(), [("jobs".to_owned(), 1)].into());
    // The counters are keyed by task name only: no id, no label.
    let fields = server.command(&["HKEYS", &format!("{prefix}:outcomes")]);
    assert!(!fields.contains(&flaky_id), "{fields}");

    assert_eq!(manager.attempts(&flaky_id).unwrap(), Some(Attempts { attempt: 2, deliveries: Some(1) }));
    assert_eq!(manager.attempts("no-such-task").unwrap(), None);
    manager.shutdown();
}

#[test]
fn a_queued_or_running_task_is_located_in_its_stream_by_id_and_a_claimed_one_listed() {
    let (_server, _prefix, manager, jobs) = jobs("l", 1);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    jobs.register("hold", move |_| {
        started_tx.send(()).unwrap();
        release_rx.lock().unwrap().recv_timeout(Duration::from_secs(30)).unwrap();
        Ok(json!(null))
    })
    .unwrap();
    // Not started: nothing claims it.
    let handle = jobs.add_named_task("hold", json!([])).unwrap();
    let id = handle.broker_id().unwrap();
    assert_eq!(manager.claimed_tasks(10).unwrap(), vec![], "queued is not claimed");
    let queued = manager.locate(&id).unwrap().expect("queued in its stream");
    assert_eq!((queued.module.as_str(), queued.name.as_str()), ("jobs", "hold"));
    assert_eq!((queued.worker, queued.deliveries, queued.attempt), (None, 0, 1));
    manager.start_thread().unwrap();
    started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let running = manager.locate(&id).unwrap().expect("held by this worker");
    // This manager runs it: its id is the task id's first part.
    assert_eq!(running.worker.as_deref(), Some(id.rsplit_once('-').unwrap().0), "{running:?}");
    assert_eq!(running.deliveries, 1);
    // The cluster's claimed tasks list it, with its holder.
    let claimed = manager.claimed_tasks(10).unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed[0].id.as_str(), claimed[0].module.as_str(), claimed[0].name.as_str()),
        (id.as_str(), "jobs", "hold")
    );
    assert_eq!((Some(claimed[0].worker.clone()), claimed[0].deliveries), (running.worker.clone(), 1));
    release_tx.send(()).unwrap();
    assert_eq!(named::outcome(handle), Ok(json!(null)));
    assert_eq!(manager.locate(&id).unwrap(), None);
    assert_eq!(manager.claimed_tasks(10).unwrap(), vec![], "acknowledged: no longer claimed");
    assert_eq!(manager.locate("no-such-task").unwrap(), None);
    manager.shutdown();
}
