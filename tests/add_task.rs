//! Immediate tasks (the spec's `add_task`): results, callbacks, handles, and
//! tasks submitted before `start_thread`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::{ms, started, SOON};
use taskmanager::{JoinTimeoutError, Module, Task, TaskError, TaskManager};

#[test]
fn returns_the_methods_value_through_the_handle() {
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let (a, b) = (20, 22);
    let handle = module.add_task(move || a + b).unwrap();
    assert_eq!(handle.join().unwrap(), 42);
}

#[test]
fn callbacks_run_in_order_with_the_return_value_on_the_worker() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let handle = module
        .add_task(
            Task::new(|| String::from("hello"))
                .callback(move |v: &String| s1.lock().unwrap().push(format!("first {v}")))
                .callback(move |v: &String| s2.lock().unwrap().push(format!("second {v}")))
                .callback(move |_: &String| {
                    let name = std::thread::current().name().map(str::to_owned);
                    s3.lock().unwrap().push(format!("on {}", name.unwrap_or_default()));
                }),
        )
        .unwrap();
    assert_eq!(handle.join().unwrap(), "hello");
    assert_eq!(
        *seen.lock().unwrap(),
        ["first hello", "second hello", "on taskmanager-worker"],
        "callbacks ran before the handle completed, in order, on the worker"
    );
}

#[test]
fn a_task_without_callbacks_and_unit_result_completes() {
    let manager = started();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let handle = manager.add_task(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    handle.unwrap().join().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn handle_reports_done_and_wait_timeout() {
    let manager = started();
    let (release, gate) = mpsc::channel::<()>();
    let handle = manager
        .add_task(move || {
            gate.recv().unwrap();
            7
        })
        .unwrap();
    assert!(!handle.wait_timeout(ms(50)), "blocked task is not done");
    assert!(!handle.is_done());
    let handle = match handle.join_timeout(ms(20)) {
        Err(JoinTimeoutError::Timeout(handle)) => handle,
        other => panic!("expected a timeout, got {other:?}"),
    };
    release.send(()).unwrap();
    assert!(handle.wait_timeout(SOON));
    assert!(handle.is_done() && !handle.is_cancelled() && !handle.is_running());
    assert_eq!(handle.join_timeout(SOON).unwrap(), 7);
}

#[test]
fn tasks_submitted_before_start_wait_then_run() {
    let manager = TaskManager::new();
    let module = Module::new(&manager, 3).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let c = count.clone();
            module.add_task(move || c.fetch_add(1, Ordering::SeqCst)).unwrap()
        })
        .collect();
    std::thread::sleep(ms(100));
    assert_eq!(count.load(Ordering::SeqCst), 0, "nothing runs before start_thread");
    assert_eq!(module.queued(), 50);
    assert_eq!(module.worker_count(), 0);
    manager.start_thread().unwrap();
    manager.start_thread().expect("a second start is harmless");
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), 50);
}

#[test]
fn cancel_before_start_reports_cancelled_and_never_runs() {
    let manager = TaskManager::new();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let handle = manager.add_task(move || r.fetch_add(1, Ordering::SeqCst)).unwrap();
    assert!(handle.cancel());
    assert!(!handle.cancel(), "second cancel is a no-op");
    assert!(handle.is_done() && handle.is_cancelled());
    manager.start_thread().unwrap();
    manager.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(handle.join(), Err(TaskError::Cancelled));
}

#[test]
fn cancel_after_completion_is_refused_and_keeps_the_value() {
    let manager = started();
    let handle = manager.add_task(|| "kept").unwrap();
    assert!(handle.wait_timeout(SOON));
    assert!(!handle.cancel());
    assert_eq!(handle.join().unwrap(), "kept");
}

#[test]
fn cancel_frees_captured_values_at_once() {
    let manager = TaskManager::new(); // not started: the task stays queued
    let payload = Arc::new(());
    let p = payload.clone();
    let handle = manager.add_task(move || drop(p)).unwrap();
    assert_eq!(Arc::strong_count(&payload), 2);
    assert!(handle.cancel());
    assert_eq!(Arc::strong_count(&payload), 1, "the closure was dropped by cancel");
}

#[test]
fn dropping_a_handle_does_not_cancel_the_task() {
    let manager = started();
    let (tx, rx) = mpsc::channel();
    drop(manager.add_task(move || tx.send("ran").unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(SOON).unwrap(), "ran");
}

#[test]
fn handles_are_send_and_sync_and_small() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<taskmanager::TaskHandle<String>>();
    assert_send_sync::<taskmanager::RecurringHandle>();
    assert_send_sync::<TaskManager>();
    assert_send_sync::<Module>();
    assert!(std::mem::size_of::<taskmanager::TaskHandle<String>>() <= 3 * std::mem::size_of::<usize>());
}

#[test]
fn many_tasks_from_many_threads_all_run_once() {
    let manager = started();
    let module = Module::new(&manager, 4).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (module, count) = (module.clone(), count.clone());
            std::thread::spawn(move || {
                (0..5_000)
                    .map(|_| {
                        let c = count.clone();
                        module.add_task(move || c.fetch_add(1, Ordering::Relaxed)).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for producer in handles {
        for h in producer.join().unwrap() {
            h.join().unwrap();
        }
    }
    assert_eq!(count.load(Ordering::SeqCst), 20_000);
}

#[test]
fn handles_carry_a_unique_id_and_the_given_name() {
    let manager = started();
    let named = manager.add_task(Task::new(|| 1).name("fetch-prices")).unwrap();
    let unnamed = manager.add_task(|| 2).unwrap();
    assert_eq!(named.name(), "fetch-prices");
    assert_ne!(named.id(), unnamed.id());
    assert_eq!(unnamed.name(), format!("task-{}", unnamed.id()));
    assert!(format!("{named:?}").contains("fetch-prices"));
    // Ids stay unique across threads.
    let ids: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..3000).map(|_| manager.add_task(|| ()).unwrap().id()).collect::<Vec<_>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let unique: std::collections::HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    manager.shutdown();
}
