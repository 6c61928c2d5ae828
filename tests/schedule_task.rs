//! One-shot scheduled tasks (the spec's `schedule_task` without
//! `reoccurring`): delays, ordering, cancellation that frees at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{eventually, ms, started, SOON};
use taskmanager::{Module, Recurrence, SubmitError, Task, TaskError, TaskManager};

#[test]
fn runs_no_earlier_than_its_delay() {
    let manager = started();
    let start = Instant::now();
    let handle = manager.schedule_task(ms(100), Instant::now).unwrap();
    assert!(!handle.is_done());
    let ran_at = handle.join_timeout(SOON).unwrap();
    let waited = ran_at - start;
    assert!(waited >= ms(100), "ran after {waited:?}");
    assert!(waited < ms(100) + SOON, "ran after {waited:?}");
}

#[test]
fn callbacks_of_a_scheduled_task_get_its_value() {
    let manager = started();
    let got = Arc::new(Mutex::new(None));
    let g = got.clone();
    let handle = manager
        .schedule_task(ms(10), Task::new(|| 5).callback(move |v: &i32| *g.lock().unwrap() = Some(*v)))
        .unwrap();
    assert_eq!(handle.join().unwrap(), 5);
    assert_eq!(*got.lock().unwrap(), Some(5));
}

#[test]
fn zero_delay_runs_at_once() {
    let manager = started();
    let handle = manager.schedule_task(Duration::ZERO, || "now").unwrap();
    assert_eq!(handle.join_timeout(SOON).unwrap(), "now");
}

#[test]
fn tasks_start_in_due_order_and_equal_due_times_in_submission_order() {
    let manager = TaskManager::new();
    // One worker, so start order is run order.
    let module = Module::new(&manager, 1).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    // Submitted before start, so all are due together when it starts:
    // ordering comes from the due times, then the submission sequence.
    for (name, delay) in [("c", 30), ("a1", 10), ("b", 20), ("a2", 10), ("a3", 10)] {
        let o = order.clone();
        handles.push(module.schedule_task(ms(delay), move || o.lock().unwrap().push(name)).unwrap());
    }
    std::thread::sleep(ms(60));
    manager.start_thread().unwrap();
    for h in handles {
        h.join_timeout(SOON).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["a1", "a2", "a3", "b", "c"]);
}

#[test]
fn cancel_removes_it_from_the_timer_and_frees_it_at_once() {
    let manager = started();
    let payload = Arc::new(());
    let p = payload.clone();
    let handle = manager.schedule_task(Duration::from_secs(3600), move || drop(p)).unwrap();
    assert_eq!(Arc::strong_count(&payload), 2);
    assert!(format!("{manager:?}").contains("scheduled: 1"), "{manager:?}");
    assert!(handle.cancel());
    assert_eq!(Arc::strong_count(&payload), 1, "closure dropped at cancel, not at its due time");
    assert!(format!("{manager:?}").contains("scheduled: 0"), "{manager:?}");
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
}

#[test]
fn many_cancelled_timers_leave_nothing_behind() {
    let manager = started();
    let payload = Arc::new(());
    let handles: Vec<_> = (0..10_000)
        .map(|i| {
            let p = payload.clone();
            manager.schedule_task(Duration::from_secs(1000 + i), move || drop(p)).unwrap()
        })
        .collect();
    assert_eq!(Arc::strong_count(&payload), 10_001);
    for h in &handles {
        assert!(h.cancel());
    }
    assert_eq!(Arc::strong_count(&payload), 1);
    assert!(format!("{manager:?}").contains("scheduled: 0"));
}

