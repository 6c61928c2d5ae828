"""The values the API reports: events, listed tasks, stats, and the
exception of a shutdown that ran out of time."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import zoneinfo
from typing import Any, Callable, List, Optional, Tuple

from ._taskmanager import _shutdown_timed_out_text

_EVENTS = logging.getLogger("taskmanager.events")
_TRACE = 5  # below DEBUG: a run's start


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened to a task, as a ``TaskManager(listener=...)``
    receives it (and the ``taskmanager.events`` logger logs it)."""

    kind: str
    """``started``, ``finished``, ``failed``, ``retrying``, ``skipped``,
    ``coalesced``, ``cancelled``, ``paused`` or ``resumed`` (and
    ``spawn_failed``, a module's: a worker thread could not start;
    ``task_name`` is the module's)."""
    level: int
    """Its ``logging`` level: 5 (below DEBUG) for ``started``, DEBUG for
    ``finished`` and ``cancelled``, INFO for ``skipped``, ``coalesced``,
    ``paused`` and ``resumed``, WARNING for ``failed`` and ``retrying``,
    ERROR for ``spawn_failed``."""
    task_id: int
    """The task's number in the process that tells the event: its handle's
    :attr:`~TaskHandle.id` where the handle is. A worker's run of a task
    sent through a broker has a number of its own; a
    :class:`SharedSchedule`'s is 0. Match those by :attr:`broker_id`."""
    task_name: str
    """Its ``name=``, else its method's name: in a worker too."""
    duration: Optional[float] = None
    """Seconds the run took (``finished``, ``failed``)."""
    error: Optional[str] = None
    """Why it failed (``failed``): for a Python task, the exception's type
    and text (the exception itself is on the task's handle, and logged with
    its traceback on the ``taskmanager`` logger)."""
    ticks: Optional[int] = None
    """How many ticks were skipped (``skipped``), or folded into one late
    run besides its own (``coalesced``)."""
    broker_id: Optional[str] = None
    """With a broker, the task's id there, in the submitter's events and
    the worker's alike: its handle's :attr:`~TaskHandle.task_id`; a
    :class:`SharedSchedule`'s key (a tick's run: ``<key>@<due ms>``). None
    for a task run where it was submitted."""


def _event_forwarder(listener: Optional[Callable[[Event], Any]]) -> Callable[..., None]:
    def forward(
        kind: str,
        level: int,
        task_id: int,
        name: str,
        duration: Optional[float],
        error: Optional[str],
        ticks: Optional[int],
        broker_id: Optional[str],
        text: str,
    ) -> None:
        if _EVENTS.isEnabledFor(level):
            _EVENTS.log(level, "%s", text)
        if listener is not None:
            listener(Event(kind, level, task_id, name, duration, error, ticks, broker_id))

    return forward


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """A scheduled or recurring task, as ``manager.get_tasks()`` lists it."""

    id: int
    """The task's number, as its handle's ``id``."""
    name: str
    """The task's name, as its handle's ``name``."""
    module: str
    """Its module's name: the Module subclass's name, or ``default``."""
    state: str
    """``scheduled``, ``running`` or ``paused``."""
    next_due: Optional[float]
    """Seconds from now until its next run (0 if due now)."""
    interval: Optional[float]
    """A recurring task's interval in seconds; None for a one-shot task."""
    runs: int
    """Runs so far (recurring tasks; failed runs included)."""
    failures: int
    """Failed runs so far (recurring tasks)."""
    next_run: Optional[datetime.datetime] = None
    """When its next run is due, as an aware datetime: a cron task's next
    time in its zone (``tz``), others' in UTC."""
    cron: Optional[str] = None
    """A cron task's expression; None for others."""
    tz: Optional[str] = None
    """A cron task's time zone (IANA name); None for others."""


_TaskTuple = Tuple[
    int, str, str, str, Optional[float], Optional[float], int, int, Optional[float], Optional[str], Optional[str]
]


def _task_info(t: _TaskTuple) -> "TaskInfo":
    """A :class:`TaskInfo` from the core's tuple (see ``ManagerCore.tasks``)."""
    return TaskInfo(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], _aware(t[8], t[10]), t[9], t[10])


def _aware(timestamp: Optional[float], zone: Optional[str]) -> Optional[datetime.datetime]:
    """The Unix ``timestamp`` as an aware datetime in ``zone`` (UTC if None,
    or if Python's zoneinfo does not have it)."""
    if timestamp is None:
        return None
    tz: datetime.tzinfo = datetime.timezone.utc
    if zone is not None:
        try:
            tz = zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.datetime.fromtimestamp(timestamp, tz)


