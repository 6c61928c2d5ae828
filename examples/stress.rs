//! Stress test: modules of different caps driven from several threads with a
//! seeded random mix of work, then a shutdown racing with submissions; every
//! accepted task must be accounted for.
//!
//! ```text
//! cargo run --release --example stress -- [--seconds N] [--seed S] [--soak]
//! ```
//!
//! The seed (printed at start) fixes each thread's choices, not the threads'
//! interleaving. The mix: immediate tasks, delayed tasks (0 to 50 ms),
//! recurring tasks (every 1 to 20 ms, some `run_now`, some overrunning their
//! interval, some panicking every third run, some cancelling themselves)
//! cancelled at a random moment, `run_now` tasks cancelled at once (racing
//! their first run), tasks that panic, tasks whose callback panics, tasks
//! that submit further tasks from inside (to any module, two levels deep), and
//! a thread cancelling random tasks while they may be starting. At the end
//! the manager shuts down, by `shutdown_timeout` or by `begin_shutdown` and
//! `await_termination` (the seed picks), while the submitters go on.
//!
//! Checked; the run exits non-zero on any failure:
//! - Every accepted one-shot task ends exactly once, through its handle, as
//!   ran (`Ok`), failed (`Panicked`, `CallbackPanicked`, as its body
//!   intended) or cancelled, and its body ran once (ran, failed) or never
//!   (cancelled). A handle that does not end within a generous bound after
//!   shutdown, or that disagrees with its body's count, or a task whose
//!   `cancel()` returned true but ran, counts as `lost`. So does a recurring
//!   task whose `wait` does not return, whose handle's `runs`/`failures`
//!   disagree with what its body counted, or that started a run after one of
//!   our `cancel()` calls returned true (beyond the run then in progress).
//! - `cap_violations`: no module ever has more than `max_workers` task bodies
//!   running at once (an in-flight count per module).
//! - `overlaps`: no recurring run starts while the previous run of the same
//!   task is still running (a running flag per task).
//! - `submitted == ran + failed + cancelled`, and the bodies that ran, counted
//!   globally, match the handles that say they ran.
//! - Submissions refused with `SubmitError::ShutDown` are not counted; any
//!   other refusal fails the run.
//! - A hang: a run still going `HANG_BOUND` (90 s) after its planned end is
//!   stopped by a watchdog, which says what the main thread was waiting for.
//! - `--soak` (default 300 s): recurring churn plus one-shot load; a memory
//!   curve on stderr every few seconds. After the warm-up (20 % of the run, at
//!   least 10 s) the resident set may not grow more than 10 % above the first
//!   sample after the warm-up, and the thread count may not exceed the sum of
//!   the caps plus this program's own threads and a little slack.
//!
//! On Linux the soak runs itself again with glibc's per-thread malloc caches
//! off (`GLIBC_TUNABLES=glibc.malloc.tcache_count=0`, unless the variable
//! already sets them). Each thread keeps up to 7 freed chunks per size class,
//! in the cache of the thread that frees them, whichever thread allocated
//! them; here submitters allocate tasks and workers and the settler free
//! them, so the caches fill up slowly, over minutes. Measured over 300 s with
//! them on, the RSS grew from 4.5 to 5.5 MB while the live heap (counted by a
//! wrapping allocator) stayed near 250 kB; with them off, both stay flat.
//! Bounded caching, not a leak, but enough to break the 10 % bound, and to
//! hide a real leak under it.
//!
//! The last line on stdout is
//! `stress: submitted=N ran=N failed=N cancelled=N lost=N cap_violations=N overlaps=N threads_max=N rss_start_kb=N rss_end_kb=N`.
//! A recurring task counts once in `submitted` and, having ended by a cancel
//! (its own, the canceller's or shutdown's), once in `cancelled`; its runs
//! are reported on stderr. `threads_max` and the RSS figures come from
//! `/proc/self/status` (0 where there is none).

use std::error::Error;
use std::process::{Command, ExitCode};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use taskmanager::{
    JoinTimeoutError, Module, Recurrence, RecurringHandle, SubmitError, Task, TaskError, TaskHandle,
    TaskManager,
};

/// The modules' caps: a single worker, small ones and a wide one.
const CAPS: [usize; 4] = [1, 2, 3, 8];
const SUBMITTERS: usize = 4;
/// Threads of this program: main, submitters, canceller, settler, monitor,
/// watchdog.
const OWN_THREADS: u64 = SUBMITTERS as u64 + 5;
/// Threads above the bound the soak allows: the timer, and workers that have
/// given up their place but not yet exited while their successors start.
const SLACK_THREADS: u64 = 4;
/// Short, so that workers retire during lulls and start again: the spawn and
/// retire hand-off is exercised, not only the steady state.
const KEEP_ALIVE: Duration = Duration::from_millis(50);
/// Generous bounds: these prove that things end, not how fast.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
const SETTLE_BOUND: Duration = Duration::from_secs(30);
/// How long after its planned end the run may go on before the watchdog
/// calls it a hang: more than the bounds above together.
const HANG_BOUND: Duration = Duration::from_secs(90);
/// Nested submissions go at most this many levels below a submitter's task.
const MAX_DEPTH: u32 = 2;
/// How often progress (and the soak's memory curve) is printed.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often the thread count is sampled for `threads_max`.
const THREAD_SAMPLE: Duration = Duration::from_millis(10);
/// Details of at most this many lost tasks are printed.
const LOST_DETAILS: u64 = 20;

