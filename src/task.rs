//! [`Task`]: a method and its callbacks, the spec's `method` and `callback`
//! keys. The spec's `args` and `kwargs` are whatever the closure captures.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use crate::err::TaskError;
use crate::retry::Retry;
use crate::unwind::panic_message;

/// What a method does when its run is given up while it runs (see
/// [`Method::on_abandon`]).
#[doc(hidden)]
pub type AbandonHook = Box<dyn FnOnce(&TaskError) + Send>;

/// A callback: receives the method's return value.
pub(crate) type Callback<T> = Box<dyn FnMut(&T) + Send + 'static>;

/// A method to run and the callbacks that receive its return value.
///
/// Any closure converts into a `Task` with no callbacks, so the submit calls
/// take either:
///
/// ```
/// use taskmanager::{Task, TaskManager};
///
/// let manager = TaskManager::new();
/// manager.start_thread()?;
/// // The spec's `{'method': ..., 'args': ("hello",)}`: arguments are captured.
/// let greeting = String::from("hello");
/// let plain = manager.add_task(move || greeting.len())?;
/// // With callbacks, run in order on the worker right after the method.
/// let with_callbacks = manager.add_task(
///     Task::new(|| 6 * 7)
///         .callback(|answer: &i32| println!("got {answer}"))
///         .callback(|answer: &i32| assert_eq!(*answer, 42)),
/// )?;
/// assert_eq!(plain.join()?, 5);
/// assert_eq!(with_callbacks.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Task<F, T> {
    pub(crate) method: F,
    pub(crate) callbacks: Vec<Callback<T>>,
    pub(crate) name: Option<Arc<str>>,
}

impl<F, T> Task<F, T> {
    /// A task that calls `method`. For [`add_task`](crate::Module::add_task)
    /// and [`schedule_task`](crate::Module::schedule_task) it is an
    /// `FnOnce() -> T`; for
    /// [`schedule_recurring`](crate::Module::schedule_recurring), an
    /// `FnMut() -> T`.
    pub fn new(method: F) -> Self {
        Task { method, callbacks: Vec::new(), name: None }
    }

    /// Names the task, for reports such as [`ShutdownTimedOut`](crate::ShutdownTimedOut)
    /// and the handle's [`name`](crate::TaskHandle::name). Unnamed tasks are
    /// called `task-<id>`.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a callback (the spec's `callback`; call again for the spec's list
    /// of callbacks). Each receives a reference to the method's return value,
    /// in the order added, on the same worker, right after the method. For a
    /// recurring task, after every run.
    ///
    /// A panicking callback is caught and reported through the handle; the
    /// callbacks after it still run.
    pub fn callback(mut self, callback: impl FnMut(&T) + Send + 'static) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Runs the task again when it fails (panics, or a
    /// [`fallible`](Self::fallible) method returns an error), as `retry`
    /// says: the handle settles after the last attempt, with the first
    /// success or the last failure. Between attempts the task waits in the
    /// timer, holding no worker; each retry is counted in
    /// [`Stats::retried`](crate::Stats::retried) and told as
    /// [`Event::Retrying`](crate::Event::Retrying). Callbacks run after
    /// the successful attempt only.
    ///
    /// For one-shot tasks whose method may be called more than once
    /// (`FnMut`); a recurring task's next run is its retry. If the manager
    /// shuts down while the task waits to retry, the handle reports it
    /// cancelled, as any task the shutdown cancels.
    pub fn retry(self, retry: Retry) -> Task<Retrying<F>, T> {
        Task {
            method: Retrying { method: self.method, retry: Arc::new(retry), attempt: 1 },
            callbacks: self.callbacks,
            name: self.name,
        }
    }
}

// No bound here: one on `F` would make the compiler infer every closure
// given as `FnOnce` only, unfit for a recurring task.
impl<F, T> Task<Fallible<F>, T> {
    /// A task whose method (`FnOnce() -> Result<T, E>`, or `FnMut` for a
    /// recurring task, with `E: Display`) reports failure as a value: an
    /// `Err` counts as
    /// a failed run (in [`Stats::failed`](crate::Stats::failed), a
    /// recurring task's failures and the `Failed` event), like a panic,
    /// and its handle gives [`TaskError::Failed`](crate::TaskError::Failed)
    /// with the error's text; callbacks get the `Ok` value only. (With
    /// [`Task::new`], a method returning `Result` is a success whatever it
    /// returns: the `Result` is its value.)
    ///
    /// ```
    /// use taskmanager::{TaskError, Task, TaskManager};
    ///
    /// let manager = TaskManager::new();
    /// manager.start_thread()?;
    /// let parsed = manager.add_task(Task::fallible(|| "x42".parse::<u32>()))?;
    /// assert!(matches!(parsed.join(), Err(TaskError::Failed { .. })));
    /// manager.shutdown();
    /// assert_eq!(manager.stats().failed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fallible(method: F) -> Self {
        Task::new(Fallible(method))
    }
}

/// The method of a [`Task::fallible`]: see there.
pub struct Fallible<F>(pub(crate) F);

impl<F> fmt::Debug for Fallible<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fallible")
    }
}

