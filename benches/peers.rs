//! taskmanager against its peers, side by side in one run.
//!
//! ```text
//! cargo bench --bench peers                       # full run (about 5 minutes on 2 cores)
//! cargo bench --bench peers -- --quick            # under 2 minutes
//! cargo bench --bench peers -- --json out.json    # also write the records
//! cargo bench --bench peers -- --only lateness    # the scenarios whose name starts so
//! ```
//!
//! Every scenario runs all its systems once per repetition, interleaved, so
//! machine noise hits them alike; the value reported is the median over the
//! repetitions. Scenario, system and metric names are fixed (see
//! BENCHMARKS.md) so runs can be compared.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use taskmanager::{Module, Recurrence, TaskManager};
use taskmanager_benches::{
    count_allocations, live_bytes, percentile, print_table, stop_counting, to_json, CountingAlloc, Latch,
    Lcg, Record, Samples,
};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const WAIT: Duration = Duration::from_secs(120);

struct Opts {
    quick: bool,
    json: Option<String>,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts { quick: false, json: None, only: None };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--json" => o.json = args.next(),
            "--only" => o.only = args.next(),
            "--bench" => {} // added by `cargo bench`
            other => eprintln!("peers: ignoring unknown argument {other:?}"),
        }
    }
    o
}

fn main() {
    if let Some(code) = cpu_child() {
        std::process::exit(code);
    }
    let o = opts();
    let reps = if o.quick { 3 } else { 5 };
    let wanted = |name: &str| o.only.as_deref().is_none_or(|only| name.starts_with(only));
    let mut records = Vec::new();
    let started = Instant::now();
    type Scenario = fn(bool, usize) -> Vec<Record>;
    let scenarios: [(&str, Scenario); 7] = [
        ("throughput-1p", |q, r| throughput("throughput-1p", 1, q, r)),
        ("throughput-4p", |q, r| throughput("throughput-4p", 4, q, r)),
        ("lateness", lateness),
        ("drift", drift),
        ("timers-1m", timers),
        ("fairness", fairness),
        ("recurring-cpu", recurring_cpu),
    ];
    for (name, run) in scenarios {
        if !wanted(name) {
            continue;
        }
        let rs = run(o.quick, reps);
        print_table(name, &rs);
        records.extend(rs);
    }
    println!(
        "\npeers: {} records in {:.1} s ({} repetitions each)",
        records.len(),
        started.elapsed().as_secs_f64(),
        reps
    );
    if let Some(path) = o.json {
        // `cargo bench` runs this from the package's folder; a relative path
        // means relative to where the command was typed.
        let path = match std::env::var("PWD") {
            Ok(dir) if std::path::Path::new(&path).is_relative() => format!("{dir}/{path}"),
            _ => path,
        };
        std::fs::write(&path, to_json(&records)).expect("write --json file");
        println!("peers: wrote {path}");
    }
}

// ---------------------------------------------------------------------------
// throughput: N no-op tasks (each bumps a counter) from P submitters into a
// 2-worker pool, timed until the last has run.

