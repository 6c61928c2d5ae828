//! Retries of a task run in this process (`Task::retry`): attempts, the
//! backoff between them on a clock the test moves, one handle across all
//! attempts, what is retried, counts and events, and cancel and shutdown
//! while a task waits to retry.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, ms, SOON};
use taskmanager::{Event, ManualClock, Retry, Task, TaskError, TaskHandle, TaskManager};

const SEC: Duration = Duration::from_secs(1);

fn manager(clock: &ManualClock) -> TaskManager {
    let manager = TaskManager::builder().clock(clock).build().unwrap();
    manager.start_thread().unwrap();
    manager
}

/// A fallible method that fails its first `failures` calls; counts calls.
fn flaky(failures: u32, calls: &Arc<AtomicU32>) -> impl FnMut() -> Result<u32, String> + Send + 'static {
    let calls = Arc::clone(calls);
    move || {
        let n = calls.fetch_add(1, SeqCst) + 1;
        if n <= failures {
            Err(format!("failure {n}"))
        } else {
            Ok(n)
        }
    }
}

/// The handle's outcome, waiting at most `SOON`.
fn outcome<T>(handle: TaskHandle<T>) -> Result<T, TaskError> {
    assert!(handle.wait_timeout(SOON), "the handle did not settle");
    handle.join()
}

/// Waits until the task has failed `retries` times and waits in the timer
/// to run again (so that moving the clock now counts from its failure).
fn waits_to_retry(manager: &TaskManager, retries: u64) {
    assert!(
        eventually(|| {
            let stats = manager.stats();
            stats.retried == retries && stats.pending_timers == 1
        }),
        "expected retry {retries} to wait in the timer: {:?}",
        manager.stats()
    );
}

/// No jitter: the waits are exactly 1 s, 2 s, 4 s, ...
fn exact(retries: u32) -> Retry {
    Retry::new(retries).backoff(SEC, 60 * SEC).jitter(0.0)
}

#[test]
fn a_failing_task_runs_again_after_each_backoff_and_its_handle_settles_with_the_success() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let handle = manager.add_task(Task::fallible(flaky(2, &calls)).retry(exact(5))).unwrap();
    waits_to_retry(&manager, 1);
    // The first retry is due 1 s after the failure, not a nanosecond before.
    clock.advance(SEC - Duration::from_nanos(1));
    std::thread::sleep(ms(30));
    assert_eq!(calls.load(SeqCst), 1);
    assert!(!handle.is_done(), "the handle waits across attempts");
    clock.advance(Duration::from_nanos(1));
    waits_to_retry(&manager, 2);
    // The second waits twice as long.
    clock.advance(SEC);
    std::thread::sleep(ms(30));
    assert_eq!(calls.load(SeqCst), 2);
    clock.advance(SEC);
    assert_eq!(outcome(handle).unwrap(), 3);
    let stats = manager.stats();
    assert_eq!((stats.completed, stats.failed, stats.retried), (1, 0, 2));
}

#[test]
fn the_last_failure_settles_the_handle_after_every_retry_is_spent() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let handle = manager.add_task(Task::fallible(flaky(u32::MAX, &calls)).retry(exact(2))).unwrap();
    for retried in 1..=2 {
        waits_to_retry(&manager, retried);
        clock.advance(60 * SEC);
    }
    match outcome(handle) {
        Err(TaskError::Failed { message }) => assert_eq!(message, "failure 3"),
        other => panic!("expected the third failure, got {:?}", other.map(|_| ()).map_err(|e| e.to_string())),
    }
    std::thread::sleep(ms(20));
    assert_eq!(calls.load(SeqCst), 3, "no attempt after the last");
    let stats = manager.stats();
    assert_eq!((stats.completed, stats.failed, stats.retried), (0, 1, 2));
}

