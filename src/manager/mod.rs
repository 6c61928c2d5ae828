//! A manager's shared state (`Shared`): its phases, the timer thread, the
//! registry of threads and modules, shutdown, fork. The public face is in
//! `api.rs` ([`TaskManager`]) and its settings in `builder.rs` ([`Builder`]).
//!
//! See `PROTOCOL.md` for who owns what under which lock.

use std::cell::Cell;
use std::io;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::batch::BatchRunner;
use crate::clock::{Clock, TimeListener};
use crate::err::{ShutdownTimedOut, StartError, SubmitError};
use crate::event::{Event, Events};
use crate::job::{Control, Core, Job, JobRef};
use crate::lifecycle::Phase;
use crate::module::ModuleShared;
use crate::report::{RunningTask, Stats, TaskInfo, TaskState};
use crate::schedule::Nanos;
use crate::sync::is_finished;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{fence, lock, thread_local, AtomicU64, AtomicU8, AtomicUsize, Condvar, Mutex, MutexGuard};
use crate::threads::{block_process_signals, set_timer_slack};
use crate::timer::{Slotted, TimerHeap};

mod api;
mod builder;

pub use api::TaskManager;
pub use builder::Builder;

/// A pending scheduled task in the timer heap.
struct TimerEntry {
    job: JobRef,
    module: Arc<ModuleShared>,
}

impl Slotted for TimerEntry {
    fn set_slot(&self, slot: u32) {
        self.job.set_slot(slot);
    }
}

impl TimerEntry {
    /// Cancels the job, counting it on its module (and telling the event)
    /// if this cancelled it.
    fn cancel(self) -> bool {
        let TimerEntry { job, module } = self;
        module.cancel(job)
    }
}

struct TimerState {
    heap: TimerHeap<TimerEntry>,
    /// Set at shutdown: the heap takes nothing more.
    closed: bool,
    thread_started: bool,
    /// Modules left with queued work and no worker because a worker thread
    /// could not be started, and when to try again (see
    /// `Shared::retry_spawn`).
    /// In real time, whatever the manager's clock: threads free up in it.
    retries: Vec<(Instant, Arc<ModuleShared>)>,
}

/// Every entry enters and leaves the heap through these, which keep each
/// module's count of pending timers.
impl TimerState {
    fn push(&mut self, due: Nanos, entry: TimerEntry) -> bool {
        entry.module.timers.fetch_add(1, Relaxed);
        self.heap.push(due, entry)
    }

    fn left(entry: &TimerEntry) {
        entry.module.timers.fetch_sub(1, Relaxed);
    }

    fn pop_due(&mut self, now: Nanos) -> Option<(Nanos, TimerEntry)> {
        let popped = self.heap.pop_due(now);
        if let Some((_, entry)) = &popped {
            Self::left(entry);
        }
        popped
    }

    fn remove(&mut self, slot: u32, is_it: impl FnOnce(&TimerEntry) -> bool) -> Option<TimerEntry> {
        let removed = self.heap.remove(slot, is_it);
        if let Some(entry) = &removed {
            Self::left(entry);
        }
        removed
    }

    fn drain(&mut self) -> Vec<TimerEntry> {
        let entries: Vec<TimerEntry> = self.heap.drain().collect();
        entries.iter().for_each(Self::left);
        entries
    }
}

struct Threads {
    live: usize,
    handles: Vec<JoinHandle<()>>,
    /// Set when shutdown is over: no thread may start.
    closed: bool,
}

/// See `Shared::handoff_lead`: long enough to cover waking a worker (20 to
/// 60 us here, with a tail), short enough that a worker holding an early job
/// delays little else.
const HANDOFF_LEAD: Nanos = 200_000;
/// See `Shared::wait_until`. The spin is CPU spent per timer, bought for
/// precision: measured lateness p99 here was 76-111 us with 15 us of spin,
/// 76-79 us with 30, 62-76 us with 40 (the peers: 92-107 us).
const SPIN_BEFORE_DUE: Duration = Duration::from_micros(30);