/// Times `n` tasks submitted from `producers` threads through `submit`.
/// Each task is `move || latch.hit()` with a `&'static` latch.
fn time_tasks(
    n: usize,
    producers: usize,
    submit: impl Fn(&'static Latch, usize) + Send + Sync + 'static,
) -> f64 {
    let latch = Latch::leak(n);
    let submit = Arc::new(submit);
    let barrier = Arc::new(Barrier::new(producers + 1));
    let per = n / producers;
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let (submit, barrier) = (submit.clone(), barrier.clone());
            let count = if p + 1 == producers { n - per * (producers - 1) } else { per };
            thread::spawn(move || {
                barrier.wait();
                submit(latch, count);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    assert!(latch.wait(WAIT), "tasks did not all run: {} of {n}", latch.count());
    let elapsed = start.elapsed().as_secs_f64();
    for t in threads {
        t.join().unwrap();
    }
    n as f64 / elapsed
}

fn throughput(scenario: &'static str, producers: usize, quick: bool, reps: usize) -> Vec<Record> {
    let n = if quick { 200_000 } else { 1_000_000 };
    let mut s = Samples::new(scenario);
    for _ in 0..reps {
        // taskmanager-metrics: the same with metrics on (each run counted
        // and timed, into lib.rs's atomic recorder).
        for (system, metrics) in [("taskmanager", false), ("taskmanager-metrics", true)] {
            let manager = TaskManager::new();
            if metrics {
                taskmanager_benches::install_atomic_recorder();
                manager.enable_metrics();
            }
            manager.start_thread().unwrap();
            let module = Module::new(&manager, 2).unwrap();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    drop(module.add_task(move || latch.hit()).unwrap());
                }
            });
            s.add(system, "tasks_per_s", "tasks/s", v);
        }
        {
            let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn FnOnce() + Send>>();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let rx = rx.clone();
                    thread::spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                })
                .collect();
            let sender = tx.clone();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    sender.send(Box::new(move || latch.hit())).unwrap();
                }
            });
            drop(tx);
            for w in workers {
                w.join().unwrap();
            }
            s.add("crossbeam-floor", "tasks_per_s", "tasks/s", v);
        }
        {
            let pool = threadpool::ThreadPool::new(2);
            let p = pool.clone();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    p.execute(move || latch.hit());
                }
            });
            pool.join();
            s.add("threadpool", "tasks_per_s", "tasks/s", v);
        }
        {
            let pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
            let p = pool.clone();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    p.spawn(move || latch.hit());
                }
            });
            s.add("rayon", "tasks_per_s", "tasks/s", v);
        }
        {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
            let handle = rt.handle().clone();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    drop(handle.spawn(async move { latch.hit() }));
                }
            });
            rt.shutdown_timeout(Duration::from_secs(5));
            s.add("tokio", "tasks_per_s", "tasks/s", v);
        }
        {
            let pool = Arc::new(scheduled_thread_pool::ScheduledThreadPool::new(2));
            let p = pool.clone();
            let v = time_tasks(n, producers, move |latch, count| {
                for _ in 0..count {
                    drop(p.execute(move || latch.hit()));
                }
            });
            s.add("scheduled-thread-pool", "tasks_per_s", "tasks/s", v);
        }
    }
    s.records()
}

// ---------------------------------------------------------------------------
// lateness: 2,000 one-shot tasks due 1..200 ms ahead; how late each starts.

/// Start times in nanoseconds since `t0`, one slot per task.
struct Starts {
    t0: Instant,
    slots: Vec<AtomicU64>,
}

impl Starts {
    fn leak(n: usize, t0: Instant) -> &'static Starts {
        Box::leak(Box::new(Starts { t0, slots: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect() }))
    }

    fn record(&self, i: usize) {
        self.slots[i].store(self.t0.elapsed().as_nanos() as u64, Ordering::SeqCst);
    }

    /// Lateness in microseconds of each task, given when each was due.
    fn lateness_us(&self, due: &[Duration]) -> Vec<f64> {
        self.slots
            .iter()
            .zip(due)
            .filter(|(s, _)| s.load(Ordering::SeqCst) != u64::MAX)
            .map(|(s, d)| (s.load(Ordering::SeqCst) as f64 - d.as_nanos() as f64) / 1e3)
            .collect()
    }
}

