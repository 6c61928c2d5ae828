"""Small helpers shared by the tests (imported as a plain module)."""

import importlib
import os
import subprocess
import sys
import threading
import time
import uuid
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


HERE = Path(__file__).resolve().parent


class Cluster:
    """Worker-command processes and a submitting manager sharing one prefix
    (``_worker_app.py``, configured through the environment)."""

    def __init__(self, url, tmp_path, **env):
        self.log = tmp_path / "runs.log"
        self.env = dict(os.environ, TM_URL=url, TM_PREFIX=uuid.uuid4().hex, TM_LOG=str(self.log))
        self.env.update({k: str(v) for k, v in env.items()})
        self.env["PYTHONPATH"] = os.pathsep.join([str(HERE), self.env.get("PYTHONPATH", "")])
        self.procs = []
        self.app = None

    def worker(self, *args, cwd=HERE, **env):
        """A worker-command process; ``env`` overrides the cluster's."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "taskmanager", "worker", "_worker_app:manager", *args],
            env=dict(self.env, **{k: str(v) for k, v in env.items()}),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def submitter(self):
        """The test process's own ``_worker_app`` (submit_only), started."""
        if self.app is None:
            self.app = import_fresh("_worker_app", self.env)
            self.app.manager.start_thread()
        return self.app

    def cli(self, verb, *args, timeout=60.0):
        """``python -m taskmanager VERB _worker_app:manager ARGS...``, run
        to its end (killed if it outlives ``timeout``)."""
        return subprocess.run(
            [sys.executable, "-m", "taskmanager", verb, "_worker_app:manager", *args],
            env=self.env,
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def lines(self, what):
        try:
            text = self.log.read_text()
        except FileNotFoundError:
            return []
        return [int(line.split()[0]) for line in text.splitlines() if f" {what} " in f"{line} "]

    def wait_lines(self, what, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while len(self.lines(what)) < n:
            assert time.monotonic() < deadline, f"never {n} x {what!r}: {self.log.read_text()}"
            time.sleep(0.01)

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()
        if self.app is not None:
            self.app.manager.shutdown(cancel_pending=True, timeout=10)
            sys.modules.pop("_worker_app", None)
