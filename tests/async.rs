//! One-shot handles are `std::future::Future`s: awaiting gives what `join`
//! gives, from any executor, and every way a task ends wakes the awaiter.

mod common;

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use common::{ms, started, SOON};
use taskmanager::{Module, TaskError, TaskHandle};

/// Counts wake-ups and unparks the thread that polls.
struct Unpark {
    thread: std::thread::Thread,
    wakes: AtomicUsize,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn unpark_waker() -> (Arc<Unpark>, Waker) {
    let unpark = Arc::new(Unpark { thread: std::thread::current(), wakes: AtomicUsize::new(0) });
    (unpark.clone(), Waker::from(unpark))
}

/// A handle polled once, with the waker it was polled with.
type Polled = (Pin<Box<TaskHandle<&'static str>>>, Arc<Unpark>, Waker);

/// Drives `future` on this thread, parking between polls; fails the test
/// instead of hanging if it is not done within `SOON`.
fn block_on<F: Future>(future: F) -> F::Output {
    let (_, waker) = unpark_waker();
    let mut future = pin!(future);
    let deadline = std::time::Instant::now() + SOON;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return out;
        }
        assert!(std::time::Instant::now() < deadline, "future not done in time");
        std::thread::park_timeout(ms(50));
    }
}

#[test]
fn awaiting_a_handle_gives_the_value() {
    let manager = started();
    let handle = manager.add_task(|| String::from("awaited")).unwrap();
    assert_eq!(block_on(handle).unwrap(), "awaited");
    let scheduled = manager.schedule_task(ms(20), || 7).unwrap();
    assert_eq!(block_on(async { scheduled.await.map(|v| v * 6) }).unwrap(), 42);
    manager.shutdown();
}

#[test]
fn awaiting_reports_panics_and_cancellation() {
    let manager = started();
    let panicking = manager.add_task(|| -> i32 { panic!("async boom") }).unwrap();
    assert!(matches!(block_on(panicking), Err(TaskError::Panicked { message }) if message == "async boom"));
    let cancelled = manager.schedule_task(ms(60_000), || 1).unwrap();
    assert!(cancelled.cancel());
    assert!(matches!(block_on(cancelled), Err(TaskError::Cancelled)));
    manager.shutdown();
}

#[test]
fn a_pending_await_is_woken_by_completion_cancel_and_shutdown() {
    let manager = started();
    let module = Module::new(&manager, 1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let blocked = module.add_task(move || gate.recv().unwrap()).unwrap();
    let behind = module.add_task(|| "behind").unwrap();
    let far = manager.schedule_task(Duration::from_secs(3600), || "far").unwrap();

    // Each is polled once while pending; the wake-up must come from the end.
    let mut polled: Vec<Polled> = Vec::new();
    let (w, waker) = unpark_waker();
    let mut blocked = Box::pin(blocked);
    assert!(blocked.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    for handle in [behind, far] {
        let (w, waker) = unpark_waker();
        let mut handle = Box::pin(handle);
        assert!(handle.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        polled.push((handle, w, waker));
    }
    // Completion wakes.
    release.send(()).unwrap();
    assert!(common::eventually(|| w.wakes.load(Ordering::SeqCst) >= 1));
    assert!(blocked.as_mut().poll(&mut Context::from_waker(&waker)).is_ready());
    assert!(common::eventually(|| polled[0].1.wakes.load(Ordering::SeqCst) >= 1));
    // Shutdown cancels the far one, which wakes its awaiter.
    manager.shutdown();
    assert!(common::eventually(|| polled[1].1.wakes.load(Ordering::SeqCst) >= 1));
    let (behind, far) = (polled.remove(0), polled.remove(0));
    assert_eq!(block_on(behind.0).unwrap(), "behind");
    assert!(matches!(block_on(far.0), Err(TaskError::Cancelled)));
}

#[test]
fn the_latest_waker_is_the_one_woken() {
    let manager = started();
    let (release, gate) = mpsc::channel::<()>();
    let mut handle = Box::pin(manager.add_task(move || gate.recv().unwrap()).unwrap());
    let (first, first_waker) = unpark_waker();
    let (second, second_waker) = unpark_waker();
    assert!(handle.as_mut().poll(&mut Context::from_waker(&first_waker)).is_pending());
    assert!(handle.as_mut().poll(&mut Context::from_waker(&second_waker)).is_pending());
    release.send(()).unwrap();
    assert!(common::eventually(|| second.wakes.load(Ordering::SeqCst) == 1));
    assert_eq!(first.wakes.load(Ordering::SeqCst), 0);
    assert!(handle.as_mut().poll(&mut Context::from_waker(&second_waker)).is_ready());
    manager.shutdown();
}

#[test]
fn many_handles_awaited_together_all_finish() {
    let manager = started();
    let module = Module::new(&manager, 3).unwrap();
    let handles: Vec<_> = (0..500u64).map(|i| module.add_task(move || i * 2).unwrap()).collect();
    let total = block_on(async move {
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap();
        }
        sum
    });
    assert_eq!(total, (0..500u64).map(|i| i * 2).sum::<u64>());
    manager.shutdown();
}