fn lateness(_quick: bool, reps: usize) -> Vec<Record> {
    let n = 2_000;
    let mut rng = Lcg::new(7);
    let delays: Vec<Duration> = (0..n).map(|_| Duration::from_micros(rng.between(1_000, 200_000))).collect();
    let mut s = Samples::new("lateness");
    let report = |s: &mut Samples, system: &'static str, starts: &Starts, due: &[Duration]| {
        let mut late = starts.lateness_us(due);
        assert_eq!(late.len(), n, "{system} ran {} of {n} tasks", late.len());
        s.add(system, "p50_us", "us", percentile(&mut late, 50.0));
        s.add(system, "p99_us", "us", percentile(&mut late, 99.0));
        s.add(system, "max_us", "us", percentile(&mut late, 100.0));
    };
    let settle = Duration::from_millis(400);
    for _ in 0..reps {
        {
            let manager = TaskManager::new();
            manager.start_thread().unwrap();
            let module = Module::new(&manager, 2).unwrap();
            let t0 = Instant::now();
            let starts = Starts::leak(n, t0);
            let mut due = Vec::with_capacity(n);
            for (i, d) in delays.iter().enumerate() {
                due.push(t0.elapsed() + *d);
                drop(module.schedule_task(*d, move || starts.record(i)).unwrap());
            }
            thread::sleep(settle);
            report(&mut s, "taskmanager", starts, &due);
        }
        {
            // One thread, a heap, sleeping to the next deadline.
            let t0 = Instant::now();
            let starts = Starts::leak(n, t0);
            let due: Vec<Duration> = delays.clone();
            let mut heap: BinaryHeap<Reverse<(Duration, usize)>> =
                due.iter().enumerate().map(|(i, d)| Reverse((*d, i))).collect();
            let timer = thread::spawn(move || {
                while let Some(Reverse((d, i))) = heap.pop() {
                    let now = t0.elapsed();
                    if d > now {
                        thread::sleep(d - now);
                    }
                    starts.record(i);
                }
            });
            timer.join().unwrap();
            report(&mut s, "heap-sleep-floor", starts, &due);
        }
        {
            let pool = scheduled_thread_pool::ScheduledThreadPool::new(2);
            let t0 = Instant::now();
            let starts = Starts::leak(n, t0);
            let mut due = Vec::with_capacity(n);
            for (i, d) in delays.iter().enumerate() {
                due.push(t0.elapsed() + *d);
                drop(pool.execute_after(*d, move || starts.record(i)));
            }
            thread::sleep(settle);
            report(&mut s, "scheduled-thread-pool", starts, &due);
        }
        {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
            let t0 = Instant::now();
            let starts = Starts::leak(n, t0);
            let mut due = Vec::with_capacity(n);
            for (i, d) in delays.iter().enumerate() {
                let at = Instant::now() + *d;
                due.push(at - t0);
                drop(rt.spawn(async move {
                    tokio::time::sleep_until(at.into()).await;
                    starts.record(i);
                }));
            }
            thread::sleep(settle);
            rt.shutdown_timeout(Duration::from_secs(1));
            report(&mut s, "tokio", starts, &due);
        }
    }
    s.records()
}

// ---------------------------------------------------------------------------
// drift: a 10 ms recurring task; how far run 300 starts from its due time.

fn drift(quick: bool, reps: usize) -> Vec<Record> {
    let runs: u64 = if quick { 100 } else { 300 };
    let period = Duration::from_millis(10);
    let due_last = period * runs as u32;
    let mut s = Samples::new("drift");
    let drift_us = |start: Duration| (start.as_nanos() as f64 - due_last.as_nanos() as f64).abs() / 1e3;
    for _ in 0..reps {
        for (system, precise) in [("taskmanager", false), ("taskmanager-precise-ticks", true)] {
            let manager = TaskManager::builder().precise_ticks(precise).build().unwrap();
            manager.start_thread().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let t0 = Instant::now();
            let mut k = 0;
            let handle = manager
                .schedule_recurring(Recurrence::every(period), move || {
                    k += 1;
                    if k == runs {
                        let _ = tx.send(t0.elapsed());
                    }
                })
                .unwrap();
            let start = rx.recv_timeout(WAIT).unwrap();
            handle.cancel();
            s.add(system, "drift_us", "us", drift_us(start));
        }
        {
            let t0 = Instant::now();
            let mut last = Duration::ZERO;
            for k in 1..=runs as u32 {
                let deadline = period * k;
                let now = t0.elapsed();
                if deadline > now {
                    thread::sleep(deadline - now);
                }
                last = t0.elapsed();
            }
            s.add("deadline-sleep-floor", "drift_us", "us", drift_us(last));
        }
        {
            let pool = scheduled_thread_pool::ScheduledThreadPool::new(2);
            let (tx, rx) = std::sync::mpsc::channel();
            let t0 = Instant::now();
            let mut k = 0;
            let handle = pool.execute_at_fixed_rate(period, period, move || {
                k += 1;
                if k == runs {
                    let _ = tx.send(t0.elapsed());
                }
            });
            let start = rx.recv_timeout(WAIT).unwrap();
            handle.cancel();
            s.add("scheduled-thread-pool", "drift_us", "us", drift_us(start));
        }
        {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
            let t0 = Instant::now();
            let start = rt.block_on(async move {
                let mut interval = tokio::time::interval_at((t0 + period).into(), period);
                for _ in 0..runs {
                    interval.tick().await;
                }
                t0.elapsed()
            });
            s.add("tokio", "drift_us", "us", drift_us(start));
        }
    }
    s.records()
}

// ---------------------------------------------------------------------------
// timers-1m: a million pending scheduled tasks due 1..3600 s ahead, then all
// cancelled. Memory is the allocator's count of live bytes (what the
// structure holds, handles included), not resident pages, which the
// allocator keeps after frees.

