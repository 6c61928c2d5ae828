//! The process's recorder of the core's metrics (the `metrics` facade),
//! rendered in Prometheus's text exposition format (version 0.0.4) for
//! `TaskManager.metrics_text()` and `serve_metrics()`.
//!
//! Counters and gauges are atomics; a histogram is a fixed set of bucket
//! counts, a count and a sum, so recording allocates nothing and memory
//! stays flat however rarely it is scraped. One registry per process, as
//! Prometheus expects of a scrape target: two managers' series of the same
//! module and task name add up.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Bucket bounds in seconds, for durations, waits and lateness alike:
/// from a millisecond (a quick task) to 5 minutes, about x2.5 apart.
const BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0];

/// One histogram: cumulative bucket counts are computed at render time.
#[derive(Default)]
struct Buckets {
    counts: [AtomicU64; BUCKETS.len()],
    /// Values above the last bound.
    over: AtomicU64,
    /// The sum of every value, as f64 bits.
    sum: AtomicU64,
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        match BUCKETS.iter().position(|&bound| value <= bound) {
            Some(i) => self.counts[i].fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        let _ =
            self.sum.fetch_update(Relaxed, Relaxed, |bits| Some((f64::from_bits(bits) + value).to_bits()));
    }
}

#[derive(Default)]
struct Registry {
    counters: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<Key, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<Key, Arc<Buckets>>>,
    help: Mutex<HashMap<String, String>>,
}

fn handle<T: Default>(map: &Mutex<HashMap<Key, Arc<T>>>, key: &Key) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    Arc::clone(map.entry(key.clone()).or_default())
}

impl Registry {
    fn describe(&self, key: KeyName, description: SharedString) {
        self.help
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.as_str().to_owned(), description.into_owned());
    }
}

impl Recorder for Registry {
    fn describe_counter(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(handle(&self.counters, key))
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(handle(&self.gauges, key))
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(handle(&self.histograms, key))
    }
}

/// The process's registry, installed as the facade's recorder on first
/// use. None if another recorder was installed first (an extension of the
/// application's own, in this library's copy of the facade: not expected).
fn registry() -> Option<&'static Registry> {
    static REGISTRY: OnceLock<Option<&'static Registry>> = OnceLock::new();
    *REGISTRY.get_or_init(|| {
        let registry: &'static Registry = Box::leak(Box::default());
        metrics::set_global_recorder(registry).ok().map(|()| registry)
    })
}

/// Installs the recorder; false if it could not be.
pub(crate) fn install() -> bool {
    registry().is_some()
}

/// `{a="x",b="y"}` (with `extra` last), or nothing without labels.
fn labels(key: &Key, extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
    pairs.extend(extra);
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", body.join(","))
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// A number as the format writes it.
fn number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

type Families = BTreeMap<String, (&'static str, Vec<String>)>;

/// The sample lines of the family `name`, made (of type `kind`) if new.
fn family<'a>(families: &'a mut Families, name: &str, kind: &'static str) -> &'a mut Vec<String> {
    &mut families.entry(name.to_owned()).or_insert_with(|| (kind, Vec::new())).1
}

/// A map's series, sorted by key (name, then labels).
fn sorted<T>(map: &Mutex<HashMap<Key, Arc<T>>>) -> Vec<(Key, Arc<T>)> {
    let map = map.lock().unwrap_or_else(|p| p.into_inner());
    let mut series: Vec<(Key, Arc<T>)> = map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    series
}

/// Every series, grouped by name, in the text format.
pub(crate) fn render() -> String {
    let Some(registry) = registry() else { return String::new() };
    let help = registry.help.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Name -> (type, sample lines), names sorted.
    let mut families = Families::new();
    for (key, value) in sorted(&registry.counters) {
        let line = format!("{}{} {}", key.name(), labels(&key, None), value.load(Relaxed));
        family(&mut families, key.name(), "counter").push(line);
    }
    for (key, value) in sorted(&registry.gauges) {
        let line =
            format!("{}{} {}", key.name(), labels(&key, None), number(f64::from_bits(value.load(Relaxed))));
        family(&mut families, key.name(), "gauge").push(line);
    }
    for (key, buckets) in sorted(&registry.histograms) {
        let name = key.name();
        let lines = family(&mut families, name, "histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&buckets.counts) {
            cumulative += count.load(Relaxed);
            lines.push(format!("{name}_bucket{} {cumulative}", labels(&key, Some(("le", &number(*bound))))));
        }
        cumulative += buckets.over.load(Relaxed);
        lines.push(format!("{name}_bucket{} {cumulative}", labels(&key, Some(("le", "+Inf")))));
        let sum = number(f64::from_bits(buckets.sum.load(Relaxed)));
        lines.push(format!("{name}_sum{} {sum}", labels(&key, None)));
        lines.push(format!("{name}_count{} {cumulative}", labels(&key, None)));
    }
    let mut text = String::new();
    for (name, (kind, lines)) in families {
        if let Some(help) = help.get(&name) {
            let _ = writeln!(text, "# HELP {name} {}", help.replace('\\', r"\\").replace('\n', r"\n"));
        }
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text
}