// ---------------------------------------------------------------------------
// Command line.

struct Args {
    seconds: f64,
    seed: u64,
    soak: bool,
}

const USAGE: &str = "usage: stress [--seconds N] [--seed S] [--soak]";

fn parse_args() -> Result<Args, String> {
    let (mut seconds, mut seed, mut soak) = (None, None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--soak" => soak = true,
            "--seconds" => seconds = Some(value::<f64>(&mut args, "--seconds")?),
            "--seed" => seed = Some(value::<u64>(&mut args, "--seed")?),
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let seconds = seconds.unwrap_or(if soak { 300.0 } else { 20.0 });
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("--seconds must be a positive number; {USAGE}"));
    }
    Ok(Args { seconds, seed: seed.unwrap_or_else(clock_seed), soak })
}

fn value<T: FromStr>(args: &mut impl Iterator<Item = String>, name: &str) -> Result<T, String> {
    args.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number; {USAGE}"))
}

fn clock_seed() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------
// Randomness.

/// xorshift64*: small and seedable; each thread forks its own.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64, so that nearby seeds give unrelated streams and the
        // state is never 0 (which xorshift would keep forever).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(lo + self.below(hi - lo + 1))
    }

    fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        self.micros(lo.as_micros() as u64, hi.as_micros() as u64)
    }

    fn fork(&mut self) -> Rng {
        Rng::new(self.next())
    }
}

// ---------------------------------------------------------------------------
// What is counted.

/// Every counter of the run. Each accepted submission is settled exactly
/// once into `ran`, `failed`, `cancelled` or `lost`.
#[derive(Default)]
struct Tally {
    submitted: AtomicU64,
    ran: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    lost: AtomicU64,
    cap_violations: AtomicU64,
    overlaps: AtomicU64,
    /// Refused with `SubmitError::ShutDown`.
    refused: AtomicU64,
    /// Refused with any other error: a failure.
    unexpected: AtomicU64,
    /// Accepted submissions made from inside a task.
    nested: AtomicU64,
    /// One-shot `cancel()` calls that returned true.
    cancels_won: AtomicU64,
    /// One-shot bodies that started, all tasks together.
    one_shot_bodies: AtomicU64,
    recurring: AtomicU64,
    /// Recurring bodies that started, and the runs and failures their
    /// handles report.
    recurring_bodies: AtomicU64,
    recurring_runs: AtomicU64,
    recurring_failures: AtomicU64,
    /// Worker threads that ran a task body: above the sum of the caps when
    /// workers retired and others started.
    workers_seen: AtomicU64,
}

impl Tally {
    fn settled(&self) -> u64 {
        get(&self.ran) + get(&self.failed) + get(&self.cancelled) + get(&self.lost)
    }

    fn outstanding(&self) -> u64 {
        get(&self.submitted).saturating_sub(self.settled())
    }

    fn lose(&self, n: u64, why: &str) {
        let before = self.lost.fetch_add(n, SeqCst);
        if before < LOST_DETAILS {
            eprintln!("stress: LOST: {why}");
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, SeqCst);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(SeqCst)
}

/// Locks, ignoring poison: nothing panics while holding these locks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// Whether this thread has run a task body yet.
    static WORKER_SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A module and what its task bodies showed of it.
struct Lane {
    module: Module,
    cap: usize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    bodies: AtomicU64,
}

impl Lane {
    /// Counts a body in; the guard counts it out, also when it panics.
    fn enter<'a>(&'a self, tally: &Tally) -> Leave<'a> {
        let now = self.in_flight.fetch_add(1, SeqCst) + 1;
        if now > self.cap {
            bump(&tally.cap_violations);
        }
        self.peak.fetch_max(now, SeqCst);
        bump(&self.bodies);
        if !WORKER_SEEN.replace(true) {
            bump(&tally.workers_seen);
        }
        Leave(&self.in_flight)
    }
}

struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// What a one-shot task's body does, hence how its handle must end if it
/// runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Plain,
    Panics,
    CallbackPanics,
    /// Submits one to three further tasks.
    Nests,
}

/// What a one-shot task's body records, to check against its handle.
#[derive(Debug)]
struct Probe {
    body: Body,
    runs: AtomicU32,
    cancel_won: AtomicBool,
}

/// An accepted one-shot task until it is settled.
struct Tracked {
    handle: TaskHandle<()>,
    probe: Arc<Probe>,
}

/// What a recurring task's body records.
#[derive(Debug)]
struct RecProbe {
    starts: AtomicU64,
    panics: AtomicU64,
    running: AtomicBool,
    /// `starts` when a `cancel()` of ours returned true; `u64::MAX` before.
    starts_at_cancel: AtomicU64,
}

impl RecProbe {
    fn new() -> RecProbe {
        RecProbe {
            starts: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            running: AtomicBool::new(false),
            starts_at_cancel: AtomicU64::new(u64::MAX),
        }
    }

    /// Marks a run started, counting an overlap if the previous one has not
    /// ended; the guard marks it ended, also when it panics.
    fn begin<'a>(&'a self, tally: &Tally) -> Ended<'a> {
        if self.running.swap(true, SeqCst) {
            bump(&tally.overlaps);
        }
        Ended(&self.running)
    }
}

struct Ended<'a>(&'a AtomicBool);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

/// An accepted recurring task until it is settled.
#[derive(Clone)]
struct Repeating {
    handle: RecurringHandle,
    probe: Arc<RecProbe>,
}

