"""The edges of the process's life: interpreter exit, Ctrl-C and fork.

At exit, in order:

1. ``threading``'s exit hook (before non-daemon threads are joined): a
   started non-daemon manager keeps the interpreter alive while it has
   work, like a non-daemon thread. Then every manager shuts down: a
   non-daemon one runs what is queued; a daemon one, or any manager after
   Ctrl-C, cancels what has not started and gives its running tasks at most
   ``EXIT_TIMEOUT`` seconds.
2. ``atexit`` (registered at import, so after handlers registered later):
   managers made since step 1 are stopped the same way; then worker threads
   are barred from the interpreter for good (see
   ``bindings/python/src/lifetime.rs``). A task still running then is
   abandoned: if it is inside Python it stops for good the next time it
   needs the interpreter, as CPython stops daemon threads, and the process
   exits around it.
3. If Ctrl-C interrupted step 1, the process ends with SIGINT's status
   (130 in a shell) once the interpreter has finished exiting, as it would
   for a KeyboardInterrupt in the main thread. One Ctrl-C is enough; a
   second one during the bounded wait ends that wait at once.

After ``os.fork()``, a manager started in the parent has no threads in the
child: the child refuses its submissions (RuntimeError) and its exit never
waits for it. A manager created but never started before the fork works in
the child (the pre-fork server pattern: create at import, start in each
worker).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Callable, List, Optional

from ._taskmanager import _after_fork_in_child, _exit_with_sigint_at_end, _finalizing

if TYPE_CHECKING:
    from . import TaskManager

EXIT_TIMEOUT = 1.0
"""Seconds a daemon manager's running tasks (or any manager's, after Ctrl-C)
get to finish at interpreter exit before they are abandoned."""

_managers: "weakref.WeakSet[TaskManager]" = weakref.WeakSet()
_interrupted = False


def register(manager: "TaskManager") -> None:
    _managers.add(manager)


def inherited(manager: "TaskManager") -> bool:
    """Whether ``manager`` was started by another process (this is a fork)."""
    return manager._pid is not None and manager._pid != os.getpid()


_stopped: "weakref.WeakSet[TaskManager]" = weakref.WeakSet()


def _ours() -> List["TaskManager"]:
    """The managers of this process not stopped by an exit hook yet."""
    return [m for m in list(_managers) if not inherited(m) and m not in _stopped]


def _main_interrupted() -> bool:
    """Whether the main thread ended with an uncaught KeyboardInterrupt: one
    Ctrl-C, which must not then wait for a non-daemon manager's work."""
    if hasattr(sys, "ps1"):  # interactive: last_value is any earlier error
        return False
    return isinstance(getattr(sys, "last_value", None), KeyboardInterrupt)


def _every() -> List["TaskManager"]:
    """Every manager of this process, stopped already or not."""
    return [m for m in list(_managers) if not inherited(m)]


# Ctrl-C during the exit hooks. Once they begin, SIGINT only records that it
# came, except while a hook waits, where it also ends the wait: a
# KeyboardInterrupt landing anywhere else (between two calls, in a loop
# over the managers) would escape the hook half done.
_waiting = False


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    if _waiting:
        raise KeyboardInterrupt


def _take_sigint() -> None:
    """Takes SIGINT over for the exit hooks, if it has Python's default
    handler (a program that ignores Ctrl-C, or handles it itself, keeps
    its way)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_sigint)
    except (ValueError, OSError):  # not the main thread: nothing to take
        pass


def _wait(step: Callable[[], bool], deadline: Optional[float]) -> bool:
    """Calls ``step`` until it returns True, ``deadline`` passes (False) or
    Ctrl-C comes (False)."""
    global _waiting
    _waiting = True
    try:
        while not step():
            if deadline is not None and time.monotonic() >= deadline:
                return False
        return True
    except KeyboardInterrupt:
        return False
    finally:
        _waiting = False


def _stop(managers: List["TaskManager"], cancel_all: bool = False) -> None:
    """Shuts ``managers`` down. A daemon or never-started manager (every
    one, with ``cancel_all`` or after Ctrl-C) cancels what has not started
    and gives its running tasks ``EXIT_TIMEOUT``; a non-daemon one runs what
    is queued and is waited for until it ends, or until Ctrl-C, which then
    cancels everything not started and bounds the rest."""

    def bounded(manager: "TaskManager") -> bool:
        return cancel_all or _interrupted or manager._daemon or not manager._started

    for manager in managers:
        _stopped.add(manager)
        manager._core.begin_shutdown(bounded(manager))
    deadline = time.monotonic() + EXIT_TIMEOUT
    for manager in managers:
        limit = deadline if bounded(manager) else None
        if not _wait(lambda: manager._core.await_termination(0.05), limit) and limit is None and _interrupted:
            return _stop(_every(), cancel_all=True)
        # A bounded wait that ran out abandons the rest: see step 2 above.


def _at_threading_exit() -> None:
    global _interrupted
    _take_sigint()
    if _main_interrupted():
        _interrupted = True
    managers = _ours()
    for manager in managers:
        if manager._started and not manager._daemon and not _interrupted:
            _wait(lambda: manager._core.wait_idle(0.1), None)
    _stop(_every() if _interrupted else managers)


def _at_exit() -> None:
    _take_sigint()
    try:
        _stop(_ours(), cancel_all=True)  # those made since the threading hook
    finally:
        _finalizing()
        if _interrupted:
            _exit_with_sigint_at_end()


def _after_fork() -> None:
    _after_fork_in_child()


threading._register_atexit(_at_threading_exit)  # type: ignore[attr-defined]
atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
