"""Shared fixtures for the taskmanager Python suite.

Every test that needs a manager takes the ``manager`` fixture: a started
TaskManager that is shut down (cancelling what has not started) when the test
ends, after the ``gate`` event is set, so tasks blocked on the gate finish
and no thread leaks into the next test.

Tests that need Redis take ``redis_server``: a real ``redis-server`` on a
free loopback port without persistence (redis_harness.py), stopped when the
test ends, whatever its outcome. Without the binary they fail (never skip),
saying how to install it.

Tests of the public API that must behave alike with and without a broker
take ``tm``: a factory of started TaskManagers in the mode of the ``mode``
parameter, ``"inprocess"`` or ``"redis"`` (against one ``redis-server`` for
the session, each manager under a key prefix of its own). See ``tm``.
"""

import os
import threading
import uuid

import pytest

from taskmanager import Module, ShutdownTimedOut, TaskManager

from _util import Cluster, drop_token, new_token
from redis_harness import RedisServer, start_for_test


@pytest.fixture
def gate():
    """An event tasks can block on; set at teardown before shutdown."""
    return threading.Event()


@pytest.fixture
def manager(gate):
    m = TaskManager()
    m.start_thread()
    try:
        yield m
    finally:
        gate.set()
        m.shutdown(cancel_pending=True)


@pytest.fixture
def module(manager):
    """A module of four workers on the started manager."""
    return Module(task_manager=manager, max_workers=4)


@pytest.fixture
def single(manager):
    """A module with one worker: its queue runs strictly one at a time."""
    return Module(task_manager=manager, max_workers=1)


@pytest.fixture
def redis_server():
    """A started ``RedisServer`` (``url``, ``port``, ``command(*args)``,
    ``restart()``, ``kill()``); stopped and its directory removed at teardown."""
    server = start_for_test()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server_factory():
    """``make(*args, tls=False)`` starts a ``RedisServer`` with extra
    options (e.g. ``"--appendonly", "yes"``), with ``tls=True`` also on a
    TLS port; every one is stopped at teardown."""
    servers: "list[RedisServer]" = []

    def make(*args: str, tls: bool = False) -> RedisServer:
        server = start_for_test(*args, tls=tls)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# Both by default; scripts/test.sh runs the other CPython versions with
# TASKMANAGER_MODES=inprocess (the Redis mode's parity runs on the default
# interpreter; the broker's own test files still run on every version).
MODES = tuple(os.environ.get("TASKMANAGER_MODES", "inprocess,redis").split(","))
# How long a parity test's teardown waits for its managers' running tasks.
TEARDOWN_TIMEOUT = 10.0


@pytest.fixture(scope="session")
def session_redis():
    """One ``redis-server`` for every parity test of the session (started
    at the first that needs it); tests keep apart by key prefix. Fails
    (never skips) without the binary, as ``redis_server``."""
    server = start_for_test()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=MODES)
def mode(request):
    """The mode a parity test runs in: ``"inprocess"`` or ``"redis"``.
    Override per test with ``@pytest.mark.parametrize("mode", [...],
    indirect=True)`` (e.g. to mark one mode xfail)."""
    return request.param


@pytest.fixture
def tm(mode, request, gate):
    """``make(max_workers=None, start=True, **options)``: a TaskManager in
    this test's mode (with ``"redis"``, ``broker=`` the session's server and
    a fresh ``broker_prefix``; ``options`` go to the constructor), started
    unless ``start=False``. Also ``make.mode`` and ``make.url`` (the Redis
    URL, or None). At teardown ``gate`` is set, then each manager is shut
    down with ``cancel_pending=True`` within 10 s (a manager whose tasks are
    still running then fails the test with ShutdownTimedOut, never hangs
    it)."""
    url = request.getfixturevalue("session_redis").url if mode == "redis" else None
    made = []

    def make(max_workers=None, start=True, **options):
        if url is not None:
            options.setdefault("broker", url)
            options.setdefault("broker_prefix", f"parity-{uuid.uuid4().hex}")
        manager = TaskManager(max_workers, **options)
        made.append(manager)
        if start:
            manager.start_thread()
        return manager

    make.mode = mode
    make.url = url
    try:
        yield make
    finally:
        gate.set()
        errors = []
        for manager in made:
            try:
                manager.shutdown(cancel_pending=True, timeout=TEARDOWN_TIMEOUT)
            except ShutdownTimedOut as e:
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def token(tm):
    """A key into ``_util.SEEN`` (what the test's tasks saw: ``note``,
    ``seen``) and ``_util.GATES`` (an event its tasks may wait on), passed
    to tasks as a JSON argument. The gate opens at teardown, before the
    managers shut down (this fixture depends on ``tm``, so it is torn down
    first)."""
    key = new_token()
    try:
        yield key
    finally:
        drop_token(key)


@pytest.fixture
def cluster(redis_server, tmp_path):
    """``make(**env)``: a :class:`_util.Cluster` (worker-command processes
    of ``_worker_app.py`` and a submitting app, under a fresh key prefix)
    on ``redis_server``; every process it started is killed at teardown."""
    made = []

    def make(**env):
        c = Cluster(redis_server.url, tmp_path, **env)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.close()
