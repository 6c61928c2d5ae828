//! A manager inherited by a forked child ([`after_fork_in_child`]): its own
//! test binary, since the call marks every manager of the process.

mod common;

use std::time::Instant;

use common::{eventually, ms, started, SOON};
use taskmanager::{Module, StartError, SubmitError, TaskManager};

/// A forked child is simulated by `after_fork_in_child` alone: this process
/// keeps its threads, but the manager must act as if they were not here.
/// (The real fork, with a Python child, is tested in
/// tests/python/test_process_boundaries.py.)
#[test]
fn a_manager_inherited_across_fork_refuses_work_and_never_waits() {
    let inherited = started();
    let module = Module::new(&inherited, 2).unwrap();
    let ticking = module.schedule_recurring(taskmanager::Recurrence::every(ms(10)), || ()).unwrap();
    let never_started = TaskManager::new();
    let queued_before = never_started.add_task(|| 5).unwrap();

    taskmanager::after_fork_in_child();

    assert!(matches!(module.add_task(|| ()), Err(SubmitError::Forked)));
    assert!(matches!(inherited.add_task(|| ()), Err(SubmitError::Forked)));
    assert!(matches!(module.schedule_task(ms(5), || ()), Err(SubmitError::Forked)));
    assert!(matches!(inherited.start_thread(), Err(StartError::Forked)));
    let t = Instant::now();
    assert!(inherited.await_termination(SOON));
    inherited.shutdown();
    drop(inherited);
    assert!(t.elapsed() < ms(500), "an inherited manager waited {:?}", t.elapsed());
    drop(ticking);

    // A manager never started before the fork works in the child.
    never_started.start_thread().unwrap();
    assert_eq!(queued_before.join().unwrap(), 5);
    assert_eq!(never_started.add_task(|| 6).unwrap().join().unwrap(), 6);
    // And so does a new one.
    let fresh = started();
    assert_eq!(fresh.add_task(|| 7).unwrap().join().unwrap(), 7);
    assert!(eventually(|| fresh.stats().completed == 1));
}
