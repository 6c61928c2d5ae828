//! The cost of computing a cron schedule's next fire time (issue 27):
//! taskmanager's `Cron::next_after` against Rust peers computing the same
//! thing from the same expressions, zones and start instants, in one run.
//!
//! ```text
//! cargo bench --bench cron                       # full run, both scenarios (5 repetitions)
//! cargo bench --bench cron -- --quick            # 3 repetitions, fewer start instants
//! cargo bench --bench cron -- --json out.json    # also write the records
//! cargo bench --bench cron -- --answers ours.tsv  # and our answers, for benches/cron_peers.py --ours
//! cargo bench --bench cron -- --only pending     # one scenario: `next` or `pending`
//! ```
//!
//! Two scenarios: `next` (below: the cost of one next fire time) and
//! `pending` (10,000 cron schedules waiting, none due: memory, time to
//! schedule them, CPU per idle second; see [`pending`]).
//!
//! Systems:
//!
//! - `taskmanager`: `Cron::parse(expr)?.zone(zone)?.next_after(SystemTime)`
//!   (default policies: `GapPolicy::Shift`, `FoldPolicy::First`).
//! - `croner`: croner 4 used directly (`find_next_occurrence(&Zoned,
//!   false)`, on jiff's `Zoned`), parsed as our `Cron` parses (seconds
//!   optional, no year field). The same grammar and civil-time search as
//!   ours, with croner's own DST rule in place of our walk along the zone's
//!   time line.
//! - `cron`: the `cron` crate (0.17) on chrono with chrono-tz zones
//!   (`Schedule::after(&DateTime<Tz>).next()`). It requires a seconds
//!   field, so each expression gets `"0 "` in front (the same times: second
//!   0). It has no `L`, so `0 0 L * *` is not timed for it and is left out
//!   of every system's overall figure.
//!
//! tokio-cron-scheduler is not timed: it gives a next fire time only as
//! `JobScheduler::next_tick_for_job(uuid)`, an async call on a running
//! scheduler that reads the tick its loop stored, computed from
//! `Utc::now()` (no start instant can be given); the computation inside is
//! croner 3's `find_next_occurrence`, which the `croner` row stands for.
//!
//! Workload: every expression of [`EXPRESSIONS`] in every zone of
//! [`ZONES`], from the same start instants (whole seconds, uniform over
//! 2025-2027, from a seeded `Lcg`). Each peer gets its start instants
//! already in its own type (`Zoned`, `DateTime<Tz>`), converted before the
//! clock starts; ours takes a `SystemTime` and converts inside the call, so
//! the conversion counts against us only. Each repetition times, for each
//! expression, every system in turn (the order rotates per repetition) on
//! all zones and start instants; the value is ns per next-fire computation,
//! the median over repetitions with the min and max. `cron-next-ratio` is
//! each peer's ns as a percentage of ours within each repetition (median,
//! min, max): on a noisy machine the figure to quote.
//!
//! Before timing, every answer of every peer is compared with ours. A
//! disagreement within 3 hours of a DST transition of the zone (of the
//! start instant, our answer or theirs) is counted as a DST one (peers
//! have other DST rules, expected); any other is printed in full.

use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use chrono::TimeZone as _;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use taskmanager::{Cron, Module, Recurrence, TaskManager};
use taskmanager_benches::{
    count_allocations, live_bytes, print_table, process_cpu, process_sleeps, rss_bytes, stop_counting,
    to_json, CountingAlloc, Lcg, Record, Samples,
};

// For `pending`'s heap bytes (counting is off in `next`: one relaxed load
// per allocation, for every system alike).
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The expressions, with whether the `cron` crate reads them (no `L`).
const EXPRESSIONS: [(&str, bool); 6] = [
    ("*/5 * * * *", true),
    ("0 9 * * MON-FRI", true),
    // 02:30 is skipped or repeated at Berlin's and New York's transitions.
    ("30 2 * * *", true),
    ("0 0 1 * *", true),
    ("15,45 */2 * * *", true),
    ("0 0 L * *", false),
];

const ZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"];

/// 2025-01-01T00:00:00Z and 2028-01-01T00:00:00Z.
const FROM: u64 = 1_735_689_600;
const UNTIL: u64 = 1_830_297_600;

const SYSTEMS: [&str; 3] = ["taskmanager", "croner", "cron"];

