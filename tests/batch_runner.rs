//! `BatchRunner`: a worker runs queued tasks in batches wrapped by the
//! runner, and a misbehaving runner loses no task and kills no worker.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use common::SOON;
use taskmanager::{BatchRunner, Module, TaskManager};

#[derive(Default)]
struct Counting {
    batches: AtomicUsize,
    inside: AtomicUsize,
}

impl BatchRunner for Counting {
    fn run_batch(&self, batch: &mut dyn FnMut()) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.inside.fetch_add(1, Ordering::SeqCst);
        batch();
        self.inside.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn queued_tasks_run_inside_batches_of_several() {
    let runner = Arc::new(Counting::default());
    let manager = TaskManager::builder().batch_runner(runner.clone()).build().unwrap();
    let module = Module::new(&manager, 1).unwrap();
    let r = runner.clone();
    let handles: Vec<_> = (0..1_000)
        .map(|_| {
            let r = r.clone();
            module.add_task(move || r.inside.load(Ordering::SeqCst)).unwrap()
        })
        .collect();
    manager.start_thread().unwrap(); // all 1,000 are queued by now
    for h in handles {
        assert_eq!(h.join_timeout(SOON).unwrap(), 1, "every task ran inside run_batch");
    }
    let batches = runner.batches.load(Ordering::SeqCst);
    assert!(batches < 1_000 / 4, "{batches} batches for 1,000 queued tasks");
}

struct Skipping;

impl BatchRunner for Skipping {
    fn run_batch(&self, _batch: &mut dyn FnMut()) {}
}

#[test]
fn a_runner_that_skips_the_batch_loses_no_task() {
    let manager = TaskManager::builder().batch_runner(Arc::new(Skipping)).build().unwrap();
    manager.start_thread().unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        manager.add_task(move || tx.send(i).unwrap()).unwrap();
    }
    let mut got: Vec<i32> = (0..20).map(|_| rx.recv_timeout(SOON).unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

struct Panicking;

impl BatchRunner for Panicking {
    fn run_batch(&self, batch: &mut dyn FnMut()) {
        batch();
        panic!("runner bug");
    }
}

#[test]
fn a_panicking_runner_does_not_kill_the_worker() {
    let manager = TaskManager::builder().batch_runner(Arc::new(Panicking)).build().unwrap();
    manager.start_thread().unwrap();
    let module = Module::new(&manager, 1).unwrap();
    for i in 0..10 {
        assert_eq!(module.add_task(move || i).unwrap().join_timeout(SOON).unwrap(), i);
    }
    assert!(module.worker_count() <= 1);
}
