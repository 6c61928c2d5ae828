//! When a worker thread cannot be started: the work stays queued and is
//! retried with backoff, each failure logged and told as an event; nothing
//! is stranded. Failures are injected through `Builder::spawn_handler`, not
//! by lowering the process's limits.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, ms, SOON};
use taskmanager::{Event, Module, Recurrence, SubmitError, TaskManager};

/// A manager whose worker starts fail while `failing` is set (its timer
/// thread always starts), recording every event.
struct Rig {
    manager: TaskManager,
    failing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Rig {
    fn new() -> Rig {
        let failing = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (f, r, e) = (failing.clone(), refused.clone(), events.clone());
        let manager = TaskManager::builder()
            .spawn_handler(move |name, body| {
                if name != "taskmanager-timer" && f.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "injected: no threads left"));
                }
                std::thread::Builder::new().name(name.into()).spawn(body).map(drop)
            })
            .listener(move |event| e.lock().unwrap().push(event.clone()))
            .build()
            .unwrap();
        manager.start_thread().unwrap();
        Rig { manager, failing, refused, events }
    }

    fn spawn_failures(&self) -> Vec<(String, u32, Duration)> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|e| match e {
                Event::SpawnFailed { module, attempt, retry_in, .. } => {
                    Some((module.clone(), *attempt, *retry_in))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn due_work_waits_for_a_worker_and_runs_once_threads_free_up() {
    let rig = Rig::new();
    let module = Module::builder(&rig.manager).name("jobs").max_workers(2).build().unwrap();
    rig.failing.store(true, Ordering::SeqCst);
    let handle = module.schedule_task(ms(10), || "ran").unwrap();

    // Due, but no worker can start: it waits, retried with growing backoff.
    assert!(eventually(|| rig.spawn_failures().len() >= 3), "{:?}", rig.spawn_failures());
    assert!(!handle.is_done());
    let failures = rig.spawn_failures();
    assert!(failures.iter().all(|(module, _, _)| module == "jobs"));
    let attempts: Vec<u32> = failures.iter().map(|f| f.1).collect();
    assert_eq!(&attempts[..3], &[1, 2, 3], "attempts count up: {failures:?}");
    assert!(failures[1].2 > failures[0].2, "the backoff grows: {failures:?}");
    assert!(failures.iter().all(|f| f.2 <= Duration::from_secs(1)), "backoff capped at 1 s: {failures:?}");

    // Threads free up: the next retry starts a worker and the task runs.
    rig.failing.store(false, Ordering::SeqCst);
    let t = Instant::now();
    assert_eq!(handle.join_timeout(SOON).map_err(|_| "never ran").unwrap(), "ran");
    assert!(t.elapsed() < Duration::from_millis(2_500), "waited {:?} past the recovery", t.elapsed());
}

#[test]
fn an_immediate_task_with_no_worker_is_refused_not_stranded() {
    let rig = Rig::new();
    let module = Module::new(&rig.manager, 1).unwrap();
    rig.failing.store(true, Ordering::SeqCst);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    match module.add_task(move || r.store(true, Ordering::SeqCst)) {
        Err(SubmitError::Spawn(e)) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
        other => panic!("expected Spawn, got {other:?}"),
    }
    rig.failing.store(false, Ordering::SeqCst);
    module.add_task(|| ()).unwrap().join().unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a refused task never runs");
}

#[test]
fn a_recurring_task_resumes_without_a_burst_after_spawn_failures() {
    let rig = Rig::new();
    let module = Module::new(&rig.manager, 1).unwrap();
    rig.failing.store(true, Ordering::SeqCst);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let ticking = module
        .schedule_recurring(Recurrence::every(ms(20)), move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(eventually(|| rig.refused.load(Ordering::SeqCst) >= 3));
    std::thread::sleep(ms(100));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    rig.failing.store(false, Ordering::SeqCst);
    assert!(eventually(|| runs.load(Ordering::SeqCst) >= 3), "runs resumed");
    // The stalled ticks were skipped, not run back to back.
    assert!(ticking.skipped_ticks() >= 1, "skipped {}", ticking.skipped_ticks());
    ticking.cancel();
}

#[test]
fn shutdown_retries_worker_starts_and_runs_what_was_due() {
    let rig = Rig::new();
    let module = Module::new(&rig.manager, 1).unwrap();
    rig.failing.store(true, Ordering::SeqCst);
    let handle = module.schedule_task(ms(5), || 42).unwrap();
    assert!(eventually(|| rig.refused.load(Ordering::SeqCst) >= 1));
    let failing = rig.failing.clone();
    let healer = std::thread::spawn(move || {
        std::thread::sleep(ms(150));
        failing.store(false, Ordering::SeqCst);
    });
    let t = Instant::now();
    assert!(rig.manager.shutdown_timeout(SOON).is_ok());
    assert!(t.elapsed() >= ms(100), "shutdown returned before threads could start");
    assert_eq!(handle.join().unwrap(), 42, "due work ran during shutdown, not cancelled");
    healer.join().unwrap();
}
