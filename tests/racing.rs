//! Out-of-order and racing calls, each with the outcome documented in the
//! crate docs ("Out-of-order and racing calls").

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use common::{ms, started, SOON};
use taskmanager::{JoinTimeoutError, Module, Recurrence, SubmitError, Task, TaskError};

#[test]
fn cancel_after_completion_returns_false_and_keeps_the_result() {
    let manager = started();
    let h = manager.add_task(|| 5).unwrap();
    h.wait();
    assert!(!h.cancel());
    assert!(!h.cancel());
    assert!(!h.is_cancelled());
    assert_eq!(h.join().unwrap(), 5);
}

#[test]
fn cancel_twice_first_wins_second_returns_false() {
    let manager = started();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let h = manager.schedule_task(ms(60_000), move || r.fetch_add(1, Ordering::SeqCst)).unwrap();
    assert!(h.cancel());
    assert!(!h.cancel());
    assert!(h.is_cancelled());
    assert!(matches!(h.join(), Err(TaskError::Cancelled)));

    let rec = manager.schedule_recurring(Recurrence::every(ms(60_000)), || ()).unwrap();
    assert!(rec.cancel());
    assert!(!rec.cancel());
    rec.wait();
    assert!(rec.is_done());
    manager.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn waiting_after_shutdown_returns_each_tasks_final_outcome() {
    let manager = started();
    let done = manager.add_task(|| "ran").unwrap();
    done.wait();
    let pending = manager.schedule_task(ms(60_000), || "never").unwrap();
    let rec = manager.schedule_recurring(Recurrence::every(ms(60_000)), || ()).unwrap();
    manager.shutdown();
    // Nothing blocks: every handle has its final outcome.
    assert_eq!(done.join_timeout(SOON).unwrap(), "ran");
    assert!(matches!(pending.join_timeout(SOON), Err(JoinTimeoutError::Failed(TaskError::Cancelled))));
    assert!(rec.wait_timeout(SOON));
    // And waiting again, or after a second shutdown, changes nothing.
    manager.shutdown();
    assert!(rec.is_done());
}

#[test]
fn dropping_a_handle_before_the_task_runs_does_not_cancel_it() {
    let manager = started();
    let (tx, rx) = mpsc::channel();
    drop(manager.schedule_task(ms(20), move || tx.send("ran anyway").unwrap()).unwrap());
    assert_eq!(rx.recv_timeout(SOON).unwrap(), "ran anyway");
    // A recurring task keeps recurring without its handle, until shutdown.
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    drop(
        manager
            .schedule_recurring(Recurrence::every(ms(5)), move || r.fetch_add(1, Ordering::SeqCst))
            .unwrap(),
    );
    assert!(common::eventually(|| runs.load(Ordering::SeqCst) >= 3));
    manager.shutdown();
    let after = runs.load(Ordering::SeqCst);
    std::thread::sleep(ms(30));
    assert_eq!(runs.load(Ordering::SeqCst), after, "no run after shutdown returned");
}

#[test]
fn submit_from_a_callback_during_shutdown_is_refused_with_shut_down() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let (result_tx, result) = mpsc::channel();
    let inner = module.clone();
    let h = module
        .add_task(
            Task::new(move || {
                entered_tx.send(()).unwrap();
                go.recv().unwrap();
            })
            .callback(move |_| {
                result_tx.send(inner.add_task(|| ()).map(|_| ())).unwrap();
            }),
        )
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    let stopper = {
        let manager = manager.clone();
        std::thread::spawn(move || manager.shutdown())
    };
    assert!(common::eventually(|| manager.is_shut_down() || module.add_task(|| ()).is_err()));
    go_tx.send(()).unwrap();
    assert!(matches!(result.recv_timeout(SOON).unwrap(), Err(SubmitError::ShutDown)));
    h.join().unwrap();
    stopper.join().unwrap();
}

#[test]
fn cancels_racing_execution_end_exactly_once() {
    // Many tasks, each cancelled from another thread while workers start
    // them: each ends exactly one way, and its body ran iff it was not
    // cancelled.
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let n = 5_000;
    let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect());
    let (tx, rx) = mpsc::channel();
    let canceller = std::thread::spawn(move || {
        let mut handles = Vec::new();
        for h in rx {
            let cancelled: bool = taskmanager::TaskHandle::<()>::cancel(&h);
            handles.push((h, cancelled));
        }
        handles
    });
    for i in 0..n {
        let runs = runs.clone();
        tx.send(
            module
                .add_task(move || {
                    runs[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap(),
        )
        .unwrap();
    }
    drop(tx);
    let handles = canceller.join().unwrap();
    let (mut ran, mut cancelled) = (0, 0);
    for (i, (h, cancel_won)) in handles.into_iter().enumerate() {
        match h.join_timeout(SOON) {
            Ok(()) => {
                assert!(!cancel_won);
                assert_eq!(runs[i].load(Ordering::SeqCst), 1);
                ran += 1;
            }
            Err(JoinTimeoutError::Failed(TaskError::Cancelled)) => {
                assert!(cancel_won);
                assert_eq!(runs[i].load(Ordering::SeqCst), 0);
                cancelled += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ran + cancelled, n);
    manager.shutdown();
}
