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
import math
import os
import threading
import weakref
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union, cast

from ._taskmanager import ManagerCore, ModuleCore, RecurringCore, TaskCore

__all__ = ["TaskManager", "Module", "TaskHandle", "RecurringHandle"]

Callback = Callable[[Any], Any]
Callbacks = Union[None, Callback, Sequence[Callback]]

# The largest delay the core's clock can hold from now, with room to spare:
# about 500 years.
_MAX_DELAY = 500 * 365 * 24 * 3600.0
# Worker threads start on demand, so a large cap costs nothing; this bound
# only keeps the number within what the core's counters hold.
_MAX_WORKERS = 2**31 - 1


# ---------------------------------------------------------------------------
# Argument checks: each error names the argument and what was expected.


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _check_method(method: Any, name: str = "method") -> Callable[..., Any]:
    if method is None:
        raise TypeError(f"{name} must be callable, got None")
    if not callable(method):
        raise TypeError(f"{name} must be callable, got {_type_name(method)}")
    return cast(Callable[..., Any], method)


def _check_args(args: object) -> Tuple[Any, ...]:
    if args is None:
        return ()
    if isinstance(args, (list, tuple)):
        return tuple(args)
    raise TypeError(f"args must be a list or tuple (or None), got {_type_name(args)}")


def _check_kwargs(kwargs: object) -> Optional[Dict[str, Any]]:
    if kwargs is None:
        return None
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a dict (or None), got {_type_name(kwargs)}")
    for key in kwargs:
        if not isinstance(key, str):
            raise TypeError(f"kwargs keys must be str, got {_type_name(key)} key {key!r}")
    return dict(kwargs) if kwargs else None


def _check_callbacks(callback: Any) -> List[Callback]:
    if callback is None:
        return []
    if isinstance(callback, (list, tuple)):
        for i, cb in enumerate(callback):
            if not callable(cb):
                raise TypeError(f"callback[{i}] must be callable, got {_type_name(cb)}")
        return list(callback)
    if callable(callback):
        return [callback]
    raise TypeError(f"callback must be callable, a list or tuple of callables, or None; got {_type_name(callback)}")


def _check_delay(delay: object) -> float:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"delay must be a number of seconds (int or float), got {_type_name(delay)}")
    try:
        seconds = float(delay)
    except OverflowError:
        raise ValueError(f"delay must be at most {_MAX_DELAY:.0f} seconds, got {delay!r}") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"delay must be finite, got {delay!r}")
    if seconds < 0:
        raise ValueError(f"delay must be >= 0, got {delay!r}")
    if seconds > _MAX_DELAY:
        raise ValueError(f"delay must be at most {_MAX_DELAY:.0f} seconds, got {delay!r}")
    return seconds


def _check_bool(value: object, name: str, default: Optional[bool] = None) -> bool:
    """A bool; None means ``default`` where there is one."""
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_type_name(value)}")
    return value


def _check_max_workers(max_workers: object, default: Optional[int] = None) -> int:
    if max_workers is None and default is not None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int >= 1, got {_type_name(max_workers)}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    if max_workers > _MAX_WORKERS:
        raise ValueError(f"max_workers must be at most {_MAX_WORKERS}, got {max_workers}")
    return max_workers


# ---------------------------------------------------------------------------
# Handles.


class TaskHandle(concurrent.futures.Future[Any]):
    """The handle of a task: a :class:`concurrent.futures.Future` whose
    ``cancel()`` also takes the task out of the manager, and which can be
    awaited from asyncio.

    ``result(timeout=None)`` returns the method's value or re-raises its
    exception (or the first callback's exception); ``cancel()`` succeeds
    while the task has not started.
    """

    _core: Union[TaskCore, RecurringCore, None]

    def __init__(self) -> None:
        super().__init__()
        self._core = None

    def cancel(self) -> bool:
        core = self._core
        if core is not None and core.cancel():
            return True
        return self.cancelled()

    def __await__(self):  # type: ignore[no-untyped-def]
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.lower()}>"


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
        if core is not None and core.cancel():
            # A run may still be finishing; no new one starts.
            concurrent.futures.Future.cancel(self)
            return True
        return self.cancelled()

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
        """Ticks skipped because a run overran them (no catch-up burst)."""
        return self._core.skipped_ticks if self._core is not None else 0

    @property
    def last_exception(self) -> Optional[BaseException]:
        """The exception of the latest failed run, if any."""
        return self._core.last_exception if self._core is not None else None

    def __repr__(self) -> str:
        return f"<RecurringHandle {self._state.lower()} runs={self.runs} failures={self.failures}>"


