"""A process's life as a worker: ``TaskManager.run_worker`` and the
``python -m taskmanager worker module:manager`` command around it.

The first SIGTERM or SIGINT drains: nothing more is claimed or started,
running tasks get ``drain_timeout`` seconds to finish (their leases kept
alive meanwhile, so no other process re-runs them), then what is still
unfinished is handed back to the cluster, where other workers run it at
once. A second signal hands everything back at once.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Optional

from ._types import ShutdownTimedOut

if TYPE_CHECKING:
    from ._api import TaskManager

LOG = logging.getLogger("taskmanager.worker")

# Exit statuses: drained; drain timed out (work handed back); stopped by a
# second signal (as after Ctrl-C).
DRAINED, TIMED_OUT, INTERRUPTED = 0, 1, 130


class _StopNow(BaseException):
    """Raised in the main thread by a second signal."""


def run_worker(manager: "TaskManager", drain_timeout: float, concurrency: Optional[int]) -> int:
    """See :meth:`TaskManager.run_worker`."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_worker() must be called from the main thread (it handles SIGTERM and SIGINT)")
    if concurrency is not None:
        for module in manager._live_modules():
            module._tm_core.set_max_workers(concurrency)
            module.max_workers = concurrency
        manager._default.set_max_workers(concurrency)
        manager.max_workers = concurrency
    # Being a worker is this process's role, whatever the shared program
    # built (a submit_only manager, for its web processes).
    manager._core.set_submit_only(False)
    signals = 0
    stop = threading.Event()

    def on_signal(signum: int, frame: Optional[FrameType]) -> None:
        nonlocal signals
        signals += 1
        name = signal.Signals(signum).name
        if signals == 1:
            LOG.warning(
                "%s received: draining (running tasks get %.1f s); signal again to stop at once", name, drain_timeout
            )
            stop.set()
        else:
            raise _StopNow(name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    core = manager._core
    try:
        manager.start_thread()
        LOG.info("worker %d ready: %s", os.getpid(), "; ".join(manager._runs()))
        while not stop.wait(0.5):
            pass
        core.begin_shutdown(False)
        try:
            # The core's one drain loop; a second signal's _StopNow comes
            # out of it (signal handlers run between its steps).
            core.drain(drain_timeout, ShutdownTimedOut)
        except ShutdownTimedOut as timed_out:
            LOG.warning("drain timed out: %d task(s) handed back to the cluster", timed_out.handed_back)
            return TIMED_OUT
        return DRAINED
    except _StopNow as stopped:
        core.begin_shutdown(True)
        back = core.hand_back()
        LOG.warning("%s received again: %d task(s) handed back to the cluster", stopped, back)
        return INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def load(target: str, verb: str = "worker", need_broker: bool = True) -> "TaskManager":
    """The TaskManager named ``package.module:attribute`` (with a broker,
    unless ``need_broker`` is false)."""
    from ._api import TaskManager

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit(f"taskmanager {verb}: expected module:attribute (like app.tasks:manager), got {target!r}")
    # As `python -m`, uvicorn and celery do: the program's own modules import.
    sys.path.insert(0, os.getcwd())
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise SystemExit(f"taskmanager {verb}: {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(found, TaskManager):
        raise SystemExit(f"taskmanager {verb}: {target} is a {type(found).__name__}, not a TaskManager")
    if need_broker and found._broker is None:
        raise SystemExit(
            f"taskmanager {verb}: {target} has no broker; this command works on a TaskManager(broker=...)"
        )
    return found
