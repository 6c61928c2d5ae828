//! What every manager thread sets for itself: its timer slack and its
//! signal mask.

use std::time::Duration;

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
#[cfg(all(unix, not(loom)))]
pub(crate) fn block_process_signals() {
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

#[cfg(not(all(unix, not(loom))))]
pub(crate) fn block_process_signals() {}