# ---------------------------------------------------------------------------
# Manager and modules.

_ADD_KEYS = frozenset({"method", "args", "kwargs", "callback"})
_SCHEDULE_KEYS = _ADD_KEYS | {"delay", "reoccurring", "run_now", "recurring"}


def _check_task_dict(task: object, allowed: FrozenSet[str], call: str) -> Mapping[str, Any]:
    if not isinstance(task, Mapping):
        raise TypeError(f"{call}() takes a dict of the task's keys, got {_type_name(task)}")
    unknown = sorted(str(k) for k in task if k not in allowed)
    if unknown:
        raise ValueError(f"{call}() got unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}")
    if "method" not in task:
        raise ValueError(f"{call}() task is missing the required key 'method'")
    return task


def _reoccurring(reoccurring: object, recurring: object) -> bool:
    """The spec spells it ``reoccurring``; ``recurring`` is accepted too."""
    spec = _check_bool(reoccurring, "reoccurring", default=False)
    if recurring is None:
        return spec
    alias = _check_bool(recurring, "recurring")
    if spec and not alias:
        raise ValueError("reoccurring and recurring disagree; give only one")
    return alias


class Module:
    """A group of tasks that never runs more than ``max_workers`` of them at
    once: the spec's ``Module(task_manager=..., max_workers=...)``.

    Subclass it as the spec does (``super().__init__(**kwargs)``) and submit
    the subclass's methods as tasks and callbacks. Each module has its own
    worker threads, so a busy module never delays another.
    """

    def __init__(self, task_manager: Optional["TaskManager"] = None, max_workers: Optional[int] = None) -> None:
        if task_manager is None:
            raise TypeError("Module() needs task_manager=, the TaskManager that runs its tasks")
        if not isinstance(task_manager, TaskManager):
            raise TypeError(f"task_manager must be a TaskManager, got {_type_name(task_manager)}")
        self.task_manager = task_manager
        self.max_workers = _check_max_workers(max_workers, default=task_manager.max_workers)
        self._tm_core = ModuleCore(task_manager._core, self.max_workers)

    def add_task(
        self,
        method: Callable[..., Any],
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
    ) -> TaskHandle:
        """Runs ``method(*args, **kwargs)`` as soon as a worker is free; each
        callback then receives its return value."""
        return _add(self._tm_core, method, args, kwargs, callback, delay=None)

    def schedule_task(
        self,
        method: Callable[..., Any],
        delay: float,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
        reoccurring: bool = False,
        run_now: bool = False,
        *,
        recurring: Optional[bool] = None,
    ) -> TaskHandle:
        """Runs ``method`` ``delay`` seconds from now; with ``reoccurring``,
        every ``delay`` seconds (fixed rate: runs never overlap, missed ticks
        are skipped, never bursted); with ``run_now``, also at once.

        A one-shot task with ``run_now=True`` runs once, now (the spec's "only
        execute once"). Returns a :class:`RecurringHandle` for recurring
        tasks.
        """
        return _schedule(self._tm_core, method, delay, args, kwargs, callback, reoccurring, run_now, recurring)

    def __repr__(self) -> str:
        core = self._tm_core
        return (
            f"<{type(self).__name__} max_workers={self.max_workers} "
            f"workers={core.worker_count()} queued={core.queued()}>"
        )


def _add(core: ModuleCore, method: object, args: object, kwargs: object, callback: object, delay: Optional[float]) -> TaskHandle:
    method = _check_method(method)
    call_args = _check_args(args)
    call_kwargs = _check_kwargs(kwargs)
    callbacks = _check_callbacks(callback)
    handle = TaskHandle()
    handle._core = core.add(handle, method, call_args, call_kwargs, callbacks, delay)
    return handle


def _schedule(
    core: ModuleCore,
    method: object,
    delay: object,
    args: object,
    kwargs: object,
    callback: object,
    reoccurring: object,
    run_now: object,
    recurring: object,
) -> TaskHandle:
    method = _check_method(method)
    seconds = _check_delay(delay)
    call_args = _check_args(args)
    call_kwargs = _check_kwargs(kwargs)
    callbacks = _check_callbacks(callback)
    repeat = _reoccurring(reoccurring, recurring)
    now = _check_bool(run_now, "run_now", default=False)
    if not repeat:
        handle = TaskHandle()
        handle._core = core.add(handle, method, call_args, call_kwargs, callbacks, None if now else seconds)
        return handle
    if seconds == 0:
        raise ValueError("delay must be > 0 for a reoccurring task (it is the interval between runs)")
    recurring_handle = RecurringHandle()
    recurring_handle._core = core.add_recurring(recurring_handle, method, call_args, call_kwargs, callbacks, seconds, now)
    return recurring_handle


