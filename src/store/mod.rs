//! The seam between what a module accepts and where it waits: the
//! in-process store is a module's [`ReadyQueue`] (due work, in order) and
//! the manager's [`Timer`] (work with a due time, and recurring tasks
//! between runs). See `PROTOCOL.md`, "Stores", for the operations a second
//! backend (Redis, issue 12) implements, each flavour in a file of its own.

pub(crate) mod ready;

use std::sync::Arc;

use crate::timer::driver::Timer;

pub(crate) use ready::{Queued, ReadyQueue};

/// Where one module's accepted tasks wait. Workers take from `ready` only;
/// `schedule` hands what falls due to `ready`.
pub(crate) struct Store<T> {
    pub(crate) ready: ReadyQueue,
    pub(crate) schedule: Arc<Timer<T>>,
}
