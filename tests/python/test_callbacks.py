"""Callbacks: forms accepted, order, the value they receive, and what a
failing callback does.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks and callbacks are methods of the
module-level ``Calls`` Module subclass, with JSON arguments, and record
what they see under the test's ``token`` (_util.SEEN). The others use
lambdas, builtins or closures (which only run in-process) or a
RecurringHandle's counters."""

import itertools
import logging
import threading

import pytest

from taskmanager import Module, RemoteError, TaskManager

from _util import SOON, Recorder, note, seen, wait_until

# Counters of recurring tests, by token.
COUNTERS = {}
# Handles a callback submitted, by token.
FOLLOW = {}


class Calls(Module):
    """Tasks and callbacks of the tests run in both modes. Tasks return
    ``[token, value]`` (their callbacks find the test by it)."""

    def tagged(self, token, value):
        return [token, value]

    def fail_with(self, token, message):
        raise ZeroDivisionError(message)

    def count(self, token):
        return [token, next(COUNTERS[token])]

    def a(self, result):
        note(result[0], ("a", result[1]))

    def b(self, result):
        note(result[0], ("b", result[1]))

    def c(self, result):
        note(result[0], ("c", result[1]))

    def slow(self, result):
        threading.Event().wait(0.05)
        note(result[0], ("slow", result[1]))

    def failing(self, result):
        note(result[0], ("failing", result[1]))
        raise CallbackError(f"callback failed on {result[1]}")

    def second_failure(self, result):
        raise KeyError("second")

    def submit_more(self, result):
        token, value = result
        FOLLOW[token] = self.add_task(self.tagged, args=[token, value * 2], callback=self.a)


def calls_of(tm, max_workers=4):
    manager = tm()
    return manager, Calls(task_manager=manager, max_workers=max_workers)


def values(token):
    return [v for _, v in seen(token)]


def tagged(log, tag):
    def cb(value):
        log.append((tag, value))

    return cb


@pytest.mark.parametrize("form", [list, tuple])
def test_callbacks_sequence_in_order(tm, token, form):
    _, calls = calls_of(tm)
    h = calls.add_task(calls.tagged, args=[token, {"v": 1}], callback=form([calls.a, calls.b, calls.c]))
    assert h.result(SOON) == [token, {"v": 1}]
    assert seen(token) == [("a", {"v": 1}), ("b", {"v": 1}), ("c", {"v": 1})]


@pytest.mark.parametrize("form", [list, tuple])
def test_callbacks_get_the_very_object_returned(module, form):
    """In-process only: with a broker the value crosses as JSON (the
    handle's result is a copy)."""
    log = []
    h = module.add_task(lambda: {"v": 1}, callback=form([tagged(log, "a"), tagged(log, "b"), tagged(log, "c")]))
    value = h.result(SOON)
    assert value == {"v": 1}
    assert [t for t, _ in log] == ["a", "b", "c"]
    # Every callback gets the very object the method returned.
    assert all(v is value for _, v in log)


def test_single_callable_callback(tm, token):
    _, calls = calls_of(tm)
    assert calls.add_task(calls.tagged, args=[token, 5], callback=calls.a).result(SOON) == [token, 5]
    assert seen(token) == [("a", 5)]


@pytest.mark.parametrize("callback", [None, [], ()])
def test_no_callbacks(tm, token, callback):
    _, calls = calls_of(tm)
    assert calls.add_task(calls.tagged, args=[token, "v"], callback=callback).result(SOON) == [token, "v"]


def test_callback_gets_none_return(module):
    """In-process only: a callback that finds its test by the value needs
    a value with the token in it."""
    seen = Recorder()
    module.add_task(lambda: None, callback=seen).result(SOON)
    assert seen.snapshot() == [None]


def test_callbacks_run_before_handle_is_done(tm, token):
    """result() returning means every callback has run."""
    _, calls = calls_of(tm)
    h = calls.add_task(calls.tagged, args=[token, 3], callback=[calls.slow, calls.slow])
    assert h.result(SOON) == [token, 3]
    assert seen(token) == [("slow", 3), ("slow", 3)]


def test_callback_bound_methods_and_builtins(module):
    out = []
    h = module.add_task(lambda: "x", callback=(out.append, str.upper))
    assert h.result(SOON) == "x"
    assert out == ["x"]