@dataclasses.dataclass(frozen=True)
class Stats:
    """A snapshot of what a module (or, summed, a manager) holds and has
    done: ``module.stats()``, ``manager.stats()``. Cheap to take."""

    queued: int
    """Tasks waiting in the queue for a worker."""
    running: int
    """Tasks running now."""
    completed: int
    """Runs that returned (each run of a recurring task counts)."""
    failed: int
    """Runs whose method or a callback raised, and that were not retried
    (a task with ``retry=`` counts its last failure only)."""
    cancelled: int
    """Tasks cancelled before they ran, and recurring tasks ended by a cancel."""
    peak_concurrency: int
    """The most workers at once so far (never above ``max_workers``)."""
    workers: int
    """Worker threads alive now."""
    pending_timers: int
    """Scheduled tasks waiting in the timer (recurring ones between runs, and
    tasks waiting to retry)."""
    retried: int = 0
    """Failed runs followed by a retry (``retry=``). (A default, so that
    ``Stats`` made by hand with the eight fields before it still work.)"""
    abandoned: int = 0
    """Runs given up past their ``time_limit=`` while still in code that
    cannot be interrupted (also counted in ``failed``): each left its thread
    in the call and gave its worker's place to a new thread, so until such a
    call returns the module has that many threads beyond ``max_workers``
    (none of them runs anything else)."""
    cluster: Optional["ClusterStats"] = None
    """With a broker, ``manager.stats()`` also reads the whole cluster from
    Redis (see :class:`ClusterStats`); None otherwise."""


@dataclasses.dataclass(frozen=True)
class ModuleLoad:
    """One module's tasks in Redis."""

    name: str
    queued: int
    """Sent and not yet claimed by any worker."""
    running: int
    """Claimed and not yet acknowledged (running, or held by a dead worker
    until its lease runs out)."""


@dataclasses.dataclass(frozen=True)
class Outcomes:
    """How many tasks ended each way: counts for totals, rates per minute
    (floats) for :attr:`TaskOutcomes.per_minute_1` and ``per_minute_5``."""

    succeeded: float
    """Runs that returned."""
    failed: float
    """Runs that failed with no retry left (or were given up past their
    ``time_limit=``)."""
    retried: float
    """Runs that failed and were scheduled again (``retry=``)."""
    dead_lettered: float
    """Tasks moved to the dead-letter set, for whatever reason."""
    cancelled: float
    """Tasks taken out of Redis by their handle's ``cancel()`` before any
    worker claimed them."""


@dataclasses.dataclass(frozen=True)
class TaskOutcomes:
    """How the tasks of one task name ended, cluster-wide: counted in Redis
    by the scripts that record each outcome, by every process sharing the
    broker prefix."""

    module: str
    name: str
    """The task's registered name (``Module.method`` or
    ``package.module:function``; never a ``name=`` label)."""
    total: Outcomes
    """Since the counters began (ints)."""
    per_minute_1: Outcomes
    """Per minute over the last minute, by Redis's clock."""
    per_minute_5: Outcomes
    """Per minute over the last 5 minutes."""


