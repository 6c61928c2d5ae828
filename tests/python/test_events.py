"""Events: a listener on the manager, and the taskmanager.events logger.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks are methods of the module-level
``Heard`` Module subclass (and ``@manager.task`` functions), with JSON
arguments. With a broker this process is the worker, so its listener
hears the runs it claims.
"""

import logging
import threading

import pytest

from taskmanager import Event, Module, RemoteError

from _util import SOON, wait_until


class Heard(Module):
    def one(self):
        return 1

    def divide(self, a, b):
        return a / b

    def nothing(self):
        return None


def nothing():
    return None


def still_ran():
    return "still ran"


def listening(tm):
    """A started manager of this test's mode with a listener, its Heard
    module, and the list of events the listener heard."""
    events = []
    lock = threading.Lock()

    def listener(event):
        with lock:
            events.append(event)

    manager = tm(listener=listener)
    return manager, Heard(task_manager=manager, max_workers=1), events


def about(event, handle):
    """Whether ``event`` tells of ``handle``'s task: by its number where
    it ran in this process, else by its broker id (a worker's run has a
    number of its own)."""
    if handle.task_id is None:
        return event.task_id == handle.id
    return event.broker_id == handle.task_id


def kinds(events, handle):
    return [e.kind for e in list(events) if about(e, handle)]


def test_listener_hears_runs_failures_and_cancels(tm, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    manager, module, events = listening(tm)
    ok = module.add_task(module.one, name="ok")
    assert ok.result(SOON) == 1
    assert wait_until(lambda: kinds(events, ok) == ["started", "finished"]), events
    finished = [e for e in events if about(e, ok)][-1]
    assert isinstance(finished, Event) and finished.task_name == "ok" and finished.duration >= 0
    assert finished.level == logging.DEBUG
    bad = module.add_task(module.divide, args=(1, 0))
    exc = bad.exception(SOON)
    if tm.mode == "inprocess":
        assert isinstance(exc, ZeroDivisionError), repr(exc)
    else:
        assert isinstance(exc, RemoteError) and exc.kind == "ZeroDivisionError", repr(exc)
    assert wait_until(lambda: kinds(events, bad) == ["started", "failed"]), events
    far = module.schedule_task(module.nothing, 3600)
    assert far.cancel()
    assert wait_until(lambda: kinds(events, far) == ["cancelled"]), events
    rec = module.schedule_task(module.nothing, 3600, reoccurring=True, name="rec")
    assert rec.pause()
    assert not rec.pause(), "paused already: this call changed nothing"
    assert rec.resume()
    assert not rec.resume()
    heard = lambda: [e.kind for e in list(events) if e.task_name == "rec"]  # noqa: E731
    assert wait_until(lambda: heard() == ["paused", "resumed"]), events
    assert rec.cancel()
    assert wait_until(lambda: heard() == ["paused", "resumed", "cancelled"]), events


def test_events_logger_at_info_logs_pauses(tm, caplog):
    caplog.set_level(logging.INFO, logger="taskmanager.events")
    manager = tm()
    manager.task(nothing)
    rec = manager.schedule_task({"method": nothing, "delay": 3600, "reoccurring": True, "name": "poll"})
    assert rec.pause()
    assert wait_until(lambda: "task poll" in caplog.text and "paused" in caplog.text), caplog.text
    rec.cancel()


# The listener's exception is reported through sys.unraisablehook.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_raising_listener_does_not_stop_tasks(tm):
    def listener(event):
        raise RuntimeError("listener bug")

    manager = tm(listener=listener)
    manager.task(still_ran)
    assert manager.add_task({"method": still_ran}).result(SOON) == "still ran"


def test_listener_must_be_callable(tm):
    with pytest.raises(TypeError, match="listener"):
        tm(listener=5, start=False)
