//! Recurring tasks (the spec's `schedule_task(..., reoccurring=True)`):
//! fixed rate on a grid, `run_now`, no overlap, skipped ticks, fixed delay,
//! cancellation.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{eventually, ms, started, SOON};
use taskmanager::{Module, Pacing, Recurrence, SubmitError, Task, TaskError};

/// Records the start time of every run.
fn recorder() -> (Arc<Mutex<Vec<Instant>>>, impl FnMut() + Send + 'static) {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    (starts, move || s.lock().unwrap().push(Instant::now()))
}

#[test]
fn first_run_is_one_interval_after_submission_and_runs_stay_on_the_grid() {
    let manager = started();
    let (starts, record) = recorder();
    let submitted = Instant::now();
    let handle = manager.schedule_recurring(Recurrence::every(ms(20)), record).unwrap();
    assert!(eventually(|| handle.runs() >= 10));
    handle.cancel();
    handle.wait();
    let starts = starts.lock().unwrap().clone();
    for (k, start) in starts.iter().enumerate() {
        let grid = ms(20 * (k as u64 + 1));
        let offset = *start - submitted;
        // Never early; never more than a generous margin late. The grid
        // arithmetic itself is proven exactly in `schedule.rs`'s unit tests.
        assert!(offset >= grid, "run {k} at {offset:?} is before {grid:?}");
        assert!(offset < grid + Duration::from_millis(500), "run {k} at {offset:?} drifted from {grid:?}");
    }
}

#[test]
fn run_now_runs_at_once_then_every_interval() {
    let manager = started();
    let (starts, record) = recorder();
    let submitted = Instant::now();
    let handle = manager
        .schedule_recurring(Recurrence::every(Duration::from_millis(300)).run_now(true), record)
        .unwrap();
    assert!(eventually(|| handle.runs() >= 2));
    handle.cancel();
    let starts = starts.lock().unwrap().clone();
    assert!(starts[0] - submitted < ms(250), "run 0 at {:?}", starts[0] - submitted);
    assert!(starts[1] - submitted >= ms(300), "run 1 at {:?}", starts[1] - submitted);
}

#[test]
fn runs_never_overlap_and_overruns_skip_ticks_instead_of_bursting() {
    let manager = started();
    let module = Module::new(&manager, 4).unwrap();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    // Takes 35 ms every 10 ms: each run overruns three ticks.
    let handle = module
        .schedule_recurring(Recurrence::every(ms(10)), move || {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(ms(35));
            f.fetch_sub(1, Ordering::SeqCst);
        })
        .unwrap();
    std::thread::sleep(ms(400));
    handle.cancel();
    handle.wait();
    assert_eq!(peak.load(Ordering::SeqCst), 1, "a run overlapped the previous one");
    let runs = handle.runs();
    // 400 ms / 40 ms per run = ~10 runs, not 40 (a burst would catch up).
    assert!((3..=12).contains(&runs), "runs = {runs}");
    assert!(handle.skipped_ticks() >= 2 * (runs - 1), "skipped {} in {runs} runs", handle.skipped_ticks());
}

#[test]
fn fixed_delay_waits_the_interval_after_each_run_ends() {
    let manager = started();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let s = spans.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(ms(20)).pacing(Pacing::FixedDelay), move || {
            let start = Instant::now();
            std::thread::sleep(ms(15));
            s.lock().unwrap().push((start, Instant::now()));
        })
        .unwrap();
    assert!(eventually(|| handle.runs() >= 5));
    handle.cancel();
    handle.wait();
    let spans = spans.lock().unwrap().clone();
    for pair in spans.windows(2) {
        let gap = pair[1].0 - pair[0].1;
        assert!(gap >= ms(20), "next run started {gap:?} after the previous ended");
    }
    assert_eq!(handle.skipped_ticks(), 0);
}

#[test]
fn cancel_stops_all_future_runs_and_frees_the_task() {
    let manager = started();
    let payload = Arc::new(());
    let p = payload.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(ms(5)), move || {
            let _keep = &p;
            c.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    assert!(eventually(|| handle.runs() >= 3));
    assert!(handle.cancel());
    assert!(handle.is_cancelled());
    assert!(handle.wait_timeout(SOON), "a cancelled task finishes");
    let frozen = count.load(Ordering::SeqCst);
    std::thread::sleep(ms(50));
    assert_eq!(count.load(Ordering::SeqCst), frozen, "no run after cancel + wait");
    assert_eq!(handle.runs() as usize, frozen);
    assert_eq!(Arc::strong_count(&payload), 1, "method dropped once cancelled");
    assert!(!handle.cancel(), "second cancel does nothing");
}

#[test]
fn cancel_during_a_run_lets_it_finish_and_stops_the_next() {
    let manager = started();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let handle = manager
        .schedule_recurring(Recurrence::every(ms(5)).run_now(true), move || {
            entered_tx.send(()).unwrap();
            gate.lock().unwrap().recv().unwrap();
        })
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    assert!(handle.cancel(), "cancel while running is accepted");
    assert!(handle.is_cancelled());
    assert!(!handle.is_done(), "the run in progress is not over");
    assert!(!handle.wait_timeout(ms(30)));
    release.send(()).unwrap();
    assert!(handle.wait_timeout(SOON));
    assert_eq!(handle.runs(), 1);
    assert!(entered.recv_timeout(ms(50)).is_err(), "no second run");
}

#[test]
fn a_recurring_task_can_cancel_itself() {
    let manager = started();
    let me: Arc<OnceLock<taskmanager::RecurringHandle>> = Arc::new(OnceLock::new());
    let m = me.clone();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(ms(5)), move || {
            if r.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                m.get().expect("handle set before the first run").cancel();
            }
        })
        .unwrap();
    me.set(handle.clone()).unwrap();
    assert!(handle.wait_timeout(SOON));
    std::thread::sleep(ms(30));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[test]
