//! Shutdown: stop accepting, run what is due, cancel what is not, join every
//! thread; bounded shutdown; drop; shutdown from inside tasks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ms, started, SOON};
use taskmanager::{
    BatchRunner, Module, Recurrence, RunningTask, ShutdownTimedOut, StartError, SubmitError, Task, TaskError,
    TaskManager,
};

fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Box<dyn FnOnce() + Send>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    (count, move || {
        let c = c.clone();
        Box::new(move || {
            std::thread::sleep(Duration::from_micros(200));
            c.fetch_add(1, Ordering::SeqCst);
        })
    })
}

#[test]
fn submissions_after_shutdown_get_a_typed_error() {
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    manager.shutdown();
    assert!(manager.is_shut_down());
    let shut = Some(SubmitError::ShutDown);
    assert_eq!(module.add_task(|| ()).err(), shut);
    assert_eq!(manager.add_task(|| ()).err(), shut);
    assert_eq!(module.schedule_task(ms(5), || ()).err(), shut);
    assert_eq!(module.schedule_task(Duration::ZERO, || ()).err(), shut);
    let recurring = module.schedule_recurring(Recurrence::every(ms(5)).run_now(true), || ());
    assert_eq!(recurring.err(), shut);
    assert_eq!(manager.start_thread(), Err(StartError::ShutDown));
    let late = Module::new(&manager, 1).unwrap();
    assert_eq!(late.add_task(|| ()).err(), shut);
}

#[test]
fn queued_tasks_all_run_before_shutdown_returns() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (count, job) = counter();
    let handles: Vec<_> = (0..500).map(|_| module.add_task(job()).unwrap()).collect();
    manager.shutdown();
    assert_eq!(count.load(Ordering::SeqCst), 500);
    assert!(handles.iter().all(|h| h.is_done() && !h.is_cancelled()));
}

