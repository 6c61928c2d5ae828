//! [`Recurrence`]: a recurring task's schedule, as the caller gives it
//! (every interval, or a calendar rule; misfire policy, grace, jitter).

use std::sync::Arc;
use std::time::Duration;

use crate::calendar::Cron;
use crate::misfire::Misfire;
use crate::schedule::Pacing;

/// The spec's `reoccurring` schedule: every fixed interval on the
/// monotonic clock ([`every`](Self::every)), or at the times of a calendar
/// rule on the wall clock ([`cron`](Self::cron)); whether to run at once,
/// the [`Pacing`], what to do with runs that could not start on time
/// ([`Misfire`], [`grace`](Self::grace)) and a random delay per run
/// ([`jitter`](Self::jitter)).
///
/// ```
/// use std::time::Duration;
/// use taskmanager::{Cron, Misfire, Pacing, Recurrence};
///
/// // The spec's `delay=1, reoccurring=True, run_now=True`.
/// let every_second = Recurrence::every(Duration::from_secs(1)).run_now(true);
/// assert_eq!(every_second.interval(), Duration::from_secs(1));
/// assert_eq!(every_second.pacing_policy(), Pacing::FixedRate);
/// assert_eq!(every_second.misfire_policy(), Misfire::Skip);
///
/// // Weekdays at 09:00 in Berlin, up to 5 minutes late, spread over 30 s.
/// let cron = Cron::parse("0 9 * * MON-FRI")?.zone("Europe/Berlin")?;
/// let mornings = Recurrence::cron(cron)
///     .misfire(Misfire::Skip)
///     .grace(Duration::from_secs(300))
///     .jitter(Duration::from_secs(30));
/// assert_eq!(mornings.calendar().unwrap().zone_name(), "Europe/Berlin");
/// # Ok::<(), taskmanager::CronError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recurrence {
    when: When,
    run_now: bool,
    pacing: Pacing,
    misfire: Option<Misfire>,
    grace: Option<Duration>,
    jitter: Duration,
}

/// When a recurring task's ticks fall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum When {
    /// Every interval, on the monotonic clock.
    Every(Duration),
    /// At a calendar rule's times, on the wall clock.
    Calendar(Arc<Cron>),
}

impl Recurrence {
    /// The shortest interval a recurring task may have: 1 ms. Shorter ones
    /// are refused ([`SubmitError::IntervalTooShort`](crate::SubmitError::IntervalTooShort)),
    /// in Rust and Python alike: below it a recurring task is a busy loop
    /// (a 1 ns interval ran 17,000 times in 0.3 s), which is what refusing a
    /// zero interval is meant to prevent. For work that must run more often,
    /// loop inside one task.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

    /// Runs every `interval` (the spec's `delay`), the first time one interval
    /// from now.
    pub fn every(interval: Duration) -> Self {
        Recurrence::new(When::Every(interval))
    }

    /// Runs at the times of `cron`, in its zone, by the wall clock: a step
    /// of the system's clock, or a suspend and resume, is noticed (within
    /// a second) and the next run follows the new time. Missed runs are
    /// [coalesced](Misfire::Coalesce) by default.
    pub fn cron(cron: Cron) -> Self {
        Recurrence::new(When::Calendar(Arc::new(cron)))
    }

    fn new(when: When) -> Self {
        Recurrence {
            when,
            run_now: false,
            pacing: Pacing::FixedRate,
            misfire: None,
            grace: None,
            jitter: Duration::ZERO,
        }
    }

    /// With `true`, also runs at once (the spec's `run_now`); the later runs
    /// keep the same grid: at `interval`, `2 * interval`, ... (a calendar
    /// schedule: at its next time).
    pub fn run_now(mut self, run_now: bool) -> Self {
        self.run_now = run_now;
        self
    }

    /// Sets how runs of an interval schedule are paced;
    /// [`Pacing::FixedRate`] by default. A calendar schedule's runs are at
    /// its times: [`Pacing::FixedDelay`] is refused for it.
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// Sets what happens to runs that could not start on time;
    /// [`Misfire::Skip`] by default for an interval (with no grace: the
    /// latest missed tick runs, as it always has), [`Misfire::Coalesce`]
    /// for a calendar schedule.
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = Some(misfire);
        self
    }

    /// A run that starts more than `grace` after its time has misfired:
    /// with [`Misfire::Skip`] and [`Misfire::CatchUp`] it does not run,
    /// and counts as skipped. No grace by default.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Delays each run by a random time from zero to `jitter`, so that
    /// processes sharing a schedule do not all start at once. The
    /// schedule's times do not move: each run's delay is drawn afresh, and
    /// lateness is counted from the delayed time.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The interval between runs; zero for a calendar schedule.
    pub fn interval(&self) -> Duration {
        match &self.when {
            When::Every(interval) => *interval,
            When::Calendar(_) => Duration::ZERO,
        }
    }

    /// The calendar rule, for a calendar schedule.
    pub fn calendar(&self) -> Option<&Cron> {
        match &self.when {
            When::Every(_) => None,
            When::Calendar(cron) => Some(cron),
        }
    }

    /// Whether the task also runs at once.
    pub fn runs_now(&self) -> bool {
        self.run_now
    }

    /// The pacing policy.
    pub fn pacing_policy(&self) -> Pacing {
        self.pacing
    }

    /// The misfire policy, the kind's default if none was set.
    pub fn misfire_policy(&self) -> Misfire {
        self.misfire.unwrap_or(match self.when {
            When::Every(_) => Misfire::Skip,
            When::Calendar(_) => Misfire::Coalesce,
        })
    }

    /// The grace, if any.
    pub fn grace_time(&self) -> Option<Duration> {
        self.grace
    }

    /// The jitter's bound (zero: none).
    pub fn jitter_bound(&self) -> Duration {
        self.jitter
    }

    pub(crate) fn when(&self) -> &When {
        &self.when
    }
}
