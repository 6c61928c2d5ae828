//! Fan-out: split work into tasks on a module capped at four workers, then
//! collect every result through the handles.
//!
//! `cargo run --example fan_out`

use taskmanager::{Module, TaskManager};

fn primes_in(range: std::ops::Range<u64>) -> usize {
    range.filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = TaskManager::new();
    manager.start_thread()?;
    let workers = Module::new(&manager, 4)?;

    let chunk = 50_000;
    let handles = (0..20u64)
        .map(|i| workers.add_task(move || primes_in(i * chunk..(i + 1) * chunk)))
        .collect::<Result<Vec<_>, _>>()?;

    let mut total = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        let count = handle.join()?;
        println!("chunk {i:>2}: {count} primes");
        total += count;
    }
    println!("primes below {}: {total}", 20 * chunk);
    assert_eq!(total, 78_498);
    Ok(())
}
