//! Stopping recurring tasks: one cancelled from outside, one that cancels
//! itself after three runs, and what their handles report.
//!
//! `cargo run --example cancel_recurring`

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use taskmanager::{Recurrence, RecurringHandle, TaskManager};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new();
    manager.start_thread()?;
    let every = Recurrence::every(Duration::from_millis(100));

    let heartbeat = manager.schedule_recurring(every.clone(), || println!("heartbeat"))?;

    // A task that stops itself needs its own handle: hand it over once made.
    let me: Arc<OnceLock<RecurringHandle>> = Arc::new(OnceLock::new());
    let mine = Arc::clone(&me);
    let mut left = 3;
    let countdown = manager.schedule_recurring(every.run_now(true), move || {
        println!("countdown {left}");
        left -= 1;
        if left == 0 {
            if let Some(handle) = mine.get() {
                handle.cancel();
            }
        }
    })?;
    let _ = me.set(countdown.clone());

    std::thread::sleep(Duration::from_millis(350));
    heartbeat.cancel();
    heartbeat.wait(); // returns once no run is in progress
    countdown.wait();
    println!("heartbeat: {} runs, cancelled: {}", heartbeat.runs(), heartbeat.is_cancelled());
    println!("countdown: {} runs, cancelled: {}", countdown.runs(), countdown.is_cancelled());

    std::thread::sleep(Duration::from_millis(250));
    println!("heartbeat still at {} runs after cancel", heartbeat.runs());
    Ok(())
}
