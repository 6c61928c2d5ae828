//! The examples run and print what they promise. Cargo builds examples
//! before integration tests; this finds them next to the test binary.

use std::path::PathBuf;
use std::process::Command;

/// The example's program, built by `cargo build --examples` (which
/// `scripts/test.sh` runs before the tests).
fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    dir.pop(); // deps/
    let path = dir.join("examples").join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --examples` first", path.display());
    path
}

#[test]
fn seed_prints_the_specs_lines_on_time() {
    let out = Command::new(example("seed")).args(["--seconds", "2.5"]).output().expect("run seed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let count = |l: &str| lines.iter().filter(|x| **x == l).count();
    assert_eq!(count("hello"), 2, "{text}");
    assert_eq!(count("once"), 1, "{text}");
    // At 1 s and 2 s; and at 0, 1 and 2 s. 0.5 s of margin either side.
    assert_eq!(count("every"), 2, "{text}");
    assert_eq!(count("every-now"), 3, "{text}");
    assert_eq!(lines.len(), 8, "nothing else printed: {text}");
    // The three immediate tasks may start in any order on 5 workers.
    let first = lines.iter().position(|l| *l == "every-now").unwrap();
    assert!(first < 3, "every-now runs at once: {text}");
}

fn run(name: &str) -> String {
    let out = Command::new(example(name)).output().expect("run example");
    assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn poller_never_exceeds_its_cap() {
    let text = run("poller");
    let polls: Vec<&str> = text.lines().filter(|l| l.contains(" polled (")).collect();
    assert!(polls.len() >= 10, "{text}");
    assert!(polls.iter().all(|l| l.contains("(1 poll(s)") || l.contains("(2 poll(s)")), "{text}");
}

#[test]
fn fan_out_collects_every_result() {
    assert!(run("fan_out").contains("primes below 1000000: 78498"));
}

#[test]
fn cancel_recurring_stops_both_tasks() {
    let text = run("cancel_recurring");
    assert!(text.contains("countdown: 3 runs, cancelled: true"), "{text}");
    assert_eq!(text.matches("countdown ").count(), 3, "{text}");
    let runs = text.lines().find_map(|l| l.strip_prefix("heartbeat: ")).unwrap();
    let after = text.lines().find_map(|l| l.strip_prefix("heartbeat still at ")).unwrap();
    assert_eq!(runs.split(' ').next(), after.split(' ').next(), "no run after cancel: {text}");
}
