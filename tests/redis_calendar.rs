//! Calendar (cron) schedules in the Redis mode against a real
//! `redis-server` (started on a free port by the harness; without it these
//! fail): each tick fires once cluster-wide whatever the replicas' clocks
//! say, misfire policies decide what runs after every firing process was
//! down, and a `SharedSchedule` pauses, resumes, cancels and lists a
//! calendar schedule. The replicas are the example worker
//! (`cargo build --examples --features redis` first).
#![cfg(feature = "redis")]

#[path = "support/named.rs"]
#[allow(dead_code)]
mod named;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use named::{manager, prefix};
use redis_server::{worker_program, RedisServer};
use serde_json::{json, Value};
use taskmanager::{Cron, Misfire, Module, Pacing, Recurrence, SubmitError};

/// The key every replica registers `jobs.tick` under.
const KEY: &str = "jobs.tick";
const EVERY_SECOND: &str = "* * * * * *";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A replica: the example worker with a calendar schedule, its wall clock
/// skewed by `skew_ms`; killed when dropped.
struct Replica(Child);

impl Replica {
    fn start(url: &str, prefix: &str, log: &str, skew_ms: i64, misfire: &str, extra: &[&str]) -> Replica {
        let mut cmd = Command::new(worker_program());
        cmd.args([url, "--prefix", prefix, "--log", log, "--cron", EVERY_SECOND, "--misfire", misfire]);
        cmd.args(extra).env("TASKMANAGER_TEST_CLOCK_SKEW_MS", skew_ms.to_string());
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("start a worker");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("ready"), "worker said {line:?}");
        Replica(child)
    }

    /// Stops it cleanly: its standard input closes, it shuts down (its
    /// runs end and are acknowledged) and exits.
    fn stop(mut self) {
        drop(self.0.stdin.take());
        let status = self.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The file the replicas log their runs to, removed when dropped.
struct RunLog(PathBuf);

impl RunLog {
    fn new(prefix: &str) -> RunLog {
        let path = std::env::temp_dir().join(format!("{prefix}-calendar.log"));
        let _ = std::fs::remove_file(&path);
        RunLog(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Each run of a tick: (its tick, in ms since the epoch; when it ran,
    /// in ms by the replica's real clock), in the log's order.
    fn runs(&self) -> Vec<(u64, u64)> {
        let text = std::fs::read_to_string(&self.0).unwrap_or_default();
        let tick = |line: &str| -> Option<(u64, u64)> {
            let id = line.split(' ').nth(2)?;
            let tick = id.strip_prefix(KEY)?.strip_prefix('@')?.parse().ok()?;
            let micros: u64 = line.rsplit('@').next()?.parse().ok()?;
            Some((tick, micros / 1000))
        };
        text.lines().filter(|l| l.contains(" run ")).map(|l| tick(l).expect(l)).collect()
    }

    /// Waits until a run is logged after the `n`th, up to 10 s; returns the
    /// count.
    fn wait_past(&self, n: usize) -> usize {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.runs().len();
            if seen > n {
                return seen;
            }
            assert!(Instant::now() < until, "no run after the {n}th within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How many times each tick ran.
fn per_tick(runs: &[(u64, u64)]) -> BTreeMap<u64, usize> {
    let mut counts = BTreeMap::new();
    for (tick, _) in runs {
        *counts.entry(*tick).or_default() += 1;
    }
    counts
}

#[test]
fn three_replicas_with_skewed_clocks_run_each_tick_of_a_cron_once_and_miss_none() {
    let server = RedisServer::start();
    let prefix = prefix("cal");
    let log = RunLog::new(&prefix);
    let skews = [-3000, 0, 2700];
    // Catching up (up to 5): a tick a loaded machine fires late still runs,
    // so a missing tick would be a lost one.
    let replicas: Vec<Replica> = skews
        .iter()
        .map(|&skew| Replica::start(&server.url(), &prefix, log.path(), skew, "catch_up:5", &[]))
        .collect();
    std::thread::sleep(Duration::from_secs(20));
    let manager = manager(&server, &prefix);
    let schedule = manager.shared_schedule(KEY).unwrap();
    // Read before the pause, whose own ticks count as skipped.
    let (_, skipped) = schedule.counts().unwrap().unwrap();
    assert!(schedule.pause().unwrap());
    std::thread::sleep(Duration::from_millis(500)); // a run in progress ends
    let runs = log.runs();
    let counts = per_tick(&runs);
    let twice: Vec<_> = counts.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "ticks that ran more than once: {twice:?}");
    let (first, last) = (*counts.keys().next().unwrap(), *counts.keys().last().unwrap());
    let missing: Vec<u64> = (first..=last).step_by(1000).filter(|t| !counts.contains_key(t)).collect();
    assert!(missing.is_empty(), "ticks that never ran: {missing:?} of {first}..={last}");
    assert!(counts.keys().all(|t| t % 1000 == 0), "every tick is on a second: {counts:?}");
    let (ticks, _) = schedule.counts().unwrap().unwrap();
    assert_eq!((ticks, skipped, schedule.coalesced().unwrap()), (runs.len() as u64, 0, Some(0)));
    assert!((18..=22).contains(&runs.len()), "{} runs in about 20 s", runs.len());
    // Which replica ran each tick (the one whose claim came first).
    let mut by_replica: BTreeMap<String, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&log.0).unwrap().lines().filter(|l| l.contains(" run ")) {
        *by_replica.entry(line.split(' ').next().unwrap().to_owned()).or_default() += 1;
    }
    eprintln!(
        "figure: 3 replicas, clocks skewed {skews:?} ms, `{EVERY_SECOND}` for 20 s: {ticks} ticks fired, {} runs, \
         {} distinct ticks, {} ran twice, {} missed, {skipped} skipped; runs per replica {:?}",
        runs.len(),
        counts.len(),
        twice.len(),
        missing.len(),
        by_replica.values().collect::<Vec<_>>()
    );
    drop(replicas);
}

/// What a replica saw after a gap with no process firing.
struct Gap {
    /// The last tick run before the gap.
    before: u64,
    /// When the new replica started (ms).
    restart: u64,
    /// The runs after, by tick.
    after: Vec<(u64, u64)>,
    /// The schedule's counts once paused.
    skipped: u64,
    coalesced: u64,
}

/// One replica runs the schedule, stops (cleanly, just after a run), and
/// after `gap` a new one starts: what came of it (see [`Gap`]).
fn stop_and_restart(misfire: &str, extra: &[&str], gap: Duration) -> Gap {
    let server = RedisServer::start();
    let prefix = prefix("mis");
    let log = RunLog::new(&prefix);
    let first = Replica::start(&server.url(), &prefix, log.path(), 0, misfire, extra);
    let seen = log.wait_past(1);
    // Just after a run: the next tick is most of a second away.
    log.wait_past(seen);
    first.stop();
    let before = log.runs().iter().map(|r| r.0).max().unwrap();
    std::thread::sleep(gap);
    let restart = now_ms();
    let _second = Replica::start(&server.url(), &prefix, log.path(), 0, misfire, extra);
    std::thread::sleep(Duration::from_millis(3500));
    let schedule = manager(&server, &prefix).shared_schedule(KEY).unwrap();
    // What the gap came to, settled at the first firing after the restart;
    // read before the pause, whose own ticks count as skipped.
    let (_, skipped) = schedule.counts().unwrap().unwrap();
    let coalesced = schedule.coalesced().unwrap().unwrap();
    assert!(schedule.pause().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let (ticks, _) = schedule.counts().unwrap().unwrap();
    let mut after: Vec<(u64, u64)> = log.runs().into_iter().filter(|r| r.0 > before).collect();
    after.sort();
    let counts = per_tick(&log.runs());
    assert!(counts.values().all(|&n| n == 1), "a tick ran twice: {counts:?}");
    assert_eq!(ticks, counts.len() as u64, "each tick fired ran once");
    Gap { before, restart, after, skipped, coalesced }
}

#[test]
fn coalesce_runs_the_ticks_missed_while_no_process_fired_once() {
    let Gap { before, restart, after, skipped, coalesced } =
        stop_and_restart("coalesce", &[], Duration::from_secs(4));
    let (t1, _) = after[0];
    assert!(t1 + 1000 > restart, "the one run stands for the latest tick passed: {t1} vs {restart}");
    let passed = (t1 - before) / 1000;
    assert!(passed >= 4, "{passed} ticks passed");
    assert_eq!((coalesced, skipped), (passed - 1, 0), "all but the one run were coalesced into it");
    let later: Vec<u64> = after.iter().map(|r| r.0).collect();
    assert!(later.windows(2).all(|w| w[1] == w[0] + 1000), "then every tick: {later:?}");
    eprintln!("figure: coalesce after a {} s gap: 1 run for {passed} ticks, {coalesced} coalesced", 4);
}

#[test]
fn skip_with_a_grace_runs_no_tick_late() {
    let grace = 200;
    let Gap { before, restart, after, skipped, coalesced } =
        stop_and_restart("skip", &["--grace-ms", &grace.to_string()], Duration::from_secs(4));
    let late: Vec<_> = after.iter().filter(|r| r.0 + grace < restart).collect();
    assert!(late.is_empty(), "ticks run more than {grace} ms after their time: {late:?} (back at {restart})");
    let (t1, _) = after[0];
    let passed = (t1 - before) / 1000 - 1;
    assert!(passed >= 3, "{passed} ticks in the gap");
    assert_eq!((skipped, coalesced), (passed, 0), "each tick of the gap is counted skipped");
    eprintln!("figure: skip with {grace} ms grace after a 4 s gap: {skipped} skipped, none late");
}

#[test]
fn catch_up_runs_at_most_its_max_of_the_missed_ticks_one_after_another() {
    let Gap { before, after, skipped, coalesced, .. } =
        stop_and_restart("catch_up:2", &[], Duration::from_secs(4));
    let (t1, ran) = after[0];
    assert!(ran >= t1 + 1000, "{t1} ran at {ran}: late, catching up");
    assert_eq!(after[1].0, t1 + 1000, "then the next tick: {after:?}");
    assert!(after[1].1 >= ran, "one after another");
    let missed = (t1 - before) / 1000 - 1;
    assert!(missed >= 2, "{missed}");
    assert_eq!((skipped, coalesced), (missed, 0), "the older ticks of the gap are skipped");
    eprintln!("figure: catch_up(2) after a 4 s gap: 2 caught up, {missed} skipped");
}

#[test]
fn a_calendar_shared_schedule_pauses_resumes_updates_lists_and_cancels() {
    let server = RedisServer::start();
    let prefix = prefix("calapi");
    let manager = manager(&server, &prefix);
    let jobs = Module::builder(&manager).name("jobs").build().unwrap();
    let runs = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&runs);
    jobs.register("tick", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(Value::Null)
    })
    .unwrap();
    let berlin = |expr: &str| Cron::parse(expr).unwrap().zone("Europe/Berlin").unwrap();
    let recurrence = |expr: &str| Recurrence::cron(berlin(expr));
    // What the Redis mode cannot do is refused, as in-process.
    let refused =
        jobs.schedule_named_recurring(recurrence(EVERY_SECOND).pacing(Pacing::FixedDelay), "tick", json!(1));
    assert!(matches!(refused, Err(SubmitError::InvalidSchedule { .. })), "{refused:?}");
    let refused = jobs.schedule_named_recurring(
        recurrence(EVERY_SECOND).misfire(Misfire::CatchUp { max: 0 }),
        "tick",
        json!(1),
    );
    assert!(matches!(refused, Err(SubmitError::InvalidSchedule { .. })), "{refused:?}");

    let schedule = jobs.schedule_named_recurring(recurrence("*/2 * * * * *"), "tick", json!(1)).unwrap();
    assert!(schedule.created());
    let again = jobs.schedule_named_recurring(recurrence("*/2 * * * * *"), "tick", json!(1)).unwrap();
    assert!(!again.created() && !again.updated(), "the same definition is kept");
    let other_args = jobs.schedule_named_recurring(recurrence("*/2 * * * * *"), "tick", json!(2)).unwrap();
    assert!(other_args.updated());
    let graced = jobs.schedule_named_recurring(
        recurrence("*/2 * * * * *").grace(Duration::from_secs(1)),
        "tick",
        json!(2),
    );
    assert!(graced.unwrap().updated(), "a new grace is a new definition");
    let schedule = jobs.schedule_named_recurring(recurrence(EVERY_SECOND), "tick", json!(2)).unwrap();
    assert!(schedule.updated(), "a new expression");

    let listed = manager.cluster_stats().unwrap().schedules;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let info = &listed[0];
    assert_eq!(
        (info.key.as_str(), info.cron.as_deref(), info.zone.as_deref()),
        (KEY, Some(EVERY_SECOND), Some("Europe/Berlin"))
    );
    assert_eq!(info.interval, Duration::ZERO);
    let next = info.next_run.unwrap().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(next % 1000 == 0 && next > now_ms() - 1000 && next <= now_ms() + 1000, "next run {next}");
    assert!(info.next_due <= Duration::from_secs(1), "{info:?}");

    manager.start_thread().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(runs.load(Ordering::SeqCst) >= 1, "it runs");
    assert!(schedule.pause().unwrap());
    assert!(!schedule.pause().unwrap(), "paused already");
    std::thread::sleep(Duration::from_millis(500));
    let (paused_at, ticks) = (runs.load(Ordering::SeqCst), schedule.counts().unwrap().unwrap().0);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(runs.load(Ordering::SeqCst), paused_at, "paused: nothing runs");
    let (ticks_now, skipped) = schedule.counts().unwrap().unwrap();
    assert_eq!(ticks_now, ticks, "no tick fired");
    assert!(
        (2..=4).contains(&skipped),
        "the ticks passed while paused are skipped, as in-process: {skipped}"
    );
    assert!(manager.cluster_stats().unwrap().schedules[0].paused);
    assert!(schedule.resume().unwrap());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(runs.load(Ordering::SeqCst) > paused_at, "resumed on its times");

    // Back to an interval under the same key: one schedule, of the new kind.
    let interval =
        jobs.schedule_named_recurring(Recurrence::every(Duration::from_secs(60)), "tick", json!(2)).unwrap();
    assert!(interval.updated());
    let info = manager.cluster_stats().unwrap().schedules;
    assert_eq!((info.len(), info[0].cron.clone(), info[0].interval), (1, None, Duration::from_secs(60)));
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:cal")]), "0");
    let back = jobs.schedule_named_recurring(recurrence(EVERY_SECOND), "tick", json!(2)).unwrap();
    assert!(back.updated());
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:recur")]), "0");

    assert!(schedule.cancel().unwrap());
    assert!(!schedule.cancel().unwrap(), "gone already");
    assert_eq!(schedule.counts().unwrap(), None);
    assert!(manager.cluster_stats().unwrap().schedules.is_empty());
    assert_eq!(server.command(&["ZCARD", &format!("{prefix}:cal")]), "0");
    manager.shutdown();
}

/// Runs of a handler: (its arguments, start and end in ms since the epoch).
type Runs = Arc<std::sync::Mutex<Vec<(Value, u64, u64)>>>;

/// A manager on `server` whose `jobs.slow` sleeps `args["ms"]` and notes
/// each run.
fn slow_jobs(server: &RedisServer, prefix: &str) -> (taskmanager::TaskManager, Module, Runs) {
    let manager = manager(server, prefix);
    let jobs = Module::builder(&manager).name("jobs").max_workers(4).build().unwrap();
    let runs: Runs = Arc::default();
    let noted = Arc::clone(&runs);
    jobs.register("slow", move |args: Value| {
        let start = now_ms();
        std::thread::sleep(Duration::from_millis(args["ms"].as_u64().unwrap_or(0)));
        noted.lock().unwrap().push((args, start, now_ms()));
        Ok(Value::Null)
    })
    .unwrap();
    (manager, jobs, runs)
}

#[test]
fn a_tick_passed_during_a_run_waits_for_its_end_or_is_skipped_by_policy() {
    let server = RedisServer::start();
    let prefix = prefix("slow");
    let (manager, jobs, runs) = slow_jobs(&server, &prefix);
    // Every 5 s, each run 6 s: the tick 5 s after one passes during it.
    let every_five = || Recurrence::cron(Cron::parse("*/5 * * * * *").unwrap());
    let args = |policy: &str| json!({"ms": 6000, "policy": policy});
    let coalesce = jobs
        .schedule_named_recurring_as(
            "coalesce",
            every_five().misfire(Misfire::Coalesce),
            "slow",
            args("coalesce"),
        )
        .unwrap();
    let skip = jobs
        .schedule_named_recurring_as("skip", every_five().misfire(Misfire::Skip), "slow", args("skip"))
        .unwrap();
    manager.start_thread().unwrap();
    // Two runs of each: up to 5 s to the first tick, 6 s, then the
    // second; generous for a loaded machine.
    let until = Instant::now() + Duration::from_secs(45);
    let of = |policy: &str| -> Vec<(u64, u64)> {
        let runs = runs.lock().unwrap();
        runs.iter().filter(|r| r.0["policy"] == policy).map(|r| (r.1, r.2)).collect()
    };
    while (of("coalesce").len() < 2 || of("skip").len() < 2) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (c, s) = (of("coalesce"), of("skip"));
    assert!(c.len() >= 2 && s.len() >= 2, "coalesce {c:?}, skip {s:?}");
    // Coalesce: the passed tick runs as soon as the run ends (its ack
    // brings the schedule back), not at the next tick 4 s later.
    let waited = c[1].0.saturating_sub(c[0].1);
    assert!(waited < 2000, "coalesce: the next run started {waited} ms after the last ended");
    assert_eq!(coalesce.counts().unwrap().unwrap().1, 0, "nothing skipped");
    // Skip: the passed tick is skipped; the next run is at the next tick.
    let waited = s[1].0.saturating_sub(s[0].1);
    assert!((3000..7000).contains(&waited), "skip: the next run started {waited} ms after the last ended");
    assert!(skip.counts().unwrap().unwrap().1 >= 1, "the tick passed during the run is skipped");
    eprintln!("figure: a 6 s run of a 5 s calendar: coalesce runs the passed tick {} ms after, skip waits {waited} ms", c[1].0.saturating_sub(c[0].1));
    manager.shutdown();
}

#[test]
fn jitter_delays_each_tick_within_its_bound_and_every_tick_still_runs_once() {
    let server = RedisServer::start();
    let prefix = prefix("jit");
    let (manager, jobs, runs) = slow_jobs(&server, &prefix);
    let jittered = Recurrence::cron(Cron::parse(EVERY_SECOND).unwrap()).jitter(Duration::from_millis(600));
    let schedule = jobs.schedule_named_recurring(jittered, "slow", json!({"ms": 0})).unwrap();
    manager.start_thread().unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let (_, skipped) = schedule.counts().unwrap().unwrap();
    assert_eq!(skipped, 0, "jitter never makes a tick miss");
    assert!(schedule.pause().unwrap());
    std::thread::sleep(Duration::from_millis(800));
    let runs = runs.lock().unwrap().clone();
    // Each run starts within its second's jitter: 0 to 600 ms past it (and
    // what a wake-up and a claim take, up to 300 ms on a loaded machine).
    let delays: Vec<u64> = runs.iter().map(|r| r.1 % 1000).collect();
    assert!(delays.iter().all(|&d| d <= 900), "delays past the second: {delays:?}");
    assert!(delays.iter().any(|&d| d >= 150), "spread over the bound: {delays:?}");
    let (ticks, _) = schedule.counts().unwrap().unwrap();
    assert_eq!(ticks, runs.len() as u64, "every tick fired ran once");
    assert!((6..=9).contains(&runs.len()), "{} runs in 8 s", runs.len());
    eprintln!("figure: jitter 600 ms on a cron every second: {} runs, delays {delays:?} ms", runs.len());
    manager.shutdown();
}
