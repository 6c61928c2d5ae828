//! [`TaskManager::run_worker`]: a process's life as a worker, ended by a
//! signal with a drain (Unix).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

use crate::err::{ShutdownTimedOut, StartError};
use crate::manager::{Drain, TaskManager};

/// How a worker ended: see [`TaskManager::run_worker`].
#[derive(Debug)]
pub enum WorkerExit {
    /// Signalled once, and every running task finished within the drain
    /// timeout.
    Drained,
    /// The drain timeout passed first: the tasks still running (named in
    /// the report) and every claimed task not started were handed back to
    /// the cluster, where other workers run them at once.
    TimedOut(ShutdownTimedOut),
    /// A second signal during the drain: everything not finished was
    /// handed back at once (`None` if nothing was left).
    Interrupted(Option<ShutdownTimedOut>),
}

impl WorkerExit {
    /// The process exit status a worker command should end with: 0 when
    /// drained, 1 when the drain timed out, 130 (as after SIGINT) when
    /// interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            WorkerExit::Drained => 0,
            WorkerExit::TimedOut(_) => 1,
            WorkerExit::Interrupted(_) => 130,
        }
    }
}

impl TaskManager {
    /// Runs this process as a worker: starts the manager (claiming tasks
    /// even if it was built [`submit_only`](crate::Builder::submit_only)),
    /// then waits for
    /// SIGTERM or SIGINT (Ctrl-C). The first signal drains: nothing more is
    /// claimed or started, running tasks get up to `drain_timeout` to
    /// finish (with a broker, their leases are kept alive meanwhile, so no
    /// other process re-runs them), and what is still unfinished then is
    /// handed back to the cluster ([`WorkerExit::TimedOut`]). A second
    /// signal hands everything back at once ([`WorkerExit::Interrupted`]).
    /// Exit the process after it returns (see [`WorkerExit::exit_code`]):
    /// tasks it handed back while they ran would otherwise go on here too.
    ///
    /// Call it from `main` before starting threads of your own: it blocks
    /// SIGTERM and SIGINT in the calling thread, which threads started
    /// later inherit, and takes them with `sigwait` on a thread of its own.
    /// (The manager's own threads never take process signals.)
    ///
    /// # Errors
    /// [`StartError`] if the manager could not start.
    pub fn run_worker(&self, drain_timeout: Duration) -> Result<WorkerExit, StartError> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGTERM);
        signals.add(Signal::SIGINT);
        // Failure leaves the default actions (the process ends at the
        // signal): nothing to recover here, but say so.
        if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None) {
            log::error!("taskmanager: could not block SIGTERM and SIGINT for the worker: {e}");
        }
        #[cfg(feature = "redis")]
        self.set_submit_only(false);
        let (tx, rx) = mpsc::channel();
        let waiter = std::thread::Builder::new().name("taskmanager-signals".to_owned()).spawn(move || {
            while let Ok(signal) = signals.wait() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        });
        let started = match waiter {
            Ok(_) => self.start_thread(),
            Err(e) => Err(StartError::Spawn(e)),
        };
        if let Err(e) = started {
            // Signals end the process again, as before the call.
            if let Err(e) = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&signals), None) {
                log::error!("taskmanager: could not unblock SIGTERM and SIGINT: {e}");
            }
            return Err(e);
        }
        // The signal thread only ends with the process.
        let first = rx.recv().unwrap_or(Signal::SIGTERM);
        log::warn!(
            "taskmanager: {first} received: draining (running tasks get {drain_timeout:?}); \
             signal again to stop at once"
        );
        self.begin_shutdown();
        let deadline = Instant::now().checked_add(drain_timeout);
        let mut second = None;
        Ok(
            match self.drain(deadline, || {
                second = rx.try_recv().ok();
                second.is_some()
            }) {
                Drain::Ended => WorkerExit::Drained,
                Drain::TimedOut(report) => WorkerExit::TimedOut(report),
                Drain::Interrupted => {
                    let second = second.unwrap_or(Signal::SIGTERM);
                    log::warn!("taskmanager: {second} received again: handing back what is unfinished");
                    WorkerExit::Interrupted(self.shutdown_timeout(Duration::ZERO).err())
                }
            },
        )
    }
}