thread_local! {
    /// The manager (by address) whose thread this is, if any. (Not a
    /// `const` initializer: loom's `thread_local!` does not take one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static MANAGER_THREAD: Cell<usize> = Cell::new(0);
}

/// State shared by a manager's handles, modules, timer entries and threads.
pub(crate) struct Shared {
    phase: AtomicU8,
    /// When shutdown began, by the manager's clock (`Nanos::MAX` before):
    /// a job handed over early whose due time is later is cancelled, as
    /// shutdown cancels every task not yet due.
    shutdown_at: AtomicU64,
    /// Counts wake-ups of idle modules; see `ModuleShared::announce_wake`.
    pub(crate) wakes: AtomicU64,
    /// The module (by address) whose wake-up was counted last.
    pub(crate) woken_module: AtomicUsize,
    clock: Clock,
    pub(crate) keep_alive: Duration,
    pub(crate) timer_slack: Duration,
    pub(crate) batch_runner: Option<Arc<dyn BatchRunner>>,
    pub(crate) events: Events,
    timer: Mutex<TimerState>,
    timer_wake: Condvar,
    threads: Mutex<Threads>,
    thread_exited: Condvar,
    /// Modules that may hold queued work. Cleared when shutdown ends, which
    /// breaks the manager <-> module reference cycle.
    modules: Mutex<Vec<Arc<ModuleShared>>>,
    /// The stats of modules that left the registry (dropped, or all of
    /// them at the end of shutdown), so the manager's sum keeps them.
    retired: Mutex<Stats>,
    /// Modules made so far, for their default names.
    module_count: AtomicUsize,
    /// Recurring tasks, for listings (a recurring task is in the timer, a
    /// queue or a worker's hands in turn); pruned as they end.
    recurring: Mutex<Vec<Listed>>,
    /// `FORKS` and the process id when the manager started (or was built):
    /// see [`after_fork_in_child`].
    generation: std::sync::atomic::AtomicU32,
    pid: std::sync::atomic::AtomicU32,
    /// Set when a bounded shutdown gave up on tasks still running: dropping
    /// the manager then leaves them to finish in the background.
    gave_up: std::sync::atomic::AtomicBool,
    spawn_handler: Option<SpawnHandler>,
}

/// A recurring task in the listing registry, with its module's name.
type Listed = (Weak<dyn Job>, Arc<str>);

/// Starts a thread: given its name and body, runs the body on a new thread
/// (see [`Builder::spawn_handler`]).
pub(crate) type SpawnHandler = Arc<dyn Fn(&str, Box<dyn FnOnce() + Send>) -> io::Result<()> + Send + Sync>;

/// Forks noted by [`after_fork_in_child`] in this process's history: a
/// manager started under an older count belongs to an ancestor process.
/// std's atomic, also under loom: written only in a child right after fork.
static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Tells the crate that this process is a child just forked from one that may
/// have started managers. Their threads exist only in the parent, so from now
/// on every manager started before the fork refuses submissions with
/// [`SubmitError::Forked`] and [`StartError::Forked`], and its shutdown and
/// drop return at once without waiting for threads that are not here (or
/// touching locks that a parent's thread may have held at the fork). A
/// manager that was created but never started keeps working in the child,
/// and a new one works as usual.
///
/// Call it in the child right after `fork()`, before anything else touches a
/// manager; the Python package does it through `os.register_at_fork`. In
/// the child, leave inherited managers alone but for dropping them: their
/// listings and stats take locks a parent's thread may have held at the
/// fork. Even
/// without it, dropping an inherited manager in a child returns at once (it
/// checks the process id), but only this call makes submissions fail
/// instead of queuing work nothing will run.
pub fn after_fork_in_child() {
    FORKS.fetch_add(1, SeqCst);
}