struct TimerRun {
    insert_ns: f64,
    bytes_per_timer: f64,
    cancel_ns: f64,
    bytes_after_cancel: f64,
}

fn measure_timers<H>(n: usize, insert: impl FnMut(Duration) -> H, cancel: impl FnMut(&mut H)) -> TimerRun {
    let mut insert = insert;
    let mut cancel = cancel;
    let mut rng = Lcg::new(11);
    let delays: Vec<Duration> =
        (0..n).map(|_| Duration::from_millis(rng.between(1_000, 3_600_000))).collect();
    let mut handles: Vec<H> = Vec::with_capacity(n);
    count_allocations();
    let start = Instant::now();
    for d in &delays {
        handles.push(insert(*d));
    }
    let insert_ns = start.elapsed().as_nanos() as f64 / n as f64;
    // The handles' vector was allocated before counting began; each
    // handle's own size counts toward what a pending timer costs.
    let handle = std::mem::size_of::<H>() as f64;
    let held = live_bytes() as f64 / n as f64 + handle;
    let start = Instant::now();
    for h in &mut handles {
        cancel(h);
    }
    let cancel_ns = start.elapsed().as_nanos() as f64 / n as f64;
    drop(handles);
    // Freeing the handles' vector took away bytes counted before; add them
    // back so only what the system still holds remains.
    let after = live_bytes() as f64 / n as f64 + handle;
    stop_counting();
    TimerRun { insert_ns, bytes_per_timer: held, cancel_ns, bytes_after_cancel: after }
}

fn timers(quick: bool, reps: usize) -> Vec<Record> {
    let n = if quick { 200_000 } else { 1_000_000 };
    let mut s = Samples::new("timers-1m");
    let add = |s: &mut Samples, system: &'static str, r: TimerRun| {
        s.add(system, "insert_ns", "ns", r.insert_ns);
        s.add(system, "bytes_per_timer", "bytes", r.bytes_per_timer);
        s.add(system, "cancel_ns", "ns", r.cancel_ns);
        s.add(system, "bytes_after_cancel", "bytes", r.bytes_after_cancel);
    };
    let counter: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    for _ in 0..reps {
        {
            let manager = TaskManager::new();
            manager.start_thread().unwrap();
            let r = measure_timers(
                n,
                |d| manager.schedule_task(d, move || counter.fetch_add(1, Ordering::Relaxed)).unwrap(),
                |h| {
                    h.cancel();
                },
            );
            add(&mut s, "taskmanager", r);
        }
        {
            // A plain heap of (due, sequence, boxed closure). It has no way to
            // cancel one entry, so it reports insertion and memory only.
            let mut heap: BinaryHeap<Reverse<(Instant, u64, HeapJob)>> = BinaryHeap::new();
            let mut seq = 0u64;
            let t0 = Instant::now();
            let r = measure_timers(
                n,
                |d| {
                    seq += 1;
                    let job = HeapJob(Box::new(move || {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }));
                    heap.push(Reverse((t0 + d, seq, job)));
                },
                |_: &mut ()| {},
            );
            drop(heap);
            s.add("binaryheap-floor", "insert_ns", "ns", r.insert_ns);
            s.add("binaryheap-floor", "bytes_per_timer", "bytes", r.bytes_per_timer);
        }
        {
            let pool = scheduled_thread_pool::ScheduledThreadPool::new(2);
            let r = measure_timers(
                n,
                |d| {
                    pool.execute_after(d, move || {
                        counter.fetch_add(1, Ordering::Relaxed);
                    })
                },
                |h| h.cancel(),
            );
            add(&mut s, "scheduled-thread-pool", r);
        }
        {
            let mut queue = tokio_util::time::DelayQueue::new();
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let _guard = rt.enter();
            let r = {
                let q = &std::cell::RefCell::new(&mut queue);
                measure_timers(
                    n,
                    |d| {
                        q.borrow_mut().insert(
                            HeapJob(Box::new(move || {
                                counter.fetch_add(1, Ordering::Relaxed);
                            })),
                            d,
                        )
                    },
                    |key| {
                        q.borrow_mut().remove(key);
                    },
                )
            };
            add(&mut s, "tokio", r);
        }
    }
    s.records()
}

