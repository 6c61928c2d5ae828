//! Panics in user code, once caught: their message, and dropping what they
//! carried (or what a task captured) without letting a second panic out.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The text of a panic, for `&str` and `String` payloads (what `panic!`
/// makes); other payloads get a placeholder. Drops the payload through
/// [`drop_payload`]: its `Drop` is user code.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => {
            let message = payload.downcast_ref::<&'static str>().map_or("non-string panic payload", |s| *s);
            let message = message.to_owned();
            drop_payload(payload);
            message
        }
    }
}

/// Drops a panic payload without letting a panic out: a payload is any
/// value given to `panic_any`, and its `Drop` may panic too. That second
/// panic is caught; its own payload is dropped if it is a string (whose
/// drop cannot panic) and otherwise leaked with `mem::forget`, since
/// dropping it could panic again, without end. Every payload the crate
/// catches is dropped here.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        log::error!("taskmanager: a panic payload panicked while being dropped");
        if second.is::<String>() || second.is::<&'static str>() {
            drop(second);
        } else {
            log::error!("taskmanager: leaking the payload of that second panic, which is not a string");
            std::mem::forget(second);
        }
    }
}

/// Drops user values where their `Drop` may panic, without killing the
/// worker.
pub(crate) fn drop_quietly<V>(value: V) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        log::error!("a task's captured value panicked while being dropped");
        drop_payload(payload);
    }
}
