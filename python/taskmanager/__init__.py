"""Background work inside one program: the PythonTaskManager spec's API on a Rust core.

    from taskmanager import TaskManager, Module

    manager = TaskManager()
    manager.start_thread()
    module = Module(task_manager=manager, max_workers=5)
    module.add_task(print, args=("hello",))
    module.schedule_task(print, 1, args=("every second",), reoccurring=True)

Every call returns a handle that is a :class:`concurrent.futures.Future`
(and can be awaited). Exceptions in tasks and callbacks are logged on the
``taskmanager`` logger, stored on the handle, and never stop a worker or a
recurring task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import threading
import time
import weakref
from concurrent.futures import _base
from typing import (
    Any,
    Callable,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    SupportsFloat,
    SupportsIndex,
    Tuple,
    Union,
)

from . import _lifetime
from ._taskmanager import ManagerCore, ModuleCore, QueueFull, RecurringCore, TaskCore

__all__ = [
    "TaskManager",
    "Module",
    "TaskHandle",
    "RecurringHandle",
    "QueueFull",
    "ShutdownTimedOut",
    "Stats",
    "TaskInfo",
    "Event",
]

Callback = Callable[[Any], Any]
Callbacks = Union[None, Callback, Sequence[Callback]]

# Worker threads start on demand, so a large cap costs nothing; this bound
# only keeps the number within what the core's counters hold.
_MAX_WORKERS = 2**31 - 1


# ---------------------------------------------------------------------------
# Argument checks: each error names the argument and what was expected. The
# checks of each submission's arguments run in the native half, where they
# are cheap; these are for constructors and flags.


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _check_bool(value: object, name: str, default: Optional[bool] = None) -> bool:
    """A bool; None means ``default`` where there is one."""
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_type_name(value)}")
    return value


def _check_max_workers(max_workers: object, default: Optional[int] = None, name: str = "max_workers") -> int:
    if max_workers is None and default is not None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"{name} must be an int >= 1, got {_type_name(max_workers)}")
    if max_workers < 1:
        raise ValueError(f"{name} must be >= 1, got {max_workers}")
    if max_workers > _MAX_WORKERS:
        raise ValueError(f"{name} must be at most {_MAX_WORKERS}, got {max_workers}")
    return max_workers


# ---------------------------------------------------------------------------
# Handles.


_PENDING = _base.PENDING
_RUNNING = _base.RUNNING
_FINISHED = _base.FINISHED
_CANCELLED_STATES = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED)
_DONE_STATES = (_base.CANCELLED, _base.CANCELLED_AND_NOTIFIED, _base.FINISHED)


class TaskHandle(concurrent.futures.Future[Any]):
    """The handle of a task: a :class:`concurrent.futures.Future` whose
    ``cancel()`` also takes the task out of the manager, and which can be
    awaited from asyncio.

    ``result(timeout=None)`` returns the method's value or re-raises its
    exception (or the first callback's exception); ``cancel()`` succeeds
    while the task has not started.

    Handles are made by the manager, not by users. Unlike a plain Future, a
    handle makes its lock only when something needs it (waiting on it, a
    done-callback, :func:`concurrent.futures.wait`); until then the native
    half settles it directly, under the GIL (see ``bindings/python/src/future.rs``).
    """

    # Defaults for the state Future.__init__ would set; instances override
    # them as the task goes on. Nothing is allocated per handle until used.
    _state = _PENDING
    _result: Any = None
    _exception: Optional[BaseException] = None
    _cond: Any = None
    _core: Union[TaskCore, RecurringCore, None] = None

    def __init__(self) -> None:
        pass  # Future.__init__ would make the lock now; see the class docs.

    @property
    def _condition(self) -> Any:  # type: ignore[override]
        cond = self._cond
        if cond is None:
            # A finished handle never changes state again, so nothing will
            # wait on or notify its lock: a plain RLock (a tenth of the cost)
            # serves, e.g. for concurrent.futures.wait over many handles.
            new = threading.RLock() if self._state == _FINISHED else threading.Condition()
            # setdefault is atomic: racing first users share one lock.
            cond = self.__dict__.setdefault("_cond", new)
        return cond

    @property
    def _waiters(self) -> List[Any]:  # type: ignore[override]
        return self.__dict__.setdefault("_waiters_list", [])

    @property
    def _done_callbacks(self) -> List[Any]:  # type: ignore[override]
        return self.__dict__.setdefault("_done_callbacks_list", [])

    # Reading the state needs no lock under the GIL; these spare making one.
    def done(self) -> bool:
        return self._state in _DONE_STATES

    def cancelled(self) -> bool:
        return self._state in _CANCELLED_STATES

    def running(self) -> bool:
        return self._state == _RUNNING

    def cancel(self) -> bool:
        core = self._core
        # The core marks the handle cancelled (state CANCELLED_AND_NOTIFIED,
        # waiters woken, done-callbacks run), as for every cancellation.
        if core is not None and core.cancel(self):
            return True
        return self.cancelled()

    def __await__(self):  # type: ignore[no-untyped-def]
        return asyncio.wrap_future(self).__await__()

    @property
    def name(self) -> str:
        """The task's name: the ``name=`` it was given, else its method's
        ``__qualname__``."""
        return self._core.name if self._core is not None else "?"

    @property
    def id(self) -> int:
        """The task's number, unique in the process."""
        return self._core.id if self._core is not None else 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._state.lower()}>"


