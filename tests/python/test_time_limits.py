"""Time limits (issue 26), in both modes through the ``mode`` fixture: a
task past its ``time_limit`` gets ``TimeLimitExceeded`` raised in its
thread (catchable for cleanup; its handle fails with it: in-process the
exception itself, with a broker a ``RemoteError`` of that kind); an
``async def`` task is cancelled; a blocking C call is given up a second
past its limit (its handle fails then, its worker's place goes to a new
thread, and what it returns later is dropped); a call that ends in time is untouched, and nothing leaks
into the next task on the same worker; a module's default applies, and
bad values are typed errors at the call.
"""

import asyncio
import logging
import time

import pytest

from taskmanager import Module, RemoteError, TimeLimitExceeded

from _util import SOON, note, seen, wait_until


class Slow(Module):
    def spin(self, token, seconds):
        """Runs Python code for ``seconds``; notes its cleanup if stopped."""
        note(token, "started")
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sum(range(100))
        except TimeLimitExceeded:
            note(token, "cleaned up")
            raise
        note(token, "finished")
        return "done"

    async def spin_async(self, token, seconds):
        note(token, "started")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            note(token, "cancelled")
            raise
        return "done"

    def block(self, token, seconds):
        note(token, "started")
        time.sleep(seconds)  # C code: not interrupted
        note(token, "after the call")
        return "done"

    def quick(self, value):
        return value


def assert_time_limit(mode, handle):
    exc = handle.exception(SOON)
    if mode == "inprocess":
        assert isinstance(exc, TimeLimitExceeded), repr(exc)
    else:
        assert isinstance(exc, RemoteError) and exc.kind == "TimeLimitExceeded", repr(exc)
    assert "ran past its limit" in str(exc)


def test_a_task_past_its_limit_gets_the_exception_and_may_clean_up(tm, mode, token):
    jobs = Slow(task_manager=tm(), max_workers=1)
    started = time.monotonic()
    handle = jobs.add_task(jobs.spin, args=(token, 30), time_limit=0.3)
    assert_time_limit(mode, handle)
    assert time.monotonic() - started < 10, "stopped near its limit, not after 30 s"
    assert seen(token) == ["started", "cleaned up"]
    # The worker goes on, and nothing is left pending for its next task.
    assert [jobs.add_task(jobs.quick, args=(i,)).result(SOON) for i in range(20)] == list(range(20))


def test_tasks_that_end_in_time_are_untouched_and_nothing_leaks_to_the_next(tm, mode, token):
    jobs = Slow(task_manager=tm(), max_workers=1)
    # Limits just above each run: some end a hair before the watchdog wakes.
    handles = [jobs.add_task(jobs.spin, args=(token, 0.01), time_limit=0.012) for _ in range(30)]
    outcomes = []
    for h in handles:
        exc = h.exception(SOON)
        outcomes.append("ok" if exc is None else "limit")
    assert set(outcomes) <= {"ok", "limit"}
    assert [jobs.add_task(jobs.quick, args=(i,)).result(SOON) for i in range(50)] == list(range(50))
    assert jobs.add_task(jobs.spin, args=(token, 0.01), time_limit=5).result(SOON) == "done"


def test_an_async_task_past_its_limit_is_cancelled(tm, mode, token):
    jobs = Slow(task_manager=tm(), max_workers=1)
    handle = jobs.add_task(jobs.spin_async, args=(token, 30), time_limit=0.3)
    assert_time_limit(mode, handle)
    assert seen(token) == ["started", "cancelled"]
    assert jobs.add_task(jobs.spin_async, args=(token, 0.01), time_limit=5).result(SOON) == "done"


def test_a_blocking_call_is_given_up_and_its_place_goes_to_a_new_thread(tm, mode, token, caplog):
    caplog.set_level(logging.WARNING, logger="taskmanager")
    jobs = Slow(task_manager=tm(), max_workers=1)
    started = time.monotonic()
    handle = jobs.add_task(jobs.block, args=(token, 4.0), time_limit=0.2)
    assert_time_limit(mode, handle)
    given_up = time.monotonic() - started
    assert 1.1 <= given_up < 3.5, f"given up a second past its limit, the call still running: {given_up:.2f} s"
    assert "did not return" in str(handle.exception(0))
    print(f"\nfigure: {mode}: a 4 s blocking call under a 0.2 s limit given up after {given_up:.2f} s")
    # The module's one place went to a new thread: the next task runs while
    # the first is still in its call.
    assert jobs.add_task(jobs.quick, args=(7,)).result(SOON) == 7
    assert seen(token) == ["started"], "still in the call"
    assert time.monotonic() - started < 4.0
    # The core's records reach Python's logging through a forwarder thread.
    assert wait_until(lambda: any("cannot be interrupted" in r.getMessage() for r in caplog.records))
    stats = jobs.stats()
    assert (stats.abandoned, stats.failed, stats.completed) == (1, 1, 1), stats
    # The call returns at last, into the exception raised at its limit; its
    # outcome is dropped, nothing counted twice.
    assert wait_until(lambda: any("returned after it was given up" in r.getMessage() for r in caplog.records))
    assert seen(token) == ["started"]
    stats = jobs.stats()
    assert (stats.abandoned, stats.failed, stats.completed) == (1, 1, 1), stats


def test_a_module_default_applies_to_each_run_recurring_ones_included(tm, mode, token):
    jobs = Slow(task_manager=tm(), max_workers=1, time_limit=0.2)
    assert_time_limit(mode, jobs.add_task(jobs.spin, args=(token, 30)))
    # An explicit limit wins over the module's.
    assert jobs.add_task(jobs.spin, args=(token, 0.4), time_limit=5).result(SOON) == "done"
    ticks = jobs.schedule_task(jobs.spin, 0.05, args=(token, 30), reoccurring=True)
    assert wait_until(lambda: seen(token).count("cleaned up") >= 3), "each run stopped, the schedule going on"
    ticks.cancel()


@pytest.mark.parametrize(
    "value, error, text",
    [
        (0, ValueError, "time_limit must be more than 0"),
        (-1, ValueError, "time_limit must be >= 0"),
        ("5", TypeError, "time_limit"),
        (True, TypeError, "time_limit"),
    ],
)
def test_bad_time_limits_are_refused_at_the_call(tm, mode, token, value, error, text):
    jobs = Slow(task_manager=tm())
    with pytest.raises(error, match=text):
        jobs.add_task(jobs.quick, args=(1,), time_limit=value)
    with pytest.raises(error, match=text):
        Slow(task_manager=tm(), time_limit=value)