class TaskManager:
    """Queues tasks and runs them when due: the spec's ``TaskManager``.

    ``start_thread()`` starts running in the background. Tasks given to the
    manager itself run on its default module (``max_workers`` wide; by
    default ``min(32, os.cpu_count() + 4)``, as ThreadPoolExecutor).

    A started manager keeps the interpreter alive while it has work (like a
    non-daemon thread) until :meth:`shutdown`; Ctrl-C then stops it.
    ``start_thread(daemon=True)`` opts out.
    """

    def __init__(self, max_workers: Optional[int] = None) -> None:
        default = min(32, (os.cpu_count() or 1) + 4)
        self.max_workers = _check_max_workers(max_workers, default=default)
        self._core = ManagerCore(self.max_workers)
        self._default = self._core.default_module()
        self._started = False
        self._daemon = False
        _managers.add(self)

    def start_thread(self, daemon: bool = False) -> None:
        """Starts running tasks in the background. Tasks added before wait
        until now. Calling it again is harmless."""
        daemon = _check_bool(daemon, "daemon")
        if self._started:
            return
        self._core.start()
        self._daemon = daemon
        self._started = True

    def add_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Queues a task given as a dict with the spec's keys: ``method``
        (required), ``args``, ``kwargs``, ``callback``."""
        t = _check_task_dict(task, _ADD_KEYS, "add_task")
        return _add(self._default, t["method"], t.get("args"), t.get("kwargs"), t.get("callback"), delay=None)

    def schedule_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Schedules a task given as a dict with the spec's keys: ``method``
        and ``delay`` (required), ``args``, ``kwargs``, ``callback``,
        ``reoccurring``, ``run_now``."""
        t = _check_task_dict(task, _SCHEDULE_KEYS, "schedule_task")
        if "delay" not in t:
            raise ValueError("schedule_task() task is missing the required key 'delay'")
        return _schedule(
            self._default,
            t["method"],
            t["delay"],
            t.get("args"),
            t.get("kwargs"),
            t.get("callback"),
            t.get("reoccurring", False),
            t.get("run_now", False),
            t.get("recurring"),
        )

    def shutdown(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Stops accepting tasks (later ones raise RuntimeError), runs every
        task already due, cancels scheduled and recurring tasks not yet due.

        With ``cancel_pending=True``, tasks queued but not started are
        cancelled too. With ``wait=True``, returns once every running task
        has finished (Ctrl-C interrupts the wait); inside a task it cannot
        wait for itself and returns at once.
        """
        wait = _check_bool(wait, "wait")
        cancel_pending = _check_bool(cancel_pending, "cancel_pending")
        self._core.begin_shutdown(cancel_pending)
        if not wait or self._core.is_manager_thread():
            return
        while not self._core.await_termination(0.1):
            pass

    def __enter__(self) -> "TaskManager":
        self.start_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        state = "shut down" if self._core.is_shut_down() else "running" if self._started else "not started"
        return f"<TaskManager {state} max_workers={self.max_workers} outstanding={self._core.outstanding()}>"


# ---------------------------------------------------------------------------
# Process lifetime.

_managers: "weakref.WeakSet[TaskManager]" = weakref.WeakSet()


def _at_exit() -> None:
    """Runs as the interpreter begins to exit, before it joins non-daemon
    threads: waits while non-daemon managers have work, then shuts every
    manager down, so no worker runs Python code after finalization begins.
    Ctrl-C ends the wait quietly and cancels what has not started."""
    managers = list(_managers)
    interrupted = False
    try:
        for manager in managers:
            if manager._started and not manager._daemon:
                while not manager._core.wait_idle(0.1):
                    pass
    except KeyboardInterrupt:
        interrupted = True
    for manager in managers:
        cancel = interrupted or manager._daemon or not manager._started
        try:
            manager._core.begin_shutdown(cancel)
            manager._core.await_termination(1.0 if cancel else 30.0)
        except KeyboardInterrupt:
            pass


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]
