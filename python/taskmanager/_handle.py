"""Handles: what every submission returns, a :class:`concurrent.futures.Future`
whose ``cancel()`` reaches the core; settled by the native half
(``bindings/python/src/future.rs``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from concurrent.futures import _base
from typing import Any, List, Optional, SupportsFloat, SupportsIndex, Union

from ._taskmanager import RecurringCore, TaskCore

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
    while the task has not started. ``running()`` is True while a worker
    runs it; with a broker, while a worker (in any process) has claimed it
    and its result has not come, which each call asks Redis.

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
            # Watched from now on: a broker handle's native half holds it
            # until it is settled (before, it held it weakly, so that a
            # handle its user dropped is freed at once). A settled one is
            # held by nothing: no call (wait() makes a lock for each handle).
            if self._state not in _DONE_STATES:
                pin = getattr(self._core, "pin", None)
                if pin is not None:
                    pin(self)
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
        state = self._state
        core = self._core
        if state == _PENDING and isinstance(core, TaskCore) and core.broker_id is not None:
            # Sent through a broker: the run starts in whichever worker
            # claims it, unseen here, so the state stays pending until the
            # result comes. Redis is asked, and only when someone asks (see
            # TaskHandle::is_running in the core: telling every start would
            # cost every task a Redis command).
            return core.running()
        return state == _RUNNING

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

    @property
    def task_id(self) -> Optional[str]:
        """With a broker, the task's id there: any process with the manager
        can look it up (:meth:`TaskManager.result`,
        :meth:`TaskManager.task_state`), e.g. a later web request. None for
        a task run in this process."""
        core = self._core
        return getattr(core, "broker_id", None)

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
        """Ticks that will never run: a run overran them (no catch-up
        burst), the task was paused, or they misfired (``misfire=``)."""
        return self._core.skipped_ticks if self._core is not None else 0

    @property
    def coalesced_ticks(self) -> int:
        """Ticks folded into a late run instead of running on their own
        (``misfire="coalesce"``, a cron task's default)."""
        return self._core.coalesced_ticks if self._core is not None else 0

    @property
    def last_exception(self) -> Optional[BaseException]:
        """The exception of the latest failed run, if any."""
        return self._core.last_exception if self._core is not None else None

    def __repr__(self) -> str:
        state = "paused" if self.paused and not self.done() else self._state.lower()
        return f"<RecurringHandle {self.name!r} {state} runs={self.runs} failures={self.failures}>"