/// A task's method as its cell runs it once: a value, or a failure.
/// Implemented for every `FnOnce() -> T` (never fails), for [`Fallible`]
/// and for [`Retrying`]; not for users to implement.
pub trait Method<T>: Send + 'static {
    #[doc(hidden)]
    fn call(self) -> Result<T, TaskError>;

    /// One attempt: a method that may run again after a failure (see
    /// [`Task::retry`]) gives itself back with when to.
    #[doc(hidden)]
    fn attempt(self) -> Attempt<Self, T>
    where
        Self: Sized,
    {
        Attempt::Done(self.call())
    }

    /// Whether [`attempt`](Self::attempt) may ask to run again: its cell's
    /// handle then needs the timer, to take it out when cancelled while it
    /// waits to retry.
    #[doc(hidden)]
    const RETRIES: bool = false;

    /// Whether a run of this method can be given up while it runs (it has
    /// a time limit: see [`Deadline`](crate::Deadline)): its cell then
    /// tells the watchdog how to end it.
    #[doc(hidden)]
    fn escapes(&self) -> bool {
        false
    }

    /// What to do, besides ending its cell, when a run of this method is
    /// given up while it runs (a Redis task's: acknowledge it as failed).
    #[doc(hidden)]
    fn on_abandon(&self) -> Option<AbandonHook> {
        None
    }

    /// A waker the cell wakes once when the task ends: after its last run
    /// (counted first, as for every handle), when that run is given up
    /// past its time limit, or when it is cancelled before it ran (the
    /// method dropped first). An embedding runtime learns of the end this
    /// way without registering a waker per task at submission: the Python
    /// binding settles its handle from it.
    #[doc(hidden)]
    fn on_done(&self) -> Option<Waker> {
        None
    }
}

/// What one attempt of a [`Method`] came to.
#[doc(hidden)]
#[derive(Debug)]
pub enum Attempt<M, T> {
    /// The last attempt: its outcome settles the task.
    Done(Result<T, TaskError>),
    /// It failed with `error`, and runs again (retry number `retry`, 1 for
    /// the first) `after` from now.
    Again { method: M, error: TaskError, retry: u32, after: Duration },
    /// It failed with `error`, and retry `retry` runs `after` from now
    /// elsewhere: a named task's worker scheduled it in Redis. This cell
    /// ends; the run counts as retried, not failed.
    RetriedElsewhere { error: TaskError, retry: u32, after: Duration },
}

/// The method of a task made with [`Task::retry`]: see there.
pub struct Retrying<F> {
    method: F,
    retry: Arc<Retry>,
    /// The attempt about to run, 1 for the first.
    attempt: u32,
}

impl<F> fmt::Debug for Retrying<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying").field("retry", &self.retry).field("attempt", &self.attempt).finish()
    }
}

impl<F, T> Method<T> for Retrying<F>
where
    F: MethodMut<T>,
{
    fn call(mut self) -> Result<T, TaskError> {
        self.method.call_mut()
    }

    fn attempt(mut self) -> Attempt<Self, T> {
        // Caught here, not by the cell: a method that panicked runs again.
        let result =
            catch_unwind(AssertUnwindSafe(|| self.method.call_mut())).unwrap_or_else(|p| Err(panicked(p)));
        match result {
            Err(error) if self.retry.allows(self.attempt, &error) => {
                let retry = self.attempt;
                self.attempt += 1;
                let after = self.retry.next_delay(retry);
                Attempt::Again { method: self, error, retry, after }
            }
            done => Attempt::Done(done),
        }
    }

    const RETRIES: bool = true;

    fn escapes(&self) -> bool {
        self.method.escapes()
    }
}

/// A method's panic, logged, as its task's failure.
pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>) -> TaskError {
    let message = panic_message(payload);
    log::error!("task panicked: {message}");
    TaskError::Panicked { message }
}

/// [`Method`] for recurring tasks: every `FnMut() -> T`, and [`Fallible`].
pub trait MethodMut<T>: Send + 'static {
    #[doc(hidden)]
    fn call_mut(&mut self) -> Result<T, TaskError>;

    /// See [`Method::escapes`].
    #[doc(hidden)]
    fn escapes(&self) -> bool {
        false
    }
}

impl<F, T> Method<T> for F
where
    F: FnOnce() -> T + Send + 'static,
{
    fn call(self) -> Result<T, TaskError> {
        Ok(self())
    }
}

impl<F, T, E> Method<T> for Fallible<F>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    E: fmt::Display,
{
    fn call(self) -> Result<T, TaskError> {
        (self.0)().map_err(failed)
    }
}

impl<F, T> MethodMut<T> for F
where
    F: FnMut() -> T + Send + 'static,
{
    fn call_mut(&mut self) -> Result<T, TaskError> {
        Ok(self())
    }
}

impl<F, T, E> MethodMut<T> for Fallible<F>
where
    F: FnMut() -> Result<T, E> + Send + 'static,
    E: fmt::Display,
{
    fn call_mut(&mut self) -> Result<T, TaskError> {
        (self.0)().map_err(failed)
    }
}

fn failed(e: impl fmt::Display) -> TaskError {
    TaskError::Failed { message: e.to_string() }
}

impl<F, T> From<F> for Task<F, T>
where
    F: FnOnce() -> T,
{
    fn from(method: F) -> Self {
        Task::new(method)
    }
}

impl<F, T> fmt::Debug for Task<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("callbacks", &self.callbacks.len())
            .finish_non_exhaustive()
    }
}
