"""The core's log records in Python's ``logging``.

The Rust core logs through the ``log`` crate; the native module hands each
record to the Python logger named after its module path
(``taskmanager::broker::claimer`` goes to ``taskmanager.broker.claimer``),
at its level (TRACE as 5, below DEBUG), from a thread of its own
(``bindings/python/src/logbridge.rs``). Events are not among them: the
manager logs those on ``taskmanager.events`` itself.

What the core formats at all is decided by the levels the ``taskmanager``
loggers have when the package is imported and when a ``TaskManager`` is
made: configure logging before creating the manager. Python's own level
checks then apply as usual.
"""

from __future__ import annotations

import logging

from ._taskmanager import _set_log_level

_ROOT = "taskmanager"
_EVENTS = "taskmanager.events"


def sync_level() -> None:
    """Tells the core the most verbose level any ``taskmanager`` logger
    wants now (``taskmanager.events`` and its children aside: events have
    their own path)."""
    levels = [logging.getLogger(_ROOT).getEffectiveLevel()]
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        events = name == _EVENTS or name.startswith(_EVENTS + ".")
        if name.startswith(_ROOT + ".") and not events and isinstance(logger, logging.Logger):
            levels.append(logger.getEffectiveLevel())
    _set_log_level(min(levels))


sync_level()
