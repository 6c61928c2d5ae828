//! No thread per task and no thread per timer: the process's threads stay
//! within the modules' caps plus the timer. Alone in its binary so the
//! process's thread count is this test's.

mod common;

use std::time::Duration;

use common::{ms, started};
use taskmanager::{Module, Recurrence};

#[cfg(target_os = "linux")]
fn process_threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn threads_stay_within_caps_plus_the_timer() {
    let before = process_threads();
    let manager = started();
    let a = Module::new(&manager, 2).unwrap();
    let b = Module::new(&manager, 3).unwrap();
    let mut handles = Vec::new();
    let mut recurring = Vec::new();
    for i in 0..2_000u64 {
        handles.push(a.schedule_task(ms(i % 50), || std::thread::sleep(Duration::from_micros(50))).unwrap());
        handles.push(b.add_task(|| std::thread::sleep(Duration::from_micros(50))).unwrap());
        if i % 100 == 0 {
            recurring.push(b.schedule_recurring(Recurrence::every(ms(7)), || ()).unwrap());
        }
    }
    let mut peak = 0;
    for h in handles {
        peak = peak.max(process_threads());
        h.join().unwrap();
    }
    for r in recurring {
        r.cancel();
    }
    let allowed = before + 2 + 3 + 1;
    assert!(peak <= allowed, "peak threads {peak}, allowed {allowed}");
    manager.shutdown();
    assert_eq!(process_threads(), before, "shutdown joined every thread");
}