def test_callback_same_callable_twice(tm, token):
    _, calls = calls_of(tm)
    calls.add_task(calls.tagged, args=[token, 1], callback=[calls.a, calls.a]).result(SOON)
    assert seen(token) == [("a", 1), ("a", 1)]


def test_callbacks_not_called_when_method_raises(tm, token):
    _, calls = calls_of(tm)
    h = calls.add_task(calls.fail_with, args=[token, "division"], callback=[calls.a])
    if tm.mode == "inprocess":
        with pytest.raises(ZeroDivisionError):
            h.result(SOON)
    else:
        with pytest.raises(RemoteError) as info:
            h.result(SOON)
        assert info.value.kind == "ZeroDivisionError"
    assert seen(token) == []


def test_callbacks_on_schedule_and_dict_forms(tm, token):
    manager, calls = calls_of(tm)
    manager.task(tagged_function)
    manager.add_task({"method": tagged_function, "args": [token, "d"], "callback": [calls.a]}).result(SOON)
    manager.schedule_task(
        {"method": tagged_function, "args": [token, "s"], "delay": 0.01, "callback": (calls.a,)}
    ).result(SOON)
    calls.schedule_task(calls.tagged, 0.01, args=[token, "m"], callback=calls.a).result(SOON)
    assert sorted(values(token)) == ["d", "m", "s"]


def tagged_function(token, value):
    return [token, value]


def test_recurring_callbacks_each_run(tm, token):
    _, calls = calls_of(tm)
    COUNTERS[token] = itertools.count()
    try:
        h = calls.schedule_task(calls.count, 0.02, args=[token], reoccurring=True, callback=calls.a)
        assert wait_until(lambda: len(seen(token)) >= 3)
        h.cancel()
        assert values(token)[:3] == [0, 1, 2]
    finally:
        COUNTERS.pop(token)


class CallbackError(Exception):
    pass


def failing_callback(value):
    raise CallbackError(f"callback failed on {value}")


def test_failing_callback_later_ones_run_result_raises(tm, token, caplog):
    caplog.set_level(logging.ERROR, logger="taskmanager")
    _, calls = calls_of(tm)
    h = calls.add_task(
        calls.tagged, args=[token, 9], callback=[calls.a, calls.failing, calls.b, calls.second_failure, calls.b]
    )
    if tm.mode == "inprocess":
        with pytest.raises(CallbackError, match="callback failed on 9") as info:
            h.result(SOON)
        # The first callback exception is the handle's, the same object each time.
        assert h.exception() is info.value
    else:
        with pytest.raises(RemoteError) as info:
            h.result(SOON)
        assert (info.value.kind, info.value.message) == ("CallbackError", "callback failed on 9")
    assert seen(token) == [("a", 9), ("failing", 9), ("b", 9), ("b", 9)]  # later callbacks still ran
    # Each failure is logged once, with its traceback, where it ran.
    records = [r for r in caplog.records if r.name == "taskmanager"]
    assert [type(r.exc_info[1]) for r in records] == [CallbackError, KeyError]
    assert all(r.levelno >= logging.ERROR for r in records)


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


def test_failing_callback_does_not_break_worker(tm, token, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    _, calls = calls_of(tm, max_workers=1)
    failed = calls.add_task(calls.tagged, args=[token, 1], callback=calls.failing)
    assert failed.exception(SOON) is not None
    assert calls.add_task(calls.tagged, args=[token, "alive"]).result(SOON) == [token, "alive"]


def test_failing_callback_in_recurring_counts_as_failure(module, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    h = module.schedule_task(lambda: 1, 0.02, reoccurring=True, callback=failing_callback)
    assert wait_until(lambda: h.failures >= 2)
    h.cancel()
    assert isinstance(h.last_exception, CallbackError)
    assert h.runs >= h.failures >= 2


def test_a_callback_may_submit_more_work(tm, token):
    _, calls = calls_of(tm)
    try:
        calls.add_task(calls.tagged, args=[token, 21], callback=calls.submit_more).result(SOON)
        assert FOLLOW[token].result(SOON) == [token, 42]
        assert wait_until(lambda: seen(token) == [("a", 42)]), seen(token)
    finally:
        FOLLOW.pop(token, None)


def test_callback_may_submit_more_work(manager, module):
    follow = []
    done = threading.Event()

    def cb(value):
        follow.append(module.add_task(lambda: value * 2, callback=lambda v: done.set()))

    module.add_task(lambda: 21, callback=cb).result(SOON)
    assert done.wait(SOON)
    assert follow[0].result(SOON) == 42
