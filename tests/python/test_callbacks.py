"""Callbacks: forms accepted, order, the value they receive, and what a
failing callback does."""

import logging
import threading

import pytest

from taskmanager import TaskManager

from _util import SOON, Recorder, wait_until


def tagged(log, tag):
    def cb(value):
        log.append((tag, value))

    return cb


@pytest.mark.parametrize("form", [list, tuple])
def test_callbacks_sequence_in_order(module, form):
    log = []
    h = module.add_task(lambda: {"v": 1}, callback=form([tagged(log, "a"), tagged(log, "b"), tagged(log, "c")]))
    value = h.result(SOON)
    assert value == {"v": 1}
    assert [t for t, _ in log] == ["a", "b", "c"]
    # Every callback gets the very object the method returned.
    assert all(v is value for _, v in log)


def test_single_callable_callback(module):
    seen = Recorder()
    assert module.add_task(lambda: 5, callback=seen).result(SOON) == 5
    assert seen.snapshot() == [5]


@pytest.mark.parametrize("callback", [None, [], ()])
def test_no_callbacks(module, callback):
    assert module.add_task(lambda: "v", callback=callback).result(SOON) == "v"


def test_callback_gets_none_return(module):
    seen = Recorder()
    module.add_task(lambda: None, callback=seen).result(SOON)
    assert seen.snapshot() == [None]


def test_callbacks_run_before_handle_is_done(module):
    """result() returning means every callback has run."""
    log = []

    def slow_cb(value):
        threading.Event().wait(0.05)
        log.append(value)

    h = module.add_task(lambda: 3, callback=[slow_cb, slow_cb])
    assert h.result(SOON) == 3
    assert log == [3, 3]


def test_callback_bound_methods_and_builtins(module):
    out = []
    h = module.add_task(lambda: "x", callback=(out.append, str.upper))
    assert h.result(SOON) == "x"
    assert out == ["x"]


def test_callback_same_callable_twice(module):
    seen = Recorder()
    module.add_task(lambda: 1, callback=[seen, seen]).result(SOON)
    assert seen.snapshot() == [1, 1]


def test_callbacks_not_called_when_method_raises(module):
    seen = Recorder()
    h = module.add_task(lambda: 1 / 0, callback=[seen])
    with pytest.raises(ZeroDivisionError):
        h.result(SOON)
    assert seen.snapshot() == []


def test_callbacks_on_schedule_and_dict_forms(manager, module):
    seen = Recorder()
    manager.add_task({"method": lambda: "d", "callback": [seen]}).result(SOON)
    manager.schedule_task({"method": lambda: "s", "delay": 0.01, "callback": (seen,)}).result(SOON)
    module.schedule_task(lambda: "m", 0.01, callback=seen).result(SOON)
    assert sorted(seen.snapshot()) == ["d", "m", "s"]


def test_recurring_callbacks_each_run(module):
    seen = Recorder()
    count = iter(range(1000))
    h = module.schedule_task(lambda: next(count), 0.02, reoccurring=True, callback=seen)
    assert wait_until(lambda: len(seen) >= 3)
    h.cancel()
    values = seen.snapshot()
    assert values[:3] == [0, 1, 2]


class CallbackError(Exception):
    pass


def failing_callback(value):
    raise CallbackError(f"callback failed on {value}")


def test_failing_callback_logged_later_ones_run_result_raises(module, caplog):
    caplog.set_level(logging.ERROR, logger="taskmanager")
    after = Recorder()
    before = Recorder()

    def second_failure(value):
        raise KeyError("second")

    h = module.add_task(lambda: 9, callback=[before, failing_callback, after, second_failure, after])
    with pytest.raises(CallbackError, match="callback failed on 9") as info:
        h.result(SOON)
    # The first callback exception is the handle's, the same object each time.
    assert h.exception() is info.value
    assert before.snapshot() == [9]
    assert after.snapshot() == [9, 9]  # later callbacks still ran
    records = [r for r in caplog.records if r.name == "taskmanager"]
    assert len(records) == 2
    assert all(r.levelno >= logging.ERROR for r in records)
    assert records[0].exc_info is not None and records[0].exc_info[1] is info.value
    assert isinstance(records[1].exc_info[1], KeyError)


def test_failing_callback_log_has_traceback(module, caplog):
    """The log record of a failing callback carries its traceback (not only
    the exception's type and message), so the failing line can be found."""
    caplog.set_level(logging.ERROR, logger="taskmanager")
    h = module.add_task(lambda: 1, callback=failing_callback)
    with pytest.raises(CallbackError):
        h.result(SOON)
    (record,) = [r for r in caplog.records if r.name == "taskmanager"]
    assert record.exc_info is not None
    assert record.exc_info[2] is not None, "exc_info carries no traceback"
    assert "Traceback (most recent call last)" in caplog.text
    assert "failing_callback" in caplog.text


def test_failing_callback_does_not_break_worker(single, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    with pytest.raises(CallbackError):
        single.add_task(lambda: 1, callback=failing_callback).result(SOON)
    assert single.add_task(lambda: "alive").result(SOON) == "alive"


def test_failing_callback_in_recurring_counts_as_failure(module, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    h = module.schedule_task(lambda: 1, 0.02, reoccurring=True, callback=failing_callback)
    assert wait_until(lambda: h.failures >= 2)
    h.cancel()
    assert isinstance(h.last_exception, CallbackError)
    assert h.runs >= h.failures >= 2


def test_callback_may_submit_more_work(manager, module):
    follow = []
    done = threading.Event()

    def cb(value):
        follow.append(module.add_task(lambda: value * 2, callback=lambda v: done.set()))

    module.add_task(lambda: 21, callback=cb).result(SOON)
    assert done.wait(SOON)
    assert follow[0].result(SOON) == 42
