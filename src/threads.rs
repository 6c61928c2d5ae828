//! A manager's threads: the registry that starts, counts and joins them,
//! and what every one of them sets for itself (its timer slack and its
//! signal mask).

use std::cell::Cell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::sync::is_finished;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{lock, thread_local, Condvar, Mutex, MutexGuard};

/// Sets the calling thread's timer slack; a failure only costs precision.
#[cfg(target_os = "linux")]
pub(crate) fn set_timer_slack(slack: Duration) {
    if slack.is_zero() {
        return;
    }
    let nanos = u64::try_from(slack.as_nanos()).unwrap_or(u64::MAX);
    if let Err(e) = nix::sys::prctl::set_timerslack(nanos) {
        log::debug!("taskmanager: could not set a thread's timer slack: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_timer_slack(_slack: Duration) {}

/// Blocks the signals a process is sent as a whole (Ctrl-C's SIGINT,
/// SIGTERM, SIGHUP, ...) on the calling thread, one of the manager's: the
/// kernel then delivers them to a thread of the application. A manager
/// thread that took one would leave the application's handler unrun, or,
/// in Python, its main thread asleep: CPython runs signal handlers on the
/// main thread, and only a signal delivered there interrupts its
/// `time.sleep` (seen: one Ctrl-C in 100 ignored for the whole sleep).
/// Signals a thread causes itself (SIGSEGV, SIGPIPE, ...) are not blocked.
///
/// Public for threads an embedder starts beside the manager's, which must
/// not take those signals either (the Python package's log forwarder).
#[cfg(all(unix, not(loom)))]
pub fn block_process_signals() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGCHLD,
        Signal::SIGWINCH,
    ] {
        set.add(signal);
    }
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        log::debug!("taskmanager: could not block process signals on a manager thread: {e}");
    }
}

/// Blocks process-wide signals on the calling thread: nothing to do here.
#[cfg(not(all(unix, not(loom))))]
pub fn block_process_signals() {}

/// Starts a thread: given its name and body, runs the body on a new thread
/// (see [`Builder::spawn_handler`](crate::Builder::spawn_handler)).
pub(crate) type SpawnHandler = Arc<dyn Fn(&str, Box<dyn FnOnce() + Send>) -> io::Result<()> + Send + Sync>;

thread_local! {
    /// The registry (by address) whose thread this is, if any. (Not a
    /// `const` initializer: loom's `thread_local!` does not take one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static REGISTRY: Cell<usize> = Cell::new(0);
}

/// A manager's threads: how many live, their join handles, and a condition
/// variable told whenever one ends.
pub(crate) struct ThreadRegistry {
    threads: Mutex<Threads>,
    exited: Condvar,
    spawn_handler: Option<SpawnHandler>,
}

pub(crate) struct Threads {
    pub(crate) live: usize,
    handles: Vec<JoinHandle<()>>,
    /// Set when shutdown is over: no thread may start.
    closed: bool,
}

impl ThreadRegistry {
    pub(crate) fn new(spawn_handler: Option<SpawnHandler>) -> Self {
        ThreadRegistry {
            threads: Mutex::new(Threads { live: 0, handles: Vec::new(), closed: false }),
            exited: Condvar::new(),
            spawn_handler,
        }
    }

    /// Starts a thread counted here, with process signals blocked and the
    /// registry's mark set. Refused once [`close`](Self::close)d.
    pub(crate) fn spawn(
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
            REGISTRY.with(|t| t.set(Arc::as_ptr(&me) as usize));
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

    /// Whether the calling thread is one of this registry's.
    pub(crate) fn is_own(self: &Arc<Self>) -> bool {
        REGISTRY.with(|t| t.get() == Arc::as_ptr(self) as usize)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Threads> {
        lock(&self.threads)
    }

    /// Waits on the registry (released meanwhile) until a thread ends, a
    /// [`notify`](Self::notify) or `timeout`.
    pub(crate) fn wait<'a>(
        &self,
        threads: MutexGuard<'a, Threads>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Threads> {
        match timeout {
            None => self.exited.wait(threads).unwrap_or_else(|p| p.into_inner()),
            Some(wait) => self.exited.wait_timeout(threads, wait).unwrap_or_else(|p| p.into_inner()).0,
        }
    }

    /// Wakes whoever waits on the registry.
    pub(crate) fn notify(&self) {
        drop(lock(&self.threads));
        self.exited.notify_all();
    }

    /// Refuses new threads from now on and joins the ended ones: called
    /// when none is left alive.
    pub(crate) fn close(&self, mut threads: MutexGuard<'_, Threads>) {
        threads.closed = true;
        let handles = std::mem::take(&mut threads.handles);
        drop(threads);
        for handle in handles {
            // Threads catch every task panic; an error here has nothing left
            // to report.
            let _ = handle.join();
        }
    }
}

/// Counts a thread out when it ends, however it ends.
struct ThreadExit(Arc<ThreadRegistry>);

impl Drop for ThreadExit {
    fn drop(&mut self) {
        let mut threads = lock(&self.0.threads);
        threads.live -= 1;
        drop(threads);
        self.0.exited.notify_all();
    }
}
