"""Cancelling scheduled and recurring tasks; RecurringHandle's counters.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks are methods of the module-level ``Ran``
Module subclass (and the ``@manager.task`` function ``ran``), with JSON
arguments, recording their runs under the test's ``token`` (_util.SEEN).
Per mode by design: a recurring task's handle is a ``RecurringHandle``
(a Future, cancelled for good) in-process and a ``SharedSchedule`` with a
broker (not a Future: ``cancel()`` removes it from Redis and is True only
if it still existed; ``counts()`` is None afterwards). A RecurringHandle's
counters (runs, failures, last_exception) stay in-process."""

import concurrent.futures
import logging
import time

import pytest

from taskmanager import Module, RecurringHandle, SharedSchedule

from _util import SOON, note, runs, seen, settle, wait_until


class Ran(Module):
    def ran(self, token, value=None):
        note(token, value)
        return value


def ran(token, value=None):
    note(token, value)
    return value


def ran_of(tm):
    manager = tm()
    manager.task(ran)
    return manager, Ran(task_manager=manager, max_workers=4)


def assert_recurring_cancelled(mode, h):
    """A cancelled recurring task's handle, in each mode's form."""
    if mode == "inprocess":
        assert isinstance(h, RecurringHandle)
        assert h.cancelled() and h.done()
        with pytest.raises(concurrent.futures.CancelledError):
            h.result(timeout=SOON)
    else:
        assert isinstance(h, SharedSchedule)
        assert h.counts() is None  # gone from Redis


def test_cancel_scheduled_one_shot_before_it_runs(tm, token):
    _, module = ran_of(tm)
    h = module.schedule_task(module.ran, 0.3, args=(token, "no"))
    assert h.cancel() is True
    assert h.cancelled() and h.done() and not h.running()
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)
    time.sleep(0.5)  # past the delay
    assert seen(token) == []


def test_cancel_scheduled_in_dict_form(tm, token):
    manager, _ = ran_of(tm)
    h = manager.schedule_task({"method": ran, "args": [token], "delay": 0.2})
    assert h.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)
    time.sleep(0.35)
    assert seen(token) == []


def test_cancel_one_of_many_scheduled(tm, token):
    _, module = ran_of(tm)
    hs = [module.schedule_task(module.ran, 0.1, args=(token, i)) for i in range(5)]
    assert hs[2].cancel()
    for i, h in enumerate(hs):
        if i != 2:
            assert h.result(SOON) == i
    assert sorted(seen(token)) == [0, 1, 3, 4]


def test_cancel_scheduled_after_it_ran_returns_false(tm, token):
    _, module = ran_of(tm)
    h = module.schedule_task(module.ran, 0.01, args=(token, "done"))
    assert h.result(SOON) == "done"
    assert h.cancel() is False
    assert not h.cancelled()


def test_cancel_recurring_before_first_run(tm, token):
    _, module = ran_of(tm)
    h = module.schedule_task(module.ran, 0.1, args=(token,), reoccurring=True)
    assert h.cancel() is True
    assert_recurring_cancelled(tm.mode, h)
    time.sleep(0.3)
    assert seen(token) == []
    assert runs(h) == 0


def test_cancel_recurring_twice(tm, token):
    _, module = ran_of(tm)
    h = module.schedule_task(module.ran, 0.02, args=(token,), reoccurring=True)
    assert wait_until(lambda: runs(h) >= 1)
    assert h.cancel() is True
    # Again: True in both modes, as a Future stays cancelled (a
    # SharedSchedule remembers that it cancelled its schedule).
    assert h.cancel() is True
    assert_recurring_cancelled(tm.mode, h)


def test_cancel_recurring_with_run_now(tm, token):
    _, module = ran_of(tm)
    h = module.schedule_task(module.ran, 0.05, args=(token,), reoccurring=True, run_now=True)
    assert wait_until(lambda: len(seen(token)) >= 2)
    assert h.cancel()
    frozen = settle(lambda: len(seen(token)))
    time.sleep(0.25)
    assert len(seen(token)) == frozen
    assert_recurring_cancelled(tm.mode, h)


def test_recurring_handle_attributes(module, caplog):
    """In-process only: a RecurringHandle's counters (with a broker a
    SharedSchedule counts ticks cluster-wide) and a closure."""
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    count = iter(range(10**6))

    def sometimes(fail_every=2):
        i = next(count)
        if i % fail_every == 1:
            raise ValueError(f"run {i} failed")
        return i

    h = module.schedule_task(sometimes, 0.02, reoccurring=True)
    assert isinstance(h, RecurringHandle)
    assert h.runs == 0 and h.failures == 0 and h.skipped_ticks == 0 and h.last_exception is None
    assert wait_until(lambda: h.runs >= 6)
    h.cancel()
    runs, failures = settle(lambda: (h.runs, h.failures))
    assert isinstance(runs, int) and isinstance(failures, int) and isinstance(h.skipped_ticks, int)
    assert failures == runs // 2  # every other run failed
    assert isinstance(h.last_exception, ValueError)
    # The latest failed run's exception.
    latest_failed = runs - 1 if (runs - 1) % 2 == 1 else runs - 2
    assert str(h.last_exception) == f"run {latest_failed} failed"


def test_recurring_never_failing_has_no_last_exception(module):
    """In-process only: a RecurringHandle's counters."""
    h = module.schedule_task(lambda: 1, 0.02, reoccurring=True)
    assert wait_until(lambda: h.runs >= 3)
    h.cancel()
    assert h.failures == 0 and h.last_exception is None
