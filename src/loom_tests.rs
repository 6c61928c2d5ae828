//! Model checks of the core's hand-offs with loom: every interleaving (up
//! to a preemption bound) of the real code, through the `sync` facade.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --lib loom
//! ```
//!
//! Loom reports a deadlock when every thread blocks, so a lost wake-up (a
//! job queued while its worker falls asleep, a waiter never notified) fails
//! a model, as does a broken assertion in any interleaving.
//!
//! Each model was checked to fail when the protocol is broken: without the
//! submitter's notification of an idle worker, loom reports the deadlock.
//!
//! What loom does not see, and what covers it instead:
//! - Timeouts: loom's timed waits never time out, so keep-alive retirement
//!   and timer deadlines are not explored here; `tests/cap.rs` (retire and
//!   come back) and `examples/stress.rs` cover them.
//! - The queue: under loom it is a mutex around a `VecDeque` (see
//!   `sync::Queue`), which orders pushes and pops more strongly than the
//!   lock-free crossbeam channel used otherwise. So the SeqCst fences that
//!   pair a push with a read of `idle` (see `PROTOCOL.md`) are argued there,
//!   not checked here: removing the worker's fence passes these models.
//! - Reference counts (`Arc`) are std's.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use crate::{JoinTimeoutError, Module, Recurrence, SubmitError, TaskError, TaskManager};

/// Runs `body` under loom. Unless `LOOM_MAX_PREEMPTIONS` says otherwise,
/// with a preemption bound of 2, which explores every model in seconds (CI
/// runs this); 3 takes about two minutes on two cores, and passes too.
fn model(body: impl Fn() + Sync + Send + 'static) {
    model_bounded(2, body);
}

/// [`model`] with a preemption bound of `bound` unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise: for models of many threads.
fn model_bounded(bound: usize, body: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(bound);
    }
    builder.check(body);
}

/// A started manager whose default module has `max_workers` workers.
fn started(max_workers: usize) -> TaskManager {
    let manager = TaskManager::builder().default_max_workers(max_workers).build().unwrap();
    manager.start_thread().unwrap();
    manager
}

#[test]
fn a_task_submitted_while_the_worker_goes_idle_is_never_stranded() {
    model(|| {
        let manager = started(1);
        // The worker runs the first task, then heads for sleep while the
        // second is submitted: it must see the job or be woken for it.
        manager.add_task(|| ()).unwrap().join().unwrap();
        assert_eq!(manager.add_task(|| 2).unwrap().join().unwrap(), 2);
        manager.shutdown();
    });
}

#[test]
fn the_cap_holds_and_both_tasks_run() {
    model(|| {
        let manager = started(1);
        let module = Module::new(&manager, 1).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let task = |running: Arc<AtomicUsize>| {
            move || {
                assert_eq!(running.fetch_add(1, SeqCst), 0, "two tasks of a 1-worker module at once");
                loom::thread::yield_now();
                running.fetch_sub(1, SeqCst);
            }
        };
        let a = module.add_task(task(running.clone())).unwrap();
        let b = module.add_task(task(running.clone())).unwrap();
        a.join().unwrap();
        b.join().unwrap();
        manager.shutdown();
    });
}