#[test]
fn due_tasks_run_and_tasks_not_yet_due_are_cancelled() {
    let manager = TaskManager::new(); // never started: shutdown still runs what is due
    let module = Module::new(&manager, 2).unwrap();
    let (count, job) = counter();
    let queued = module.add_task(job()).unwrap();
    let due = module.schedule_task(ms(1), job()).unwrap();
    let not_due = module.schedule_task(Duration::from_secs(3600), job()).unwrap();
    let recurring_due = module.schedule_recurring(Recurrence::every(ms(1)), job_mut(count.clone())).unwrap();
    let recurring_later =
        module.schedule_recurring(Recurrence::every(Duration::from_secs(60)), || ()).unwrap();
    std::thread::sleep(ms(20));
    manager.shutdown();
    assert_eq!(queued.join(), Ok(()));
    assert_eq!(due.join(), Ok(()));
    assert_eq!(not_due.join(), Err(TaskError::Cancelled));
    assert_eq!(recurring_due.runs(), 1, "its due run ran, then it stopped");
    assert!(recurring_due.is_done() && recurring_due.is_cancelled());
    assert!(recurring_later.is_done() && recurring_later.is_cancelled());
    assert_eq!(recurring_later.runs(), 0);
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

fn job_mut(count: Arc<AtomicUsize>) -> impl FnMut() + Send + 'static {
    move || {
        count.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_recurring_run_in_progress_finishes_and_is_not_rescheduled() {
    let manager = started();
    let (entered_tx, entered) = mpsc::channel();
    let handle = manager
        .schedule_recurring(Recurrence::every(ms(5)).run_now(true), move || {
            let _ = entered_tx.send(());
            std::thread::sleep(ms(100));
        })
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    manager.shutdown();
    assert!(handle.is_done() && handle.is_cancelled());
    assert_eq!(handle.runs(), 1);
}

#[test]
fn bounded_shutdown_returns_in_time_and_reports_what_was_left() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let other = Module::new(&manager, 1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (release_other, gate_other) = mpsc::channel::<()>();
    let (entered_tx, entered) = mpsc::channel();
    let entered_other = entered_tx.clone();
    // Two tasks that would block forever: one named, one not.
    let blocked = module
        .add_task(
            Task::new(move || {
                entered_tx.send(()).unwrap();
                gate.recv().unwrap();
                "finished late"
            })
            .name("stuck-forever"),
        )
        .unwrap();
    let unnamed = other
        .add_task(move || {
            entered_other.send(()).unwrap();
            gate_other.recv().unwrap();
        })
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    entered.recv_timeout(SOON).unwrap();
    let behind: Vec<_> = (0..3).map(|_| module.add_task(|| "never").unwrap()).collect();
    let start = Instant::now();
    let report = manager.shutdown_timeout(ms(100)).unwrap_err();
    let took = start.elapsed();
    assert!(took >= ms(100) && took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(report.still_running, 2);
    assert_eq!(report.cancelled, 3);
    let mut running = report.running.clone();
    running.sort_by_key(|t| t.id);
    let mut expected = vec![
        RunningTask { id: blocked.id(), name: "stuck-forever".into() },
        RunningTask { id: unnamed.id(), name: format!("task-{}", unnamed.id()) },
    ];
    expected.sort_by_key(|t| t.id);
    assert_eq!(running, expected);
    assert_eq!(unnamed.name(), format!("task-{}", unnamed.id()));
    let message = report.to_string();
    assert!(message.contains("stuck-forever") && message.contains(&unnamed.name()), "{message}");
    assert_eq!(
        message,
        format!(
            "shutdown timed out: 2 task(s) still running ({}); 3 queued task(s) not started were cancelled",
            report.running.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
        )
    );
    for h in behind {
        assert_eq!(h.join(), Err(TaskError::Cancelled));
    }
    release.send(()).unwrap();
    release_other.send(()).unwrap();
    assert_eq!(blocked.join_timeout(SOON).unwrap(), "finished late", "the running task still reports");
    unnamed.join_timeout(SOON).unwrap();
}

/// Holds every batch until released: its worker has taken a job but runs
/// none yet, so nothing counts as running while jobs wait behind it.
struct Held(Mutex<mpsc::Receiver<()>>, mpsc::Sender<()>);

impl BatchRunner for Held {
    fn run_batch(&self, batch: &mut dyn FnMut()) {
        let _ = self.1.send(());
        let _ = self.0.lock().unwrap().recv_timeout(SOON);
        batch();
    }
}

#[test]
fn bounded_shutdown_timed_out_by_a_backlog_says_none_was_running() {
    let (release, gate) = mpsc::channel();
    let (held_tx, held) = mpsc::channel();
    let manager =
        TaskManager::builder().batch_runner(Arc::new(Held(Mutex::new(gate), held_tx))).build().unwrap();
    manager.start_thread().unwrap();
    let module = Module::new(&manager, 1).unwrap();
    let first = module.add_task(|| "first").unwrap();
    held.recv_timeout(SOON).expect("the worker holds its first job");
    let behind: Vec<_> = (0..3).map(|_| module.add_task(|| "never").unwrap()).collect();
    let report = manager.shutdown_timeout(ms(50)).unwrap_err();
    assert_eq!(report, ShutdownTimedOut { still_running: 0, cancelled: 3, running: vec![], handed_back: 0 });
    let message = report.to_string();
    assert_eq!(message, "shutdown timed out: 3 queued task(s) not started were cancelled; none was running");
    assert!(!message.contains("still running"), "{message}");
    for h in behind {
        assert_eq!(h.join(), Err(TaskError::Cancelled));
    }
    release.send(()).unwrap();
    assert_eq!(first.join_timeout(SOON).unwrap(), "first", "the held job still runs");
}

#[test]
fn shutdown_timed_out_messages_say_what_was_left() {
    let task = |id, name: &str| RunningTask { id, name: name.into() };
    let report = |still_running, cancelled, running| ShutdownTimedOut {
        still_running,
        cancelled,
        running,
        handed_back: 0,
    };
    assert_eq!(
        report(2, 0, vec![task(1, "a"), task(2, "b")]).to_string(),
        "shutdown timed out: 2 task(s) still running (a, b); no queued task was cancelled"
    );
    assert_eq!(
        report(1, 4, vec![task(1, "a")]).to_string(),
        "shutdown timed out: 1 task(s) still running (a); 4 queued task(s) not started were cancelled"
    );
    assert_eq!(
        report(0, 1, vec![]).to_string(),
        "shutdown timed out: 1 queued task(s) not started were cancelled; none was running"
    );
    let nothing = report(0, 0, vec![]).to_string();
    assert!(!nothing.contains("0 task(s)") && nothing.contains("threads"), "{nothing}");
}

#[test]
fn bounded_shutdown_with_nothing_running_is_ok() {
    let manager = started();
    manager.add_task(|| ()).unwrap().join().unwrap();
    assert_eq!(manager.shutdown_timeout(SOON), Ok(()));
}

#[test]
fn dropping_the_last_manager_shuts_down_without_hanging() {
    let manager = started();
    let module = Module::new(&manager, 2).unwrap();
    let (count, job) = counter();
    let queued: Vec<_> = (0..50).map(|_| module.add_task(job()).unwrap()).collect();
    let forever = module.schedule_recurring(Recurrence::every(ms(1)), || ()).unwrap();
    let clone = manager.clone();
    drop(manager);
    assert!(!clone.is_shut_down(), "a clone keeps it running");
    let start = Instant::now();
    drop(clone);
    assert!(start.elapsed() < SOON);
    assert_eq!(count.load(Ordering::SeqCst), 50);
    assert!(queued.iter().all(|h| h.is_done()));
    assert!(forever.is_done() && forever.is_cancelled());
    assert!(matches!(module.add_task(|| ()), Err(SubmitError::ShutDown)));
}

#[test]
fn dropping_the_last_manager_inside_a_task_does_not_deadlock() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let holder = Arc::new(Mutex::new(Some(manager)));
    let h = holder.clone();
    let handle = module.add_task(move || drop(h.lock().unwrap().take())).unwrap();
    assert_eq!(handle.join_timeout(SOON).ok(), Some(()));
    assert!(matches!(module.add_task(|| ()), Err(SubmitError::ShutDown)));
}

#[test]
fn shutdown_called_from_a_task_returns_and_the_manager_stops() {
    let manager = started();
    let inner = manager.clone();
    let handle = manager.add_task(move || inner.shutdown()).unwrap();
    assert!(handle.join_timeout(SOON).is_ok(), "shutdown inside a task returned");
    assert!(manager.is_shut_down());
    manager.shutdown(); // waits for the threads from outside
}

#[test]
fn a_callback_submitting_during_shutdown_gets_shut_down_error() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let outcome = Arc::new(Mutex::new(None));
    let (m, o) = (module.clone(), outcome.clone());
    let handle = module
        .add_task(
            Task::new(move || {
                entered_tx.send(()).unwrap();
                std::thread::sleep(ms(100));
            })
            .callback(move |_: &()| {
                *o.lock().unwrap() = Some(m.add_task(|| ()).map(|_| ()));
            }),
        )
        .unwrap();
    entered.recv_timeout(SOON).unwrap();
    manager.shutdown();
    handle.join().unwrap();
    assert!(matches!(*outcome.lock().unwrap(), Some(Err(SubmitError::ShutDown))));
}

#[test]
fn concurrent_shutdowns_all_return() {
    let manager = started();
    let (_count, job) = counter();
    for _ in 0..100 {
        manager.add_task(job()).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = manager.clone();
            std::thread::spawn(move || m.shutdown())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(manager.is_shut_down());
}

#[test]
fn shutdown_now_cancels_everything_not_started_and_waits_for_the_rest() {
    let manager = TaskManager::new(); // not started: everything stays queued
    let module = Module::new(&manager, 1).unwrap();
    let queued: Vec<_> = (0..5).map(|_| module.add_task(|| ()).unwrap()).collect();
    let due = module.schedule_task(ms(1), || ()).unwrap();
    let later = module.schedule_task(Duration::from_secs(60), || ()).unwrap();
    std::thread::sleep(ms(10));
    assert_eq!(manager.shutdown_now(), 6, "five queued and one due");
    for h in queued.iter().chain([&due, &later]) {
        assert!(h.is_cancelled());
    }
}

#[test]
fn begin_shutdown_returns_at_once_and_await_termination_waits() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (entered_tx, entered) = mpsc::channel();
    let running = module
        .add_task(move || {
            entered_tx.send(()).unwrap();
            gate.recv().unwrap();
        })
        .unwrap();
    let queued = module.add_task(|| "still runs").unwrap();
    entered.recv_timeout(SOON).unwrap();
    let start = Instant::now();
    manager.begin_shutdown();
    assert!(start.elapsed() < Duration::from_secs(1), "did not wait");
    assert!(matches!(manager.add_task(|| ""), Err(SubmitError::ShutDown)));
    assert!(!manager.await_termination(ms(30)), "a task is still running");
    release.send(()).unwrap();
    assert!(manager.await_termination(SOON));
    running.join().unwrap();
    assert_eq!(queued.join().unwrap(), "still runs", "begin_shutdown cancels nothing queued");
}

#[test]
fn cancel_pending_clears_waiting_work_and_the_manager_goes_on() {
    let manager = TaskManager::new();
    let queued = manager.add_task(|| ()).unwrap();
    let scheduled = manager.schedule_task(Duration::from_secs(60), || ()).unwrap();
    let recurring = manager.schedule_recurring(Recurrence::every(Duration::from_secs(60)), || ()).unwrap();
    assert_eq!(manager.cancel_pending(), 3);
    assert!(queued.is_cancelled() && scheduled.is_cancelled() && recurring.is_done());
    manager.start_thread().unwrap();
    assert_eq!(manager.add_task(|| 1).unwrap().join_timeout(SOON).unwrap(), 1);
}

#[test]
fn is_manager_thread_is_true_only_inside_tasks() {
    let manager = started();
    assert!(!manager.is_manager_thread());
    let inner = manager.clone();
    assert!(manager.add_task(move || inner.is_manager_thread()).unwrap().join().unwrap());
}
