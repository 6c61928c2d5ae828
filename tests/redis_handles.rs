//! What the submitter of a named task sees of it, against a real
//! `redis-server`, as it would see a task run in-process: its handle's
//! `is_running()` while a worker (here, its own claimer) runs it, and not
//! before or after; `TaskManager::tasks()` lists the delayed ones it sent
//! while they wait in Redis. Needs the `redis` feature.
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use serde_json::{json, Value};
use taskmanager::{Event, Module, RemoteError, Retry, TaskError, TaskManager, TaskState};

/// Waits up to 10 s for `cond`.
fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A gate a handler holds on: `started` counts its runs, `release` lets
/// them return.
#[derive(Clone, Default)]
struct Gate {
    started: Arc<AtomicU32>,
    released: Arc<AtomicBool>,
}

impl Gate {
    /// A handler that fails its first `failures` runs, then holds until
    /// released and returns its argument.
    fn handler(&self, failures: u32) -> impl Fn(Value) -> Result<Value, RemoteError> {
        let gate = self.clone();
        move |args| {
            let n = gate.started.fetch_add(1, SeqCst) + 1;
            if n <= failures {
                return Err(RemoteError::new("Timeout", format!("failure {n}")));
            }
            while !gate.released.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(args)
        }
    }

    fn release(&self) {
        self.released.store(true, SeqCst);
    }
}

/// A started manager (and its key prefix) whose module `jobs` has one
/// worker and the handlers `hold` (held on `gate`, after `failures` failed
/// runs) and `echo`.
fn started(failures: u32, gate: &Gate) -> (RedisServer, String, TaskManager, Module) {
    let server = RedisServer::start();
    let prefix = named::prefix("h");
    let manager = named::manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    jobs.register("hold", gate.handler(failures)).unwrap();
    jobs.register("echo", Ok::<Value, RemoteError>).unwrap();
    manager.start_thread().unwrap();
    (server, prefix, manager, jobs)
}

#[test]
fn a_named_tasks_handle_is_running_while_a_worker_runs_it_and_not_before_or_after() {
    let gate = Gate::default();
    let (_server, _, manager, jobs) = started(0, &gate);
    let busy = jobs.add_named_task("hold", json!("held")).unwrap();
    wait_for(|| gate.started.load(SeqCst) == 1);
    assert!(busy.is_running() && !busy.is_done());
    // The one worker is busy: this one waits in its stream, unclaimed.
    let queued = jobs.add_named_task("echo", json!(1)).unwrap();
    let later = jobs.schedule_named_task(Duration::from_secs(30), "echo", json!(2)).unwrap();
    assert!(!queued.is_running() && !later.is_running());
    assert!(!busy.cancel(), "a running task is not cancelled");
    gate.release();
    assert!(busy.wait_timeout(Duration::from_secs(10)));
    assert!(!busy.is_running() && busy.is_done());
    assert_eq!(named::outcome(busy), Ok(json!("held")));
    assert!(queued.wait_timeout(Duration::from_secs(10)) && !queued.is_running());
    assert!(later.cancel() && !later.is_running());
    manager.shutdown();
}

#[test]
fn a_handle_finds_its_task_running_as_another_entry_after_a_delay_or_a_retry() {
    // A delayed task enters its stream when due, as a new entry.
    let gate = Gate::default();
    let (_server, _, manager, jobs) = started(0, &gate);
    let delayed = jobs.schedule_named_task(Duration::from_millis(300), "hold", json!("d")).unwrap();
    assert!(!delayed.is_running());
    wait_for(|| gate.started.load(SeqCst) == 1);
    assert!(delayed.is_running() && !delayed.cancel());
    gate.release();
    assert_eq!(named::outcome(delayed), Ok(json!("d")));
    manager.shutdown();
    // A failed run's retry too.
    let gate = Gate::default();
    let (_server, _, manager, jobs) = started(1, &gate);
    let retry = Retry::new(1).backoff(Duration::from_millis(20), Duration::from_millis(20)).jitter(0.0);
    let retried = jobs.named_task("hold", json!("r")).retry(retry).submit().unwrap();
    wait_for(|| gate.started.load(SeqCst) == 2);
    assert!(retried.is_running() && !retried.is_done());
    gate.release();
    assert_eq!(named::outcome(retried), Ok(json!("r")));
    manager.shutdown();
}