/// Cancels, noting how many runs had started if this call stopped it: at
/// most the one in progress may still start after that.
fn cancel_recurring(handle: &RecurringHandle, probe: &RecProbe) {
    if handle.cancel() {
        probe.starts_at_cancel.store(probe.starts.load(SeqCst), SeqCst);
    }
}

// ---------------------------------------------------------------------------
// Settling: each accepted submission checked against its probe and counted.

#[derive(Debug, PartialEq, Eq)]
enum End {
    Ran,
    Failed,
    Cancelled,
}

/// Every accepted submission not yet settled.
#[derive(Default)]
struct Ledger {
    one_shots: Mutex<Vec<Arc<Tracked>>>,
    recurring: Mutex<Vec<Repeating>>,
}

impl Ledger {
    /// Settles what has ended; the rest waits for the next sweep. An entry
    /// the canceller still holds waits too.
    fn sweep(&self, tally: &Tally) {
        let (ended, pending) = std::mem::take(&mut *lock(&self.one_shots))
            .into_iter()
            .partition::<Vec<_>, _>(|t| t.handle.is_done());
        lock(&self.one_shots).extend(pending);
        for tracked in ended {
            match Arc::try_unwrap(tracked) {
                Ok(tracked) => settle_one_shot(tracked, Duration::ZERO, tally),
                Err(shared) => lock(&self.one_shots).push(shared),
            }
        }
        let (ended, pending) = std::mem::take(&mut *lock(&self.recurring))
            .into_iter()
            .partition::<Vec<_>, _>(|r| r.handle.is_done());
        lock(&self.recurring).extend(pending);
        for repeating in ended {
            settle_recurring(repeating, Duration::ZERO, tally);
        }
    }

    /// After shutdown: settles everything, waiting until `deadline` for
    /// handles to end; those that do not are lost.
    fn settle_all(&self, tally: &Tally, deadline: Instant) {
        let left = || deadline.saturating_duration_since(Instant::now());
        for tracked in std::mem::take(&mut *lock(&self.one_shots)) {
            match Arc::try_unwrap(tracked) {
                Ok(tracked) => settle_one_shot(tracked, left(), tally),
                Err(_) => tally.lose(1, "a one-shot handle is still shared after the run"),
            }
        }
        for repeating in std::mem::take(&mut *lock(&self.recurring)) {
            settle_recurring(repeating, left(), tally);
        }
    }
}

fn settle_one_shot(tracked: Tracked, timeout: Duration, tally: &Tally) {
    let Tracked { handle, probe } = tracked;
    let outcome = handle.join_timeout(timeout);
    match judge(&outcome, &probe) {
        Ok(End::Ran) => bump(&tally.ran),
        Ok(End::Failed) => bump(&tally.failed),
        Ok(End::Cancelled) => bump(&tally.cancelled),
        Err(why) => tally.lose(1, &why),
    }
}

/// How a one-shot task ended, if its handle and its body agree.
fn judge(outcome: &Result<(), JoinTimeoutError<()>>, probe: &Probe) -> Result<End, String> {
    let (end, as_intended) = match outcome {
        Ok(()) => (End::Ran, matches!(probe.body, Body::Plain | Body::Nests)),
        Err(JoinTimeoutError::Failed(TaskError::Panicked { .. })) => {
            (End::Failed, probe.body == Body::Panics)
        }
        Err(JoinTimeoutError::Failed(TaskError::CallbackPanicked { .. })) => {
            (End::Failed, probe.body == Body::CallbackPanics)
        }
        Err(JoinTimeoutError::Failed(TaskError::Cancelled)) => (End::Cancelled, true),
        Err(JoinTimeoutError::Failed(e)) => return Err(format!("{probe:?} ended with unknown error {e}")),
        Err(JoinTimeoutError::Timeout(_)) => return Err(format!("{probe:?}: its handle did not end")),
    };
    let runs = probe.runs.load(SeqCst);
    let expected_runs = u32::from(end != End::Cancelled);
    let cancel_won = probe.cancel_won.load(SeqCst);
    if runs != expected_runs || !as_intended || (cancel_won && end != End::Cancelled) {
        return Err(format!("{probe:?}: handle says {outcome:?}"));
    }
    Ok(end)
}

fn settle_recurring(repeating: Repeating, timeout: Duration, tally: &Tally) {
    let Repeating { handle, probe } = repeating;
    if !handle.wait_timeout(timeout) {
        return tally.lose(1, &format!("{handle:?}: wait did not return after cancel and shutdown"));
    }
    let (starts, panics) = (probe.starts.load(SeqCst), probe.panics.load(SeqCst));
    if handle.runs() != starts || handle.failures() != panics || !handle.is_cancelled() {
        let why = format!("{handle:?}: its body started {starts} runs and panicked {panics} times");
        return tally.lose(1, &why);
    }
    let at_cancel = probe.starts_at_cancel.load(SeqCst);
    if at_cancel != u64::MAX && starts > at_cancel + 1 {
        let why = format!("{handle:?}: {} runs started after cancel() returned true", starts - at_cancel);
        return tally.lose(1, &why);
    }
    tally.recurring_runs.fetch_add(starts, SeqCst);
    tally.recurring_failures.fetch_add(panics, SeqCst);
    bump(&tally.cancelled);
}

