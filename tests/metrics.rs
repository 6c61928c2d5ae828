//! Feature `metrics`: what a manager records through the `metrics` facade
//! once `enable_metrics` is called (nothing before), read back from a
//! recorder this test installs. Waits and lateness are exact: time is
//! advanced by hand (`ManualClock`). Each test has modules of its own
//! names: the recorder is the process's.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{eventually, ms, SOON};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use taskmanager::{ManualClock, Module, Recurrence, Task, TaskManager};

/// Every value a histogram was given.
#[derive(Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Series by `name{labels}` (labels as `k=v` joined by `,`, in order).
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Values>>>,
}

fn id(key: &Key) -> String {
    let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::clone(self.counters.lock().unwrap().entry(id(key)).or_default()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::clone(self.gauges.lock().unwrap().entry(id(key)).or_default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::clone(self.histograms.lock().unwrap().entry(id(key)).or_default()))
    }
}

fn recorder() -> &'static TestRecorder {
    static RECORDER: OnceLock<&'static TestRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static TestRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(recorder).expect("the only recorder of this test binary");
        recorder
    })
}

fn counter(series: &str) -> u64 {
    recorder().counters.lock().unwrap().get(series).map_or(0, |c| c.load(Relaxed))
}

fn gauge(series: &str) -> Option<f64> {
    recorder().gauges.lock().unwrap().get(series).map(|g| f64::from_bits(g.load(Relaxed)))
}

fn values(series: &str) -> Vec<f64> {
    recorder().histograms.lock().unwrap().get(series).map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
}

fn manager(clock: &ManualClock) -> TaskManager {
    recorder();
    let manager = TaskManager::builder().clock(clock).build().unwrap();
    manager.start_thread().unwrap();
    manager
}

fn module(manager: &TaskManager, name: &str, max_workers: usize) -> Module {
    Module::builder(manager).name(name).max_workers(max_workers).build().unwrap()
}

#[test]
fn nothing_is_recorded_until_metrics_are_enabled() {
    let manager = manager(&ManualClock::new());
    let module = module(&manager, "quiet", 1);
    module.add_task(Task::new(|| 1).name("one")).unwrap().join_timeout(SOON).unwrap();
    assert_eq!(counter("taskmanager_tasks_started_total{module=quiet,task=one}"), 0);
    assert!(recorder().counters.lock().unwrap().keys().all(|k| !k.contains("module=quiet")));
    manager.enable_metrics();
    module.add_task(Task::new(|| 1).name("one")).unwrap().join_timeout(SOON).unwrap();
    manager.sample_metrics();
    assert_eq!(counter("taskmanager_tasks_started_total{module=quiet,task=one}"), 1);
}

#[test]
fn runs_are_counted_by_outcome_and_queue_waits_are_measured_on_the_managers_clock() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    manager.enable_metrics();
    let module = module(&manager, "outcomes", 1);
    // The first task takes 2 s of the manager's clock, once the others
    // are queued behind it: they waited exactly that.
    let c = clock.clone();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let slow = module
        .add_task(
            Task::new(move || {
                wait.recv().unwrap();
                c.advance(Duration::from_secs(2));
            })
            .name("slow"),
        )
        .unwrap();
    let ok: Vec<_> = (0..3).map(|i| module.add_task(Task::new(move || i).name("ok")).unwrap()).collect();
    let bad = module.add_task(Task::new(|| -> i32 { panic!("boom") }).name("bad")).unwrap();
    let unnamed = module.add_task(|| 5).unwrap();
    go.send(()).unwrap();
    slow.join_timeout(SOON).unwrap();
    for h in ok {
        h.join_timeout(SOON).unwrap();
    }
    assert!(bad.join_timeout(SOON).is_err());
    assert_eq!(unnamed.join_timeout(SOON).unwrap(), 5);
    // Workers hand their counts over in batches; a sample takes them all.
    manager.sample_metrics();

    let s = |name: &str, task: &str| format!("taskmanager_{name}{{module=outcomes,task={task}}}");
    assert_eq!(counter(&s("tasks_started_total", "ok")), 3);
    assert_eq!(counter(&s("tasks_succeeded_total", "ok")), 3);
    assert_eq!(counter(&s("tasks_failed_total", "ok")), 0);
    assert_eq!(counter(&s("tasks_started_total", "bad")), 1);
    assert_eq!(counter(&s("tasks_failed_total", "bad")), 1);
    assert_eq!(counter(&s("tasks_succeeded_total", "unnamed")), 1, "a task given no name");
    assert_eq!(values(&s("task_duration_seconds", "ok")).len(), 3);
    let waits = values("taskmanager_task_queue_wait_seconds{module=outcomes}");
    assert_eq!(waits.len(), 6);
    assert_eq!(waits.iter().filter(|&&w| w == 2.0).count(), 5, "each queued behind the 2 s run: {waits:?}");
    // Gauges are set when sampled (above).
    assert_eq!(gauge("taskmanager_tasks_running{module=outcomes}"), Some(0.0));
    assert_eq!(gauge("taskmanager_workers{module=outcomes}"), Some(1.0));
    assert_eq!(gauge("taskmanager_tasks_queued{module=outcomes}"), Some(0.0));
}