class RecurringHandle(TaskHandle):
    """The handle of a recurring task. It stays pending while the task
    recurs; ``cancel()`` stops all future runs (a run in progress finishes)
    and the handle becomes cancelled. Shutdown cancels it too.

    An exception in a run is logged and kept in :attr:`last_exception`; the
    schedule goes on.
    """

    _core: Optional[RecurringCore]

    def cancel(self) -> bool:
        core = self._core
        # The handle is cancelled at once (waiters woken, done-callbacks
        # run), though a run may still be finishing; no new one starts.
        if core is not None and core.cancel(self):
            return True
        return self.cancelled()

    def set_interval(self, seconds: Union[SupportsFloat, SupportsIndex]) -> None:
        """Changes the interval at once: the next run moves to one new
        interval after the previous tick (or to now, if that has passed),
        and the grid goes on from there. A run in progress keeps its time.

        ``seconds`` is a real number, at least 0.001 (1 ms, the shortest
        interval a recurring task may have)."""
        if self._core is not None:
            self._core.set_interval(seconds)

    def pause(self) -> bool:
        """Pauses the task: its ticks keep their times but skip the method
        (each counts in :attr:`skipped_ticks`) until :meth:`resume`. A run
        in progress finishes. False if already paused or ended."""
        return self._core.pause() if self._core is not None else False

    def resume(self) -> bool:
        """Resumes a paused task at its next tick on the original grid (no
        burst for the ticks it missed). False if not paused or ended."""
        return self._core.resume() if self._core is not None else False

    @property
    def paused(self) -> bool:
        """Whether the task is paused."""
        return self._core.paused if self._core is not None else False

    @property
    def runs(self) -> int:
        """Runs finished so far, failed ones included."""
        return self._core.runs if self._core is not None else 0

    @property
    def failures(self) -> int:
        """Runs that raised (in the method or a callback)."""
        return self._core.failures if self._core is not None else 0

    @property
    def skipped_ticks(self) -> int:
        """Ticks skipped because a run overran them (no catch-up burst) or
        because the task was paused."""
        return self._core.skipped_ticks if self._core is not None else 0

    @property
    def last_exception(self) -> Optional[BaseException]:
        """The exception of the latest failed run, if any."""
        return self._core.last_exception if self._core is not None else None

    def __repr__(self) -> str:
        state = "paused" if self.paused and not self.done() else self._state.lower()
        return f"<RecurringHandle {self.name!r} {state} runs={self.runs} failures={self.failures}>"


# ---------------------------------------------------------------------------
# Manager and modules.


_EVENTS = logging.getLogger("taskmanager.events")
_TRACE = 5  # below DEBUG: a run's start