impl Shared {
    /// How long before its due time the timer hands a job to its module,
    /// so that waking a worker overlaps the wait instead of following it;
    /// the worker then starts the job at its due time (`ModuleShared::run`).
    /// None with a manual clock (time moves only when told) or a batch
    /// runner (a worker waiting inside a batch would hold the runner's lock,
    /// the GIL for Python, while it waits).
    fn handoff_lead(&self) -> Nanos {
        match (&self.clock, &self.batch_runner) {
            (Clock::Monotonic(_), None) => HANDOFF_LEAD,
            _ => 0,
        }
    }

    /// Whether shutdown began before `due`: a task due then is not run.
    pub(crate) fn shut_down_before(&self, due: Nanos) -> bool {
        self.shutdown_at.load(SeqCst) < due
    }

    /// Waits until the clock reads `at`: sleeps most of the way, then spins
    /// the last stretch, since a sleep can overshoot by the timer slack and
    /// a wake-up's latency.
    pub(crate) fn wait_until(&self, at: Nanos) {
        if cfg!(loom) {
            return;
        }
        let now = self.now();
        let Some(wait) = self.clock.real_wait(at.saturating_sub(now)) else { return };
        if wait > SPIN_BEFORE_DUE {
            std::thread::sleep(wait - SPIN_BEFORE_DUE);
        }
        while self.now() < at {
            std::hint::spin_loop();
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(SeqCst))
    }

    /// Whether this process is a fork of the one that started the manager,
    /// as [`after_fork_in_child`] told: its threads are not here. Cheap
    /// enough for every submission (two loads of words nobody writes).
    pub(crate) fn inherited(&self) -> bool {
        FORKS.load(Relaxed) != self.generation.load(Relaxed) && self.phase() != Phase::Created
    }

    /// [`inherited`](Self::inherited), or the process id changed since the
    /// start (a fork nobody told of): for calls that would wait for threads.
    fn inherited_or_forked(&self) -> bool {
        self.inherited() || (std::process::id() != self.pid.load(Relaxed) && self.phase() != Phase::Created)
    }

    /// Monotonic time since this manager was created.
    pub(crate) fn now(&self) -> Nanos {
        self.clock.now()
    }

    pub(crate) fn register(&self, module: &Arc<ModuleShared>) {
        if !self.phase().accepts() {
            return;
        }
        let mut modules = lock(&self.modules);
        let (forgotten, kept): (Vec<_>, Vec<_>) = modules.drain(..).partition(|m| m.is_forgotten());
        *modules = kept;
        modules.push(Arc::clone(module));
        drop(modules);
        self.retire_stats(forgotten);
    }

    pub(crate) fn next_module_name(&self) -> Arc<str> {
        Arc::from(format!("module-{}", self.module_count.fetch_add(1, Relaxed) + 1))
    }

    /// Remembers a recurring task for listings.
    pub(crate) fn register_recurring(&self, job: Arc<dyn Job>, module: &Arc<str>) {
        let mut recurring = lock(&self.recurring);
        if recurring.len() >= 64 && recurring.len().is_power_of_two() {
            recurring.retain(|(job, _)| job.upgrade().is_some_and(|job| !job.core().is_finished()));
        }
        recurring.push((Arc::downgrade(&job), Arc::clone(module)));
    }

