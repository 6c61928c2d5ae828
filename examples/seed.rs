//! The spec's example in Rust: a module with `max_workers` 5 prints `hello`,
//! `hello` (through a callback), `once` after 1 s, `every` each second from
//! 1 s and `every-now` each second from now, until Ctrl-C.
//!
//! `cargo run --example seed` (add `-- --seconds N` to stop by itself).

use std::error::Error;
use std::ops::Deref;
use std::time::Duration;

use taskmanager::{ConfigError, Module, Recurrence, Task, TaskManager};

/// The spec's `SomeModule(Module)`: a type of our own built around a
/// `Module`, which it derefs to, so `something.add_task(..)` reads as in the
/// spec.
struct SomeModule {
    module: Module,
}

impl SomeModule {
    fn new(task_manager: &TaskManager, max_workers: usize) -> Result<Self, ConfigError> {
        Ok(SomeModule { module: Module::new(task_manager, max_workers)? })
    }

    fn some_event(some_string: &str) {
        println!("{some_string}");
    }

    fn some_other_event(some_string: &str) -> String {
        some_string.to_owned()
    }

    fn some_callback(data: &String) {
        println!("{data}");
    }
}

impl Deref for SomeModule {
    type Target = Module;

    fn deref(&self) -> &Module {
        &self.module
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let seconds = seconds_from_args()?;
    let second = Duration::from_secs(1);

    let manager = TaskManager::new();
    manager.start_thread()?;

    let something = SomeModule::new(&manager, 5)?;

    // Run asap: some_event prints "hello".
    something.add_task(|| SomeModule::some_event("hello"))?;

    // Run asap: some_callback prints "hello".
    something
        .add_task(Task::new(|| SomeModule::some_other_event("hello")).callback(SomeModule::some_callback))?;

    // Run once, in one second.
    something.schedule_task(second, || SomeModule::some_event("once"))?;

    // Run every second, starting in one second.
    something.schedule_recurring(Recurrence::every(second), || SomeModule::some_event("every"))?;

    // Run every second, starting now.
    something.schedule_recurring(Recurrence::every(second).run_now(true), || {
        SomeModule::some_event("every-now")
    })?;

    match seconds {
        Some(seconds) => std::thread::sleep(Duration::from_secs_f64(seconds)),
        // Until Ctrl-C, which ends the process.
        None => loop {
            std::thread::park();
        },
    }
    manager.shutdown();
    Ok(())
}

/// `--seconds N`: run for N seconds, then shut down cleanly.
fn seconds_from_args() -> Result<Option<f64>, Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(None),
        [flag, n] if flag == "--seconds" => {
            let n: f64 = n.parse().map_err(|_| format!("--seconds takes a number, got {n:?}"))?;
            if !(n.is_finite() && n >= 0.0) {
                return Err(format!("--seconds must be finite and >= 0, got {n}").into());
            }
            Ok(Some(n))
        }
        _ => Err("usage: seed [--seconds N]".into()),
    }
}
