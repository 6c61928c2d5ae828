//! A capped poller: five sources polled every 200 ms by a module of our own
//! that never runs more than two polls at once.
//!
//! `cargo run --example poller`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskmanager::{Module, Recurrence, RecurringHandle, SubmitError, Task, TaskManager};

/// Our own module type, as the spec subclasses `Module`: it owns a `Module`
/// and submits its own methods as tasks.
struct Poller {
    module: Module,
    in_flight: Arc<AtomicUsize>,
    started: Instant,
}

impl Poller {
    fn new(manager: &TaskManager, max_workers: usize) -> Poller {
        Poller {
            module: Module::new(manager, max_workers).expect("max_workers is at least 1"),
            in_flight: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        }
    }

    /// Polls `source` every `interval`, printing each reading as it arrives.
    fn watch(&self, source: &'static str, interval: Duration) -> Result<RecurringHandle, SubmitError> {
        let in_flight = Arc::clone(&self.in_flight);
        let started = self.started;
        let poll = move || {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(60)); // the network, say
            in_flight.fetch_sub(1, Ordering::SeqCst);
            (source, now)
        };
        let report = move |(source, concurrent): &(&str, usize)| {
            let at = started.elapsed().as_millis();
            println!("{at:>5} ms  {source:<8} polled ({concurrent} poll(s) in flight, cap 2)");
        };
        self.module
            .schedule_recurring(Recurrence::every(interval).run_now(true), Task::new(poll).callback(report))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new();
    manager.start_thread()?;
    let poller = Poller::new(&manager, 2);
    let sources = ["db", "cache", "queue", "disk", "upstream"];
    let watches =
        sources.iter().map(|s| poller.watch(s, Duration::from_millis(200))).collect::<Result<Vec<_>, _>>()?;
    std::thread::sleep(Duration::from_millis(700));
    manager.shutdown();
    for (source, watch) in sources.iter().zip(&watches) {
        println!("{source:<8} polled {} times, {} tick(s) skipped", watch.runs(), watch.skipped_ticks());
    }
    Ok(())
}