    /// See [`TaskManager::tasks`].
    fn tasks(&self) -> Vec<TaskInfo> {
        let now = self.now();
        let until = |due: Nanos| Duration::from_nanos(due.saturating_sub(now));
        let mut tasks: Vec<TaskInfo> = {
            let timer = lock(&self.timer);
            timer
                .heap
                .iter()
                .filter_map(|(due, entry)| {
                    let job = entry.job.job()?;
                    if job.recurring_info().is_some() {
                        return None; // listed below, with its schedule
                    }
                    let core = job.core();
                    Some(TaskInfo {
                        id: core.id(),
                        name: core.name(),
                        module: entry.module.name.to_string(),
                        state: TaskState::Scheduled,
                        next_due: Some(until(due)),
                        interval: None,
                        runs: 0,
                        failures: 0,
                    })
                })
                .collect()
        };
        let mut recurring = lock(&self.recurring);
        recurring.retain(|(job, _)| job.upgrade().is_some_and(|job| !job.core().is_finished()));
        for (job, module) in recurring.iter() {
            let Some(job) = job.upgrade() else { continue };
            let (Some(info), core) = (job.recurring_info(), job.core()) else { continue };
            let state = if core.is_running() {
                TaskState::Running
            } else if info.paused {
                TaskState::Paused
            } else {
                TaskState::Scheduled
            };
            tasks.push(TaskInfo {
                id: core.id(),
                name: core.name(),
                module: module.to_string(),
                state,
                next_due: Some(until(info.next_due)),
                interval: Some(Duration::from_nanos(info.interval)),
                runs: info.runs,
                failures: info.failures,
            });
        }
        drop(recurring);
        tasks.sort_by_key(|t| (t.next_due, t.id));
        tasks
    }

    /// Adds the final stats of modules leaving the registry to `retired`.
    fn retire_stats(&self, modules: Vec<Arc<ModuleShared>>) {
        if modules.is_empty() {
            return;
        }
        let mut retired = lock(&self.retired);
        for module in &modules {
            *retired += module.stats();
        }
        drop(retired);
        // Dropped outside the lock: the last reference to a module may
        // drop queued jobs, which cancels them.
        drop(modules);
    }

    fn modules(&self) -> Vec<Arc<ModuleShared>> {
        lock(&self.modules).clone()
    }

    /// Puts a new scheduled job in the timer.
    pub(crate) fn schedule(
        &self,
        module: &Arc<ModuleShared>,
        job: Arc<dyn Job>,
        due: Nanos,
    ) -> Result<(), SubmitError> {
        if self.inherited() {
            return Err(SubmitError::Forked);
        }
        let mut timer = lock(&self.timer);
        if timer.closed || !self.phase().accepts() {
            return Err(SubmitError::ShutDown);
        }
        let entry = TimerEntry { job: JobRef::new(job), module: Arc::clone(module) };
        if timer.push(due, entry) {
            self.timer_wake.notify_one();
        }
        Ok(())
    }

    /// Puts a recurring job back after a run. Returns false, leaving the job
    /// to retire itself, if it was cancelled meanwhile, has no next due time,
    /// or the manager is shutting down.
    pub(crate) fn reschedule(
        &self,
        module: &Arc<ModuleShared>,
        job: Arc<dyn Job>,
        due: Option<Nanos>,
    ) -> bool {
        let Some(due) = due else { return false };
        let mut timer = lock(&self.timer);
        if timer.closed || !job.core().requeue() {
            return false;
        }
        let entry = TimerEntry { job: JobRef::new(job), module: Arc::clone(module) };
        if timer.push(due, entry) {
            self.timer_wake.notify_one();
        }
        true
    }

    /// Moves a recurring job waiting in the timer to `new_due(its due)`;
    /// does nothing if it is not in the timer (running, or queued).
    pub(crate) fn move_pending(&self, control: &dyn Control, new_due: impl FnOnce(Nanos) -> Nanos) {
        let core = control.core();
        let mut timer = lock(&self.timer);
        let Some(entry) = timer.remove(core.slot(), |e| e.job.core().is_some_and(|c| std::ptr::eq(c, core)))
        else {
            return;
        };
        let due = new_due(control.due());
        control.set_due(due);
        if timer.push(due, entry) {
            self.timer_wake.notify_one();
        }
    }

    /// Takes a cancelled job out of the timer at once, if it is there.
    pub(crate) fn remove_from_timer(&self, core: &Core) {
        let removed = {
            let mut timer = lock(&self.timer);
            let slot = core.slot();
            timer.remove(slot, |e| e.job.core().is_some_and(|c| std::ptr::eq(c, core)))
        };
        // The job was cancelled already (by its handle); the entry is
        // counted here, and dropped outside the lock: it releases a module
        // reference.
        if let Some(entry) = removed {
            entry.module.count_cancelled();
            if let Some(job) = entry.job.job() {
                self.events.emit(log::Level::Debug, || Event::Cancelled { task: job.core().task_ref() });
            }
        }
    }