#[test]
fn a_cancelled_task_is_counted_where_it_waited() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    manager.enable_metrics();
    let module = module(&manager, "cancels", 1);
    let later = module.schedule_task(Duration::from_secs(60), Task::new(|| ()).name("later")).unwrap();
    manager.sample_metrics();
    assert_eq!(gauge("taskmanager_timers_pending{module=cancels}"), Some(1.0));
    assert!(later.cancel());
    assert_eq!(counter("taskmanager_tasks_cancelled_total{module=cancels,task=later}"), 1);
    manager.sample_metrics();
    assert_eq!(gauge("taskmanager_timers_pending{module=cancels}"), Some(0.0));
}

#[test]
fn a_recurring_ticks_lateness_is_from_its_due_time_and_paused_ticks_count_skipped() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    manager.enable_metrics();
    let module = module(&manager, "ticks", 1);
    let handle =
        module.schedule_recurring(Recurrence::every(Duration::from_secs(1)), Task::new(|| ()).name("tick"));
    let handle = handle.unwrap();
    // Due at 1 s; the clock jumps to 1.5 s: the run starts 0.5 s late.
    clock.advance(Duration::from_millis(1500));
    assert!(eventually(|| handle.runs() == 1));
    assert_eq!(values("taskmanager_schedule_lateness_seconds{module=ticks,task=tick}"), vec![0.5]);
    assert_eq!(gauge("taskmanager_schedule_last_lateness_seconds{module=ticks,task=tick}"), Some(0.5));
    handle.pause();
    clock.advance(Duration::from_secs(3));
    assert!(eventually(|| counter("taskmanager_ticks_skipped_total{module=ticks,task=tick}") >= 1));
    std::thread::sleep(ms(20));
    assert_eq!(handle.runs(), 1);
    assert_eq!(counter("taskmanager_ticks_skipped_total{module=ticks,task=tick}"), handle.skipped_ticks());
}

#[test]
fn task_names_past_the_cap_count_as_other() {
    let manager = manager(&ManualClock::new());
    manager.enable_metrics();
    let module = module(&manager, "capped", 2);
    let handles: Vec<_> =
        (0..1003).map(|i| module.add_task(Task::new(|| ()).name(format!("user-{i}"))).unwrap()).collect();
    for h in handles {
        h.join_timeout(SOON).unwrap();
    }
    manager.sample_metrics();
    let ours: Vec<String> = recorder()
        .counters
        .lock()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("taskmanager_tasks_started_total{module=capped,"))
        .cloned()
        .collect();
    assert_eq!(ours.len(), 1001, "1000 names, then one _other");
    assert_eq!(counter("taskmanager_tasks_started_total{module=capped,task=_other}"), 3);
}