@dataclasses.dataclass(frozen=True)
class Event:
    """Something that happened to a task, as a ``TaskManager(listener=...)``
    receives it (and the ``taskmanager.events`` logger logs it)."""

    kind: str
    """``started``, ``finished``, ``failed``, ``skipped``, ``cancelled``,
    ``paused`` or ``resumed``."""
    level: int
    """Its ``logging`` level: 5 (below DEBUG) for ``started``, DEBUG for
    ``finished`` and ``cancelled``, INFO for ``skipped``, ``paused`` and
    ``resumed``, WARNING for ``failed``."""
    task_id: int
    task_name: str
    duration: Optional[float] = None
    """Seconds the run took (``finished``, ``failed``)."""
    error: Optional[str] = None
    """A Rust-side failure's description; a Python exception is on the
    task's handle (and logged on the ``taskmanager`` logger)."""
    ticks: Optional[int] = None
    """How many ticks were skipped (``skipped``)."""


def _event_forwarder(listener: Optional[Callable[[Event], Any]]) -> Callable[..., None]:
    def forward(
        kind: str,
        level: int,
        task_id: int,
        name: str,
        duration: Optional[float],
        error: Optional[str],
        ticks: Optional[int],
    ) -> None:
        if _EVENTS.isEnabledFor(level):
            detail = f" in {duration:.6f} s" if duration is not None else ""
            detail += f": {error}" if error else ""
            detail += f" ({ticks} tick(s))" if ticks is not None else ""
            _EVENTS.log(level, "task %s (#%d) %s%s", name, task_id, kind, detail)
        if listener is not None:
            listener(Event(kind, level, task_id, name, duration, error, ticks))

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
    """Runs whose method or a callback raised."""
    cancelled: int
    """Tasks cancelled before they ran, and recurring tasks ended by a cancel."""
    peak_concurrency: int
    """The most workers at once so far (never above ``max_workers``)."""
    workers: int
    """Worker threads alive now."""
    pending_timers: int
    """Scheduled tasks waiting in the timer (recurring ones between runs)."""


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

    def __init__(self, running: List[Tuple[int, str]], cancelled: int) -> None:
        if cancelled:
            left_queued = f"{cancelled} queued task(s) not started were cancelled"
        else:
            left_queued = "no queued task was cancelled"
        if running:
            names = ", ".join(name for _, name in running)
            message = f"{len(running)} task(s) still running ({names}); {left_queued}"
        elif cancelled:
            message = f"{left_queued}; none was running"
        else:
            message = "no task was running or queued; the manager's threads had not all exited"
        super().__init__(f"shutdown timed out: {message}")
        self.running = running
        self.cancelled = cancelled


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds (or None), got {_type_name(timeout)}")
    if not timeout >= 0 or timeout == float("inf"):
        raise ValueError(f"timeout must be a finite number >= 0, got {timeout!r}")
    return float(timeout)

_ADD_KEYS = frozenset({"method", "args", "kwargs", "callback", "name"})
_SCHEDULE_KEYS = _ADD_KEYS | {"delay", "reoccurring", "run_now", "recurring"}


def _key_name(key: object) -> str:
    """An unknown key as an error names it: its str, quoted; a key that
    cannot be printed by its type, so the error is still a ValueError."""
    try:
        return repr(str(key))
    except Exception:
        return f"<unprintable {_type_name(key)} key>"