    /// Starts a thread counted in this manager's registry. Refused once
    /// shutdown is over.
    pub(crate) fn spawn_thread(
        self: &Arc<Self>,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let mut threads = lock(&self.threads);
        if threads.closed {
            return Err(io::Error::other("task manager has shut down"));
        }
        let me = Arc::clone(self);
        let run = move || {
            block_process_signals();
            MANAGER_THREAD.with(|t| t.set(Arc::as_ptr(&me) as usize));
            let _exit = ThreadExit(me);
            body();
        };
        if let Some(handler) = &self.spawn_handler {
            // Counted before the handler runs: the thread may end first.
            threads.live += 1;
            if let Err(e) = handler(name, Box::new(run)) {
                threads.live -= 1;
                return Err(e);
            }
            return Ok(());
        }
        let handle = thread::Builder::new().name(name.to_owned()).spawn(run)?;
        threads.live += 1;
        if threads.handles.len() >= 2 * threads.live + 16 {
            threads.handles.retain(|h| !is_finished(h));
        }
        threads.handles.push(handle);
        Ok(())
    }

    /// A worker could not be started for `module`, which has queued work and
    /// no worker: try again at `at` (the timer thread does, or a shutdown
    /// waiting for the end).
    pub(crate) fn retry_spawn(&self, module: &Arc<ModuleShared>, at: Instant) {
        let mut timer = lock(&self.timer);
        if timer.retries.iter().any(|(_, m)| Arc::ptr_eq(m, module)) {
            return;
        }
        timer.retries.push((at, Arc::clone(module)));
        drop(timer);
        // Rare: no need to tell whether it is the earliest.
        self.timer_wake.notify_all();
        drop(lock(&self.threads));
        self.thread_exited.notify_all();
    }

    /// Takes the spawn retries that are due.
    fn due_retries(timer: &mut TimerState) -> Vec<Arc<ModuleShared>> {
        if timer.retries.is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let (due, wait): (Vec<_>, Vec<_>) = timer.retries.drain(..).partition(|&(at, _)| at <= now);
        timer.retries = wait;
        due.into_iter().map(|(_, m)| m).collect()
    }

    /// How long until the next spawn retry, if one is pending.
    fn retry_wait(timer: &TimerState) -> Option<Duration> {
        timer.retries.iter().map(|&(at, _)| at.saturating_duration_since(Instant::now())).min()
    }

    fn on_own_thread(self: &Arc<Self>) -> bool {
        MANAGER_THREAD.with(|t| t.get() == Arc::as_ptr(self) as usize)
    }

    fn start(self: &Arc<Self>) -> Result<(), StartError> {
        {
            let mut timer = lock(&self.timer);
            if self.inherited() {
                return Err(StartError::Forked);
            }
            match self.phase() {
                Phase::Running => return Ok(()),
                Phase::ShuttingDown | Phase::Terminated => return Err(StartError::ShutDown),
                Phase::Created => {}
            }
            if !timer.thread_started {
                let me = Arc::clone(self);
                self.spawn_thread("taskmanager-timer", move || me.run_timer()).map_err(StartError::Spawn)?;
                timer.thread_started = true;
            }
            // Started in this process: a fork before now does not count.
            self.generation.store(FORKS.load(SeqCst), Relaxed);
            self.pid.store(std::process::id(), Relaxed);
            // A racing shutdown wins: then this start fails.
            if self
                .phase
                .compare_exchange(Phase::Created as u8, Phase::Running as u8, SeqCst, SeqCst)
                .is_err()
            {
                return Err(StartError::ShutDown);
            }
        }
        fence(SeqCst);
        // Work queued before the start gets its workers now.
        for module in self.modules() {
            module.kick();
        }
        Ok(())
    }

