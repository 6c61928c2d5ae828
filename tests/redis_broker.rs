//! The Redis mode against a real `redis-server` (started on a free port by
//! the harness, stopped after): named tasks cross processes, failures come
//! back typed, and a task whose worker is killed mid-run completes
//! elsewhere, exactly once more. Needs the `redis` feature
//! (`scripts/test.sh` turns it on); without `redis-server` these fail.
#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redis_server::{worker_program, RedisServer};
use serde_json::{json, Value};
use taskmanager::{
    JoinTimeoutError, Module, Recurrence, RemoteError, SubmitError, TaskError, TaskHandle, TaskManager,
};

/// A key prefix of its own for each test.
fn prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("t{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// What a handle's task came to, waiting up to 30 s.
fn outcome(handle: TaskHandle<Value>) -> Result<Value, TaskError> {
    match handle.join_timeout(Duration::from_secs(30)) {
        Ok(value) => Ok(value),
        Err(JoinTimeoutError::Failed(e)) => Err(e),
        Err(_) => panic!("no result within 30 s"),
    }
}

fn manager(server: &RedisServer, prefix: &str, lease: Duration) -> TaskManager {
    TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(prefix)
        .broker_lease(lease)
        .broker_timeout(Duration::from_secs(2))
        .build()
        .expect("a redis:// URL builds")
}

#[test]
fn a_named_task_runs_on_a_registered_handler_and_its_value_comes_back() {
    let server = RedisServer::start();
    let prefix = prefix();
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let math = Module::builder(&manager).name("math").max_workers(2).build().unwrap();
    math.register("add", |args: Value| {
        let sum: i64 = args.as_array().into_iter().flatten().filter_map(Value::as_i64).sum();
        Ok(json!(sum))
    })
    .unwrap();
    math.register("fail", |_| Err(RemoteError::new("ValueError", "no"))).unwrap();
    manager.start_thread().unwrap();
    let handles: Vec<_> = (0..50).map(|i| math.add_named_task("add", json!([i, 1000])).unwrap()).collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(outcome(handle), Ok(json!(i as i64 + 1000)));
    }
    let failed = math.add_named_task("fail", json!(null)).unwrap();
    match outcome(failed) {
        Err(TaskError::Remote(e)) => assert_eq!((e.kind.as_str(), e.message.as_str()), ("ValueError", "no")),
        other => panic!("expected a remote ValueError, got {other:?}"),
    }
    manager.shutdown();
    // Acknowledged and deleted: nothing of the tasks is left in Redis (a
    // stream per task name).
    for name in ["add", "fail"] {
        assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:math/{name}")]), "0", "{name}");
    }
}

