//! Bounded modules: a full queue refuses new submissions with a typed error,
//! and never refuses (or loses) work it had already accepted.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use common::{ms, started, SOON};
use taskmanager::{ConfigError, Module, Recurrence, SubmitError, TaskManager};

/// A module of one worker, held busy until the returned sender is dropped
/// or sent to; `capacity` is its queue bound.
fn busy_bounded(manager: &TaskManager, capacity: usize) -> (Module, mpsc::Sender<()>) {
    let module = Module::builder(manager).max_workers(1).max_queued(capacity).build().unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    module
        .add_task(move || {
            started_tx.send(()).unwrap();
            let _ = gate.recv();
        })
        .unwrap();
    started_rx.recv_timeout(SOON).expect("the blocker starts");
    (module, release)
}

#[test]
fn zero_capacity_is_a_config_error() {
    let manager = TaskManager::new();
    let bounded = |workers, queued| Module::builder(&manager).max_workers(workers).max_queued(queued).build();
    assert_eq!(bounded(1, 0).err(), Some(ConfigError::ZeroQueueCapacity));
    assert_eq!(bounded(0, 4).err(), Some(ConfigError::ZeroMaxWorkers));
}

#[test]
fn a_full_queue_refuses_with_queue_full_and_accepts_again_once_drained() {
    let manager = started();
    let (module, release) = busy_bounded(&manager, 3);
    let ran = Arc::new(AtomicUsize::new(0));
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let ran = ran.clone();
        accepted.push(module.add_task(move || ran.fetch_add(1, Ordering::SeqCst)).unwrap());
    }
    let full = Some(SubmitError::QueueFull { capacity: 3 });
    assert_eq!(module.add_task(|| ()).err(), full);
    // Zero-delay and run_now submissions are immediate too: refused alike.
    assert_eq!(module.schedule_task(ms(0), || ()).err(), full);
    assert_eq!(module.schedule_recurring(Recurrence::every(ms(10)).run_now(true), || ()).err(), full);
    assert_eq!(module.queued(), 3);

    release.send(()).unwrap();
    for h in accepted {
        h.join().unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 3);
    // Drained: accepted again.
    assert_eq!(module.add_task(|| 7).unwrap().join().unwrap(), 7);
    manager.shutdown();
}

#[test]
fn due_scheduled_tasks_join_a_full_queue_instead_of_being_lost() {
    let manager = started();
    let (module, release) = busy_bounded(&manager, 1);
    let filler = module.add_task(|| "filler").unwrap();
    // Accepted while the queue was full (scheduling does not queue yet)...
    let scheduled: Vec<_> = (0..5).map(|i| module.schedule_task(ms(5), move || i).unwrap()).collect();
    // ...and once due, they join the full queue rather than be dropped.
    assert!(common::eventually(|| module.queued() == 6), "queued: {}", module.queued());
    assert!(matches!(module.add_task(|| ()), Err(SubmitError::QueueFull { capacity: 1 })));
    release.send(()).unwrap();
    assert_eq!(filler.join().unwrap(), "filler");
    let values: Vec<i32> = scheduled.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(values, vec![0, 1, 2, 3, 4]);
    manager.shutdown();
}

#[test]
fn cancelled_and_shut_down_tasks_free_their_places() {
    let manager = started();
    let (module, release) = busy_bounded(&manager, 2);
    let a = module.add_task(|| ()).unwrap();
    let b = module.add_task(|| ()).unwrap();
    assert!(matches!(module.add_task(|| ()), Err(SubmitError::QueueFull { .. })));
    // A cancelled task still sits in the queue until a worker passes it;
    // the place frees when it leaves the queue.
    assert!(a.cancel() && b.cancel());
    release.send(()).unwrap();
    assert!(common::eventually(|| module.queued() == 0));
    assert_eq!(module.add_task(|| 1).unwrap().join().unwrap(), 1);
    manager.shutdown();
    assert!(matches!(module.add_task(|| ()), Err(SubmitError::ShutDown)));
}

#[test]
fn the_bound_holds_under_concurrent_submitters() {
    let manager = started();
    let (module, release) = busy_bounded(&manager, 50);
    let accepted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    match module.add_task(|| ()) {
                        Ok(_) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(SubmitError::QueueFull { capacity: 50 }) => {
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    };
                }
            });
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 50);
    assert_eq!(refused.load(Ordering::SeqCst), 350);
    assert_eq!(module.queued(), 50);
    release.send(()).unwrap();
    manager.shutdown();
    assert_eq!(module.queued(), 0);
}