#[test]
fn a_panicking_method_is_retried_and_callbacks_run_once_after_the_success() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (Arc::clone(&calls), Arc::clone(&seen));
    let task = Task::new(move || {
        if c.fetch_add(1, SeqCst) == 0 {
            panic!("first call panics");
        }
        7
    })
    .callback(move |v: &i32| s.lock().unwrap().push(*v))
    .retry(exact(1));
    let handle = manager.add_task(task).unwrap();
    waits_to_retry(&manager, 1);
    clock.advance(SEC);
    assert_eq!(outcome(handle).unwrap(), 7);
    assert_eq!(*seen.lock().unwrap(), vec![7]);
}

#[test]
fn a_predicate_chooses_which_failures_retry() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let only_timeouts = exact(5).when(|e| e.to_string().contains("timeout"));
    let handle = manager.add_task(Task::fallible(flaky(u32::MAX, &calls)).retry(only_timeouts)).unwrap();
    assert!(matches!(outcome(handle), Err(TaskError::Failed { .. })));
    assert_eq!(calls.load(SeqCst), 1, "a failure the predicate refuses is final");
}

#[test]
fn each_retry_is_told_as_an_event_before_the_next_attempt_starts() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let manager = TaskManager::builder()
        .clock(&clock)
        .listener(move |e: &Event| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    manager.start_thread().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let handle = manager.add_task(Task::fallible(flaky(1, &calls)).name("flaky").retry(exact(3))).unwrap();
    waits_to_retry(&manager, 1);
    clock.advance(SEC);
    outcome(handle).unwrap();
    manager.shutdown();
    let events = events.lock().unwrap();
    let retry = events.iter().position(|e| matches!(e, Event::Retrying { .. })).expect("a Retrying event");
    match &events[retry] {
        Event::Retrying { task, retry, after, error } => {
            assert_eq!((task.name.as_str(), *retry, *after), ("flaky", 1, SEC));
            assert_eq!(error.to_string(), "task failed: failure 1");
        }
        _ => unreachable!(),
    }
    assert_eq!(
        events[retry].to_string(),
        format!("task flaky (#{}) failed (task failed: failure 1); retry 1 in 1s", handle_id(&events))
    );
    let starts: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Started { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 2);
    assert!(starts[0] < retry && retry < starts[1], "{events:?}");
    assert!(
        !events.iter().any(|e| matches!(e, Event::Failed { .. })),
        "a retried failure is not a final one"
    );
}

fn handle_id(events: &[Event]) -> u64 {
    events.iter().find_map(|e| e.task()).map(|t| t.id).unwrap()
}

#[test]
fn cancelling_a_task_that_waits_to_retry_ends_it_and_frees_its_timer() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let handle = manager.add_task(Task::fallible(flaky(u32::MAX, &calls)).retry(exact(5))).unwrap();
    waits_to_retry(&manager, 1);
    assert!(handle.cancel());
    assert_eq!(manager.stats().pending_timers, 0, "out of the timer at once");
    clock.advance(60 * SEC);
    assert!(matches!(outcome(handle), Err(TaskError::Cancelled)));
    std::thread::sleep(ms(20));
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn a_shutdown_cancels_a_task_that_waits_to_retry_and_it_is_reported() {
    let clock = ManualClock::new();
    let manager = manager(&clock);
    let calls = Arc::new(AtomicU32::new(0));
    let handle = manager.add_task(Task::fallible(flaky(u32::MAX, &calls)).retry(exact(5))).unwrap();
    waits_to_retry(&manager, 1);
    manager.shutdown();
    assert!(matches!(outcome(handle), Err(TaskError::Cancelled)));
    let stats = manager.stats();
    assert_eq!((stats.retried, stats.cancelled, stats.failed), (1, 1, 0));
}

#[test]
fn retries_with_the_real_clock_and_jitter_finish_within_the_backoff_bounds() {
    let manager = TaskManager::new();
    manager.start_thread().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let retry = Retry::new(3).backoff(ms(5), ms(20));
    let started = std::time::Instant::now();
    let handle = manager.add_task(Task::fallible(flaky(3, &calls)).retry(retry)).unwrap();
    assert_eq!(outcome(handle).unwrap(), 4);
    // Waits of at least 2.5 + 5 + 10 ms (jitter takes off at most half).
    assert!(started.elapsed() >= Duration::from_micros(17_500), "{:?}", started.elapsed());
}
