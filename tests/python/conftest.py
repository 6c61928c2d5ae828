"""Shared fixtures for the taskmanager Python suite.

Every test that needs a manager takes the ``manager`` fixture: a started
TaskManager that is shut down (cancelling what has not started) when the test
ends, after the ``gate`` event is set, so tasks blocked on the gate finish
and no thread leaks into the next test.

Tests that need Redis take ``redis_server``: a real ``redis-server`` on a
free loopback port without persistence (redis_harness.py), stopped when the
test ends, whatever its outcome. Without the binary they fail (never skip),
saying how to install it.
"""

import threading

import pytest

from taskmanager import Module, TaskManager

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