/// Checks that need every task settled: the bodies that ran, counted as they
/// started, match the handles; a task run after its handle was settled
/// (or refused, or cancelled) would show here.
fn check_bodies(tally: &Tally) {
    if get(&tally.lost) > 0 {
        // Lost tasks may or may not have run: the sums cannot agree.
        return eprintln!("stress: body counts not compared, since tasks were lost");
    }
    let (bodies, ended_run) = (get(&tally.one_shot_bodies), get(&tally.ran) + get(&tally.failed));
    if bodies != ended_run {
        let why = format!("{bodies} one-shot bodies ran, but {ended_run} handles say ran or failed");
        tally.lose(bodies.abs_diff(ended_run), &why);
    }
    let (bodies, runs) = (get(&tally.recurring_bodies), get(&tally.recurring_runs));
    if bodies != runs {
        let why = format!("{bodies} recurring bodies ran, but their handles report {runs} runs");
        tally.lose(bodies.abs_diff(runs), &why);
    }
}

// ---------------------------------------------------------------------------
// The workload.

/// The workload's proportions and pace.
struct Mix {
    /// Percent of submissions that are recurring tasks.
    recurring_pct: u64,
    /// Percent that are `run_now` recurring tasks cancelled at once.
    run_now_pct: u64,
    /// Longest life of a recurring task before the canceller stops it.
    recurring_life: Duration,
    /// Longest pause of a submitter between two submissions.
    gap: Duration,
    /// Submitters wait while this many submissions are unsettled.
    outstanding_max: u64,
    /// Busy stretches last between these...
    busy: (Duration, Duration),
    /// ...and are followed by lulls in which no submitter submits. The
    /// longer lulls outlast every recurring task, delay and queue plus the
    /// keep-alive, so that workers retire, and start again after.
    lull: (Duration, Duration),
}

impl Mix {
    fn burst() -> Mix {
        Mix {
            recurring_pct: 4,
            run_now_pct: 2,
            recurring_life: Duration::from_millis(300),
            gap: Duration::from_micros(200),
            outstanding_max: 3_000,
            busy: (Duration::from_millis(500), Duration::from_millis(2_000)),
            lull: (Duration::from_millis(100), Duration::from_millis(800)),
        }
    }

    /// Fewer submissions, more of them recurring, living longer: minutes of
    /// churn without a flood.
    fn soak() -> Mix {
        Mix {
            recurring_pct: 10,
            run_now_pct: 2,
            recurring_life: Duration::from_secs(3),
            gap: Duration::from_millis(2),
            outstanding_max: 3_000,
            busy: (Duration::from_secs(5), Duration::from_secs(20)),
            lull: (Duration::from_millis(3_300), Duration::from_millis(4_500)),
        }
    }
}

/// What the submitters, tasks, canceller and settler share.
struct Ctx {
    lanes: Vec<Lane>,
    tally: Tally,
    ledger: Ledger,
    /// One-shot tasks the canceller may cancel.
    cancel_pool: Mutex<Vec<Arc<Tracked>>>,
    /// Recurring tasks the canceller cancels when their time comes.
    cancel_at: Mutex<Vec<(Instant, Repeating)>>,
    mix: Mix,
}

/// A submitter's reason to stop: the manager refused with `ShutDown`.
struct ShutDown;

/// Counts a submission's answer: the handle if accepted.
fn admit<H>(tally: &Tally, result: Result<H, SubmitError>) -> Result<Option<H>, ShutDown> {
    match result {
        Ok(handle) => {
            bump(&tally.submitted);
            Ok(Some(handle))
        }
        Err(SubmitError::ShutDown) => {
            bump(&tally.refused);
            Err(ShutDown)
        }
        Err(e) => {
            bump(&tally.unexpected);
            eprintln!("stress: UNEXPECTED submit error: {e}");
            Ok(None)
        }
    }
}

fn submit_loop(ctx: &Arc<Ctx>, mut rng: Rng, lull: &AtomicBool, stop: &AtomicBool) {
    loop {
        pace(ctx, &mut rng, lull, stop);
        let pick = rng.below(100);
        let answer = if pick < ctx.mix.recurring_pct {
            submit_recurring(ctx, &mut rng, false)
        } else if pick < ctx.mix.recurring_pct + ctx.mix.run_now_pct {
            submit_recurring(ctx, &mut rng, true)
        } else {
            submit_one_shot(ctx, &mut rng, 0)
        };
        // Submitters stop only when refused, so they race the shutdown.
        if answer.is_err() {
            return;
        }
    }
}

/// Waits out lulls and backpressure (unless stopping), then a random gap.
fn pace(ctx: &Ctx, rng: &mut Rng, lull: &AtomicBool, stop: &AtomicBool) {
    while (lull.load(SeqCst) || ctx.tally.outstanding() > ctx.mix.outstanding_max) && !stop.load(SeqCst) {
        thread::sleep(Duration::from_millis(1));
    }
    let gap = ctx.mix.gap.as_micros() as u64;
    pause(rng.micros(0, gap));
}

fn pause(d: Duration) {
    if !d.is_zero() {
        thread::sleep(d);
    }
}

/// How long a body works: mostly not at all, sometimes long enough to fill
/// its module, so that the caps are reached.
fn work_time(rng: &mut Rng) -> Duration {
    match rng.below(100) {
        0..=59 => Duration::ZERO,
        60..=94 => rng.micros(1, 500),
        _ => rng.micros(1_000, 3_000),
    }
}

