//! Time limits: the running task's [`Deadline`], and the watchdog that acts
//! on it. One watchdog thread per process sleeps until the earliest
//! deadline of the runs it watches ([`watch`]):
//!
//! - **At the deadline** it calls the run's interrupt, if it has one (the
//!   Python package raises `TimeLimitExceeded` in the task's thread); a
//!   Rust task is told only through its [`Deadline`], which it checks
//!   (cooperatively, as a tokio task checks a `CancellationToken`).
//! - **[`STUCK_AFTER`] later**, a run still not returned is given up: it is
//!   in code that cannot be interrupted (a blocking call). Its worker's
//!   place goes to a new thread, so the module's capacity holds; a
//!   one-shot task ends now, failed with
//!   [`TaskError::TimeLimitExceeded`] (`abandoned: true`), and in the Redis
//!   mode it is acknowledged as failed, so its lease ends. What the call
//!   returns later is dropped, and its thread then exits.
//!
//! Whatever the watchdog did, a run that ends past its deadline fails with
//! [`TaskError::TimeLimitExceeded`]: its value is dropped.
//!
//! The layers above tell this one how the run on a thread is given up,
//! through two thread-locals: the worker's [`Place`] (set once per worker
//! thread) and the running cell's [`Run`] (set per run, only for methods
//! that can be watched: see [`Method::escapes`](crate::Method::escapes)).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::err::TaskError;

/// How long after its deadline a run that has not returned is given up.
pub const STUCK_AFTER: Duration = Duration::from_secs(1);

/// The running task's time limit: see [`Deadline::current`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    limit: Duration,
}

impl Deadline {
    /// The deadline of the task running on this thread, if it has a time
    /// limit ([`Task::time_limit`](crate::Task::time_limit)). A long task
    /// checks it between steps and returns early once it is
    /// [`expired`](Self::expired): past it, the run fails anyway with
    /// [`TaskError::TimeLimitExceeded`], and [`STUCK_AFTER`] later it is
    /// given up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskmanager::{Deadline, Module, Task, TaskError, TaskManager};
    ///
    /// let manager = TaskManager::new();
    /// let module = Module::new(&manager, 1).unwrap();
    /// manager.start_thread().unwrap();
    /// let handle = module.add_task(Task::new(|| {
    ///     let deadline = Deadline::current().expect("a time limit");
    ///     while !deadline.expired() {
    ///         std::thread::sleep(Duration::from_millis(5)); // a step of work
    ///     }
    /// }).time_limit(Duration::from_millis(50))).unwrap();
    /// assert!(matches!(handle.join(), Err(TaskError::TimeLimitExceeded { abandoned: false, .. })));
    /// manager.shutdown();
    /// ```
    pub fn current() -> Option<Deadline> {
        DEADLINE.with(Cell::get)
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.at
    }

    /// The time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// When the deadline falls.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// The run's time limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

/// How the worker running on a thread gives its place up (`pool`).
pub(crate) trait Place: Send + Sync {
    /// Gives the worker's place in its module to a new thread: this one
    /// exits once its run returns.
    fn give_up(&self);
    /// Counts a run given up and ended (failed) by the watchdog.
    fn count_abandoned(&self);
}

/// How the run on a thread is ended while it still runs (`job`).
pub(crate) trait Run: Send + Sync {
    /// Ends the run with `error`, `count`ing it first; false if it had
    /// ended already (it returned meanwhile).
    fn abandon(&self, error: TaskError, count: &dyn Fn()) -> bool;
}

std::thread_local! {
    static DEADLINE: Cell<Option<Deadline>> = const { Cell::new(None) };
    static PLACE: RefCell<Option<Arc<dyn Place>>> = const { RefCell::new(None) };
    static RUN: RefCell<Option<Arc<dyn Run>>> = const { RefCell::new(None) };
}

/// Makes `place` this thread's worker place, or (None) clears it.
pub(crate) fn set_place(place: Option<Arc<dyn Place>>) {
    PLACE.with(|p| *p.borrow_mut() = place);
}

/// Makes `run` the run on this thread, or (None) clears it; returns the
/// one before (a nested run's caller's).
pub(crate) fn set_run(run: Option<Arc<dyn Run>>) -> Option<Arc<dyn Run>> {
    RUN.with(|r| std::mem::replace(&mut *r.borrow_mut(), run))
}

/// The worker's place and the run on a thread, as the watchdog takes them
/// when a watch begins.
pub(crate) struct Captured {
    pub(crate) place: Option<Arc<dyn Place>>,
    pub(crate) run: Option<Arc<dyn Run>>,
}

/// This thread's [`Captured`].
pub(crate) fn captured() -> Captured {
    Captured { place: PLACE.with(|p| p.borrow().clone()), run: RUN.with(|r| r.borrow().clone()) }
}

/// How a watched run ended ([`Watch::end`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Before its deadline.
    InTime,
    /// Past its deadline: it fails.
    Expired,
    /// Past its deadline and given up by the watchdog ([`STUCK_AFTER`]):
    /// its outcome was settled without it, and is dropped.
    Abandoned,
}

/// A run being watched: see [`watch`].
#[doc(hidden)]
#[derive(Debug)]
#[must_use = "a watch must be ended"]
pub struct Watch {
    token: u64,
    outer: Option<Deadline>,
}

