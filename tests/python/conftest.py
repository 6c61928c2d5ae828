"""Shared fixtures for the taskmanager Python suite.

Every test that needs a manager takes the ``manager`` fixture: a started
TaskManager that is shut down (cancelling what has not started) when the test
ends, after the ``gate`` event is set, so tasks blocked on the gate finish
and no thread leaks into the next test.
"""

import threading

import pytest

from taskmanager import Module, TaskManager


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
