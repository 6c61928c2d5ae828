//! [`BatchRunner`]: how a worker runs a batch of consecutive tasks, for
//! runtimes that embed the manager.

/// Wraps each batch of tasks a worker runs back to back.
///
/// A worker that finds several tasks queued runs up to a batch of them in
/// one call to [`run_batch`](Self::run_batch). An embedding runtime can take
/// a costly lock there once instead of once per task: the Python binding
/// holds the GIL across the batch, so each task's own GIL acquisition is a
/// cheap re-entry. Without a runner, tasks simply run one after another.
///
/// `run_batch` must call `batch` exactly once. Tasks still catch their own
/// panics; a panic escaping `run_batch` itself is caught by the worker.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use taskmanager::{BatchRunner, TaskManager};
///
/// /// Counts batches, standing in for "take the lock once".
/// #[derive(Default)]
/// struct Counting(AtomicUsize);
///
/// impl BatchRunner for Counting {
///     fn run_batch(&self, batch: &mut dyn FnMut()) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         batch();
///     }
/// }
///
/// let runner = Arc::new(Counting::default());
/// let manager = TaskManager::builder().batch_runner(runner.clone()).build()?;
/// manager.start_thread()?;
/// manager.add_task(|| 1)?.join()?;
/// assert!(runner.0.load(Ordering::Relaxed) >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait BatchRunner: Send + Sync + 'static {
    /// Runs `batch` (which runs the tasks), wrapped as the runtime needs.
    fn run_batch(&self, batch: &mut dyn FnMut());

    /// Runs a stretch of a thread's life in which it enters the runtime
    /// again and again, one task at a time: the whole life of the broker's
    /// result listener, which settles handles one by one, and a worker's
    /// time holding a recurring task between its runs. The place to keep
    /// what the runtime needs per thread meanwhile. (A worker busy with
    /// queued tasks gets [`run_batch`](Self::run_batch) instead.) The Python
    /// binding gives the thread one interpreter state for the stretch,
    /// instead of making and freeing one (a memory map) each time the
    /// thread takes the GIL. Must call `body` exactly once.
    fn run_thread(&self, body: &mut (dyn FnMut() + Send)) {
        body();
    }

    /// Called on each worker thread as it exits, after its last task and
    /// before it is counted out (so before a shutdown that waits for it can
    /// return): the place to release what the runtime keeps per thread. The
    /// Python binding closes the thread's asyncio event loop here. A panic
    /// is caught and logged.
    fn thread_exit(&self) {}
}

/// The most tasks one batch runs, so a runner's lock is let go regularly.
/// Large, because letting go is costly for the Python binding: a worker
/// that drops the GIL waits up to the interpreter's switch interval (5 ms)
/// to get it back from a thread that is submitting, and with batches of 64
/// the workers fell far behind a Python submitter (100 k tasks/s against
/// 400-700 k with 1,024). Others are not starved by a long batch: the
/// interpreter makes a batch's Python code let the GIL go to a waiting
/// thread at every switch interval.
pub(crate) const BATCH: usize = 1024;
