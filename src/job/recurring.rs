//! Recurring tasks: [`Recurring`], a cell that runs every `interval` until
//! cancelled, and the [`Control`] its
//! [`RecurringHandle`](crate::RecurringHandle) steers it through.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::core::{Core, Label, CANCELLED, CANCEL_REQUESTED, PHASE, QUEUED, RUNNING, WAITERS};
use super::plan::{Begin, Plan, Times};
use super::{invoke, tell_started, Callbacks, Control, Job, Ran, RecurringInfo, RunContext, Staged};
use crate::err::TaskError;
use crate::event::Event;
use crate::schedule::Nanos;
use crate::sync::{lock, AtomicU32, AtomicU64, Mutex};
use crate::task::{Callback, MethodMut};
use crate::unwind::drop_quietly;

/// A recurring task's method and callbacks (out while a run has them, gone
/// once it is cancelled), and its last failure: under the stage lock.
pub(super) struct RecurringStage<F, T> {
    payload: Option<(F, Callbacks<T>)>,
    last_failure: Option<TaskError>,
}

/// A task that runs at each tick of its [`Plan`] until cancelled.
pub(crate) struct Recurring<F, T> {
    core: Core,
    /// Changed by `set_interval`; read at the end of each run. Zero for a
    /// calendar plan.
    interval: AtomicU64,
    plan: Plan,
    /// The pending or running run's tick (an interval's; a calendar's key,
    /// see `plan.rs`); touched only by whoever holds the job (timer, queue
    /// or worker), one at a time.
    due: AtomicU64,
    runs: AtomicU64,
    failures: AtomicU64,
    skipped: AtomicU64,
    coalesced: AtomicU64,
    /// 1 while paused: its ticks come and go without running the method.
    paused: AtomicU32,
    stage: Mutex<RecurringStage<F, T>>,
}

impl<F, T> Recurring<F, T> {
    /// A task whose first tick is set by [`first_key`](Self::first_key).
    pub(crate) fn new(
        method: F,
        callbacks: Vec<Callback<T>>,
        interval: Nanos,
        plan: Plan,
        name: Option<Arc<str>>,
    ) -> Self {
        Recurring {
            core: Core::new(name.map(|name| Label { name, broker_id: None })),
            interval: AtomicU64::new(interval),
            plan,
            due: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            paused: AtomicU32::new(0),
            stage: Mutex::new(RecurringStage {
                payload: Some((method, Callbacks::new(callbacks))),
                last_failure: None,
            }),
        }
    }
}

impl<F, T> Recurring<F, T> {
    /// Sets the first tick (at `now`, or the plan's first); returns when
    /// the timer hands it over, or None if no tick is ever due.
    pub(crate) fn first_key(&self, now: Times, run_now: bool) -> Option<Nanos> {
        self.plan.first(&self.due, self.interval.load(Ordering::Relaxed), now, run_now)
    }
}

impl<F, T> Recurring<F, T>
where
    F: MethodMut<T>,
    T: Send + 'static,
{
    /// Counts ticks that will never run and ticks folded into a run, and
    /// tells them.
    fn count_skipped(&self, cx: &dyn RunContext, skipped: u64, coalesced: u64) {
        if skipped > 0 {
            self.skipped.fetch_add(skipped, Ordering::Relaxed);
            cx.count_skipped(&self.core, skipped);
            cx.events()
                .emit(log::Level::Info, || Event::Skipped { task: self.core.task_ref(), ticks: skipped });
        }
        if coalesced > 0 {
            self.coalesced.fetch_add(coalesced, Ordering::Relaxed);
            cx.events()
                .emit(log::Level::Info, || Event::Coalesced { task: self.core.task_ref(), ticks: coalesced });
        }
    }

    /// The monotonic time `mono`, with the wall clock's reading if the
    /// plan follows it (an interval's run reads no wall clock).
    fn times(&self, cx: &dyn RunContext, mono: Nanos) -> Times {
        Times { mono, wall: if self.plan.is_calendar() { cx.wall() } else { 0 } }
    }

    /// Back in the timer at `key`; retired (and `ran` says cancelled) if
    /// it may not go on.
    fn put_back(self: Arc<Self>, cx: &dyn RunContext, key: Option<Nanos>, mut ran: Ran) -> Ran {
        let job: Arc<dyn Job> = self.clone();
        if !cx.reschedule(job, key) {
            self.retire();
            ran.cancelled = true;
        }
        ran
    }

    /// RUNNING -> CANCELLED after a run when it may not go on.
    fn retire(&self) {
        let mut stage = lock(&self.stage);
        let payload = stage.payload.take();
        let waiters = self.core.finish_locked(RUNNING, CANCELLED).unwrap_or(false);
        drop(stage);
        self.core.notify(waiters);
        drop_quietly(payload);
    }
}

