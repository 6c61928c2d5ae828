//! Tasks and callbacks may submit tasks, cancel handles and wait on other
//! modules' handles without deadlock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{ms, started, SOON};
use taskmanager::{Module, Recurrence, Task, TaskError};

#[test]
fn a_task_can_submit_a_chain_of_further_tasks() {
    fn step(module: Module, left: usize, done: mpsc::Sender<usize>) {
        if left == 0 {
            done.send(0).unwrap();
            return;
        }
        let m = module.clone();
        module.add_task(move || step(m, left - 1, done)).unwrap();
    }
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let m = module.clone();
    module.add_task(move || step(m, 1_000, tx)).unwrap();
    assert_eq!(rx.recv_timeout(SOON).unwrap(), 0);
}

#[test]
fn a_callback_can_submit_and_schedule_tasks() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let m = module.clone();
    module
        .add_task(Task::new(|| 20).callback(move |v: &i32| {
            let (v, tx, tx2) = (*v, tx.clone(), tx.clone());
            m.add_task(move || tx.send(v + 1).unwrap()).unwrap();
            m.schedule_task(ms(10), move || tx2.send(v + 2).unwrap()).unwrap();
        }))
        .unwrap();
    let mut got = vec![rx.recv_timeout(SOON).unwrap(), rx.recv_timeout(SOON).unwrap()];
    got.sort_unstable();
    assert_eq!(got, [21, 22]);
}

#[test]
fn a_task_can_wait_on_another_modules_handles() {
    let manager = started();
    let front = Module::new(&manager, 1).unwrap();
    let back = Module::new(&manager, 4).unwrap();
    let b = back.clone();
    let total = front
        .add_task(move || {
            let parts: Vec<_> = (1..=10).map(|i| b.add_task(move || i * i).unwrap()).collect();
            parts.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        })
        .unwrap();
    assert_eq!(total.join_timeout(SOON).unwrap(), 385);
}

#[test]
fn a_task_can_cancel_other_tasks() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let far = Arc::new(module.schedule_task(Duration::from_secs(3600), || "never").unwrap());
    let ticking = module.schedule_recurring(Recurrence::every(ms(2)), || ()).unwrap();
    let (f, t) = (far.clone(), ticking.clone());
    let canceller = module.add_task(move || (f.cancel(), t.cancel())).unwrap();
    assert_eq!(canceller.join().unwrap(), (true, true));
    assert!(ticking.wait_timeout(SOON));
    let far = Arc::try_unwrap(far).unwrap();
    assert_eq!(far.join(), Err(TaskError::Cancelled));
}

#[test]
fn waiting_in_a_task_with_a_timeout_on_its_own_saturated_module_does_not_hang() {
    // The documented hazard: with one worker, a task waiting on a task queued
    // behind it in the same module waits forever. A timeout bounds it.
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let m = module.clone();
    let outer = module
        .add_task(move || {
            let inner = m.add_task(|| 1).unwrap();
            let finished = inner.wait_timeout(ms(50));
            (finished, inner)
        })
        .unwrap();
    let (finished, inner) = outer.join_timeout(SOON).unwrap();
    assert!(!finished, "the inner task could not start while the outer held the only worker");
    assert_eq!(inner.join_timeout(SOON).unwrap(), 1, "it ran once the worker was free");
}

#[test]
fn recurring_tasks_can_feed_other_modules() {
    let manager = started();
    let producer = Module::new(&manager, 1).unwrap();
    let consumer = Module::new(&manager, 2).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let (c, k) = (consumer.clone(), count.clone());
    let handle = producer
        .schedule_recurring(Recurrence::every(ms(2)).run_now(true), move || {
            let k = k.clone();
            c.add_task(move || k.fetch_add(1, Ordering::SeqCst)).unwrap();
        })
        .unwrap();
    assert!(common::eventually(|| count.load(Ordering::SeqCst) >= 20));
    handle.cancel();
    handle.wait();
}
