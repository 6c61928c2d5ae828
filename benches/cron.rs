//! The cost of computing a cron schedule's next fire time (issue 27):
//! taskmanager's `Cron::next_after` against Rust peers computing the same
//! thing from the same expressions, zones and start instants, in one run.
//!
//! ```text
//! cargo bench --bench cron                       # full run (5 repetitions)
//! cargo bench --bench cron -- --quick            # 3 repetitions, fewer start instants
//! cargo bench --bench cron -- --json out.json    # also write the records
//! cargo bench --bench cron -- --answers ours.tsv  # and our answers, for benches/cron_peers.py --ours
//! ```
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
use std::time::{Duration, Instant, SystemTime};

use chrono::TimeZone as _;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use taskmanager::Cron;
use taskmanager_benches::{print_table, to_json, Lcg, Record, Samples};

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
}

fn opts() -> Opts {
    let mut o = Opts { quick: false, json: None, answers: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--json" => o.json = args.next(),
            "--answers" => o.answers = args.next(),
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
    let o = opts();
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
    if let Some(path) = o.json {
        let path = typed_path(path);
        std::fs::write(&path, to_json(&records)).expect("write --json file");
        println!("cron: wrote {path}");
    }
    if let Some(path) = o.answers {
        let path = typed_path(path);
        std::fs::write(&path, answers_tsv(&cases)).expect("write --answers file");
        println!("cron: wrote {path}");
    }
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
