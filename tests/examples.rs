//! The examples run and print what they promise. Cargo builds examples
//! before integration tests; this finds them next to the test binary.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // the test binary
    dir.pop(); // deps/
    dir.join("examples").join(name)
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