fn pick_body(rng: &mut Rng, depth: u32) -> Body {
    match rng.below(100) {
        0..=5 => Body::Panics,
        6..=11 => Body::CallbackPanics,
        12..=19 if depth < MAX_DEPTH => Body::Nests,
        _ => Body::Plain,
    }
}

/// Submits one one-shot task, added or scheduled, to a random module.
fn submit_one_shot(ctx: &Arc<Ctx>, rng: &mut Rng, depth: u32) -> Result<(), ShutDown> {
    let lane = rng.below(ctx.lanes.len() as u64) as usize;
    let probe = Arc::new(Probe {
        body: pick_body(rng, depth),
        runs: AtomicU32::new(0),
        cancel_won: AtomicBool::new(false),
    });
    let task = one_shot_task(ctx, lane, Arc::clone(&probe), depth, rng);
    let module = &ctx.lanes[lane].module;
    let result = match rng.below(10) {
        0..=4 => module.add_task(task),
        5 => module.schedule_task(Duration::ZERO, task),
        _ => module.schedule_task(rng.micros(1, 50_000), task),
    };
    let Some(handle) = admit(&ctx.tally, result)? else { return Ok(()) };
    if depth > 0 {
        bump(&ctx.tally.nested);
    }
    let tracked = Arc::new(Tracked { handle, probe });
    if rng.percent(25) {
        lock(&ctx.cancel_pool).push(Arc::clone(&tracked));
    }
    lock(&ctx.ledger.one_shots).push(tracked);
    Ok(())
}

fn one_shot_task(
    ctx: &Arc<Ctx>,
    lane: usize,
    probe: Arc<Probe>,
    depth: u32,
    rng: &mut Rng,
) -> Task<impl FnOnce() + Send + 'static, ()> {
    let (ctx, body, work, seed) = (Arc::clone(ctx), probe.body, work_time(rng), rng.next());
    let task = Task::new(move || {
        probe.runs.fetch_add(1, SeqCst);
        bump(&ctx.tally.one_shot_bodies);
        let _leave = ctx.lanes[lane].enter(&ctx.tally);
        pause(work);
        match body {
            Body::Panics => panic!("stress: a task panics on purpose"),
            Body::Nests => nest(&ctx, depth + 1, Rng::new(seed)),
            Body::Plain | Body::CallbackPanics => {}
        }
    });
    if body == Body::CallbackPanics {
        task.callback(|_: &()| panic!("stress: a callback panics on purpose"))
    } else {
        task
    }
}

/// From inside a task: submits one to three tasks, tracked like any other.
fn nest(ctx: &Arc<Ctx>, depth: u32, mut rng: Rng) {
    for _ in 0..1 + rng.below(3) {
        if submit_one_shot(ctx, &mut rng, depth).is_err() {
            return;
        }
    }
}

/// Submits a recurring task to a random module. With `cancel_now`, a
/// `run_now` task cancelled at once, racing its first run; otherwise the
/// canceller stops it at a random moment.
fn submit_recurring(ctx: &Arc<Ctx>, rng: &mut Rng, cancel_now: bool) -> Result<(), ShutDown> {
    let lane = rng.below(ctx.lanes.len() as u64) as usize;
    let interval = rng.micros(1_000, 20_000);
    let every = Recurrence::every(interval).run_now(cancel_now || rng.percent(30));
    let probe = Arc::new(RecProbe::new());
    let me = Arc::new(OnceLock::new());
    let task = recurring_task(ctx, lane, Arc::clone(&probe), Arc::clone(&me), interval, rng);
    let result = ctx.lanes[lane].module.schedule_recurring(every, task);
    let Some(handle) = admit(&ctx.tally, result)? else { return Ok(()) };
    bump(&ctx.tally.recurring);
    let _ = me.set(handle.clone());
    let repeating = Repeating { handle, probe };
    if cancel_now {
        pause(rng.micros(0, 1_000));
        cancel_recurring(&repeating.handle, &repeating.probe);
    } else {
        let life = rng.micros(0, ctx.mix.recurring_life.as_micros() as u64);
        lock(&ctx.cancel_at).push((Instant::now() + life, repeating.clone()));
    }
    lock(&ctx.ledger.recurring).push(repeating);
    Ok(())
}

fn recurring_task(
    ctx: &Arc<Ctx>,
    lane: usize,
    probe: Arc<RecProbe>,
    me: Arc<OnceLock<RecurringHandle>>,
    interval: Duration,
    rng: &mut Rng,
) -> impl FnMut() + Send + 'static {
    let ctx = Arc::clone(ctx);
    // Some runs outlast their interval: the next one must still wait.
    let work = if rng.percent(10) { interval + rng.micros(0, 2_000) } else { rng.micros(0, 300) };
    let cancel_itself_at = rng.percent(20).then(|| 1 + rng.below(5));
    let panic_every = if rng.percent(15) { 3 } else { u64::MAX };
    move || {
        let run = probe.starts.fetch_add(1, SeqCst) + 1;
        bump(&ctx.tally.recurring_bodies);
        let _ended = probe.begin(&ctx.tally);
        let _leave = ctx.lanes[lane].enter(&ctx.tally);
        pause(work);
        // `>=`: the handle may not be set yet at the first runs.
        if cancel_itself_at.is_some_and(|at| run >= at) {
            if let Some(handle) = me.get() {
                cancel_recurring(handle, &probe);
            }
        }
        if run % panic_every == 0 {
            probe.panics.fetch_add(1, SeqCst);
            panic!("stress: a recurring run panics on purpose");
        }
    }
}

