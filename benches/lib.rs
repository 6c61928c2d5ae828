//! Shared pieces of the peer benchmarks: records and their output, summary
//! statistics, a completion latch, a seeded generator, and memory
//! accounting.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// One measurement, in the JSON shape the benchmark issue fixes.
#[derive(Debug, Clone)]
pub struct Record {
    pub scenario: &'static str,
    pub system: &'static str,
    pub metric: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// The smallest and largest value over the repetitions (`value` is
    /// their median).
    pub min: f64,
    pub max: f64,
}

/// The records as a JSON list (written by hand: no dependency needed).
pub fn to_json(records: &[Record]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in records.iter().enumerate() {
        let num = |v: f64| if v.is_finite() { format!("{v}") } else { "null".to_owned() };
        let _ = writeln!(
            out,
            "  {{\"scenario\": \"{}\", \"system\": \"{}\", \"metric\": \"{}\", \"value\": {}, \"unit\": \"{}\", \"min\": {}, \"max\": {}}}{}",
            r.scenario,
            r.system,
            r.metric,
            num(r.value),
            r.unit,
            num(r.min),
            num(r.max),
            if i + 1 < records.len() { "," } else { "" }
        );
    }
    out.push(']');
    out.push('\n');
    out
}

/// Prints the records of one scenario as a table: each median with the
/// repetitions' range, and each system's ratio to `taskmanager`.
pub fn print_table(scenario: &str, records: &[Record]) {
    let rows: Vec<&Record> = records.iter().filter(|r| r.scenario == scenario).collect();
    println!("\n{scenario}");
    println!(
        "  {:<24} {:<26} {:>12} {:>25} {:<8} {:>10}",
        "system", "metric", "median", "[min - max]", "unit", "vs ours"
    );
    for r in &rows {
        let ours = rows.iter().find(|o| o.system == "taskmanager" && o.metric == r.metric).map(|o| o.value);
        // A ratio to (nearly) zero says nothing (plot.py leaves it out too).
        let ratio = match ours {
            Some(o) if o.abs() >= 0.5 && r.system != "taskmanager" => format!("{:.2}x", r.value / o),
            _ => String::new(),
        };
        let range = format!("[{:.1} - {:.1}]", r.min, r.max);
        println!(
            "  {:<24} {:<26} {:>12.1} {:>25} {:<8} {:>10}",
            r.system, r.metric, r.value, range, r.unit, ratio
        );
    }
}

/// Collects samples per (system, metric) over the repetitions of one
/// scenario, then gives one [`Record`] each: the median, with the min and
/// max.
#[derive(Debug)]
pub struct Samples {
    scenario: &'static str,
    rows: Vec<(&'static str, &'static str, &'static str, Vec<f64>)>,
}

impl Samples {
    pub fn new(scenario: &'static str) -> Self {
        Samples { scenario, rows: Vec::new() }
    }

    pub fn add(&mut self, system: &'static str, metric: &'static str, unit: &'static str, value: f64) {
        match self.rows.iter_mut().find(|r| r.0 == system && r.1 == metric) {
            Some(row) => row.3.push(value),
            None => self.rows.push((system, metric, unit, vec![value])),
        }
    }

    pub fn records(self) -> Vec<Record> {
        let scenario = self.scenario;
        self.rows
            .into_iter()
            .map(|(system, metric, unit, mut v)| {
                let value = median(&mut v);
                let (min, max) = (v[0], v[v.len() - 1]);
                Record { scenario, system, metric, value, unit, min, max }
            })
            .collect()
    }
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// The `p`-th percentile (0..=100) of `samples` (sorted in place), nearest
/// rank.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    if samples.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Counts completions; the one that reaches the target opens the latch.
#[derive(Debug)]
pub struct Latch {
    count: AtomicUsize,
    target: usize,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    pub fn new(target: usize) -> Self {
        Latch { count: AtomicUsize::new(0), target, open: Mutex::new(false), opened: Condvar::new() }
    }

    /// Leaks a latch for the duration of the process, so tasks can hold a
    /// plain `&'static` reference (no reference count to bounce between
    /// cores, for every system alike).
    pub fn leak(target: usize) -> &'static Latch {
        Box::leak(Box::new(Latch::new(target)))
    }

    pub fn hit(&self) {
        if self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    /// Waits until open; false after `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        let open = self.open.lock().unwrap();
        let (open, _) = self.opened.wait_timeout_while(open, timeout, |o| !*o).unwrap();
        *open
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

/// A small seeded generator, so every system gets the same delays.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// CPU time (user + system) this process has used so far, every thread
/// included, from `getrusage(RUSAGE_SELF)`.
pub fn process_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage(RUSAGE_SELF)");
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(micros(usage.user_time()) + micros(usage.system_time()))
}

/// Times this process's threads went to sleep so far (voluntary context
/// switches, every thread included, from `getrusage(RUSAGE_SELF)`): each is
/// a wait that ended in a wake-up. Unlike CPU time, a count, so it does not
/// move with the machine's noise.
pub fn process_sleeps() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage(RUSAGE_SELF)");
    usage.voluntary_context_switches() as u64
}

/// Resident memory of this process, from the kernel's accounting.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The global allocator, counting live heap bytes while counting is on, so
/// a scenario can read what a data structure holds without the noise of
/// the allocator keeping freed pages resident.
pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Starts counting from zero.
pub fn count_allocations() {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
}

/// Bytes allocated and not freed since `count_allocations`.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::SeqCst)
}

pub fn stop_counting() {
    COUNTING.store(false, Ordering::SeqCst);
}

fn note(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counting only reads the
// layout sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: forwarded unchanged; `ptr` came from `System` via us.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged; `ptr` came from `System` via us.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A recorder of the `metrics` facade as cheap as a real one gets:
/// counters and gauges are atomics, a histogram a count and a sum (a
/// Prometheus exporter adds a bucket's atomic). Installed once per
/// process, for the `taskmanager-metrics` systems.
pub fn install_atomic_recorder() {
    use metrics::{
        Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use std::collections::HashMap;
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, OnceLock};

    #[derive(Default)]
    struct Sum {
        count: AtomicU64,
        bits: AtomicU64,
    }
    impl HistogramFn for Sum {
        fn record(&self, value: f64) {
            self.count.fetch_add(1, Ordering::Relaxed);
            let _ = self.bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + value).to_bits())
            });
        }
    }
    #[derive(Default)]
    struct Atomic {
        cells: Mutex<HashMap<Key, Arc<AtomicU64>>>,
        sums: Mutex<HashMap<Key, Arc<Sum>>>,
    }
    impl Atomic {
        fn cell(&self, key: &Key) -> Arc<AtomicU64> {
            Arc::clone(self.cells.lock().unwrap().entry(key.clone()).or_default())
        }
    }
    impl Recorder for Atomic {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::clone(self.sums.lock().unwrap().entry(key.clone()).or_default()))
        }
    }
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let recorder: &'static Atomic = Box::leak(Box::default());
        metrics::set_global_recorder(recorder).expect("the benchmark's only recorder");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
    }
}
