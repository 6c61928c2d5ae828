//! A manager's life: its [`Phase`] (created, running, shutting down,
//! terminated), when shutdown began, and which process it started in (see
//! [`after_fork_in_child`]).

use std::sync::atomic::Ordering::{Relaxed, SeqCst};

use crate::schedule::Nanos;
use crate::sync::{fence, AtomicU64, AtomicU8};

/// The manager's life, in order; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Accepting tasks, not running them until `start_thread`.
    Created = 0,
    Running = 1,
    /// No longer accepting; running what was due, then stopping.
    ShuttingDown = 2,
    Terminated = 3,
}

impl Phase {
    pub(crate) fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Created,
            1 => Phase::Running,
            2 => Phase::ShuttingDown,
            _ => Phase::Terminated,
        }
    }

    pub(crate) fn accepts(self) -> bool {
        self <= Phase::Running
    }
}

/// Forks noted by [`after_fork_in_child`] in this process's history: a
/// manager started under an older count belongs to an ancestor process.
/// std's atomic, also under loom: written only in a child right after fork.
static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Tells the crate that this process is a child just forked from one that may
/// have started managers. Their threads exist only in the parent, so from now
/// on every manager started before the fork refuses submissions with
/// [`SubmitError::Forked`](crate::SubmitError::Forked) and
/// [`StartError::Forked`](crate::StartError::Forked), and its shutdown and
/// drop return at once without waiting for threads that are not here (or
/// touching locks that a parent's thread may have held at the fork). A
/// manager that was created but never started keeps working in the child,
/// and a new one works as usual.
///
/// Call it in the child right after `fork()`, before anything else touches a
/// manager; the Python package does it through `os.register_at_fork`. In
/// the child, leave inherited managers alone but for dropping them: their
/// listings and stats take locks a parent's thread may have held at the
/// fork. Even without it, dropping an inherited manager in a child returns
/// at once (it checks the process id), but only this call makes submissions
/// fail instead of queuing work nothing will run.
pub fn after_fork_in_child() {
    FORKS.fetch_add(1, SeqCst);
    crate::limit::after_fork_in_child();
}

/// A manager's phase, the time its shutdown began and the process it
/// started in. Every layer above reads it; only the manager moves it.
pub(crate) struct Lifecycle {
    phase: AtomicU8,
    /// When shutdown began, by the manager's clock (`Nanos::MAX` before):
    /// a job handed over early whose due time is later is cancelled, as
    /// shutdown cancels every task not yet due.
    shutdown_at: AtomicU64,
    /// `FORKS` and the process id when the manager started (or was built).
    generation: std::sync::atomic::AtomicU32,
    pid: std::sync::atomic::AtomicU32,
    /// Set when a bounded shutdown gave up on tasks still running: dropping
    /// the manager then leaves them to finish in the background.
    gave_up: std::sync::atomic::AtomicBool,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            phase: AtomicU8::new(Phase::Created as u8),
            shutdown_at: AtomicU64::new(Nanos::MAX),
            generation: std::sync::atomic::AtomicU32::new(FORKS.load(SeqCst)),
            pid: std::sync::atomic::AtomicU32::new(std::process::id()),
            gave_up: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(SeqCst))
    }

    /// Whether shutdown began before `due`: a task due then is not run.
    pub(crate) fn shut_down_before(&self, due: Nanos) -> bool {
        self.shutdown_at.load(SeqCst) < due
    }

    /// Whether this process is a fork of the one that started the manager,
    /// as [`after_fork_in_child`] told: its threads are not here. Cheap
    /// enough for every submission (two loads of words nobody writes).
    pub(crate) fn inherited(&self) -> bool {
        FORKS.load(Relaxed) != self.generation.load(Relaxed) && self.phase() != Phase::Created
    }

    /// [`inherited`](Self::inherited), or the process id changed since the
    /// start (a fork nobody told of): for calls that would wait for threads.
    pub(crate) fn inherited_or_forked(&self) -> bool {
        self.inherited() || (std::process::id() != self.pid.load(Relaxed) && self.phase() != Phase::Created)
    }

    /// Created -> Running, noting this process as the manager's. Fails if a
    /// shutdown came first.
    pub(crate) fn start(&self) -> bool {
        // Started in this process: a fork before now does not count.
        self.generation.store(FORKS.load(SeqCst), Relaxed);
        self.pid.store(std::process::id(), Relaxed);
        self.phase.compare_exchange(Phase::Created as u8, Phase::Running as u8, SeqCst, SeqCst).is_ok()
    }

    /// Moves to ShuttingDown (if not past it), noting `now()` as its start
    /// the first time; returns the phase before. Fenced after the move: see
    /// `PROTOCOL.md`, "Submit".
    pub(crate) fn begin_shutdown(&self, now: impl FnOnce() -> Nanos) -> Phase {
        let before = Phase::from_u8(self.phase.fetch_max(Phase::ShuttingDown as u8, SeqCst));
        fence(SeqCst);
        if before.accepts() {
            self.shutdown_at.store(now(), SeqCst);
        }
        before
    }

    pub(crate) fn terminated(&self) {
        self.phase.store(Phase::Terminated as u8, SeqCst);
    }

    pub(crate) fn give_up(&self) {
        self.gave_up.store(true, SeqCst);
    }

    pub(crate) fn gave_up(&self) -> bool {
        self.gave_up.load(SeqCst)
    }
}