fn callbacks_receive_every_runs_value() {
    let manager = started();
    let mut n = 0;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let handle = manager
        .schedule_recurring(
            Recurrence::every(ms(5)),
            Task::new(move || {
                n += 1;
                n
            })
            .callback(move |v: &i32| s.lock().unwrap().push(*v)),
        )
        .unwrap();
    assert!(eventually(|| seen.lock().unwrap().len() >= 4));
    handle.cancel();
    handle.wait();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, (1..=seen.len() as i32).collect::<Vec<_>>(), "the FnMut state carries across runs");
}

#[test]
fn a_panicking_recurring_task_keeps_its_schedule() {
    let manager = started();
    let handle =
        manager.schedule_recurring(Recurrence::every(ms(5)), || -> () { panic!("boom every time") }).unwrap();
    assert!(eventually(|| handle.failures() >= 5));
    assert_eq!(handle.last_failure(), Some(TaskError::Panicked { message: "boom every time".into() }));
    assert!(!handle.is_done(), "still scheduled");
    handle.cancel();
    assert!(handle.wait_timeout(SOON));
    assert_eq!(handle.runs(), handle.failures());
}

#[test]
fn intervals_below_one_millisecond_are_typed_errors() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    for interval in [Duration::ZERO, Duration::from_nanos(1), Duration::from_micros(999)] {
        for run_now in [false, true] {
            let result = module.schedule_recurring(Recurrence::every(interval).run_now(run_now), || ());
            assert_eq!(result.err(), Some(SubmitError::IntervalTooShort { interval }));
        }
    }
    assert_eq!(module.stats().pending_timers + module.stats().queued, 0, "nothing of them is kept");
    let result = manager.schedule_recurring(Recurrence::every(Duration::MAX), || ());
    assert_eq!(result.err(), Some(SubmitError::DelayTooLong { delay: Duration::MAX }));
}

#[test]
fn one_millisecond_is_the_shortest_interval_and_runs() {
    assert_eq!(Recurrence::MIN_INTERVAL, ms(1));
    let manager = started();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(Recurrence::MIN_INTERVAL), move || {
            r.fetch_add(1, Ordering::SeqCst)
        })
        .unwrap();
    assert!(eventually(|| handle.runs() >= 3), "runs: {}", handle.runs());
    handle.cancel();
    assert!(handle.wait_timeout(SOON));
    assert_eq!(runs.load(Ordering::SeqCst) as u64, handle.runs());
}

#[test]
fn set_interval_refuses_below_one_millisecond_and_keeps_the_old_interval() {
    let manager = started();
    let handle = manager.schedule_recurring(Recurrence::every(Duration::from_secs(60)), || ()).unwrap();
    for interval in [Duration::ZERO, Duration::from_nanos(1), Duration::from_micros(999)] {
        assert_eq!(handle.set_interval(interval), Err(SubmitError::IntervalTooShort { interval }));
    }
    let listed =
        |m: &taskmanager::TaskManager| m.tasks().iter().find(|t| t.id == handle.id()).unwrap().interval;
    assert_eq!(listed(&manager), Some(Duration::from_secs(60)), "refused: unchanged");
    assert_eq!(handle.set_interval(Recurrence::MIN_INTERVAL), Ok(()));
    assert_eq!(listed(&manager), Some(Recurrence::MIN_INTERVAL));
    assert!(eventually(|| handle.runs() >= 3), "runs at the new interval: {}", handle.runs());
    handle.cancel();
    assert!(handle.wait_timeout(SOON));
}

#[test]
fn many_recurring_tasks_on_one_module_all_keep_running() {
    // 200 tasks every 10 ms on two workers: the timer hands their ticks out
    // in batches; every task must go on ticking, none dropped.
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let counts: Vec<Arc<AtomicUsize>> = (0..200).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let handles: Vec<_> = counts
        .iter()
        .map(|count| {
            let count = count.clone();
            module
                .schedule_recurring(Recurrence::every(ms(10)), move || {
                    count.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
        })
        .collect();
    assert!(eventually(|| counts.iter().all(|c| c.load(Ordering::SeqCst) >= 10)), "a task stopped ticking");
    for handle in &handles {
        assert!(handle.cancel());
    }
    for handle in &handles {
        assert!(handle.wait_timeout(SOON));
    }
    manager.shutdown();
}

#[test]
fn a_run_longer_than_its_interval_is_still_followed_by_the_next() {
    // The timer expects a recurring task back one interval after its tick;
    // a run that takes longer comes back later, and must still be run.
    let manager = started();
    let handle = manager.schedule_recurring(Recurrence::every(ms(5)), || std::thread::sleep(ms(30))).unwrap();
    assert!(eventually(|| handle.runs() >= 4), "runs after an overrun: {}", handle.runs());
    assert!(handle.skipped_ticks() > 0);
    handle.cancel();
}