def _check_task_dict(task: object, allowed: FrozenSet[str], call: str) -> Mapping[str, Any]:
    if not isinstance(task, Mapping):
        raise TypeError(f"{call}() takes a dict of the task's keys, got {_type_name(task)}")
    unknown = sorted(_key_name(k) for k in task if k not in allowed)
    if unknown:
        raise ValueError(f"{call}() got unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if "method" not in task:
        raise ValueError(f"{call}() task is missing the required key 'method'")
    return task


class Module:
    """A group of tasks that never runs more than ``max_workers`` of them at
    once: the spec's ``Module(task_manager=..., max_workers=...)``.

    Subclass it as the spec does (``super().__init__(**kwargs)``) and submit
    the subclass's methods as tasks and callbacks. Each module has its own
    worker threads, so a busy module never delays another.

    With ``max_queued=N`` the module's queue is bounded: once N tasks wait,
    ``add_task`` (and a zero-delay or ``run_now`` submission) raises
    :class:`QueueFull` instead of letting the queue grow. Scheduled tasks
    that come due and recurring runs are never refused (they were accepted
    when scheduled), so the queue may briefly hold more than N.
    """

    def __init__(
        self,
        task_manager: Optional["TaskManager"] = None,
        max_workers: Optional[int] = None,
        max_queued: Optional[int] = None,
    ) -> None:
        if task_manager is None:
            raise TypeError("Module() needs task_manager=, the TaskManager that runs its tasks")
        if not isinstance(task_manager, TaskManager):
            raise TypeError(f"task_manager must be a TaskManager, got {_type_name(task_manager)}")
        self.task_manager = task_manager
        self.max_workers = _check_max_workers(max_workers, default=task_manager.max_workers)
        self.max_queued = None if max_queued is None else _check_max_workers(max_queued, name="max_queued")
        self._tm_core = ModuleCore(task_manager._core, self.max_workers, self.max_queued, type(self).__name__)

    def add_task(
        self,
        method: Callable[..., Any],
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
        *,
        name: Optional[str] = None,
    ) -> TaskHandle:
        """Runs ``method(*args, **kwargs)`` as soon as a worker is free; each
        callback then receives its return value. ``name`` names the task in
        reports (default: the method's ``__qualname__``).

        ``method`` (and each callback) may be an ``async def`` function: the
        coroutine it returns is run to completion on the worker, on an
        asyncio event loop the worker thread keeps for its tasks, and its
        value is the task's result. Pass the function, not a coroutine
        object (``add_task(f)``, not ``add_task(f())``): that is a
        TypeError."""
        return self._tm_core.add_task(method, args, kwargs, callback, name)

    def schedule_task(
        self,
        method: Callable[..., Any],
        delay: Union[SupportsFloat, SupportsIndex],
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
        reoccurring: Optional[bool] = None,
        run_now: Optional[bool] = None,
        *,
        recurring: Optional[bool] = None,
        name: Optional[str] = None,
    ) -> TaskHandle:
        """Runs ``method`` ``delay`` seconds from now; with ``reoccurring``,
        every ``delay`` seconds (fixed rate: runs never overlap, missed ticks
        are skipped, never bursted); with ``run_now``, also at once.

        ``delay`` is a real number of seconds (int, float, ``Decimal``,
        ``Fraction``, numpy scalars; not bool): from 0 for a one-shot task,
        at least 0.001 (1 ms) for a reoccurring one. ``recurring`` is an
        alias of ``reoccurring``; given both, they must agree (None, the
        default, means not given). A one-shot task with ``run_now=True``
        runs once, now (the spec's "only execute once"). Returns a
        :class:`RecurringHandle` for recurring tasks.

        ``method`` and callbacks may be ``async def`` functions, as in
        :meth:`add_task`; each run of a recurring one runs its coroutine.
        """
        return self._tm_core.schedule_task(method, delay, args, kwargs, callback, reoccurring, run_now, recurring, name)

    def stats(self) -> Stats:
        """This module's :class:`Stats`."""
        return Stats(*self._tm_core.stats())

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<{type(self).__name__} max_workers={self.max_workers} workers={s.workers} "
            f"running={s.running} queued={s.queued} timers={s.pending_timers} "
            f"completed={s.completed} failed={s.failed} cancelled={s.cancelled}>"
        )