    /// The timer thread: moves due jobs to their modules' queues, then sleeps
    /// until the next due time or a wake-up.
    fn run_timer(&self) {
        set_timer_slack(self.timer_slack);
        let lead = self.handoff_lead();
        let mut due = Vec::new();
        let mut timer = lock(&self.timer);
        loop {
            if timer.closed {
                return;
            }
            let now = self.now();
            while due.len() < 1024 {
                match timer.pop_due(now.saturating_add(lead)) {
                    Some((at, entry)) => due.push((at, entry)),
                    None => break,
                }
            }
            let retries = Self::due_retries(&mut timer);
            if !due.is_empty() || !retries.is_empty() {
                drop(timer);
                for (at, TimerEntry { job, module }) in due.drain(..) {
                    module.dispatch(job, at);
                }
                for module in retries {
                    module.kick();
                }
                timer = lock(&self.timer);
                continue;
            }
            let due_wait = timer
                .heap
                .next_due()
                .and_then(|next| self.clock.real_wait(next.saturating_sub(lead).saturating_sub(now)));
            let wait = match (due_wait, Self::retry_wait(&timer)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            timer = match wait {
                Some(wait) => self.timer_wake.wait_timeout(timer, wait).unwrap_or_else(|p| p.into_inner()).0,
                None => self.timer_wake.wait(timer).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// Shutdown steps 1 to 3 (see `PROTOCOL.md`, "Shutdown"): stop
    /// accepting, close the timer (due entries run, the rest are cancelled),
    /// wake the workers. With `cancel_unstarted`, due entries and queued
    /// tasks are cancelled too. Returns how many tasks this call cancelled
    /// that way.
    fn begin_shutdown(self: &Arc<Self>, cancel_unstarted: bool) -> usize {
        if self.inherited_or_forked() {
            // Its threads and work belong to the parent; its locks may have
            // been held there at the fork. Nothing here to stop.
            return 0;
        }
        let before = Phase::from_u8(self.phase.fetch_max(Phase::ShuttingDown as u8, SeqCst));
        fence(SeqCst);
        let first = before.accepts();
        let mut cancelled = 0;
        if first {
            self.shutdown_at.store(self.now(), SeqCst);
            cancelled += self.close_timer(cancel_unstarted);
        }
        let modules = self.modules();
        if first {
            for module in &modules {
                module.wake_all();
            }
        }
        if cancel_unstarted {
            cancelled += modules.iter().map(|m| m.cancel_queued()).sum::<usize>();
        }
        if first {
            // Work queued before a start that never came gets its workers.
            for module in &modules {
                module.kick();
            }
        }
        cancelled
    }

    /// Shutdown step 4: waits until every thread has ended (then joins them
    /// and returns true) or `deadline` passes (false). On one of this
    /// manager's own threads it cannot wait for itself, and returns false.
    fn await_termination(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if self.inherited_or_forked() {
            // None of its threads is in this process: nothing to wait for.
            return true;
        }
        if self.on_own_thread() {
            return false;
        }
        let Some(mut threads) = self.wait_threads(deadline, 0) else { return false };
        threads.closed = true;
        let handles = std::mem::take(&mut threads.handles);
        drop(threads);
        for handle in handles {
            // Threads catch every task panic; an error here has nothing left
            // to report.
            let _ = handle.join();
        }
        self.phase.store(Phase::Terminated as u8, SeqCst);
        let modules = std::mem::take(&mut *lock(&self.modules));
        self.retire_stats(modules);
        true
    }

    fn cancel_pending(&self) -> usize {
        let entries = lock(&self.timer).drain();
        let timers = entries.into_iter().map(TimerEntry::cancel).filter(|&c| c).count();
        timers + self.modules().iter().map(|m| m.cancel_queued()).sum::<usize>()
    }

    /// Waits until at most `live` threads are left (and no worker start is
    /// waiting to be retried) or `deadline` passes; then returns the thread
    /// registry, locked, or None. Retries due worker starts meanwhile: the
    /// timer thread, which does it while the manager runs, has ended.
    fn wait_threads(&self, deadline: Option<Instant>, live: usize) -> Option<MutexGuard<'_, Threads>> {
        loop {
            let due = Self::due_retries(&mut lock(&self.timer));
            for module in due {
                module.kick(); // a failure here schedules the next retry
            }
            let retry_wait = Self::retry_wait(&lock(&self.timer));
            let threads = lock(&self.threads);
            if threads.live <= live && retry_wait.is_none() {
                return Some(threads);
            }
            let until_deadline = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return None,
                },
                None => None,
            };
            let wait = match (until_deadline, retry_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            drop(match wait {
                None => self.thread_exited.wait(threads).unwrap_or_else(|p| p.into_inner()),
                Some(wait) => {
                    self.thread_exited.wait_timeout(threads, wait).unwrap_or_else(|p| p.into_inner()).0
                }
            });
        }
    }

    /// `shutdown_timeout`: begins, waits until `deadline`, and past it
    /// cancels what is still queued and reports what still runs. Inside a
    /// task of this manager it waits for everything but that task.
    fn shutdown_until(self: &Arc<Self>, deadline: Instant) -> Result<(), ShutdownTimedOut> {
        self.begin_shutdown(false);
        let ended = if self.on_own_thread() {
            self.wait_threads(Some(deadline), 1).is_some()
        } else {
            self.await_termination(Some(deadline))
        };
        if ended {
            return Ok(());
        }
        self.gave_up.store(true, SeqCst);
        let cancelled = self.modules().iter().map(|m| m.cancel_queued()).sum();
        let me = crate::module::current_task();
        let running: Vec<RunningTask> =
            self.running_tasks().into_iter().filter(|t| Some(t.id) != me).collect();
        Err(ShutdownTimedOut { still_running: running.len(), cancelled, running })
    }

    fn running_tasks(&self) -> Vec<RunningTask> {
        self.modules().iter().flat_map(|m| m.running()).collect()
    }

    /// At shutdown: closes the timer, sends what is due to its module (or,
    /// with `cancel_due`, cancels it) and cancels the rest. Returns how many
    /// due entries it cancelled.
    fn close_timer(&self, cancel_due: bool) -> usize {
        let (due, not_due) = {
            let mut timer = lock(&self.timer);
            timer.closed = true;
            let now = self.now();
            let due: Vec<TimerEntry> = std::iter::from_fn(|| timer.pop_due(now).map(|(_, e)| e)).collect();
            let not_due = timer.drain();
            (due, not_due)
        };
        self.timer_wake.notify_all();
        // Cancelled as not yet due; their handles say so.
        for entry in not_due {
            entry.cancel();
        }
        if cancel_due {
            return due.into_iter().map(TimerEntry::cancel).filter(|&c| c).count();
        }
        for TimerEntry { job, module } in due {
            module.dispatch(job, 0);
        }
        0
    }
}

impl TimeListener for Shared {
    /// A manual clock moved: the timer re-reads it. Taking the timer lock
    /// first means the timer is either before its clock read or already
    /// waiting, so the wake-up cannot fall between the two.
    fn time_moved(&self) {
        drop(lock(&self.timer));
        self.timer_wake.notify_all();
    }
}

/// Counts a manager thread out when it ends, however it ends.
struct ThreadExit(Arc<Shared>);

impl Drop for ThreadExit {
    fn drop(&mut self) {
        let mut threads = lock(&self.0.threads);
        threads.live -= 1;
        let last = threads.live == 0;
        drop(threads);
        self.0.thread_exited.notify_all();
        if last && self.0.gave_up.load(SeqCst) {
            // Nobody may be waiting any more (the manager was dropped after
            // giving up): break the manager <-> module cycle here, as the
            // end of a shutdown does.
            let modules = std::mem::take(&mut *lock(&self.0.modules));
            self.0.retire_stats(modules);
        }
    }
}