// ---------------------------------------------------------------------------
// The canceller and the settler.

fn cancel_loop(ctx: &Ctx, mut rng: Rng, stop: &AtomicBool) {
    while !stop.load(SeqCst) {
        cancel_some(ctx, &mut rng);
        cancel_recurring_due(ctx);
        pause(rng.micros(50, 2_000));
    }
    // Let go of the handles, so that the ledger can settle them.
    drop(std::mem::take(&mut *lock(&ctx.cancel_pool)));
    drop(std::mem::take(&mut *lock(&ctx.cancel_at)));
}

/// Cancels about half of the one-shot tasks submitted since the last call;
/// they are at most a few milliseconds old, so many are starting right now.
fn cancel_some(ctx: &Ctx, rng: &mut Rng) {
    for tracked in std::mem::take(&mut *lock(&ctx.cancel_pool)) {
        if rng.percent(50) && tracked.handle.cancel() {
            tracked.probe.cancel_won.store(true, SeqCst);
            bump(&ctx.tally.cancels_won);
        }
    }
}

fn cancel_recurring_due(ctx: &Ctx) {
    let now = Instant::now();
    let due: Vec<_> = {
        let mut list = lock(&ctx.cancel_at);
        let (due, later) = std::mem::take(&mut *list).into_iter().partition(|(at, _)| *at <= now);
        *list = later;
        due
    };
    for (_, repeating) in due {
        cancel_recurring(&repeating.handle, &repeating.probe);
    }
}

fn settle_loop(ctx: &Ctx, stop: &AtomicBool) {
    while !stop.load(SeqCst) {
        ctx.ledger.sweep(&ctx.tally);
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// The process: thread count and resident set.

/// A number field of `/proc/self/status` (`Threads`, or `VmRSS` in kB); 0
/// where there is none.
fn proc_status(field: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One point of the memory curve.
struct Sample {
    secs: f64,
    rss_kb: u64,
    threads: u64,
}

/// What the monitor saw: the peak thread count and the periodic samples.
struct Watch {
    threads_max: u64,
    samples: Vec<Sample>,
}

/// Samples the thread count every few milliseconds for the peak, and every
/// `REPORT_EVERY` prints a progress line (in a soak, a point of the memory
/// curve).
fn monitor(ctx: &Ctx, started: Instant, soak: bool, stop: &AtomicBool) -> Watch {
    let mut watch = Watch { threads_max: 0, samples: Vec::new() };
    let mut next_report = started + REPORT_EVERY;
    while !stop.load(SeqCst) {
        let threads = proc_status("Threads");
        watch.threads_max = watch.threads_max.max(threads);
        if Instant::now() >= next_report {
            next_report += REPORT_EVERY;
            let sample =
                Sample { secs: started.elapsed().as_secs_f64(), rss_kb: proc_status("VmRSS"), threads };
            report_progress(ctx, &sample, soak);
            watch.samples.push(sample);
        }
        thread::sleep(THREAD_SAMPLE);
    }
    watch
}

fn report_progress(ctx: &Ctx, s: &Sample, soak: bool) {
    let what = if soak { "soak" } else { "progress" };
    let t = &ctx.tally;
    eprintln!(
        "{what}: t={:.0}s rss_kb={} threads={} submitted={} outstanding={} recurring_bodies={}",
        s.secs,
        s.rss_kb,
        s.threads,
        get(&t.submitted),
        t.outstanding(),
        get(&t.recurring_bodies),
    );
}

/// The soak's bounds: after the warm-up, the resident set stays within 10 %
/// above its first sample there; the thread count stays bounded throughout.
/// Returns the failures.
fn check_soak(watch: &Watch, seconds: f64) -> Vec<String> {
    let mut failures = Vec::new();
    let bound = CAPS.iter().sum::<usize>() as u64 + OWN_THREADS + SLACK_THREADS;
    if watch.threads_max > bound {
        failures.push(format!("threads peaked at {}, above the bound {bound}", watch.threads_max));
    }
    let warm_up = (seconds * 0.2).max(10.0);
    let after: Vec<&Sample> = watch.samples.iter().filter(|s| s.secs >= warm_up).collect();
    let (Some(first), Some(last)) = (watch.samples.first(), watch.samples.last()) else {
        eprintln!("soak: no samples; run longer to judge memory");
        return failures;
    };
    let Some(baseline) = after.first() else {
        eprintln!("soak: no sample after the {warm_up:.0} s warm-up; run longer to judge memory");
        return failures;
    };
    let min = after.iter().map(|s| s.rss_kb).min().unwrap_or(0);
    let max = after.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let limit = baseline.rss_kb + baseline.rss_kb / 10;
    eprintln!(
        "soak: rss_kb first={} last={}; after the {warm_up:.0} s warm-up: baseline={} min={min} max={max} \
         (limit {limit}); threads_max={} (bound {bound})",
        first.rss_kb, last.rss_kb, baseline.rss_kb, watch.threads_max,
    );
    if max > limit {
        failures.push(format!("resident set grew to {max} kB, more than 10 % above {} kB", baseline.rss_kb));
    }
    failures
}

// ---------------------------------------------------------------------------
// The run.

/// What the main thread is doing, for the watchdog's report.
static STAGE: Mutex<&str> = Mutex::new("starting");

fn stage(now: &'static str) {
    *lock(&STAGE) = now;
}

/// Ends the process with a failure if the run is still going `HANG_BOUND`
/// after `until`, so that a hang is reported instead of waited on forever.
/// Dropping the returned sender disarms it.
fn watchdog(ctx: &Arc<Ctx>, until: Instant) -> std::io::Result<mpsc::Sender<()>> {
    let (disarm, disarmed) = mpsc::channel::<()>();
    let ctx = Arc::clone(ctx);
    spawn("stress-watchdog", move || {
        let wait = (until + HANG_BOUND).saturating_duration_since(Instant::now());
        if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(wait) {
            eprintln!("stress: FAILED: HANG: {HANG_BOUND:?} past the planned end, still {}", lock(&STAGE));
            eprintln!("stress: outstanding={} queued={:?}", ctx.tally.outstanding(), queued(&ctx));
            println!("{}", final_line(&ctx.tally, 0, 0, 0));
            std::process::exit(1);
        }
    })?;
    Ok(disarm)
}

/// Stays quiet for the deliberate panics (their message starts with
/// `stress:`); any other panic is printed as usual.
fn quiet_deliberate_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if !message.is_some_and(|m| m.starts_with("stress:")) {
            default(info);
        }
    }));
}

