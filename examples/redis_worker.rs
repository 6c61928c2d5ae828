//! A worker process for the Redis mode: registers the `jobs` module's named
//! tasks and runs what any process sends them, until its standard input
//! closes. Run two terminals:
//!
//! ```text
//! cargo run --features redis --example redis_worker -- redis://127.0.0.1:6379/0
//! cargo run --features redis --example redis_worker -- redis://127.0.0.1:6379/0 --submit 10
//! ```
//!
//! The second submits ten `echo` tasks and prints which process ran each.
//! Options: `--prefix P` (key prefix), `--lease-ms N`, `--log FILE` (each
//! `slow` task appends `<pid> start <arg>` and `<pid> end <arg>` lines, each
//! `tick` a `<pid> tick` line; each line ends with ` @<unix micros>`),
//! `--recur MS` (registers the recurring task `jobs.tick` every MS ms: once
//! cluster-wide, however many workers do), `--global-cap N` (the `jobs`
//! module's `global_max_workers`), `--drain-ms N` (run as a worker until
//! SIGTERM or Ctrl-C with [`TaskManager::run_worker`]: running tasks get N ms
//! to finish, then what is unfinished goes back to the cluster; a second
//! signal hands it back at once).
//!
//! Calendar schedules: `--cron EXPR` registers `jobs.tick` at the times of
//! EXPR (UTC) instead, with `--misfire skip|coalesce|catch_up:N` and
//! `--grace-ms N`; each run of one of its ticks logs `<pid> run <tick id>`.
//! The environment variable `TASKMANAGER_TEST_CLOCK_SKEW_MS` (ms, either
//! way) skews this process's wall clock, for tests that prove the
//! schedule does not depend on it.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};
use taskmanager::{Cron, Event, Misfire, Module, Recurrence, RemoteError, TaskManager};

fn main() {
    let mut args = std::env::args().skip(1);
    let url =
        args.next().expect("usage: redis_worker URL [--prefix P] [--lease-ms N] [--log FILE] [--submit N]");
    let (mut prefix, mut lease, mut log, mut submit, mut recur) =
        ("taskmanager".to_owned(), 30_000, None, None, None);
    let (mut global_cap, mut drain) = (None, None);
    let (mut cron, mut misfire, mut grace) = (None, Misfire::Coalesce, None);
    while let Some(flag) = args.next() {
        let value = args.next().expect("each option takes a value");
        match flag.as_str() {
            "--prefix" => prefix = value,
            "--lease-ms" => lease = value.parse().expect("--lease-ms N"),
            "--log" => log = Some(value),
            "--submit" => submit = Some(value.parse::<usize>().expect("--submit N")),
            "--recur" => recur = Some(value.parse::<u64>().expect("--recur MS")),
            "--global-cap" => global_cap = Some(value.parse::<usize>().expect("--global-cap N")),
            "--drain-ms" => drain = Some(Duration::from_millis(value.parse().expect("--drain-ms N"))),
            "--cron" => cron = Some(Cron::parse(&value).expect("--cron EXPR")),
            "--misfire" => {
                misfire = match value.as_str() {
                    "skip" => Misfire::Skip,
                    "coalesce" => Misfire::Coalesce,
                    other => Misfire::CatchUp {
                        max: other.strip_prefix("catch_up:").and_then(|n| n.parse().ok()).expect("--misfire"),
                    },
                }
            }
            "--grace-ms" => grace = Some(Duration::from_millis(value.parse().expect("--grace-ms N"))),
            other => panic!("unknown option {other}"),
        }
    }
    let skew = std::env::var("TASKMANAGER_TEST_CLOCK_SKEW_MS").map_or(0, |ms| ms.parse().expect("ms"));
    let pid = std::process::id();
    let append = {
        let log = log.clone();
        move |line: String| {
            if let Some(path) = &log {
                let mut file =
                    std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file");
                let micros = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                // One write per line: lines of concurrent runs never interleave.
                file.write_all(format!("{pid} {line} @{micros}\n").as_bytes()).expect("log line");
            }
        }
    };
    let mut builder = TaskManager::builder().wall_clock_skew(skew);
    if cron.is_some() {
        // A calendar tick's id is `<key>@<due ms>`: its runs are counted by it.
        let runs = append.clone();
        builder = builder.listener(move |event| {
            if let Event::Started { task } = event {
                if let Some(id) = task.broker_id.as_ref().filter(|id| id.contains('@')) {
                    runs(format!("run {id}"));
                }
            }
        });
    }
    let manager = builder
        .broker(&url)
        .broker_prefix(&prefix)
        .broker_lease(Duration::from_millis(lease))
        .build()
        .expect("a redis:// URL");
    let mut jobs = Module::builder(&manager).name("jobs").max_workers(4);
    if let Some(cap) = global_cap {
        jobs = jobs.global_max_workers(cap);
    }
    let jobs = jobs.build().expect("4 workers");
    if let Some(n) = submit {
        manager.start_thread().expect("start");
        let handles: Vec<_> =
            (0..n).map(|i| jobs.add_named_task("echo", json!([i])).expect("Redis takes the task")).collect();
        for (i, handle) in handles.into_iter().enumerate() {
            println!("{i}: {}", handle.join().expect("a result"));
        }
        return;
    }
    let tick_log = append.clone();
    jobs.register("tick", move |_| {
        tick_log("tick".to_owned());
        Ok(Value::Null)
    })
    .expect("a broker");
    jobs.register("echo", move |args: Value| Ok(json!({ "pid": pid, "args": args }))).expect("a broker");
    jobs.register("fail", |_| Err(RemoteError::new("ValueError", "asked to fail"))).expect("a broker");
    jobs.register("slow", move |args: Value| {
        let note = |what: &str| append(format!("{what} {args}"));
        note("start");
        let ms = args.get(0).and_then(Value::as_u64).unwrap_or(1000);
        std::thread::sleep(Duration::from_millis(ms));
        note("end");
        Ok(json!(pid))
    })
    .expect("a broker");
    if let Some(cron) = cron {
        let mut recurrence = Recurrence::cron(cron).misfire(misfire);
        if let Some(grace) = grace {
            recurrence = recurrence.grace(grace);
        }
        jobs.schedule_named_recurring(recurrence, "tick", Value::Null).expect("Redis takes the schedule");
    }
    if let Some(ms) = recur {
        jobs.schedule_named_recurring(Recurrence::every(Duration::from_millis(ms)), "tick", Value::Null)
            .expect("Redis takes the schedule");
    }
    if let Some(drain) = drain {
        // A signal before `run_worker` blocks it ends the process at once:
        // the tests signal only a worker that has started a task.
        println!("ready {pid}");
        let exit = manager.run_worker(drain).expect("start");
        eprintln!("worker {pid}: {exit:?}");
        std::process::exit(exit.exit_code());
    }
    manager.start_thread().expect("start");
    println!("ready {pid}");
    // Runs until the standard input closes (the parent's end of a pipe, or
    // Ctrl-D in a terminal).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    manager.shutdown();
}
