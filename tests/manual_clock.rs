//! Timing semantics through the whole stack, with time advanced by hand:
//! exact due times, grids, skipped ticks and stalls, no sleeps needed to
//! make time pass.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, ms};
use taskmanager::{ManualClock, Module, Pacing, Recurrence, RecurringHandle, TaskManager};

const SEC: Duration = Duration::from_secs(1);

fn manager(clock: &ManualClock) -> TaskManager {
    let manager = TaskManager::builder().clock(clock).build().unwrap();
    manager.start_thread().unwrap();
    manager
}

/// Waits until `handle` has `runs` runs, then checks no more came.
fn assert_runs(handle: &RecurringHandle, runs: u64) {
    assert!(eventually(|| handle.runs() >= runs), "expected {runs} runs, have {}", handle.runs());
    std::thread::sleep(ms(20));
    assert_eq!(handle.runs(), runs);
}

#[test]
fn a_one_shot_runs_exactly_when_its_delay_has_passed() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_task(10 * SEC, || "due").unwrap();
    clock.advance(10 * SEC - Duration::from_nanos(1));
    assert!(!handle.wait_timeout(ms(30)), "one nanosecond early");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(handle.join_timeout(common::SOON).unwrap(), "due");
}

#[test]
fn fixed_rate_runs_once_per_grid_point() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(SEC), || ()).unwrap();
    assert_runs(&handle, 0);
    for k in 1..=5 {
        clock.advance(SEC);
        assert_runs(&handle, k);
    }
    clock.advance(SEC / 2);
    assert_runs(&handle, 5);
}

#[test]
fn run_now_runs_at_submission_and_keeps_the_same_grid() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(SEC).run_now(true), || ()).unwrap();
    assert_runs(&handle, 1);
    clock.advance(SEC);
    assert_runs(&handle, 2);
}

#[test]
fn an_overrun_skips_the_ticks_it_covered_and_resumes_on_the_grid() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let c = clock.clone();
    let mut first = true;
    let handle = manager
        .schedule_recurring(Recurrence::every(SEC), move || {
            if std::mem::take(&mut first) {
                c.advance(SEC * 5 / 2); // the first run takes 2.5 s: due at 1 s, ends at 3.5 s
            }
        })
        .unwrap();
    clock.advance(SEC);
    assert_runs(&handle, 1);
    assert_eq!(handle.skipped_ticks(), 2, "the ticks at 2 s and 3 s");
    clock.advance(SEC * 4 / 10); // 3.9 s
    assert_runs(&handle, 1);
    clock.advance(SEC / 10); // 4 s: the next grid point
    assert_runs(&handle, 2);
}

#[test]
fn a_long_stall_runs_once_not_a_burst() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(SEC), || ()).unwrap();
    clock.advance(100 * SEC);
    assert_runs(&handle, 1);
    assert_eq!(handle.skipped_ticks(), 99);
    clock.advance(SEC);
    assert_runs(&handle, 2);
}

#[test]
fn fixed_delay_counts_the_interval_from_the_end_of_each_run() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let c = clock.clone();
    let handle = manager
        .schedule_recurring(Recurrence::every(SEC).pacing(Pacing::FixedDelay), move || c.advance(SEC / 2))
        .unwrap();
    clock.advance(SEC); // run 1 at 1 s, ends 1.5 s; next at 2.5 s
    assert_runs(&handle, 1);
    clock.advance(SEC * 9 / 10); // 2.4 s
    assert_runs(&handle, 1);
    clock.advance(SEC / 10); // 2.5 s
    assert_runs(&handle, 2);
}