#[test]
fn tasks_lists_the_delayed_named_tasks_this_manager_sent_while_they_wait() {
    let gate = Gate::default();
    let (server, prefix, manager, jobs) = started(0, &gate);
    let later =
        jobs.named_task("echo", json!(1)).label("later").delay(Duration::from_secs(30)).submit().unwrap();
    assert_eq!(later.name(), "later");
    let listed = manager.tasks();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let task = &listed[0];
    assert_eq!((task.id, task.name.as_str(), task.module.as_str()), (later.id(), "later", "jobs"));
    assert_eq!((task.state, task.interval, task.runs), (TaskState::Scheduled, None, 0));
    let due = task.next_due.unwrap();
    assert!(due > Duration::from_secs(25) && due <= Duration::from_secs(30), "{due:?}");
    // Another manager on the same Redis lists only its own.
    let other = named::manager(&server, &prefix);
    assert!(other.tasks().is_empty());
    // Cancelled: gone.
    assert!(later.cancel());
    assert_eq!(named::outcome(later), Err(TaskError::Cancelled));
    assert!(manager.tasks().is_empty(), "{:?}", manager.tasks());
    // A dropped handle's task still waits, and is listed until it runs.
    drop(jobs.named_task("echo", json!(2)).label("dropped").delay(Duration::from_millis(400)).submit());
    assert_eq!(manager.tasks().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["dropped"]);
    wait_for(|| manager.tasks().is_empty());
    // Unlabelled: listed by its task name.
    let plain = jobs.schedule_named_task(Duration::from_secs(30), "echo", json!(3)).unwrap();
    assert_eq!(manager.tasks()[0].name, "echo");
    assert!(plain.cancel());
    manager.shutdown();
}

#[test]
fn a_named_tasks_events_carry_its_label_and_broker_id_in_the_worker_and_the_submitter() {
    let server = RedisServer::start();
    let heard: Arc<std::sync::Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&heard);
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(&named::prefix("ev"))
        .listener(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    jobs.register("echo", Ok::<Value, RemoteError>).unwrap();
    manager.start_thread().unwrap();
    let about = |handle: &taskmanager::TaskHandle<Value>| {
        let id = handle.broker_id().expect("sent through the broker");
        let heard = heard.lock().unwrap();
        heard
            .iter()
            .filter_map(|e| {
                e.task().filter(|t| t.broker_id.as_deref() == Some(&id)).map(|t| (e.clone(), t.clone()))
            })
            .collect::<Vec<_>>()
    };
    // Run now, and after a delay (through the delayed set): the worker's
    // events name the label, and carry the handle's broker id.
    let now = jobs.named_task("echo", json!(1)).label("greeting").submit().unwrap();
    let later =
        jobs.named_task("echo", json!(2)).label("later").delay(Duration::from_millis(50)).submit().unwrap();
    for (handle, label) in [(now, "greeting"), (later, "later")] {
        wait_for(|| about(&handle).iter().any(|(e, _)| matches!(e, Event::Finished { .. })));
        let told = about(&handle);
        assert!(matches!(told[0].0, Event::Started { .. }), "{told:?}");
        assert!(told.iter().all(|(_, task)| task.name == label), "{told:?}");
        assert_ne!(told[0].1.id, handle.id(), "the worker's run has a number of its own");
    }
    // Cancelled while delayed: the submitter tells it, under its handle's
    // number.
    let far = jobs.named_task("echo", json!(3)).label("far").delay(Duration::from_secs(60)).submit().unwrap();
    assert!(far.cancel());
    let told = about(&far);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        matches!(told[0].0, Event::Cancelled { .. }) && told[0].1.id == far.id() && told[0].1.name == "far"
    );
    manager.shutdown();
}