class TaskManager:
    """Queues tasks and runs them when due: the spec's ``TaskManager``.

    ``start_thread()`` starts running in the background. Tasks given to the
    manager itself run on its default module (``max_workers`` wide; by
    default ``min(32, os.cpu_count() + 4)``, as ThreadPoolExecutor).

    A started manager keeps the interpreter alive while it has work (like a
    non-daemon thread) until :meth:`shutdown`; Ctrl-C then stops it, and the
    process ends with SIGINT's status. ``start_thread(daemon=True)`` opts
    out: at exit, its queued tasks are cancelled and its running ones get
    ``taskmanager._lifetime.EXIT_TIMEOUT`` (1 s) before they are abandoned.
    After ``os.fork()``, a manager started in the parent refuses work in the
    child (``RuntimeError``); create one in the child.
    """

    def __init__(self, max_workers: Optional[int] = None, listener: Optional[Callable[[Event], Any]] = None) -> None:
        default = min(32, (os.cpu_count() or 1) + 4)
        self.max_workers = _check_max_workers(max_workers, default=default)
        if listener is not None and not callable(listener):
            raise TypeError(f"listener must be callable (or None), got {_type_name(listener)}")
        # Events go to the listener, and to the taskmanager.events logger at
        # the level it has now (read once: configure logging first). By
        # default (WARNING) none are forwarded: failures are logged, with
        # their traceback, on the taskmanager logger already.
        level = _TRACE if listener is not None else _EVENTS.getEffectiveLevel()
        forward = _event_forwarder(listener) if listener is not None or level <= logging.INFO else None
        self._core = ManagerCore(self.max_workers, forward, level)
        self._default = self._core.default_module()
        self._started = False
        self._daemon = False
        self._pid: Optional[int] = None  # the process that started it
        _lifetime.register(self)

    def start_thread(self, daemon: bool = False) -> None:
        """Starts running tasks in the background. Tasks added before wait
        until now. Calling it again is harmless."""
        daemon = _check_bool(daemon, "daemon")
        if self._started:
            if _lifetime.inherited(self):
                raise RuntimeError(
                    f"this TaskManager was started in process {self._pid}, the parent of this forked "
                    "process, and its threads do not exist here; create a new TaskManager in the child"
                )
            return
        self._core.start()
        self._daemon = daemon
        self._started = True
        self._pid = os.getpid()

    def add_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Queues a task given as a dict with the spec's keys: ``method``
        (required), ``args``, ``kwargs``, ``callback``; as
        :meth:`Module.add_task` (``async def`` methods included)."""
        t = _check_task_dict(task, _ADD_KEYS, "add_task")
        return self._default.add_task(t["method"], t.get("args"), t.get("kwargs"), t.get("callback"), t.get("name"))

    def schedule_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Schedules a task given as a dict with the spec's keys: ``method``
        and ``delay`` (required), ``args``, ``kwargs``, ``callback``,
        ``reoccurring``, ``run_now``; as :meth:`Module.schedule_task`."""
        t = _check_task_dict(task, _SCHEDULE_KEYS, "schedule_task")
        if "delay" not in t:
            raise ValueError("schedule_task() task is missing the required key 'delay'")
        return self._default.schedule_task(
            t["method"],
            t["delay"],
            t.get("args"),
            t.get("kwargs"),
            t.get("callback"),
            t.get("reoccurring"),
            t.get("run_now"),
            t.get("recurring"),
            t.get("name"),
        )

    def shutdown(self, wait: bool = True, cancel_pending: bool = False, timeout: Optional[float] = None) -> None:
        """Stops accepting tasks (later ones raise RuntimeError), runs every
        task already due, cancels scheduled and recurring tasks not yet due.

        With ``cancel_pending=True``, tasks queued but not started are
        cancelled too. With ``wait=True``, returns once every running task
        has finished (Ctrl-C interrupts the wait); inside a task it cannot
        wait for itself and returns at once.

        With ``timeout`` (seconds), waits at most that long: if tasks are
        still running then, the queued ones are cancelled and
        :class:`ShutdownTimedOut` is raised, naming the running ones (which
        finish in the background and report through their handles).
        """
        wait = _check_bool(wait, "wait")
        cancel_pending = _check_bool(cancel_pending, "cancel_pending")
        deadline = None if timeout is None else time.monotonic() + _check_timeout(timeout)
        self._core.begin_shutdown(cancel_pending)
        if not wait or self._core.is_manager_thread():
            return
        while True:
            step = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            if self._core.await_termination(step):
                return
            if deadline is not None and time.monotonic() >= deadline:
                cancelled = self._core.cancel_pending()
                raise ShutdownTimedOut(self._core.running_tasks(), cancelled)

    def stats(self) -> Stats:
        """The :class:`Stats` of all this manager's modules, summed (its
        default module included)."""
        return Stats(*self._core.stats())

    def get_tasks(self) -> List[TaskInfo]:
        """The scheduled one-shot tasks not yet due and every recurring task
        that has not ended, soonest first, as :class:`TaskInfo`."""
        return [TaskInfo(*t) for t in self._core.tasks()]

    def __enter__(self) -> "TaskManager":
        self.start_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        state = "shut down" if self._core.is_shut_down() else "running" if self._started else "not started"
        s = self.stats()
        return (
            f"<TaskManager {state} max_workers={self.max_workers} outstanding={self._core.outstanding()} "
            f"running={s.running} queued={s.queued} timers={s.pending_timers} completed={s.completed} "
            f"failed={s.failed}>"
        )
