"""A task's exception keeps its traceback: in the log and when re-raised."""

import logging
import traceback

import pytest

from taskmanager import Module, TaskManager


def failing_deep_inside():
    raise KeyError("missing")


def task():
    failing_deep_inside()


def test_result_reraises_with_the_tasks_traceback_and_the_log_has_it(caplog):
    manager = TaskManager()
    manager.start_thread()
    try:
        module = Module(task_manager=manager, max_workers=1)
        with caplog.at_level(logging.ERROR, logger="taskmanager"):
            handle = module.add_task(task)
            with pytest.raises(KeyError) as info:
                handle.result(timeout=5)
        frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
        assert "task" in frames and "failing_deep_inside" in frames, frames
        records = [r for r in caplog.records if r.name == "taskmanager"]
        assert records, "the failure was logged"
        assert "failing_deep_inside" in caplog.text, "the log shows where it failed"
    finally:
        manager.shutdown()


def test_a_callbacks_exception_keeps_its_traceback():
    def bad_callback(value):
        failing_deep_inside()

    manager = TaskManager()
    manager.start_thread()
    try:
        handle = Module(task_manager=manager, max_workers=1).add_task(lambda: 1, callback=bad_callback)
        exc = handle.exception(timeout=5)
        assert isinstance(exc, KeyError)
        frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
        assert "bad_callback" in frames and "failing_deep_inside" in frames, frames
    finally:
        manager.shutdown()