#[test]
fn equal_due_times_start_in_submission_order() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let module = Module::new(&manager, 1).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let o = order.clone();
            module.schedule_task(SEC, move || o.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    clock.advance(SEC);
    for h in handles {
        h.join_timeout(common::SOON).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
}

#[test]
fn shutdown_runs_what_is_due_by_the_clock_and_cancels_the_rest() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let due = manager.schedule_task(SEC, || ()).unwrap();
    let later = manager.schedule_task(2 * SEC, || ()).unwrap();
    // Make it due without letting the timer see it: shutdown must find it.
    manager.shutdown_timeout(Duration::ZERO).ok();
    drop(manager);
    assert!(due.is_done() && later.is_done());
    assert!(due.is_cancelled() && later.is_cancelled(), "nothing was due at t = 0");
    let clock = ManualClock::new();
    let manager = TaskManager::builder().clock(&clock).build().unwrap();
    let due = manager.schedule_task(SEC, || "ran").unwrap();
    let later = manager.schedule_task(2 * SEC, || "never").unwrap();
    clock.advance(SEC);
    manager.shutdown();
    assert_eq!(due.join().unwrap(), "ran");
    assert!(later.is_cancelled());
}

#[test]
fn a_paused_task_skips_its_ticks_and_resumes_on_the_grid_without_a_burst() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(10 * SEC), || ()).unwrap();
    clock.advance(10 * SEC);
    assert_runs(&handle, 1);
    assert!(handle.pause());
    assert!(!handle.pause(), "already paused");
    assert!(handle.is_paused());
    for k in 1..=3 {
        clock.advance(10 * SEC);
        assert!(eventually(|| handle.skipped_ticks() == k), "skipped {}", handle.skipped_ticks());
    }
    assert_runs(&handle, 1);
    clock.advance(5 * SEC); // t = 45 s, between ticks
    assert!(handle.resume());
    assert!(!handle.resume(), "already running");
    assert_runs(&handle, 1); // no catch-up run on resume
    clock.advance(5 * SEC); // t = 50 s: the next grid point
    assert_runs(&handle, 2);
    assert_eq!(handle.skipped_ticks(), 3);
    handle.cancel();
    handle.wait();
    assert!(!handle.pause() && !handle.resume(), "an ended task cannot be paused");
}

#[test]
fn changing_the_interval_moves_the_next_run_at_once_and_keeps_a_grid() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let handle = manager.schedule_recurring(Recurrence::every(10 * SEC), || ()).unwrap();
    clock.advance(10 * SEC); // t = 10: first run; next due at 20
    assert_runs(&handle, 1);
    clock.advance(2 * SEC); // t = 12
    handle.set_interval(3 * SEC).unwrap(); // next: 10 + 3 = 13
    clock.advance(SEC); // t = 13
    assert_runs(&handle, 2);
    clock.advance(3 * SEC); // t = 16
    assert_runs(&handle, 3);
    clock.advance(SEC); // t = 17; next due at 19
    handle.set_interval(60 * SEC).unwrap(); // next: 16 + 60 = 76
    clock.advance(2 * SEC); // t = 19: nothing
    assert_runs(&handle, 3);
    clock.advance(57 * SEC); // t = 76
    assert_runs(&handle, 4);
    // A shorter interval whose first tick has passed runs now, not in a burst.
    clock.advance(SEC); // t = 77; next due at 136
    handle.set_interval(Duration::from_millis(500)).unwrap(); // 76 + 0.5 has passed: now
    assert_runs(&handle, 5);
    let too_short = |interval| Err(taskmanager::SubmitError::IntervalTooShort { interval });
    assert_eq!(handle.set_interval(Duration::ZERO), too_short(Duration::ZERO));
    assert_eq!(handle.set_interval(Duration::from_micros(999)), too_short(Duration::from_micros(999)));
    // Refused, so the interval is unchanged: the next run is 500 ms on.
    clock.advance(Duration::from_millis(499));
    assert_runs(&handle, 5);
    clock.advance(Duration::from_millis(1));
    assert_runs(&handle, 6);
    // The shortest interval is accepted: due 1 ms after that tick.
    assert_eq!(handle.set_interval(taskmanager::Recurrence::MIN_INTERVAL), Ok(()));
    clock.advance(Duration::from_millis(1));
    assert_runs(&handle, 7);
    handle.cancel();
}
