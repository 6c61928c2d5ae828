"""The broker mode's exceptions: what a submitter's handle raises when its
task failed in another process, or its result cannot arrive. (What may run
by name is ``taskmanager._names``'s; how, ``bindings/python/src/broker.rs``.)

Arguments and results cross as JSON: ``None``, bools, ints, finite floats,
strings, lists, tuples (they arrive as lists) and dicts with string keys;
anything else is a TypeError at the call, naming the argument.
"""

from __future__ import annotations

from ._taskmanager import SharedSchedule

__all__ = ["RemoteError", "ResultLost", "SharedSchedule"]


class RemoteError(Exception):
    """A task failed in the worker process that ran it: ``kind`` is the
    exception's type name there, ``message`` its text and ``remote_traceback``
    the worker's traceback text."""

    def __init__(self, kind: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.remote_traceback = remote_traceback


class DeadLettered(Exception):
    """The task was moved to the broker's dead-letter set instead of
    running: it could not be read, every worker it was delivered to died
    running it (a poison task), its retries were used up
    (``Retry(dead_letter=True)``), or no live worker could run its name for
    ``broker_unrunnable_after``. ``reason`` says which; the task stays
    in the set to be looked at and requeued
    (:meth:`TaskManager.dead_letters`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the task was moved to the dead-letter set: {reason}")
        self.reason = reason


class ResultLost(Exception):
    """The task went to the broker but its result cannot reach this handle
    (the manager shut down first, or the result expired); the task itself
    ran, or runs, elsewhere."""


