"""Cancelling scheduled and recurring tasks; RecurringHandle's counters."""

import concurrent.futures
import logging
import time

import pytest

from taskmanager import RecurringHandle

from _util import SOON, Recorder, settle, wait_until


def test_cancel_scheduled_one_shot_before_it_runs(module):
    ran = Recorder()
    h = module.schedule_task(ran, 0.3, args=("no",))
    assert h.cancel() is True
    assert h.cancelled() and h.done() and not h.running()
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)
    time.sleep(0.5)  # past the delay
    assert ran.snapshot() == []


def test_cancel_scheduled_in_dict_form(manager):
    ran = Recorder()
    h = manager.schedule_task({"method": ran, "delay": 0.2})
    assert h.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)
    time.sleep(0.35)
    assert len(ran) == 0


def test_cancel_one_of_many_scheduled(module):
    ran = Recorder()
    hs = [module.schedule_task(ran, 0.1, args=(i,)) for i in range(5)]
    assert hs[2].cancel()
    for i, h in enumerate(hs):
        if i != 2:
            assert h.result(SOON) == i
    assert sorted(ran.snapshot()) == [0, 1, 3, 4]


def test_cancel_scheduled_after_it_ran_returns_false(module):
    h = module.schedule_task(lambda: "done", 0.01)
    assert h.result(SOON) == "done"
    assert h.cancel() is False
    assert not h.cancelled()


def test_cancel_recurring_before_first_run(module):
    ran = Recorder()
    h = module.schedule_task(ran, 0.1, reoccurring=True)
    assert h.cancel() is True
    assert h.cancelled() and h.done()
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)
    time.sleep(0.3)
    assert len(ran) == 0
    assert h.runs == 0


def test_cancel_recurring_twice(module):
    h = module.schedule_task(lambda: None, 0.02, reoccurring=True)
    assert wait_until(lambda: h.runs >= 1)
    assert h.cancel() is True
    assert h.cancel() is True  # still cancelled
    assert h.cancelled()


def test_cancel_recurring_with_run_now(module):
    ran = Recorder()
    h = module.schedule_task(ran, 0.05, reoccurring=True, run_now=True)
    assert wait_until(lambda: len(ran) >= 2)
    h.cancel()
    frozen = settle(lambda: (len(ran), h.runs))[0]
    time.sleep(0.25)
    assert len(ran) == frozen
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=SOON)


def test_recurring_handle_attributes(module, caplog):
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
    h = module.schedule_task(lambda: 1, 0.02, reoccurring=True)
    assert wait_until(lambda: h.runs >= 3)
    h.cancel()
    assert h.failures == 0 and h.last_exception is None
