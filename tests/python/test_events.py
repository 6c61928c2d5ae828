"""Events: a listener on the manager, and the taskmanager.events logger."""

import logging
import threading

import pytest

from taskmanager import Event, Module, TaskManager

from _util import SOON, wait_until


@pytest.fixture
def heard():
    events = []
    lock = threading.Lock()

    def listener(event):
        with lock:
            events.append(event)

    m = TaskManager(listener=listener)
    m.start_thread()
    try:
        yield m, events
    finally:
        m.shutdown(cancel_pending=True)


def kinds(events, task_id):
    return [e.kind for e in list(events) if e.task_id == task_id]


def test_listener_hears_runs_failures_and_cancels(heard, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    manager, events = heard
    module = Module(task_manager=manager, max_workers=1)
    ok = module.add_task(lambda: 1, name="ok")
    ok.result(SOON)
    assert wait_until(lambda: kinds(events, ok.id) == ["started", "finished"])
    finished = [e for e in events if e.task_id == ok.id][-1]
    assert isinstance(finished, Event) and finished.task_name == "ok" and finished.duration >= 0
    assert finished.level == logging.DEBUG
    bad = module.add_task(lambda: 1 / 0)
    bad.exception(SOON)
    assert wait_until(lambda: kinds(events, bad.id) == ["started", "failed"])
    far = module.schedule_task(print, 3600)
    far.cancel()
    assert wait_until(lambda: kinds(events, far.id) == ["cancelled"])
    rec = module.schedule_task(print, 3600, reoccurring=True)
    rec.pause()
    rec.resume()
    assert wait_until(lambda: kinds(events, rec.id) == ["paused", "resumed"])
    rec.cancel()


def test_events_logger_at_info_logs_pauses(caplog):
    caplog.set_level(logging.INFO, logger="taskmanager.events")
    with TaskManager() as manager:
        rec = manager.schedule_task({"method": print, "delay": 3600, "reoccurring": True, "name": "poll"})
        rec.pause()
        assert wait_until(lambda: "task poll" in caplog.text and "paused" in caplog.text), caplog.text
        rec.cancel()


# The listener's exception is reported through sys.unraisablehook.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_raising_listener_does_not_stop_tasks():
    def listener(event):
        raise RuntimeError("listener bug")

    with TaskManager(listener=listener) as manager:
        assert manager.add_task({"method": lambda: "still ran"}).result(SOON) == "still ran"


def test_listener_must_be_callable():
    with pytest.raises(TypeError, match="listener"):
        TaskManager(listener=5)