/// The background threads of a run and the flags that steer them.
struct Crew {
    lull: Arc<AtomicBool>,
    stop_submitters: Arc<AtomicBool>,
    stop_helpers: Arc<AtomicBool>,
    submitters: Vec<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    monitor: JoinHandle<Watch>,
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<JoinHandle<T>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

impl Crew {
    fn start(ctx: &Arc<Ctx>, rng: &mut Rng, started: Instant, soak: bool) -> std::io::Result<Crew> {
        let lull = Arc::new(AtomicBool::new(false));
        let stop_submitters = Arc::new(AtomicBool::new(false));
        let stop_helpers = Arc::new(AtomicBool::new(false));
        let mut submitters = Vec::new();
        for i in 0..SUBMITTERS {
            let (ctx, rng, lull, stop) = (Arc::clone(ctx), rng.fork(), lull.clone(), stop_submitters.clone());
            submitters
                .push(spawn(&format!("stress-submit-{i}"), move || submit_loop(&ctx, rng, &lull, &stop))?);
        }
        let (c, r, stop) = (Arc::clone(ctx), rng.fork(), stop_helpers.clone());
        let canceller = spawn("stress-cancel", move || cancel_loop(&c, r, &stop))?;
        let (c, stop) = (Arc::clone(ctx), stop_helpers.clone());
        let settler = spawn("stress-settle", move || settle_loop(&c, &stop))?;
        let (c, stop) = (Arc::clone(ctx), stop_helpers.clone());
        let monitor = spawn("stress-monitor", move || monitor(&c, started, soak, &stop))?;
        Ok(Crew {
            lull,
            stop_submitters,
            stop_helpers,
            submitters,
            helpers: vec![canceller, settler],
            monitor,
        })
    }

    /// Until `until`: busy stretches and lulls as `mix` says.
    fn drive(&self, mix: &Mix, rng: &mut Rng, until: Instant) {
        loop {
            sleep_until(until.min(Instant::now() + rng.between(mix.busy)));
            let lull = rng.between(mix.lull);
            // The run ends with a full busy stretch, so that shutdown races
            // the submitters at full speed.
            if Instant::now() + lull + mix.busy.0 >= until {
                return sleep_until(until);
            }
            self.lull.store(true, SeqCst);
            pause(lull);
            self.lull.store(false, SeqCst);
        }
    }

    /// After shutdown: the submitters have been refused (or are told to
    /// stop); the helpers stop and let go of their handles.
    fn finish(self) -> Watch {
        self.stop_submitters.store(true, SeqCst);
        for t in self.submitters {
            let _ = t.join();
        }
        self.stop_helpers.store(true, SeqCst);
        for t in self.helpers {
            let _ = t.join();
        }
        self.monitor.join().unwrap_or(Watch { threads_max: 0, samples: Vec::new() })
    }
}

fn sleep_until(t: Instant) {
    pause(t.saturating_duration_since(Instant::now()));
}

fn new_ctx(manager: &TaskManager, mix: Mix) -> Result<Ctx, Box<dyn Error>> {
    let mut lanes = Vec::new();
    for cap in CAPS {
        let module = Module::new(manager, cap)?;
        let (in_flight, peak, bodies) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicU64::new(0));
        lanes.push(Lane { module, cap, in_flight, peak, bodies });
    }
    Ok(Ctx {
        lanes,
        tally: Tally::default(),
        ledger: Ledger::default(),
        cancel_pool: Mutex::new(Vec::new()),
        cancel_at: Mutex::new(Vec::new()),
        mix,
    })
}

fn queued(ctx: &Ctx) -> Vec<usize> {
    ctx.lanes.iter().map(|lane| lane.module.queued()).collect()
}

/// Shuts down while the submitters go on, one of the two bounded ways;
/// returns the failures.
fn shut_down(manager: &TaskManager, ctx: &Ctx, rng: &mut Rng) -> Vec<String> {
    let queued = queued(ctx);
    let began = Instant::now();
    let (how, result) = if rng.percent(50) {
        ("shutdown_timeout", manager.shutdown_timeout(SHUTDOWN_BOUND).map_err(|e| e.to_string()))
    } else {
        manager.begin_shutdown();
        let ended = manager.await_termination(SHUTDOWN_BOUND);
        ("begin_shutdown + await_termination", if ended { Ok(()) } else { Err("still running".to_owned()) })
    };
    let took = began.elapsed().as_secs_f64() * 1e3;
    eprintln!("stress: {how} took {took:.1} ms, with {queued:?} tasks queued in the modules");
    match result {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("{how} did not end within {SHUTDOWN_BOUND:?}: {e}")],
    }
}