/// `--answers` writes our answers for this many start instants (the
/// first ones: benches/cron_peers.py's full run uses as many).
const ANSWERS_STARTS: usize = 2_000;

/// A disagreement this close to a transition is put down to DST rules.
const NEAR_TRANSITION: i64 = 3 * 3600;

struct Opts {
    quick: bool,
    json: Option<String>,
    answers: Option<String>,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts { quick: false, json: None, answers: None, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--json" => o.json = args.next(),
            "--answers" => o.answers = args.next(),
            "--only" => o.only = args.next(),
            "--bench" => {} // added by `cargo bench`
            other => eprintln!("cron: ignoring unknown argument {other:?}"),
        }
    }
    o
}

/// One expression in one zone, prepared for every system, with the start
/// instants in each system's own type.
struct Case {
    expr: usize,
    zone: usize,
    tz: TimeZone,
    ours: Cron,
    croner: croner::Cron,
    /// `None` where the `cron` crate cannot read the expression.
    cron: Option<cron::Schedule>,
    starts: Vec<SystemTime>,
    zoned: Vec<Zoned>,
    chrono: Vec<chrono::DateTime<chrono_tz::Tz>>,
}

fn cases(starts: &[i64]) -> Vec<Case> {
    let mut out = Vec::new();
    for (expr, &(expression, cron_reads)) in EXPRESSIONS.iter().enumerate() {
        for (zone, &name) in ZONES.iter().enumerate() {
            let tz = TimeZone::get(name).expect("jiff zone");
            let chrono_tz: chrono_tz::Tz = name.parse().expect("chrono-tz zone");
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .year(croner::parser::Year::Disallowed)
                .build();
            out.push(Case {
                expr,
                zone,
                ours: Cron::parse(expression).and_then(|c| c.zone(name)).expect("our Cron"),
                croner: parser.parse(expression).expect("croner parse"),
                cron: cron_reads
                    .then(|| cron::Schedule::from_str(&format!("0 {expression}")).expect("cron parse")),
                starts: starts
                    .iter()
                    .map(|&s| SystemTime::UNIX_EPOCH + Duration::from_secs(s as u64))
                    .collect(),
                zoned: starts
                    .iter()
                    .map(|&s| Timestamp::from_second(s).unwrap().to_zoned(tz.clone()))
                    .collect(),
                chrono: starts.iter().map(|&s| chrono_tz.timestamp_opt(s, 0).unwrap()).collect(),
                tz,
            });
        }
    }
    out
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

/// Each system's answer for start `i` of `case`, in Unix seconds (`None`
/// for no answer, or a system that does not read the expression).
fn answer(system: &str, case: &Case, i: usize) -> Option<i64> {
    match system {
        "taskmanager" => case.ours.next_after(case.starts[i]).map(unix),
        "croner" => {
            case.croner.find_next_occurrence(&case.zoned[i], false).ok().map(|z| z.timestamp().as_second())
        }
        "cron" => case.cron.as_ref()?.after(&case.chrono[i]).next().map(|d| d.timestamp()),
        _ => unreachable!(),
    }
}

/// Times all start instants of `case` on `system`: (nanoseconds, calls),
/// or `None` if the system does not read the expression.
fn time_case(system: &str, case: &Case) -> Option<(f64, usize)> {
    let mut sum = 0i64;
    let t0 = Instant::now();
    match system {
        "taskmanager" => {
            for &s in &case.starts {
                sum = sum.wrapping_add(std::hint::black_box(case.ours.next_after(s)).map_or(0, unix));
            }
        }
        "croner" => {
            for z in &case.zoned {
                let next = std::hint::black_box(case.croner.find_next_occurrence(z, false));
                sum = sum.wrapping_add(next.map_or(0, |z| z.timestamp().as_second()));
            }
        }
        "cron" => {
            let schedule = case.cron.as_ref()?;
            for d in &case.chrono {
                sum = sum.wrapping_add(
                    std::hint::black_box(schedule.after(d).next()).map_or(0, |d| d.timestamp()),
                );
            }
        }
        _ => unreachable!(),
    }
    let ns = t0.elapsed().as_nanos() as f64;
    std::hint::black_box(sum);
    Some((ns, case.starts.len()))
}

/// Whether a transition of `tz` lies within [`NEAR_TRANSITION`] of any of
/// `instants`.
fn near_transition(tz: &TimeZone, instants: &[i64]) -> bool {
    instants.iter().any(|&t| {
        let from = Timestamp::from_second(t - NEAR_TRANSITION).unwrap();
        tz.following(from).next().is_some_and(|tr| tr.timestamp().as_second() <= t + NEAR_TRANSITION)
    })
}

fn show(tz: &TimeZone, t: Option<i64>) -> String {
    match t {
        Some(s) => {
            let ts = Timestamp::from_second(s).unwrap();
            format!("{ts} ({})", ts.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z"))
        }
        None => "none".to_owned(),
    }
}

/// Compares every peer's answers with ours; prints and returns the counts.
fn agreement(cases: &[Case]) -> Vec<Record> {
    let mut records = Vec::new();
    println!("\ncron-agree (every peer's answer against ours, on every case it reads)");
    for peer in &SYSTEMS[1..] {
        let (mut compared, mut dst, mut other, mut not_after) = (0usize, 0usize, 0usize, 0usize);
        // (near DST?, expression, zone): count, first example.
        let mut groups: Vec<((bool, usize, usize), usize, String)> = Vec::new();
        let mut first_not_after = None;
        for case in cases {
            if *peer == "cron" && case.cron.is_none() {
                continue;
            }
            for i in 0..case.starts.len() {
                compared += 1;
                let theirs = answer(peer, case, i);
                let ours = answer("taskmanager", case, i);
                let start = unix(case.starts[i]);
                assert!(ours.is_some_and(|t| t > start), "ours not after the start");
                if ours == theirs {
                    continue;
                }
                let detail = format!(
                    "{} in {}, after {}: ours {}, {peer} {}",
                    EXPRESSIONS[case.expr].0,
                    ZONES[case.zone],
                    show(&case.tz, Some(start)),
                    show(&case.tz, ours),
                    show(&case.tz, theirs)
                );
                // Not a matter of DST rules: a next fire time at or before
                // its start instant is wrong by any rule.
                if theirs.is_some_and(|t| t <= start) {
                    not_after += 1;
                    first_not_after.get_or_insert_with(|| detail.clone());
                }
                let at: Vec<i64> = [Some(start), ours, theirs].into_iter().flatten().collect();
                let near = near_transition(&case.tz, &at);
                if near {
                    dst += 1;
                } else {
                    other += 1;
                }
                let key = (near, case.expr, case.zone);
                match groups.iter_mut().find(|g| g.0 == key) {
                    Some(g) => g.1 += 1,
                    None => groups.push((key, 1, detail)),
                }
            }
        }
        println!(
            "  {peer}: {compared} cases, {dst} disagree near a DST transition, {other} elsewhere; \
             {not_after} of the disagreements answer a time not after the start"
        );
        groups.sort_by_key(|g| g.0);
        for ((near, expr, zone), n, example) in groups {
            let kind = if near { "near DST" } else { "NOT DST" };
            println!("    {kind}: {:<18} {:<22} {n:>5}   first: {example}", EXPRESSIONS[expr].0, ZONES[zone]);
        }
        if let Some(example) = first_not_after {
            println!("    first answer not after its start: {example}");
        }
        let counts = [
            ("cases", compared),
            ("disagree_dst", dst),
            ("disagree_other", other),
            ("not_after_start", not_after),
        ];
        for (metric, v) in counts {
            let value = v as f64;
            records.push(Record {
                scenario: "cron-agree",
                system: peer,
                metric,
                value,
                unit: "count",
                min: value,
                max: value,
            });
        }
    }
    records
}

fn main() {
    if let Some(code) = pending_child() {
        std::process::exit(code);
    }
    let o = opts();
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| name.starts_with(only));
    let mut records = Vec::new();
    if wanted("next") {
        records = next(&o);
    }
    if wanted("pending") {
        let rs = pending(o.quick);
        print_table("cron-pending", &rs);
        records.extend(rs);
    }
    if let Some(path) = o.json {
        let path = typed_path(path);
        std::fs::write(&path, to_json(&records)).expect("write --json file");
        println!("cron: wrote {path}");
    }
}

/// The `next` scenario: the cost of one next fire time.
fn next(o: &Opts) -> Vec<Record> {
    let reps = if o.quick { 3 } else { 5 };
    let n_starts = if o.quick { 5_000 } else { 50_000 };
    let started = Instant::now();
    let mut lcg = Lcg::new(27);
    let starts: Vec<i64> = (0..n_starts).map(|_| lcg.between(FROM, UNTIL - 1) as i64).collect();
    let cases = cases(&starts);

    // The comparison is also every system's warm-up.
    let mut records = agreement(&cases);

    let mut overall = Samples::new("cron-next");
    let mut by_expr = Samples::new("cron-next-by-expr");
    let mut ratios = Samples::new("cron-next-ratio");
    for rep in 0..reps {
        // (ns, calls) per system over the expressions every system reads.
        let mut total = [(0.0f64, 0usize); SYSTEMS.len()];
        for (expr, &(expression, all_read)) in EXPRESSIONS.iter().enumerate() {
            for k in 0..SYSTEMS.len() {
                let s = (k + rep) % SYSTEMS.len();
                let system = SYSTEMS[s];
                let mut timed = None;
                for case in cases.iter().filter(|c| c.expr == expr) {
                    if let Some((ns, calls)) = time_case(system, case) {
                        let (t, c) = timed.get_or_insert((0.0, 0));
                        *t += ns;
                        *c += calls;
                    }
                }
                if let Some((ns, calls)) = timed {
                    by_expr.add(system, expression, "ns", ns / calls as f64);
                    if all_read {
                        total[s].0 += ns;
                        total[s].1 += calls;
                    }
                }
            }
        }
        let per_next = total.map(|(ns, calls)| ns / calls as f64);
        for (s, &value) in per_next.iter().enumerate() {
            overall.add(SYSTEMS[s], "ns_per_next", "ns", value);
            // Paired within the repetition (the systems ran interleaved), so
            // the machine's slow swings cancel.
            if s > 0 {
                ratios.add(SYSTEMS[s], "pct_of_taskmanager", "%", 100.0 * value / per_next[0]);
            }
        }
    }
    for samples in [overall, ratios, by_expr] {
        let rs = samples.records();
        print_table(rs[0].scenario, &rs);
        records.extend(rs);
    }
    println!(
        "\ncron: {} expressions x {} zones x {n_starts} start instants; {} records in {:.1} s ({reps} repetitions)",
        EXPRESSIONS.len(),
        ZONES.len(),
        records.len(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(path) = o.answers.clone() {
        let path = typed_path(path);
        std::fs::write(&path, answers_tsv(&cases)).expect("write --answers file");
        println!("cron: wrote {path}");
    }
    records
}

/// `cargo bench` runs this from the package's folder; a relative path
/// means relative to where the command was typed.
fn typed_path(path: String) -> String {
    match std::env::var("PWD") {
        Ok(dir) if std::path::Path::new(&path).is_relative() => format!("{dir}/{path}"),
        _ => path,
    }
}

/// Our answers, one a line: expression, zone, start and next fire time
/// (Unix seconds, or `none`), tab-separated.
fn answers_tsv(cases: &[Case]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for case in cases {
        for i in 0..case.starts.len().min(ANSWERS_STARTS) {
            let ours = answer("taskmanager", case, i).map_or_else(|| "none".to_owned(), |t| t.to_string());
            let start = unix(case.starts[i]);
            let _ = writeln!(out, "{}\t{}\t{start}\t{ours}", EXPRESSIONS[case.expr].0, ZONES[case.zone]);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// pending: 10,000 cron schedules waiting, none due. Each measurement is a
// child process of this program (the same binary, run with
// `--pending-child SYSTEM SECONDS`), so no other system's threads or heap
// share the process. The child starts the system (nothing scheduled), then
// counts heap allocations from zero and reads RSS, schedules the 10,000
// (parsing included: every system parses its expression when scheduling),
// waits 300 ms, reads the live heap bytes and RSS again, then reads
// getrusage(RUSAGE_SELF) (every thread, user + system; voluntary context
// switches), sleeps the idle window, and reads it again. It checks that
// nothing ran. For taskmanager it then builds the 10,000 `Cron` values
// alone (timed, heap counted, then dropped): `of_which_cron_parse_ms` and
// `of_which_cron_value_bytes`, the part of the totals that is parsing and
// the parsed expression.

/// Schedules per measurement.
const PENDING: usize = 10_000;

/// Systems of `pending`.
const PENDING_SYSTEMS: [&str; 2] = ["taskmanager", "tokio-cron-scheduler"];

/// Zones of the `0 9 * * MON-FRI` schedules (one schedule in ten); a zone
/// whose next 09:00 is under [`PENDING_MARGIN`] away is left out.
const PENDING_ZONES: [&str; 6] = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
];

/// Every schedule's next fire is at least this far from the start.
const PENDING_MARGIN: u64 = 2 * 3600;

/// The 10,000 schedules, as (five-field expression, zone), for a start at
/// `now`: nine in ten `M H * * *` in UTC, at times of day from 2.5 h to
/// 23.5 h after `now` (spread by a stride of 37 minutes), one in ten
/// `0 9 * * MON-FRI` in a zone of [`PENDING_ZONES`] whose next 09:00 is at
/// least [`PENDING_MARGIN`] away. benches/cron_pending.py builds the same.
fn pending_schedules(now: SystemTime) -> Vec<(String, &'static str)> {
    let secs = unix(now) as u64;
    let zones: Vec<&'static str> = PENDING_ZONES
        .iter()
        .copied()
        .filter(|zone| {
            let cron = Cron::parse("0 9 * * MON-FRI").and_then(|c| c.zone(zone)).expect("zone");
            cron.next_after(now).is_some_and(|t| unix(t) as u64 >= secs + PENDING_MARGIN)
        })
        .collect();
    let minute_of_day = (secs % 86_400) / 60;
    (0..PENDING)
        .map(|i| {
            if i % 10 == 9 {
                ("0 9 * * MON-FRI".to_owned(), zones[(i / 10) % zones.len()])
            } else {
                let m = (minute_of_day + 150 + (i as u64 * 37) % 1260) % 1440;
                (format!("{} {} * * *", m % 60, m / 60), "UTC")
            }
        })
        .collect()
}

/// Runs every system `reps` times, each in a fresh child process, the
/// order rotating per repetition.
fn pending(quick: bool) -> Vec<Record> {
    let reps = if quick { 3 } else { 5 };
    let seconds: u64 = if quick { 3 } else { 10 };
    let started = Instant::now();
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut s = Samples::new("cron-pending");
    for rep in 0..reps {
        for k in 0..PENDING_SYSTEMS.len() {
            let system = PENDING_SYSTEMS[(k + rep) % PENDING_SYSTEMS.len()];
            let out = std::process::Command::new(&exe)
                .args(["--pending-child", system, &seconds.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("start a --pending-child process");
            let text = String::from_utf8_lossy(&out.stdout);
            let values: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let [schedule_ms, heap, rss, cpu, wakeups, runs, cron_bytes, parse_ms] = values[..] else {
                panic!("--pending-child {system} printed {text:?} ({})", out.status)
            };
            assert!(runs == 0.0, "{system}: {runs} schedules ran during the measurement");
            s.add(system, "schedule_ms", "ms", schedule_ms);
            if parse_ms.is_finite() {
                s.add(system, "of_which_cron_parse_ms", "ms", parse_ms);
            }
            s.add(system, "heap_bytes_per_schedule", "B", heap / PENDING as f64);
            if cron_bytes.is_finite() {
                s.add(system, "of_which_cron_value_bytes", "B", cron_bytes / PENDING as f64);
            }
            s.add(system, "rss_delta_bytes_per_schedule", "B", rss / PENDING as f64);
            s.add(system, "cpu_ms_per_idle_s", "ms", cpu);
            s.add(system, "wakeups_per_idle_s", "wakeups", wakeups);
        }
    }
    println!(
        "\ncron-pending: {PENDING} schedules, {seconds} s idle window, {reps} repetitions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    s.records()
}

/// In a `--pending-child` process: measures one system, prints schedule
/// ms, heap bytes, RSS delta bytes, CPU ms per idle second, wake-ups per
/// idle second, the number of runs, and (taskmanager only, else NaN) the
/// heap bytes and parse ms of the `Cron` values alone; returns the exit
/// code. None in the parent.
fn pending_child() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--pending-child")?;
    let (system, seconds) = match &args[at + 1..] {
        [system, seconds, ..] => (system.as_str(), seconds.parse::<u64>().ok()?),
        _ => return Some(2),
    };
    let window = Duration::from_secs(seconds);
    let runs: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let schedules = pending_schedules(SystemTime::now());
    // After the system is started, before anything is scheduled.
    let begin = || {
        let rss = rss_bytes().unwrap_or(0);
        count_allocations();
        (rss, Instant::now())
    };
    // After the 10,000 are scheduled: reads memory, then the idle window.
    let measure = |(rss0, t0): (u64, Instant)| {
        let schedule_ms = t0.elapsed().as_secs_f64() * 1e3;
        thread::sleep(Duration::from_millis(300));
        let heap = live_bytes();
        stop_counting();
        let rss = rss_bytes().unwrap_or(0) as f64 - rss0 as f64;
        let (cpu0, sleeps0) = (process_cpu(), process_sleeps());
        thread::sleep(window);
        let (cpu1, sleeps1) = (process_cpu(), process_sleeps());
        let idle = window.as_secs_f64();
        let cpu = (cpu1 - cpu0).as_secs_f64() * 1e3 / idle;
        // The measuring thread's own sleep counts 1 over the whole window.
        let wakeups = (sleeps1 - sleeps0).saturating_sub(1) as f64 / idle;
        [schedule_ms, heap as f64, rss, cpu, wakeups]
    };
    let tick = move || {
        runs.fetch_add(1, Ordering::Relaxed);
    };
    // taskmanager only: the heap bytes of the parsed `Cron` values alone,
    // and the time to parse them (`Cron::parse(..)?.zone(..)`).
    let (mut cron_bytes, mut parse_ms) = (f64::NAN, f64::NAN);
    let values = match system {
        "taskmanager" => {
            let manager = TaskManager::new();
            manager.start_thread().unwrap();
            let module = Module::new(&manager, 2).unwrap();
            // Zones loaded once, outside the count (a process-wide cache).
            for zone in PENDING_ZONES {
                drop(Cron::parse("0 9 * * *").and_then(|c| c.zone(zone)).unwrap());
            }
            let start = begin();
            let handles: Vec<_> = schedules
                .iter()
                .map(|(expr, zone)| {
                    let cron = Cron::parse(expr).and_then(|c| c.zone(zone)).expect("our Cron");
                    module.schedule_recurring(Recurrence::cron(cron), tick).unwrap()
                })
                .collect();
            let v = measure(start);
            std::hint::black_box(&handles);
            // What the 10,000 parsed `Cron` values hold by themselves (of the
            // heap bytes above): built, counted, dropped; after the
            // measurement, so its freed memory is not in the RSS delta.
            count_allocations();
            let parse_start = Instant::now();
            let crons: Vec<Cron> = schedules
                .iter()
                .map(|(expr, zone)| Cron::parse(expr).and_then(|c| c.zone(zone)).expect("our Cron"))
                .collect();
            parse_ms = parse_start.elapsed().as_secs_f64() * 1e3;
            // The values themselves count (a task holds its `Cron` on the
            // heap), the Vec's spare capacity does not.
            let spare = (crons.capacity() - crons.len()) * std::mem::size_of::<Cron>();
            cron_bytes = (live_bytes() - spare as isize) as f64;
            drop(crons);
            stop_counting();
            v
        }
        "tokio-cron-scheduler" => {
            use tokio_cron_scheduler::{Job, JobScheduler};
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
            let sched = rt.block_on(async {
                let sched = JobScheduler::new().await.unwrap();
                sched.start().await.unwrap();
                sched
            });
            let start = begin();
            rt.block_on(async {
                for (expr, zone) in &schedules {
                    // It requires a seconds field: second 0, the same times.
                    let expr = format!("0 {expr}");
                    let tz: chrono_tz::Tz = zone.parse().expect("chrono-tz zone");
                    let job = Job::new_tz(expr, tz, move |_, _| tick()).expect("tokio-cron-scheduler Job");
                    sched.add(job).await.unwrap();
                }
            });
            let v = measure(start);
            std::hint::black_box(&sched);
            v
        }
        _ => return Some(2),
    };
    let [schedule_ms, heap, rss, cpu, wakeups] = values;
    println!(
        "{schedule_ms} {heap} {rss} {cpu} {wakeups} {} {cron_bytes} {parse_ms}",
        runs.load(Ordering::Relaxed)
    );
    Some(0)
}