@dataclasses.dataclass(frozen=True)
class ScheduleInfo:
    """A shared recurring schedule in Redis."""

    key: str
    module: str
    name: str
    """The task it runs (``Module.method`` or ``package.module:function``)."""
    interval: float
    next_due: float
    """Seconds until its next tick."""
    paused: bool
    running: bool
    """A tick runs now (the next is skipped until it ends)."""
    ticks: int
    skipped: int
    """Ticks that did not run: the previous one still ran, the schedule was
    paused, a later tick ran for them (no burst), or (a calendar schedule)
    its misfire policy missed them."""
    failures: int
    cron: Optional[str] = None
    """A calendar schedule's cron expression (``interval`` is 0); None for
    an interval."""
    zone: Optional[str] = None
    """A calendar schedule's time zone (IANA name)."""
    next_run: Optional[datetime.datetime] = None
    """When its next tick is due, by Redis's clock, as an aware datetime:
    a calendar schedule's time (before its jitter) in its zone, an
    interval's in UTC."""
    coalesced: int = 0
    """Ticks folded into a later run (misfire policy coalesce)."""


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A task in the broker's dead-letter set
    (:meth:`TaskManager.dead_letters`)."""

    id: str
    """The task's id (the id its handle's result travels under)."""
    module: str
    name: str
    args: str
    """Its arguments as sent (JSON text; bytes that are not UTF-8 are
    shown as U+FFFD)."""
    reason: str
    """Why it is here: unreadable (what), a poison task (how many
    deliveries, and the last worker that died with it), retries used up,
    or no live worker can run it (``no live worker can run task
    <module>/<name>: none has read it for <n> s``)."""
    deliveries: int
    """How many times it was delivered to a worker (0 for a task no live
    worker could run)."""
    dead_at: float
    """When, in seconds since the epoch (Redis's clock)."""
    error: Optional[Tuple[str, str, str]] = None
    """For a task that used up its retries (``Retry(dead_letter=True)``):
    its last failure's exception type, message and traceback."""


@dataclasses.dataclass(frozen=True)
class ClaimedTask:
    """A task a worker claimed from Redis and has not yet acknowledged:
    running, or about to (:meth:`TaskManager.claimed_tasks`)."""

    id: str
    """Its id (its handle's ``task_id``)."""
    module: str
    name: str
    """The ``name=`` its submitter gave it, else its task name."""
    worker: str
    """The worker holding it (as :attr:`WorkerInfo.id`)."""
    held: float
    """Seconds since the worker claimed it or last renewed its lease (by
    Redis's clock)."""
    deliveries: int
    """How many times it was delivered (more than 1: taken over from a
    worker that died)."""


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """A worker process (one that claims tasks) seen in the last day."""

    id: str
    host: str
    pid: int
    modules: List[str]
    last_seen: float
    """Seconds since its last heartbeat (every third of the lease)."""
    alive: bool
    """Renewed within the lease. A worker that stopped cleanly is no longer
    listed: one listed and not alive died, or lost Redis."""
    running: int
    """Tasks it holds now."""
    reclaimed_from: int
    """Tasks other workers took over from it after it stopped renewing."""


@dataclasses.dataclass(frozen=True)
class ClusterStats:
    """The cluster sharing a broker and key prefix, as Redis saw it:
    ``manager.cluster_stats()`` (and ``manager.stats().cluster``)."""

    modules: List[ModuleLoad]
    delayed: int
    """One-shot tasks scheduled for later, not yet due."""
    schedules: List[ScheduleInfo]
    workers: List[WorkerInfo]
    """Live workers first."""
    reclaimed: int
    """Tasks taken over from dead workers, in all."""
    outcomes: List[TaskOutcomes] = dataclasses.field(default_factory=list)
    """How the tasks of each task name ended (totals and rates), by module
    and name."""
    dead_letters: int = 0
    """Tasks in the dead-letter set."""

    @property
    def queued(self) -> int:
        return sum(m.queued for m in self.modules)

    @property
    def running(self) -> int:
        return sum(m.running for m in self.modules)

    @classmethod
    def _from_core(cls, raw: Any) -> "ClusterStats":
        modules, delayed, schedules, workers, reclaimed, outcomes, dead_letters = raw
        return cls(
            [ModuleLoad(*m) for m in modules],
            delayed,
            [_schedule_info(s) for s in schedules],
            [WorkerInfo(*w) for w in workers],
            reclaimed,
            [
                TaskOutcomes(module, name, Outcomes(*total), Outcomes(*one), Outcomes(*five))
                for module, name, total, one, five in outcomes
            ],
            dead_letters,
        )


def _schedule_info(s: Any) -> ScheduleInfo:
    """A :class:`ScheduleInfo` from the core's tuple: ten fields, then
    (cron, zone, next run as a Unix timestamp, coalesced)."""
    key, module, name, interval, next_due, paused, running, ticks, skipped, failures, calendar = s
    cron, zone, next_run, coalesced = calendar
    return ScheduleInfo(
        key, module, name, interval, next_due, paused, running, ticks, skipped, failures,
        cron, zone, _aware(next_run, zone), coalesced,
    )


class ShutdownTimedOut(TimeoutError):
    """``shutdown(timeout=...)`` ran out of time: tasks were still running,
    or queued tasks had not started (or both).

    ``running`` lists the running ones as ``(id, name)`` pairs (match ``id``
    against a handle's ``id``); ``cancelled`` counts the queued tasks
    cancelled then. The message says which was left, e.g.
    ``shutdown timed out: 2 task(s) still running (a, b); no queued task was
    cancelled`` or ``shutdown timed out: 3 queued task(s) not started were
    cancelled; none was running``.
    """

    handed_back: int = 0
    """With a broker: the claimed tasks handed back to the cluster then."""

    def __init__(self, running: List[Tuple[int, str]], cancelled: int) -> None:
        # The core's words (err.rs), one text in both languages.
        super().__init__(_shutdown_timed_out_text(list(running), cancelled))
        self.running = running
        self.cancelled = cancelled