/// A boxed closure that orders equal (never compared: keys are unique).
/// Held, never run: the timers scenario only inserts and cancels.
struct HeapJob(#[allow(dead_code)] Box<dyn FnOnce() + Send>);

impl PartialEq for HeapJob {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for HeapJob {}
impl PartialOrd for HeapJob {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapJob {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

// ---------------------------------------------------------------------------
// fairness: module A (2 workers) holds 100,000 queued 10 us tasks; 100 no-ops
// go to module B, one per millisecond; how long each waits to start.

fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn fairness(quick: bool, reps: usize) -> Vec<Record> {
    let backlog = 100_000;
    let probes = 100;
    let mut s = Samples::new("fairness");
    let reps = if quick { reps.min(2) } else { reps };
    for _ in 0..reps {
        {
            let manager = TaskManager::new();
            manager.start_thread().unwrap();
            let a = Module::new(&manager, 2).unwrap();
            let b = Module::new(&manager, 1).unwrap();
            for _ in 0..backlog {
                drop(a.add_task(|| spin(Duration::from_micros(10))).unwrap());
            }
            let t0 = Instant::now();
            let starts = Starts::leak(probes, t0);
            let mut submitted = Vec::with_capacity(probes);
            for i in 0..probes {
                submitted.push(t0.elapsed());
                drop(b.add_task(move || starts.record(i)).unwrap());
                thread::sleep(Duration::from_millis(1));
            }
            assert!(a.queued() > 0, "module A's backlog must outlast the probes");
            thread::sleep(Duration::from_millis(50));
            let mut late = starts.lateness_us(&submitted);
            assert_eq!(late.len(), probes);
            s.add("taskmanager", "b_latency_p99_us", "us", percentile(&mut late, 99.0));
            a_cancel(&manager);
        }
        {
            let pool = threadpool::ThreadPool::new(2);
            for _ in 0..backlog {
                pool.execute(|| spin(Duration::from_micros(10)));
            }
            let t0 = Instant::now();
            let starts = Starts::leak(probes, t0);
            let mut submitted = Vec::with_capacity(probes);
            for i in 0..probes {
                submitted.push(t0.elapsed());
                pool.execute(move || starts.record(i));
                thread::sleep(Duration::from_millis(1));
            }
            pool.join();
            let mut late = starts.lateness_us(&submitted);
            assert_eq!(late.len(), probes);
            s.add("threadpool", "b_latency_p99_us", "us", percentile(&mut late, 99.0));
        }
    }
    s.records()
}

/// Drops module A's remaining backlog so the next repetition starts clean.
fn a_cancel(manager: &TaskManager) {
    manager.shutdown_now();
}

// ---------------------------------------------------------------------------
// recurring-cpu: what recurring tasks cost in CPU while they wait and run.
// Each measurement is a child process of this program (the same binary, run
// with `--cpu-child SYSTEM CASE SECONDS`), so no other system's threads
// share the process: it starts the system and its tasks, lets them run
// 300 ms, then reads getrusage(RUSAGE_SELF) (every thread, user + system)
// and the number of runs, waits SECONDS, and reads both again. Start-up
// and shutdown are outside the window. The value is CPU microseconds per
// run of a task (a no-op that counts itself).

/// The cases: (metric, tasks, interval). Each also reports the process's
/// sleeps (voluntary context switches) per run, `sleeps_per_run_...`: the
/// wake-ups behind the CPU time, counted, so free of the machine's noise.
const CPU_CASES: [(&str, &str, usize, Duration); 3] = [
    ("cpu_us_per_run_10ms", "sleeps_per_run_10ms", 1, Duration::from_millis(10)),
    ("cpu_us_per_run_1ms", "sleeps_per_run_1ms", 1, Duration::from_millis(1)),
    ("cpu_us_per_run_1000x100ms", "sleeps_per_run_1000x100ms", 1000, Duration::from_millis(100)),
];
/// `taskmanager-precise-ticks`: with `Builder::precise_ticks` (one more
/// wake-up per run, for punctuality; see `drift`).
const CPU_SYSTEMS: [&str; 5] =
    ["taskmanager", "taskmanager-precise-ticks", "deadline-sleep-floor", "scheduled-thread-pool", "tokio"];

fn recurring_cpu(quick: bool, reps: usize) -> Vec<Record> {
    let seconds = if quick { 2 } else { 4 };
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut s = Samples::new("recurring-cpu");
    for _ in 0..reps {
        for (metric, sleeps_metric, _, _) in CPU_CASES {
            for system in CPU_SYSTEMS {
                let out = std::process::Command::new(&exe)
                    .args(["--cpu-child", system, metric, &seconds.to_string()])
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .expect("start a --cpu-child process");
                let text = String::from_utf8_lossy(&out.stdout);
                let values: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
                let [cpu, sleeps] = values[..] else {
                    panic!("--cpu-child {system} {metric} printed {text:?} ({})", out.status)
                };
                s.add(system, metric, "us", cpu);
                s.add(system, sleeps_metric, "sleeps", sleeps);
            }
        }
    }
    s.records()
}

/// In a `--cpu-child` process: measures one system in one case, prints CPU
/// microseconds per run, and returns the exit code. None in the parent.
fn cpu_child() -> Option<i32> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--cpu-child")?;
    let (system, metric, seconds) = match &args[at + 1..] {
        [system, metric, seconds, ..] => (system.as_str(), metric.as_str(), seconds.parse::<u64>().ok()?),
        _ => return Some(2),
    };
    let &(_, _, tasks, interval) = CPU_CASES.iter().find(|c| c.0 == metric)?;
    let window = Duration::from_secs(seconds);
    let runs: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let tick = move || {
        runs.fetch_add(1, Ordering::Relaxed);
    };
    // Starts the system; `measure` then reads the window.
    let measure = || {
        thread::sleep(Duration::from_millis(300));
        let read = || {
            (
                taskmanager_benches::process_cpu(),
                taskmanager_benches::process_sleeps(),
                runs.load(Ordering::Relaxed),
            )
        };
        let (cpu0, sleeps0, runs0) = read();
        thread::sleep(window);
        let (cpu1, sleeps1, runs1) = read();
        let ran = (runs1 - runs0) as f64;
        assert!(ran > 0.0, "{system} ran nothing in {window:?}");
        // The measuring thread's own sleep counts 1 over the whole window.
        ((cpu1 - cpu0).as_secs_f64() * 1e6 / ran, (sleeps1 - sleeps0).saturating_sub(1) as f64 / ran)
    };
    let per_run = match system {
        "taskmanager" | "taskmanager-precise-ticks" => {
            let precise = system != "taskmanager";
            let manager = TaskManager::builder().precise_ticks(precise).build().unwrap();
            manager.start_thread().unwrap();
            let module = Module::new(&manager, 2).unwrap();
            let handles: Vec<_> = (0..tasks)
                .map(|_| module.schedule_recurring(Recurrence::every(interval), tick).unwrap())
                .collect();
            let v = measure();
            handles.iter().for_each(|h| {
                h.cancel();
            });
            v
        }
        "deadline-sleep-floor" => {
            // One thread, a heap of next due times, sleeping to the earliest.
            let stop: &'static std::sync::atomic::AtomicBool =
                Box::leak(Box::new(std::sync::atomic::AtomicBool::new(false)));
            let t0 = Instant::now();
            let mut heap: BinaryHeap<Reverse<(Duration, usize)>> =
                (0..tasks).map(|i| Reverse((t0.elapsed() + interval, i))).collect();
            let timer = thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(Reverse((due, i))) = heap.pop() else { break };
                    let now = t0.elapsed();
                    if due > now {
                        thread::sleep(due - now);
                    }
                    tick();
                    heap.push(Reverse((due + interval, i)));
                }
            });
            let v = measure();
            stop.store(true, Ordering::Relaxed);
            timer.join().unwrap();
            v
        }
        "scheduled-thread-pool" => {
            let pool = scheduled_thread_pool::ScheduledThreadPool::new(2);
            let handles: Vec<_> =
                (0..tasks).map(|_| pool.execute_at_fixed_rate(interval, interval, tick)).collect();
            let v = measure();
            handles.iter().for_each(|h| h.cancel());
            v
        }
        "tokio" => {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build().unwrap();
            for _ in 0..tasks {
                let start = Instant::now() + interval;
                rt.spawn(async move {
                    let mut every = tokio::time::interval_at(start.into(), interval);
                    loop {
                        every.tick().await;
                        tick();
                    }
                });
            }
            let v = measure();
            rt.shutdown_background();
            v
        }
        _ => return Some(2),
    };
    let (cpu, sleeps) = per_run;
    println!("{cpu} {sleeps}");
    Some(0)
}
