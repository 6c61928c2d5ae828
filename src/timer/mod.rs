//! The in-process schedule store: [`heap`], the ordered structure of pending
//! tasks (pure: no locks, no clock), and [`driver`], the timer that owns one
//! under its lock (its [`state`]) and the thread that hands due tasks to
//! their modules; [`wall`], the tasks whose keys follow the wall clock.

pub(crate) mod driver;
pub(crate) mod heap;
mod listing;
mod retries;
mod state;
mod wall;

pub(crate) use heap::{Slotted, NO_SLOT};
