//! [`Task`]: a method and its callbacks, the spec's `method` and `callback`
//! keys. The spec's `args` and `kwargs` are whatever the closure captures.

use std::fmt;
use std::sync::Arc;

use crate::err::TaskError;

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
/// Implemented for every `FnOnce() -> T` (never fails) and for
/// [`Fallible`]; not for users to implement.
pub trait Method<T>: Send + 'static {
    #[doc(hidden)]
    fn call(self) -> Result<T, TaskError>;
}

/// [`Method`] for recurring tasks: every `FnMut() -> T`, and [`Fallible`].
pub trait MethodMut<T>: Send + 'static {
    #[doc(hidden)]
    fn call_mut(&mut self) -> Result<T, TaskError>;
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
