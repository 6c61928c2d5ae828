"""Small helpers shared by the tests (imported as a plain module)."""

import importlib
import os
import sys
import threading
import time
from pathlib import Path

# Generous upper bound for anything that should happen "soon": the CI
# machine has two cores and may be loaded.
SOON = 5.0


def wait_until(predicate, timeout=SOON, interval=0.01):
    """Polls ``predicate`` until it is true or ``timeout`` passes; returns
    its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Blocker:
    """A task that signals it started, then waits on an event."""

    def __init__(self, gate: threading.Event):
        self.gate = gate
        self.started = threading.Event()

    def __call__(self, value="blocked"):
        self.started.set()
        assert self.gate.wait(30), "gate never opened"
        return value


class Recorder:
    """A thread-safe list: calling it with one value appends and returns it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def __call__(self, value=None):
        with self.lock:
            self.items.append(value)
        return value

    def __len__(self):
        with self.lock:
            return len(self.items)

    def snapshot(self):
        with self.lock:
            return list(self.items)


def settle(read, quiet=0.1, timeout=SOON):
    """Waits until ``read()`` stops changing for ``quiet`` seconds (a run
    that was in progress at a cancel has finished); returns the value."""
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = read()
        if again == value:
            return value
        value = again
    return value


# State shared between a test and its tasks in both modes of the parity
# tests (conftest.py's ``tm`` and ``token``): with a broker a task gets only
# JSON arguments, so it finds the test's list and gate by a token. The
# worker is the test's own process, so it sees these dicts.
SEEN = {}
GATES = {}
_SEEN_LOCK = threading.Lock()


def note(token, value):
    """Appends ``value`` to what the test of ``token`` has seen."""
    with _SEEN_LOCK:
        SEEN[token].append(value)


def seen(token):
    """A copy of what the test of ``token`` has seen so far."""
    with _SEEN_LOCK:
        return list(SEEN[token])


def new_token():
    import uuid

    token = uuid.uuid4().hex
    with _SEEN_LOCK:
        SEEN[token] = []
    GATES[token] = threading.Event()
    return token


def drop_token(token):
    """Opens the token's gate and forgets its state."""
    GATES.pop(token).set()
    with _SEEN_LOCK:
        SEEN.pop(token, None)


def import_fresh(name, env):
    """Imports the test app module ``name`` (a file beside this one) anew,
    with ``env`` in ``os.environ`` while it runs (an app reads its settings
    there at import, as a worker process does), then restores the
    environment. Returns the module."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        here = str(Path(__file__).resolve().parent)
        if here not in sys.path:
            sys.path.insert(0, here)
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def runs(handle):
    """Runs of a recurring task: a RecurringHandle's ``runs``, a
    SharedSchedule's ticks run (cluster-wide; 0 once cancelled)."""
    from taskmanager import RecurringHandle

    if isinstance(handle, RecurringHandle):
        return handle.runs
    counts = handle.counts()
    return 0 if counts is None else counts[0]