#[test]
fn cancelling_one_of_many_leaves_the_others_on_time() {
    let manager = started();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..20u64)
        .map(|i| {
            let r = ran.clone();
            manager.schedule_task(ms(10 + i * 3), move || r.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    for (i, h) in handles.iter().enumerate() {
        if i % 2 == 1 {
            h.cancel();
        }
    }
    assert!(eventually(|| ran.lock().unwrap().len() == 10));
    std::thread::sleep(ms(100));
    let mut ran = ran.lock().unwrap().clone();
    ran.sort_unstable();
    assert_eq!(ran, (0..20).filter(|i| i % 2 == 0).collect::<Vec<_>>());
}

#[test]
fn an_earlier_task_scheduled_later_wakes_the_timer() {
    let manager = started();
    let far = manager.schedule_task(Duration::from_secs(3600), || ()).unwrap();
    std::thread::sleep(ms(20)); // the timer now sleeps until the far one
    let start = Instant::now();
    let near = manager.schedule_task(ms(20), Instant::now).unwrap();
    let ran = near.join_timeout(SOON).unwrap() - start;
    assert!(ran >= ms(20) && ran < Duration::from_secs(2), "ran after {ran:?}");
    far.cancel();
}

#[test]
fn a_delay_beyond_the_clock_is_a_typed_error() {
    let manager = started();
    match manager.schedule_task(Duration::MAX, || ()) {
        Err(SubmitError::DelayTooLong { delay }) => assert_eq!(delay, Duration::MAX),
        other => panic!("expected DelayTooLong, got {other:?}"),
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    manager.add_task(move || r.fetch_add(1, Ordering::SeqCst)).unwrap().join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the manager works on after the refusal");
}

#[test]
fn many_short_timers_never_start_early_even_when_handed_over_ahead() {
    // The timer hands jobs to their module shortly before they are due;
    // the worker must still not start them before their due time.
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let handles: Vec<_> = (0..300u64)
        .map(|i| {
            let delay = Duration::from_micros(500 + (i * 7919) % 20_000);
            let submitted = Instant::now();
            (delay, submitted, module.schedule_task(delay, Instant::now).unwrap())
        })
        .collect();
    for (delay, submitted, handle) in handles {
        let started_at = handle.join_timeout(SOON).unwrap();
        assert!(
            started_at - submitted >= delay,
            "started {:?} after submission, due after {delay:?}",
            started_at - submitted
        );
    }
    manager.shutdown();
}

#[test]
fn a_task_due_before_a_recurring_tasks_next_tick_is_not_held_back_by_it() {
    // While a recurring task runs, the timer sleeps until the task can be
    // back (its next tick) and the run's return wakes no one. A task due
    // sooner than that tick must wake the timer all the same.
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let ticks =
        module.schedule_recurring(Recurrence::every(Duration::from_secs(2)).run_now(true), || ()).unwrap();
    assert!(eventually(|| ticks.runs() >= 1));
    std::thread::sleep(ms(20)); // the run has ended and put the task back
    let start = Instant::now();
    let near = module.schedule_task(ms(20), Instant::now).unwrap();
    let ran = near.join_timeout(SOON).unwrap() - start;
    assert!(ran >= ms(20) && ran < Duration::from_millis(1500), "ran after {ran:?}, not at its own due time");
    assert_eq!(ticks.runs(), 1, "the recurring task's next tick is not due yet");
    ticks.cancel();
}

#[test]
fn a_burst_of_due_tasks_for_several_modules_all_runs_on_every_worker() {
    // The timer queues each module's due jobs in a batch and wakes its
    // workers once: none may be left queued, and every idle worker of a
    // module joins in.
    let manager = started();
    let modules: Vec<Module> = (0..3).map(|_| Module::new(&manager, 2).unwrap()).collect();
    // Let every module's two workers exist and go idle first.
    for module in &modules {
        let gate = Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let gate = gate.clone();
                module
                    .add_task(move || {
                        gate.wait();
                    })
                    .unwrap()
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
    let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..600)
        .map(|i| {
            let (threads, ran) = (threads.clone(), ran.clone());
            modules[i % 3]
                .schedule_task(ms(30), move || {
                    threads.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(Duration::from_micros(200));
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join_timeout(SOON).unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 600);
    assert_eq!(threads.lock().unwrap().len(), 6, "every module's two workers took part");
    manager.shutdown();
}
