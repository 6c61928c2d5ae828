//! A manager's [`Phase`]: created, running, shutting down, terminated.

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