#[test]
fn cancel_racing_a_start_has_exactly_one_outcome() {
    model(|| {
        let manager = started(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let handle = manager.add_task(move || r.fetch_add(1, SeqCst)).unwrap();
        let cancelled = handle.cancel();
        match handle.join() {
            Ok(_) => assert!(!cancelled && ran.load(SeqCst) == 1),
            Err(TaskError::Cancelled) => assert!(cancelled && ran.load(SeqCst) == 0),
            Err(e) => panic!("unexpected {e:?}"),
        }
        manager.shutdown();
        assert!(ran.load(SeqCst) <= 1);
    });
}

#[test]
fn a_submission_racing_shutdown_is_refused_or_ends() {
    model(|| {
        let manager = started(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let manager = manager.clone();
            let ran = ran.clone();
            loom::thread::spawn(move || manager.add_task(move || ran.fetch_add(1, SeqCst)).map(|h| h.join()))
        };
        manager.shutdown();
        match submitter.join().unwrap() {
            // Accepted: it ran, or shutdown cancelled it; either way its
            // handle ended.
            Ok(Ok(_)) => assert_eq!(ran.load(SeqCst), 1),
            Ok(Err(TaskError::Cancelled)) => assert_eq!(ran.load(SeqCst), 0),
            Ok(Err(e)) => panic!("unexpected {e:?}"),
            Err(SubmitError::ShutDown) => assert_eq!(ran.load(SeqCst), 0),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

#[test]
fn cancelling_a_recurring_task_during_its_run_stops_it() {
    model(|| {
        let manager = started(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        // run_now: the first run is queued at once (loom's timer never
        // fires by time); the cancel races that run and its requeue.
        let handle = manager
            .schedule_recurring(
                Recurrence::every(std::time::Duration::from_secs(3600)).run_now(true),
                move || {
                    r.fetch_add(1, SeqCst);
                },
            )
            .unwrap();
        handle.cancel();
        handle.wait();
        assert!(handle.is_done());
        let after = runs.load(SeqCst);
        assert!(after <= 1);
        manager.shutdown();
        assert_eq!(runs.load(SeqCst), after, "a run started after cancel returned");
    });
}

#[test]
fn join_timeout_on_a_finished_or_cancelled_task_returns() {
    model(|| {
        let manager = started(1);
        let handle = manager.schedule_task(std::time::Duration::from_secs(3600), || 1).unwrap();
        let canceller = {
            let manager = manager.clone();
            loom::thread::spawn(move || manager.shutdown())
        };
        // Shutdown cancels the task not yet due: the waiter must wake.
        match handle.join_timeout(std::time::Duration::from_secs(3600)) {
            Err(JoinTimeoutError::Failed(TaskError::Cancelled)) => {}
            other => panic!("expected cancelled, got {:?}", other.map_err(|e| format!("{e:?}"))),
        }
        canceller.join().unwrap();
    });
}

#[test]
fn a_task_due_before_the_timers_wake_up_wakes_it() {
    model(|| {
        let manager = started(1);
        // The timer sleeps until the far task (loom never times it out);
        // the near one, due at once (1 ns: a zero delay skips the timer),
        // is pushed as the new earliest while the timer computes its sleep
        // or sleeps: it must be woken for it.
        let far = manager.schedule_task(std::time::Duration::from_secs(3600), || 0).unwrap();
        let near = manager.schedule_task(std::time::Duration::from_nanos(1), || 1).unwrap();
        assert_eq!(near.join().unwrap(), 1);
        far.cancel();
        manager.shutdown();
    });
}

/// A manager whose one worker keeps a recurring task due in an hour
/// between runs (its keep-alive is longer than that; see `Pool::may_hold`),
/// after a first run at once.
fn holding() -> (TaskManager, crate::RecurringHandle) {
    let manager = TaskManager::builder()
        .default_max_workers(1)
        .keep_alive(std::time::Duration::from_secs(7200))
        .build()
        .unwrap();
    manager.start_thread().unwrap();
    let handle = manager
        .schedule_recurring(Recurrence::every(std::time::Duration::from_secs(3600)).run_now(true), || {})
        .unwrap();
    (manager, handle)
}

#[test]
fn work_submitted_while_the_only_worker_holds_a_recurring_task_runs() {
    model(|| {
        let (manager, recurring) = holding();
        // Races the first run and its hold: queued before, the run sees it
        // and does not hold; after, the holder is woken and gives way (loom
        // never times its sleep out, so a missed wake-up hangs the model).
        let task = manager.add_task(|| 7).unwrap();
        assert_eq!(task.join().unwrap(), 7);
        recurring.cancel();
        recurring.wait();
        manager.shutdown();
        assert_eq!(manager.stats().pending_timers, 0);
    });
}

#[test]
fn cancelling_a_held_recurring_task_ends_it_and_shutdown_ends() {
    model(|| {
        let (manager, recurring) = holding();
        // Races the first run, its hold, and the holder's check and sleep.
        assert!(recurring.cancel());
        recurring.wait();
        assert!(recurring.is_cancelled());
        assert_eq!(manager.stats().pending_timers, 0);
        manager.shutdown();
        assert!(recurring.runs() <= 1);
    });
}

/// A method that may be given up while it runs, without the watchdog (a
/// std thread on the real clock, which loom does not model): the model's
/// own thread plays it, with what a watch would capture.
struct Escapable<F>(F);

impl<F: FnOnce() -> T + Send + 'static, T> crate::Method<T> for Escapable<F> {
    fn call(self) -> Result<T, TaskError> {
        Ok((self.0)())
    }

    fn escapes(&self) -> bool {
        true
    }
}

#[test]
fn a_run_given_up_as_it_returns_settles_once_and_its_place_is_given_back_once() {
    use crate::limit::captured;
    // Five threads (this one, the timer, the worker, the watchdog's and a
    // new worker): bound 1 explores it in seconds and finds the stranded
    // job a detached worker left (see `Pool::work`); bound 2 takes hours.
    model_bounded(1, || {
        let manager = started(1);
        let module = Module::new(&manager, 1).unwrap();
        let watchdog: Arc<crate::sync::Mutex<Option<loom::thread::JoinHandle<bool>>>> = Arc::default();
        let w = Arc::clone(&watchdog);
        let handle = module
            .add_task(crate::Task::new(Escapable(move || {
                // The watchdog's step, with what a watch captures, racing
                // this run's return.
                let captured = captured();
                let (place, run) = (captured.place.unwrap(), captured.run.unwrap());
                let giving_up = loom::thread::spawn(move || {
                    place.give_up();
                    let error =
                        TaskError::TimeLimitExceeded { limit: std::time::Duration::ZERO, abandoned: true };
                    run.abandon(error, &|| place.count_abandoned())
                });
                *crate::sync::lock(&w) = Some(giving_up);
                7
            })))
            .unwrap();
        let outcome = handle.join();
        // The give-up may settle the handle before the run stored its thread.
        let giving_up = loop {
            if let Some(giving_up) = crate::sync::lock(&watchdog).take() {
                break giving_up;
            }
            loom::thread::yield_now();
        };
        let abandoned = giving_up.join().unwrap();
        match outcome {
            Ok(7) => assert!(!abandoned),
            Err(TaskError::TimeLimitExceeded { abandoned: true, .. }) => assert!(abandoned),
            other => panic!("unexpected {other:?}"),
        }
        // The module still runs work: its place was given back once.
        assert_eq!(module.add_task(|| 8).unwrap().join(), Ok(8));
        manager.shutdown();
        let stats = module.stats();
        assert_eq!(stats.completed + stats.failed, 2, "{stats:?}");
        assert_eq!(stats.abandoned, u64::from(abandoned));
        assert!(stats.workers <= 1);
    });
}

/// A step of the wall clock moves a task that follows it (the timer lets
/// go of its lock to wake the workers whose entries moved), racing a
/// shutdown: the task runs or is cancelled, never lost, and the timer
/// thread still ends (the shutdown's wake-up of a timer that had let go
/// of its lock is not lost: it looks again from the top).
#[test]
fn a_wall_clock_step_racing_shutdown_loses_neither_the_task_nor_the_timer() {
    model(|| {
        let clock = crate::ManualClock::new();
        let manager = TaskManager::builder().clock(&clock).build().unwrap();
        manager.start_thread().unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(3600);
        let handle = manager.schedule_task_at(at, || 5).unwrap();
        let stepper = {
            let clock = clock.clone();
            loom::thread::spawn(move || clock.set_wall(at))
        };
        manager.shutdown();
        stepper.join().unwrap();
        match handle.join() {
            Ok(5) | Err(TaskError::Cancelled) => {}
            other => panic!("unexpected {other:?}"),
        }
    });
}