fn report_details(ctx: &Ctx, elapsed: Duration) {
    let t = &ctx.tally;
    for lane in &ctx.lanes {
        eprintln!(
            "stress: module cap={} peak_in_flight={} bodies={}",
            lane.cap,
            lane.peak.load(SeqCst),
            get(&lane.bodies)
        );
    }
    eprintln!(
        "stress: recurring={} runs={} run_failures={} nested={} cancels_won={} refused_at_shutdown={} \
         unexpected_refusals={} workers_seen={} elapsed={:.1}s",
        get(&t.recurring),
        get(&t.recurring_runs),
        get(&t.recurring_failures),
        get(&t.nested),
        get(&t.cancels_won),
        get(&t.refused),
        get(&t.unexpected),
        get(&t.workers_seen),
        elapsed.as_secs_f64(),
    );
}

fn final_line(t: &Tally, threads_max: u64, rss_start_kb: u64, rss_end_kb: u64) -> String {
    format!(
        "stress: submitted={} ran={} failed={} cancelled={} lost={} cap_violations={} overlaps={} \
         threads_max={threads_max} rss_start_kb={rss_start_kb} rss_end_kb={rss_end_kb}",
        get(&t.submitted),
        get(&t.ran),
        get(&t.failed),
        get(&t.cancelled),
        get(&t.lost),
        get(&t.cap_violations),
        get(&t.overlaps),
    )
}

/// The failures the counters show.
fn tally_failures(t: &Tally) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, counter) in
        [("lost", &t.lost), ("cap_violations", &t.cap_violations), ("overlaps", &t.overlaps)]
    {
        if get(counter) != 0 {
            failures.push(format!("{name}={}", get(counter)));
        }
    }
    let ended = get(&t.ran) + get(&t.failed) + get(&t.cancelled);
    if get(&t.submitted) != ended {
        failures.push(format!("submitted={} but ran+failed+cancelled={ended}", get(&t.submitted)));
    }
    if get(&t.unexpected) != 0 {
        failures.push(format!("{} submissions refused other than with ShutDown", get(&t.unexpected)));
    }
    failures
}

fn run(args: &Args) -> Result<Vec<String>, Box<dyn Error>> {
    let rss_start_kb = proc_status("VmRSS");
    let started = Instant::now();
    let mut rng = Rng::new(args.seed);
    let manager = TaskManager::builder().keep_alive(KEEP_ALIVE).build()?;
    manager.start_thread()?;
    let mix = if args.soak { Mix::soak() } else { Mix::burst() };
    let ctx = Arc::new(new_ctx(&manager, mix)?);
    let until = started + Duration::from_secs_f64(args.seconds);
    let disarm = watchdog(&ctx, until)?;
    let crew = Crew::start(&ctx, &mut rng, started, args.soak)?;
    stage("running");
    crew.drive(&ctx.mix, &mut rng, until);
    stage("shutting down");
    let mut failures = shut_down(&manager, &ctx, &mut rng);
    stage("joining the submitters and helpers");
    let watch = crew.finish();
    stage("settling the handles");
    ctx.ledger.settle_all(&ctx.tally, Instant::now() + SETTLE_BOUND);
    drop(disarm);
    check_bodies(&ctx.tally);
    let rss_end_kb = proc_status("VmRSS");
    report_details(&ctx, started.elapsed());
    if args.soak {
        failures.extend(check_soak(&watch, args.seconds));
    }
    failures.extend(tally_failures(&ctx.tally));
    println!("{}", final_line(&ctx.tally, watch.threads_max, rss_start_kb, rss_end_kb));
    Ok(failures)
}

/// Turns glibc's per-thread malloc caches off (see the top of this file).
const TCACHE_OFF: &str = "glibc.malloc.tcache_count=0";

/// On Linux, unless `GLIBC_TUNABLES` already sets the per-thread caches: runs
/// this program again with them off, and returns its exit code.
fn rerun_without_tcache() -> Option<ExitCode> {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if !cfg!(target_os = "linux") || tunables.contains("glibc.malloc.tcache_count") {
        return None;
    }
    let tunables =
        if tunables.is_empty() { TCACHE_OFF.to_owned() } else { format!("{tunables}:{TCACHE_OFF}") };
    eprintln!("soak: running again with GLIBC_TUNABLES={tunables} (see the top of examples/stress.rs)");
    let program = std::env::current_exe().ok()?;
    match Command::new(program).args(std::env::args_os().skip(1)).env("GLIBC_TUNABLES", tunables).status() {
        Ok(status) => Some(ExitCode::from(status.code().map_or(1, |c| c as u8))),
        Err(e) => {
            eprintln!("soak: could not run again ({e}); running with the caches on");
            None
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if args.soak {
        if let Some(code) = rerun_without_tcache() {
            return code;
        }
    }
    quiet_deliberate_panics();
    let mode = if args.soak { "soak" } else { "stress" };
    println!("stress: seed={} seconds={} mode={mode}", args.seed, args.seconds);
    match run(&args) {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(failures) => {
            for f in failures {
                eprintln!("stress: FAILED: {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("stress: could not run: {e}");
            ExitCode::from(2)
        }
    }
}