/// Watches the run on this thread for `limit` from now: see the module
/// docs. `what` names it in logs; `interrupt` is called (on the watchdog's
/// thread) at the deadline if the run has not ended. Used by
/// [`Task::time_limit`](crate::Task::time_limit) and by the Python
/// package, whose `time_limit=` raises in the task's thread.
#[doc(hidden)]
pub fn watch(limit: Duration, what: String, interrupt: Option<Box<dyn FnOnce() + Send>>) -> Watch {
    let at = Instant::now().checked_add(limit).unwrap_or_else(far_future);
    let deadline = Deadline { at, limit };
    let outer = DEADLINE.with(|d| d.replace(Some(deadline)));
    let Captured { place, run } = captured();
    let entry = Entry { at, limit, what, interrupt, place, run, fired: false, given_up: false };
    let mut guard = watches();
    let state = guard.get_or_insert_with(Watches::default);
    state.next += 1;
    let token = state.next;
    state.calls.insert(token, entry);
    let start = !state.running;
    state.running = true;
    drop(guard);
    CHANGED.notify_one();
    if start {
        let spawned = std::thread::Builder::new().name("taskmanager-limits".into()).spawn(watchdog);
        if let Err(e) = spawned {
            log::error!("taskmanager: could not start the time-limit watchdog: {e}; limits are not enforced");
            if let Some(state) = watches().as_mut() {
                state.running = false;
            }
        }
    }
    Watch { token, outer }
}

impl Watch {
    /// Stops watching; how the run ended.
    pub fn end(self) -> Ended {
        DEADLINE.with(|d| d.set(self.outer));
        let entry = watches().as_mut().and_then(|state| state.calls.remove(&self.token));
        match entry {
            Some(Entry { given_up: true, .. }) => Ended::Abandoned,
            Some(Entry { fired: true, .. }) => Ended::Expired,
            // Not fired yet: the clock says whether it ended in time.
            Some(Entry { at, .. }) if Instant::now() >= at => Ended::Expired,
            _ => Ended::InTime,
        }
    }
}

/// The error a run of limit `limit` that ended `ended` fails with, if any.
pub(crate) fn watch_error(limit: Duration, ended: Ended) -> Option<TaskError> {
    (ended != Ended::InTime)
        .then_some(TaskError::TimeLimitExceeded { limit, abandoned: ended == Ended::Abandoned })
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

struct Entry {
    at: Instant,
    limit: Duration,
    what: String,
    interrupt: Option<Box<dyn FnOnce() + Send>>,
    place: Option<Arc<dyn Place>>,
    run: Option<Arc<dyn Run>>,
    fired: bool,
    given_up: bool,
}

impl Entry {
    /// When the watchdog next acts on it, if it will.
    fn next(&self) -> Option<Instant> {
        match (self.fired, self.given_up) {
            (false, _) => Some(self.at),
            (true, false) => Some(self.at + STUCK_AFTER),
            (true, true) => None,
        }
    }
}

#[derive(Default)]
struct Watches {
    calls: HashMap<u64, Entry>,
    next: u64,
    /// Whether the watchdog thread runs (none in a forked child).
    running: bool,
}

static WATCHES: Mutex<Option<Watches>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();

fn watches() -> MutexGuard<'static, Option<Watches>> {
    WATCHES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the watchdog does next, outside its lock: it calls user code.
enum Act {
    Interrupt(Box<dyn FnOnce() + Send>),
    GiveUp { what: String, limit: Duration, place: Option<Arc<dyn Place>>, run: Option<Arc<dyn Run>> },
}

/// The watchdog thread: sleeps until the earliest deadline, then acts.
fn watchdog() {
    crate::threads::block_process_signals();
    let mut guard = watches();
    loop {
        let Some(state) = guard.as_mut() else { return };
        if !state.running {
            return;
        }
        let now = Instant::now();
        match state.calls.values().filter_map(Entry::next).min() {
            None => guard = CHANGED.wait(guard).unwrap_or_else(PoisonError::into_inner),
            Some(due) if due > now => {
                guard = CHANGED.wait_timeout(guard, due - now).unwrap_or_else(PoisonError::into_inner).0;
            }
            Some(_) => {
                let acts = due_acts(state, now);
                drop(guard);
                for act in acts {
                    act.run();
                }
                guard = watches();
            }
        }
    }
}

/// Marks what is due at `now` as done, and returns it to do.
fn due_acts(state: &mut Watches, now: Instant) -> Vec<Act> {
    let mut acts = Vec::new();
    for entry in state.calls.values_mut() {
        if !entry.fired && entry.at <= now {
            entry.fired = true;
            acts.extend(entry.interrupt.take().map(Act::Interrupt));
        } else if entry.fired && !entry.given_up && entry.at + STUCK_AFTER <= now {
            entry.given_up = true;
            acts.push(Act::GiveUp {
                what: std::mem::take(&mut entry.what),
                limit: entry.limit,
                place: entry.place.take(),
                run: entry.run.take(),
            });
        }
    }
    acts
}

impl Act {
    fn run(self) {
        match self {
            Act::Interrupt(interrupt) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(interrupt)).is_err() {
                    log::error!("taskmanager: a time limit's interrupt panicked");
                }
            }
            Act::GiveUp { what, limit, place, run } => {
                log::warn!(
                    "taskmanager: {what} has not returned {STUCK_AFTER:?} after its time limit: it is in code \
                     that cannot be interrupted (a blocking call); its worker's place goes to a new thread, \
                     the run ends as failed, and what it returns later is dropped"
                );
                if let Some(place) = &place {
                    place.give_up();
                }
                if let Some(run) = run {
                    let count = || {
                        if let Some(place) = &place {
                            place.count_abandoned();
                        }
                    };
                    run.abandon(TaskError::TimeLimitExceeded { limit, abandoned: true }, &count);
                }
            }
        }
    }
}

/// In a forked child: the watchdog thread is the parent's, and so are the
/// runs it watched.
pub(crate) fn after_fork_in_child() {
    if let Ok(mut guard) = WATCHES.try_lock() {
        *guard = None;
    }
}
