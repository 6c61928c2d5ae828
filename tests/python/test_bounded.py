"""Bounded modules: ``Module(..., max_queued=N)`` refuses work with QueueFull
once N tasks wait, and never refuses or loses work it already accepted."""

import threading

import pytest

from taskmanager import Module, QueueFull

from _util import SOON, wait_until


def _busy(manager, gate, max_queued):
    """A one-worker bounded module whose worker is held on ``gate``."""
    module = Module(task_manager=manager, max_workers=1, max_queued=max_queued)
    started = threading.Event()
    module.add_task(lambda: (started.set(), gate.wait()))
    assert started.wait(SOON)
    return module


def test_full_queue_raises_queue_full_then_accepts_once_drained(manager, gate):
    module = _busy(manager, gate, 2)
    accepted = [module.add_task(lambda i=i: i) for i in range(2)]
    with pytest.raises(QueueFull, match="queue is full"):
        module.add_task(print)
    with pytest.raises(QueueFull):
        module.schedule_task(print, 0)
    with pytest.raises(QueueFull):
        module.schedule_task(print, 5, reoccurring=True, run_now=True)
    assert isinstance(QueueFull("x"), RuntimeError)
    gate.set()
    assert [h.result(SOON) for h in accepted] == [0, 1]
    assert module.add_task(lambda: "again").result(SOON) == "again"


def test_scheduled_tasks_come_due_into_a_full_queue(manager, gate):
    module = _busy(manager, gate, 1)
    module.add_task(lambda: None)
    later = [module.schedule_task(lambda i=i: i, 0.01) for i in range(3)]
    assert wait_until(lambda: module._tm_core.queued() == 4)
    gate.set()
    assert [h.result(SOON) for h in later] == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -1])
def test_max_queued_must_be_positive(manager, bad):
    with pytest.raises(ValueError, match="max_queued"):
        Module(task_manager=manager, max_workers=1, max_queued=bad)


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_max_queued_must_be_an_int(manager, bad):
    with pytest.raises(TypeError, match="max_queued"):
        Module(task_manager=manager, max_workers=1, max_queued=bad)