impl<F, T> Job for Recurring<F, T>
where
    F: MethodMut<T>,
    T: Send + 'static,
{
    fn core(&self) -> &Core {
        &self.core
    }

    fn run(self: Arc<Self>, cx: &dyn RunContext) -> Ran {
        if !self.core.begin_run() {
            return Ran { cancelled: self.core.is_cancelled(), ..Ran::default() };
        }
        let Some((mut method, mut callbacks)) = lock(&self.stage).payload.take() else {
            self.retire();
            return Ran { cancelled: true, ..Ran::default() };
        };
        let started = cx.started();
        // The key the timer handed this tick over at (its lateness is from
        // then): `begin` moves it on.
        let due = self.due.load(Ordering::Relaxed);
        let paused = self.paused.load(Ordering::Acquire) != 0;
        let interval = self.interval.load(Ordering::Relaxed);
        let (mut missed, mut coalesced) = (0, 0);
        if !paused {
            match self.plan.begin(&self.due, interval, self.times(cx, started)) {
                Begin::Run { missed: m, coalesced: c } => (missed, coalesced) = (m, c),
                Begin::Wait { due, missed } => {
                    // Not run now: the tick misfired, or (a calendar's,
                    // the wall clock stepped back) is not due yet.
                    lock(&self.stage).payload = Some((method, callbacks));
                    self.count_skipped(cx, missed, 0);
                    return self.put_back(cx, due, Ran::default());
                }
            }
        }
        let failure = if paused {
            // A paused tick: skipped, and the grid goes on (no burst on
            // resume).
            missed += 1;
            None
        } else {
            cx.mark_running(&self.core, Some(due));
            tell_started(cx, &self.core);
            let result = invoke(|| method.call_mut(), callbacks.as_mut_slice());
            cx.count_run(result.is_err());
            self.runs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(value) => {
                    drop_quietly(value);
                    None
                }
                Err(e) => {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    Some(e)
                }
            }
        };
        let ran = Ran {
            completed: !paused && failure.is_none(),
            failed: failure.is_some(),
            error: failure.clone(),
            ..Ran::default()
        };
        {
            let mut stage = lock(&self.stage);
            stage.payload = Some((method, callbacks));
            if failure.is_some() {
                stage.last_failure = failure;
            }
        }
        let next = self.plan.end(&self.due, interval, started, self.times(cx, cx.now()), paused);
        self.count_skipped(cx, missed + next.map_or(0, |(_, skipped)| skipped), coalesced);
        self.put_back(cx, next.map(|(key, _)| key), ran)
    }

    fn wall_rekey(&self, now: Times) -> Option<Nanos> {
        self.plan.rekey(&self.due, now)
    }

    fn recurring_info(&self) -> Option<RecurringInfo> {
        Some(RecurringInfo {
            interval: self.interval.load(Ordering::Relaxed),
            next_due: self.due.load(Ordering::Relaxed),
            next_wall: self.plan.next_wall(),
            calendar: self.plan.calendar().cloned(),
            runs: self.runs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            paused: self.paused.load(Ordering::Relaxed) != 0,
        })
    }

    fn cancel(&self) -> bool {
        loop {
            let s = self.core.state.load(Ordering::Acquire);
            match s & PHASE {
                QUEUED => {
                    let mut stage = lock(&self.stage);
                    let Some(old) = self.core.shift(QUEUED, CANCELLED, 0) else { continue };
                    let payload = stage.payload.take();
                    drop(stage);
                    self.core.notify(old & WAITERS != 0);
                    drop_quietly(payload);
                    return true;
                }
                RUNNING if s & CANCEL_REQUESTED == 0 => {
                    if self
                        .core
                        .state
                        .compare_exchange(s, s | CANCEL_REQUESTED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return true;
                    }
                }
                _ => return false,
            }
        }
    }
}

impl<F, T> Staged for Recurring<F, T>
where
    F: MethodMut<T>,
    T: Send + 'static,
{
    type Stage = RecurringStage<F, T>;
    fn stage(&self) -> &Mutex<RecurringStage<F, T>> {
        &self.stage
    }
}

impl<F, T> Control for Recurring<F, T>
where
    F: MethodMut<T>,
    T: Send + 'static,
{
    fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    fn is_calendar(&self) -> bool {
        self.plan.is_calendar()
    }

    fn last_failure(&self) -> Option<TaskError> {
        lock(&self.stage).last_failure.clone()
    }

    fn cancel_requested(&self) -> bool {
        self.core.state.load(Ordering::Acquire) & CANCEL_REQUESTED != 0
    }

    fn set_interval(&self, interval: Nanos) -> Nanos {
        self.interval.swap(interval, Ordering::Relaxed)
    }

    fn due(&self) -> Nanos {
        self.due.load(Ordering::Relaxed)
    }

    fn set_due(&self, due: Nanos) {
        self.due.store(due, Ordering::Relaxed);
    }

    fn set_paused(&self, paused: bool) -> bool {
        self.paused.swap(u32::from(paused), Ordering::AcqRel) != u32::from(paused)
    }

    fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire) != 0
    }
}
