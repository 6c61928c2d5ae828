//! Calendar schedules against an independent reference: the cases in
//! tests/data/calendar_reference.tsv, made by tests/calendar_reference.py
//! from croniter, Python's zoneinfo (tzdata, the same IANA release as our
//! bundled data) and the DST policy written again in Python. Each case is an
//! expression, a zone, an instant, and the next run under each of the six
//! policies. `python3 tests/calendar_reference.py` runs the whole property
//! test (it checks the file is what the reference gives, then runs this).

use std::time::{Duration, SystemTime};

use taskmanager::{Cron, FoldPolicy, GapPolicy};

const CASES: &str = include_str!("data/calendar_reference.tsv");

/// The policies of the file's columns, in order.
const POLICIES: [(GapPolicy, FoldPolicy); 6] = [
    (GapPolicy::Shift, FoldPolicy::First),
    (GapPolicy::Shift, FoldPolicy::Second),
    (GapPolicy::Shift, FoldPolicy::Both),
    (GapPolicy::Skip, FoldPolicy::First),
    (GapPolicy::Skip, FoldPolicy::Second),
    (GapPolicy::Skip, FoldPolicy::Both),
];

/// One case's expected answers: seconds after `t`, `None` for no run.
fn expected(columns: &[&str]) -> Vec<Option<u64>> {
    let mut previous: Option<Option<u64>> = None;
    columns
        .iter()
        .map(|column| {
            let value = match *column {
                "=" => previous.expect("'=' in the first column"),
                "-" => None,
                seconds => Some(seconds.parse().unwrap_or_else(|_| panic!("bad answer {seconds:?}"))),
            };
            previous = Some(value);
            value
        })
        .collect()
}

#[test]
fn every_case_agrees_with_the_reference() {
    let (mut cases, mut checks, mut disagreements) = (0, 0, Vec::new());
    for line in CASES.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let columns: Vec<&str> = line.split('\t').collect();
        assert_eq!(columns.len(), 9, "{line}");
        let (expression, zone) = (columns[0], columns[1]);
        let t: u64 = columns[2].parse().unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(t);
        let cron = Cron::parse(expression)
            .and_then(|cron| cron.zone(zone))
            .unwrap_or_else(|err| panic!("{line}: {err}"));
        for ((gap, fold), want) in POLICIES.into_iter().zip(expected(&columns[3..])) {
            let got = cron.clone().gap(gap).fold(fold).next_after(at).map(|next| {
                let secs = next.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                secs - t
            });
            checks += 1;
            if got != want {
                disagreements.push(format!(
                    "{expression:?} in {zone} after {t}, {gap:?}+{fold:?}: ours {got:?}, reference {want:?}"
                ));
            }
        }
        cases += 1;
    }
    // An emptied or truncated file must not pass.
    assert!(cases >= 10_000, "only {cases} cases");
    assert!(
        disagreements.is_empty(),
        "{} of {checks} checks ({cases} cases) disagree with the reference; the first:\n{}",
        disagreements.len(),
        disagreements.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}