#[test]
fn a_submission_redis_cannot_take_fails_within_the_timeout() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let manager =
        TaskManager::builder().broker(&url).broker_timeout(Duration::from_millis(500)).build().unwrap();
    let started = Instant::now();
    let err = manager.default_module().add_named_task("x", json!(1)).unwrap_err();
    assert!(matches!(err, SubmitError::Broker(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn a_bad_url_is_a_config_error_and_no_broker_is_a_submit_error() {
    let err = TaskManager::builder().broker("http://example.com").build().unwrap_err();
    assert!(matches!(err, taskmanager::ConfigError::Broker(_)), "{err:?}");
    let plain = TaskManager::new();
    let err = plain.default_module().add_named_task("x", json!(1)).unwrap_err();
    assert!(matches!(err, SubmitError::Broker(ref why) if why.contains("no broker")), "{err:?}");
}

/// A file the worker programs append run lines to (`--log`), removed when
/// dropped.
struct RunLog(PathBuf);

impl RunLog {
    fn new(prefix: &str, what: &str) -> RunLog {
        let path = std::env::temp_dir().join(format!("{prefix}-{what}.log"));
        let _ = std::fs::remove_file(&path);
        RunLog(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp dir")
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Worker processes, killed when dropped.
struct Workers(Vec<Child>);

impl Workers {
    fn start(n: usize, url: &str, prefix: &str, lease_ms: u64, log: Option<&str>) -> Workers {
        Workers::start_with(n, url, prefix, lease_ms, log, &[])
    }

    fn start_with(
        n: usize,
        url: &str,
        prefix: &str,
        lease_ms: u64,
        log: Option<&str>,
        extra: &[&str],
    ) -> Workers {
        let mut children = Vec::new();
        for _ in 0..n {
            let mut cmd = Command::new(worker_program());
            cmd.args([url, "--prefix", prefix, "--lease-ms", &lease_ms.to_string()]);
            if let Some(log) = log {
                cmd.args(["--log", log]);
            }
            cmd.args(extra);
            let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start a worker");
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with("ready"), "worker said {line:?}");
            children.push(child);
        }
        Workers(children)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn three_worker_processes_share_two_thousand_tasks_and_each_handle_gets_its_own_result() {
    let server = RedisServer::start();
    let prefix = prefix();
    let workers = Workers::start(3, &server.url(), &prefix, 30_000, None);
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&manager).name("jobs").max_workers(4).build().unwrap();
    manager.start_thread().unwrap();
    let handles: Vec<_> = (0..2000).map(|i| jobs.add_named_task("echo", json!([i])).unwrap()).collect();
    let mut pids = std::collections::BTreeSet::new();
    let started = Instant::now();
    for (i, handle) in handles.into_iter().enumerate() {
        let value = outcome(handle).expect("a value");
        assert_eq!(value["args"], json!([i]), "handle {i} got another task's result");
        pids.insert(value["pid"].as_u64().unwrap());
    }
    eprintln!(
        "figure: 2,000 tasks submitted, all results back {:?} after the first, over {} workers",
        started.elapsed(),
        pids.len()
    );
    let worker_pids: std::collections::BTreeSet<u64> = workers.0.iter().map(|c| u64::from(c.id())).collect();
    assert!(pids.is_subset(&worker_pids), "ran by {pids:?}, workers {worker_pids:?}");
    assert!(pids.len() >= 2, "2,000 tasks all ran in one of three workers: {pids:?}");
}

#[test]
fn a_task_whose_worker_is_killed_mid_run_completes_elsewhere_exactly_once_more() {
    let server = RedisServer::start();
    let prefix = prefix();
    let log = RunLog::new(&prefix, "runs");
    let lease_ms = 1000;
    let mut first = Workers::start(1, &server.url(), &prefix, lease_ms, Some(log.path()));
    let manager = manager(&server, &prefix, Duration::from_millis(lease_ms));
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    manager.start_thread().unwrap();
    let handle = jobs.add_named_task("slow", json!([1500])).unwrap();
    let runs = || log.read();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !runs().contains("start") {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = first.0[0].id();
    let killed_at = Instant::now();
    first.0[0].kill().unwrap();
    first.0[0].wait().unwrap();
    let second = Workers::start(1, &server.url(), &prefix, lease_ms, Some(log.path()));
    let value = outcome(handle).expect("completed after the lease");
    eprintln!(
        "figure: killed mid-run, result {:?} after the kill (lease 1 s, run 1.5 s)",
        killed_at.elapsed()
    );
    assert_eq!(value, json!(second.0[0].id()), "the second worker ran it");
    let text = runs();
    let starts: Vec<&str> = text.lines().filter(|l| l.contains(" start ")).collect();
    let ends: Vec<&str> = text.lines().filter(|l| l.contains(" end ")).collect();
    assert_eq!(starts.len(), 2, "one run killed, one more run: {text}");
    assert_eq!(ends.len(), 1, "exactly one run finished: {text}");
    assert!(starts[0].starts_with(&killed.to_string()), "{text}");
}

#[test]
fn a_delayed_named_task_runs_after_its_delay_in_a_worker() {
    let server = RedisServer::start();
    let prefix = prefix();
    let _workers = Workers::start(1, &server.url(), &prefix, 30_000, None);
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    manager.start_thread().unwrap();
    let started = Instant::now();
    let handle = jobs.schedule_named_task(Duration::from_millis(400), "echo", json!(["later"])).unwrap();
    let value = outcome(handle).unwrap();
    let took = started.elapsed();
    eprintln!("figure: a 400 ms delayed task's result after {took:?}");
    assert_eq!(value["args"], json!(["later"]));
    assert!(took >= Duration::from_millis(390), "ran after {took:?}, before its 400 ms delay");
    assert!(took < Duration::from_secs(10), "ran after {took:?}");
    // Fired and acknowledged: no trace left in Redis.
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:delayed")]), "0");
}

#[test]
fn four_replicas_registering_one_recurring_task_run_each_tick_once() {
    let server = RedisServer::start();
    let prefix = prefix();
    let log = RunLog::new(&prefix, "ticks");
    let _workers =
        Workers::start_with(4, &server.url(), &prefix, 30_000, Some(log.path()), &["--recur", "200"]);
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    // The same registration from a fifth process: kept as it is.
    let schedule = jobs
        .schedule_named_recurring(Recurrence::every(Duration::from_millis(200)), "tick", Value::Null)
        .unwrap();
    assert!(!schedule.created(), "the replicas registered it first");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(schedule.pause().unwrap(), "the schedule exists, and ran");
    assert!(!schedule.pause().unwrap(), "paused already: this call changed nothing");
    std::thread::sleep(Duration::from_millis(500)); // runs in progress end
    let (ticks, skipped) = schedule.counts().unwrap().expect("the schedule exists");
    let text = log.read();
    let runs = text.lines().filter(|l| l.contains(" tick ")).count() as u64;
    assert_eq!(runs, ticks, "each tick fired ran exactly once ({skipped} skipped): {text}");
    eprintln!(
        "figure: 4 replicas + 1, 200 ms task, 2.5 s: {ticks} ticks fired, {runs} runs, {skipped} skipped"
    );
    // About 2.5 s / 200 ms from the first registration: not four times that.
    assert!((8..=14).contains(&runs), "{runs} runs in about 2.5 s of a 200 ms task: {text}");
    assert!(schedule.cancel().unwrap());
    assert_eq!(schedule.counts().unwrap(), None, "cancelled everywhere");
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_no_acknowledged_submission() {
    // The AOF, written before each reply: what Redis acknowledged survives.
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let prefix = prefix();
    let _workers = Workers::start(1, &server.url(), &prefix, 30_000, None);
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(&prefix)
        .broker_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    manager.start_thread().unwrap();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 0..400 {
        if i == 150 {
            server.kill();
        }
        if i == 250 {
            server.restart();
        }
        match jobs.add_named_task("echo", json!([i])) {
            Ok(handle) => accepted.push((i, handle)),
            Err(SubmitError::Broker(_)) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(refused >= 90, "Redis was down for 100 submissions; {refused} were refused");
    let accepted_count = accepted.len();
    eprintln!("figure: Redis killed for 100 submissions: {accepted_count} accepted, {refused} refused");
    for (i, handle) in accepted {
        let value = match handle.join_timeout(Duration::from_secs(30)) {
            Ok(value) => value,
            Err(e) => {
                let stream = format!("{prefix}:s:jobs/echo");
                panic!(
                    "accepted task {i} has no result ({e:?}); stream length {}, pending {}, results stored {}",
                    server.command(&["XLEN", &stream]),
                    server.command(&["XPENDING", &stream, "taskmanager"]),
                    server.command(&["EVAL", "return #redis.call('KEYS', ARGV[1])", "0", &format!("{prefix}:r:*")]),
                )
            }
        };
        assert_eq!(value["args"], json!([i]));
    }
    assert!(accepted_count >= 290, "{accepted_count} accepted");
}

#[test]
fn global_max_workers_two_holds_across_three_processes() {
    let server = RedisServer::start();
    let prefix = prefix();
    let log = RunLog::new(&prefix, "cap");
    // Each worker process has 4 threads for the module: 12 in all.
    let _workers =
        Workers::start_with(3, &server.url(), &prefix, 30_000, Some(log.path()), &["--global-cap", "2"]);
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    manager.start_thread().unwrap();
    let handles: Vec<_> = (0..24).map(|_| jobs.add_named_task("slow", json!([50])).unwrap()).collect();
    for handle in handles {
        outcome(handle).unwrap();
    }
    // Each run's start and end, in one timeline: never more than 2 at once.
    let text = log.read();
    let mut events: Vec<(u128, i32)> = text
        .lines()
        .map(|l| {
            let at: u128 = l.rsplit('@').next().unwrap().parse().unwrap();
            (at, if l.contains(" start ") { 1 } else { -1 })
        })
        .collect();
    events.sort(); // at equal times an end (-1) sorts before a start
    let (mut now, mut most) = (0, 0);
    for (_, step) in &events {
        now += step;
        most = most.max(now);
    }
    assert_eq!(events.len(), 48, "24 runs, each started and ended: {text}");
    assert_eq!(most, 2, "at most 2 at once across 3 processes, and the cap was used: {text}");
    eprintln!("figure: global_max_workers=2 over 3 processes x 4 threads: at most {most} at once");
}

#[test]
fn global_max_workers_needs_a_broker_and_a_positive_cap() {
    let plain = TaskManager::new();
    let err = Module::builder(&plain).global_max_workers(2).build().unwrap_err();
    assert!(matches!(err, taskmanager::ConfigError::Broker(_)), "{err:?}");
    let brokered = TaskManager::builder().broker("redis://127.0.0.1:1/0").build().unwrap();
    let err = Module::builder(&brokered).global_max_workers(0).build().unwrap_err();
    assert_eq!(err, taskmanager::ConfigError::ZeroMaxWorkers);
}

#[test]
fn cancelling_a_named_task_takes_it_out_of_redis_unless_a_worker_claimed_it() {
    let server = RedisServer::start();
    let prefix = prefix();
    let manager = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    manager.start_thread().unwrap();
    // No worker anywhere: waiting in the stream, and cancelled out of it.
    let queued = jobs.add_named_task("echo", json!([1])).unwrap();
    assert!(queued.cancel(), "an unclaimed task cancels");
    assert_eq!(outcome(queued), Err(TaskError::Cancelled));
    assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:jobs/echo")]), "0");
    // Delayed: out of the delayed set before it falls due.
    let delayed = jobs.schedule_named_task(Duration::from_secs(60), "echo", json!([2])).unwrap();
    assert!(delayed.cancel());
    assert_eq!(outcome(delayed), Err(TaskError::Cancelled));
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:delayed")]), "0");
    // Claimed and running in a worker: it runs, and the cancel says so.
    let log = RunLog::new(&prefix, "cancel");
    let _workers = Workers::start(1, &server.url(), &prefix, 30_000, Some(log.path()));
    let running = jobs.add_named_task("slow", json!([300])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !log.read().contains(" start ") {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!running.cancel(), "a claimed task is not cancelled");
    assert!(outcome(running).is_ok(), "and its result still arrives");
}

#[test]
fn a_task_of_a_name_a_worker_does_not_know_stays_in_redis_for_one_that_does() {
    // Issue 25: a worker acknowledged such a task as failed (a rolling
    // deploy's old workers failed every task of a new method; two apps on
    // one Redis lost each other's tasks). A stream per name: it never
    // reads them.
    let server = RedisServer::start();
    let prefix = prefix();
    let old = manager(&server, &prefix, Duration::from_secs(30));
    let jobs = Module::builder(&old).name("jobs").build().unwrap();
    jobs.register("known", |_| Ok(json!("old worker"))).unwrap();
    old.start_thread().unwrap();
    let new_method = jobs.add_named_task("added_in_v2", json!([7])).unwrap();
    assert_eq!(outcome(jobs.add_named_task("known", json!(null)).unwrap()), Ok(json!("old worker")));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:jobs/added_in_v2")]), "1", "still waiting");
    assert_eq!(jobs.stats().failed, 0, "the old worker did not take it");
    // An upgraded worker comes: it runs it.
    let upgraded = manager(&server, &prefix, Duration::from_secs(30));
    let v2 = Module::builder(&upgraded).name("jobs").build().unwrap();
    v2.register("added_in_v2", |args| Ok(json!({ "upgraded": args }))).unwrap();
    upgraded.start_thread().unwrap();
    assert_eq!(outcome(new_method), Ok(json!({ "upgraded": [7] })));
    // A worker counts a run before it sends the result, as in-process.
    assert_eq!((jobs.stats().completed, v2.stats().completed), (1, 1));
    old.shutdown();
    upgraded.shutdown();
}

/// Sends `signal` (`TERM`, `INT`) to a worker process.
fn signal(child: &Child, signal: &str) {
    let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(sent.success(), "kill -{signal} failed");
}

/// Waits (at most 20 s) until `log` has `n` lines containing `what`.
fn await_lines(log: &RunLog, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.read().lines().filter(|l| l.contains(what)).count() < n {
        assert!(Instant::now() < deadline, "never {n} x {what:?}: {}", log.read());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (at most 20 s) for a worker to exit; its exit code and when.
fn await_exit(child: &mut Child) -> (i32, Instant) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().expect("an exit code, not a signal"), Instant::now());
        }
        assert!(Instant::now() < deadline, "the worker did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A worker process in `run_worker` mode (`--drain-ms drain_ms`) running
/// a `slow` task of `run_ms`, with the submitting manager and the run log.
/// Fields drop in this order: workers and handles, then the manager, then
/// the log and Redis.
struct MidTask {
    worker: Workers,
    slow: TaskHandle<Value>,
    jobs: Module,
    _manager: TaskManager,
    lease_ms: u64,
    prefix: String,
    log: RunLog,
    server: RedisServer,
}

impl MidTask {
    fn start(what: &str, lease_ms: u64, drain_ms: u64, run_ms: u64) -> MidTask {
        let server = RedisServer::start();
        let prefix = prefix();
        let log = RunLog::new(&prefix, what);
        let manager = manager(&server, &prefix, Duration::from_millis(lease_ms));
        let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
        manager.start_thread().unwrap();
        let drain = drain_ms.to_string();
        let worker = Workers::start_with(
            1,
            &server.url(),
            &prefix,
            lease_ms,
            Some(log.path()),
            &["--drain-ms", &drain],
        );
        let slow = jobs.add_named_task("slow", json!([run_ms])).unwrap();
        await_lines(&log, " start ", 1);
        MidTask { server, prefix, log, lease_ms, jobs, worker, slow, _manager: manager }
    }

    /// Another worker (stdin mode) on the same Redis and prefix.
    fn other_worker(&self) -> Workers {
        Workers::start(1, &self.server.url(), &self.prefix, self.lease_ms, Some(self.log.path()))
    }
}

#[test]
fn sigterm_drains_a_worker_its_long_task_finishes_there_and_is_never_rerun() {
    // A lease far shorter than the task: only the drain's heartbeat keeps
    // the other worker from taking it over.
    let mut t = MidTask::start("drain", 600, 20_000, 2000);
    let other = t.other_worker();
    signal(&t.worker.0[0], "TERM");
    let signalled = Instant::now();
    // Sent once the drain has begun (a few ms after the signal; 300 ms
    // allowed): the draining worker claims nothing more.
    std::thread::sleep(Duration::from_millis(300));
    let later = t.jobs.add_named_task("echo", json!(["later"])).unwrap();
    let (code, exited) = await_exit(&mut t.worker.0[0]);
    assert_eq!(code, 0, "drained within its timeout");
    let draining = t.worker.0[0].id();
    assert_eq!(outcome(t.slow).unwrap(), json!(draining), "finished where it started");
    assert_eq!(outcome(later).unwrap()["pid"], json!(other.0[0].id()), "claimed by the live worker");
    let text = t.log.read();
    assert_eq!(text.lines().filter(|l| l.contains(" start ")).count(), 1, "never re-run: {text}");
    eprintln!("figure: SIGTERM drain: exited {:?} after the signal (task had ~2 s left)", exited - signalled);
}

#[test]
fn a_drain_that_times_out_hands_the_task_back_at_once_not_after_the_lease() {
    // A long lease: the hand-back, not the lease, makes the re-run prompt.
    let mut t = MidTask::start("handback", 30_000, 300, 1500);
    let other = t.other_worker();
    signal(&t.worker.0[0], "TERM");
    let signalled = Instant::now();
    let (code, _) = await_exit(&mut t.worker.0[0]);
    assert_eq!(code, 1, "the drain timed out");
    assert_eq!(outcome(t.slow).unwrap(), json!(other.0[0].id()), "re-run by the live worker");
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}: waited for the 30 s lease");
    let text = t.log.read();
    assert_eq!(text.lines().filter(|l| l.contains(" start ")).count(), 2, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(" end ")).count(), 1, "{text}");
    eprintln!("figure: drain 300 ms timed out: result {took:?} after SIGTERM (run 1.5 s, lease 30 s)");
}

#[test]
fn a_second_sigint_hands_everything_back_at_once() {
    let mut t = MidTask::start("twice", 30_000, 60_000, 1000);
    signal(&t.worker.0[0], "INT");
    std::thread::sleep(Duration::from_millis(100));
    signal(&t.worker.0[0], "INT");
    let signalled = Instant::now();
    let (code, exited) = await_exit(&mut t.worker.0[0]);
    assert_eq!(code, 130, "stopped at once, as after Ctrl-C");
    assert!(exited - signalled < Duration::from_secs(2), "{:?}", exited - signalled);
    let other = t.other_worker();
    assert_eq!(outcome(t.slow).unwrap(), json!(other.0[0].id()), "re-run by the next worker");
    eprintln!("figure: second SIGINT: exited {:?} after it", exited - signalled);
}

#[test]
fn a_submit_only_process_never_runs_a_task_even_with_the_handler_registered() {
    let server = RedisServer::start();
    let prefix = prefix();
    let submitter =
        TaskManager::builder().broker(&server.url()).broker_prefix(&prefix).submit_only().build().unwrap();
    let jobs = Module::builder(&submitter).name("jobs").max_workers(2).build().unwrap();
    jobs.register("echo", |_| Ok(json!({ "pid": std::process::id() }))).unwrap();
    submitter.start_thread().unwrap();
    let handles: Vec<_> = (0..20).map(|i| jobs.add_named_task("echo", json!([i])).unwrap()).collect();
    // Nobody claims them yet: they wait in the stream.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.command(&["XLEN", &format!("{prefix}:s:jobs/echo")]), "20");
    let worker = Workers::start(1, &server.url(), &prefix, 30_000, None);
    for handle in handles {
        assert_eq!(outcome(handle).unwrap()["pid"], json!(worker.0[0].id()));
    }
}

#[test]
fn cluster_stats_show_queues_schedules_workers_and_what_was_taken_from_a_dead_one() {
    let server = RedisServer::start();
    let prefix = prefix();
    let log = RunLog::new(&prefix, "stats");
    let lease_ms = 1000;
    let mut workers = Workers::start(2, &server.url(), &prefix, lease_ms, Some(log.path()));
    let manager = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(&prefix)
        .broker_lease(Duration::from_millis(lease_ms))
        .submit_only()
        .build()
        .unwrap();
    let jobs = Module::builder(&manager).name("jobs").max_workers(1).build().unwrap();
    let idle = Module::builder(&manager).name("idle").max_workers(1).build().unwrap();
    manager.start_thread().unwrap();
    let slow = jobs.add_named_task("slow", json!([1500])).unwrap();
    let _waiting: Vec<_> = (0..3).map(|i| idle.add_named_task("nobody", json!([i])).unwrap()).collect();
    jobs.schedule_named_recurring_as(
        "every-minute",
        Recurrence::every(Duration::from_secs(60)),
        "tick",
        json!(null),
    )
    .unwrap();
    await_lines(&log, " start ", 1);
    let busy: u32 = log.read().split_whitespace().next().unwrap().parse().unwrap();
    let stats = manager.cluster_stats().unwrap();
    let load = |stats: &taskmanager::ClusterStats, name: &str| {
        stats.modules.iter().find(|m| m.name == name).cloned().unwrap_or_default()
    };
    assert_eq!((load(&stats, "jobs").queued, load(&stats, "jobs").running), (0, 1), "{stats:?}");
    assert_eq!((load(&stats, "idle").queued, load(&stats, "idle").running), (3, 0), "{stats:?}");
    let pids: std::collections::BTreeSet<u32> = stats.workers.iter().map(|w| w.pid).collect();
    let expected: std::collections::BTreeSet<u32> = workers.0.iter().map(Child::id).collect();
    assert_eq!(pids, expected, "the two workers, not the submit-only process: {stats:?}");
    assert!(stats.workers.iter().all(|w| w.alive && w.modules == ["jobs"]), "{stats:?}");
    let holder = stats.workers.iter().find(|w| w.pid == busy).unwrap();
    assert_eq!(holder.running, 1, "{stats:?}");
    let schedule = stats.schedules.iter().find(|s| s.key == "every-minute").expect("the schedule");
    assert_eq!((schedule.module.as_str(), schedule.name.as_str()), ("jobs", "tick"));
    assert_eq!(schedule.interval, Duration::from_secs(60));
    assert!(schedule.next_due > Duration::from_secs(55), "{schedule:?}");
    // Kill the worker running `slow`: the other takes it over after the
    // lease, and the stats say from whom.
    let dead = workers.0.iter_mut().find(|c| c.id() == busy).unwrap();
    dead.kill().unwrap();
    dead.wait().unwrap();
    outcome(slow).expect("taken over and run");
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = manager.cluster_stats().unwrap();
        if stats.workers.iter().any(|w| w.pid == busy && !w.alive) {
            break stats;
        }
        assert!(Instant::now() < deadline, "the killed worker is never seen dead: {stats:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(stats.reclaimed, 1, "{stats:?}");
    let gone = stats.workers.iter().find(|w| w.pid == busy).unwrap();
    assert_eq!(gone.reclaimed_from, 1, "{stats:?}");
    assert_eq!(load(&stats, "jobs").running, 0, "{stats:?}");
    // The live worker stops cleanly (its standard input closes): it leaves
    // the list; the dead one stays, marked dead.
    let live = workers.0.iter_mut().find(|c| c.id() != busy).unwrap();
    drop(live.stdin.take());
    live.wait().unwrap();
    let stats = manager.cluster_stats().unwrap();
    assert_eq!(stats.workers.iter().map(|w| w.pid).collect::<Vec<_>>(), [busy], "{stats:?}");
}

#[test]
fn a_result_nobody_fetches_expires_after_the_workers_result_ttl() {
    let server = RedisServer::start();
    let prefix = prefix();
    let submitter =
        TaskManager::builder().broker(&server.url()).broker_prefix(&prefix).submit_only().build().unwrap();
    let jobs = Module::builder(&submitter).name("jobs").max_workers(1).build().unwrap();
    submitter.start_thread().unwrap();
    let handle = jobs.add_named_task("echo", json!([1])).unwrap();
    // The submitter leaves before any worker ran it.
    submitter.shutdown();
    assert!(matches!(outcome(handle), Err(TaskError::ResultLost { .. })));
    let worker = TaskManager::builder()
        .broker(&server.url())
        .broker_prefix(&prefix)
        .broker_result_ttl(Duration::from_millis(500))
        .build()
        .unwrap();
    let jobs = Module::builder(&worker).name("jobs").max_workers(1).build().unwrap();
    jobs.register("echo", Ok).unwrap();
    worker.start_thread().unwrap();
    let results = || server.command(&["KEYS", &format!("{prefix}:r:*")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while results().is_empty() {
        assert!(Instant::now() < deadline, "the result was never stored");
        std::thread::sleep(Duration::from_millis(10));
    }
    let key = results();
    let ttl: i64 = server.command(&["PTTL", key.trim()]).parse().unwrap();
    assert!((1..=500).contains(&ttl), "PTTL {ttl}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(results(), "", "expired");
    worker.shutdown();
}
