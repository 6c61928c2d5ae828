"""Parity: what users rely on behaves the same with and without a broker.

Every test here runs twice through the ``mode`` fixture parameter
(conftest.py): ``inprocess`` (a plain ``TaskManager()``) and ``redis``
(``TaskManager(broker=...)`` against a real ``redis-server``; this process
is the worker that claims and runs the tasks). Each row once differed
between the modes (issue 25); a behaviour that differs again fails here.

Where the modes must differ, the difference is deliberate and typed, and
the test says so with a per-mode expectation:

* a task's exception: in-process the exception itself; with a broker a
  ``taskmanager.RemoteError`` whose ``kind`` is its type's name;
* what may run: with a broker only named callables (methods of Module
  subclasses, ``@manager.task`` functions) and JSON arguments, else a
  TypeError at the call naming the argument; in-process anything callable;
* a recurring task's handle: a ``RecurringHandle`` in-process, a
  ``SharedSchedule`` with a broker.

With a broker, workers find code by name: the Module subclasses and
registered functions here are module-level, arguments are JSON, and state
the test reads is kept in module-level dicts keyed by a per-test ``token``
passed as an argument (the worker is this process, so it sees them).
"""

import asyncio
import concurrent.futures
import gc
import threading
import time
from decimal import Decimal

import pytest

from taskmanager import Module, RecurringHandle, RemoteError, SharedSchedule

from _util import GATES, SOON, note, seen, wait_until

class Jobs(Module):
    """The tasks of the parity tests (one instance per manager)."""

    def echo(self, value):
        return value

    async def echo_async(self, value):
        await asyncio.sleep(0.01)
        return value

    def record(self, token, value):
        note(token, value)
        return value

    def tagged(self, token, value):
        return [token, value]

    def fail(self, message):
        raise ValueError(message)

    def hold(self, token):
        """Notes "started", then waits on the test's gate (set at teardown
        at the latest)."""
        note(token, "started")
        GATES[token].wait(30)
        return "released"

    def now(self):
        return time.monotonic()

    # Callbacks: each receives a tagged() result.
    def bad_callback(self, result):
        token, value = result
        note(token, ("bad", value))
        raise KeyError(f"bad callback got {value}")

    def good_callback(self, result):
        token, value = result
        note(token, ("good", value))

    async def async_callback(self, result):
        await asyncio.sleep(0.001)
        token, value = result
        note(token, ("async", value))


def add(a, b):
    return a + b


async def add_async(a, b):
    await asyncio.sleep(0.001)
    return a + b


def jobs_of(tm, max_workers=4):
    """A started manager of this test's mode, and its Jobs module."""
    manager = tm()
    return manager, Jobs(task_manager=manager, max_workers=max_workers)


def assert_raised(mode, handle, kind, message):
    """The handle's exception in each mode's documented form: the exception
    itself in-process, a RemoteError naming its type with a broker."""
    exc = handle.exception(timeout=SOON)
    if mode == "inprocess":
        assert type(exc).__name__ == kind, repr(exc)
        assert message in str(exc)
        with pytest.raises(type(exc)):
            handle.result(0)
    else:
        assert isinstance(exc, RemoteError), repr(exc)
        assert exc.kind == kind and message in exc.message, repr(exc)
        with pytest.raises(RemoteError):
            handle.result(0)
    return exc


# --- Running and results --------------------------------------------------


def test_an_async_method_runs_and_returns_its_value(tm):
    """Before: with a broker, ``Object of type coroutine is not JSON
    serializable`` (the coroutine was the result)."""
    manager, jobs = jobs_of(tm)
    manager.task(add_async)
    assert jobs.add_task(jobs.echo_async, args=[21]).result(SOON) == 21
    assert jobs.schedule_task(jobs.echo_async, 0.01, kwargs={"value": "later"}).result(SOON) == "later"
    assert manager.add_task({"method": add_async, "args": [2, 3]}).result(SOON) == 5


def test_a_registered_function_in_the_dict_form_returns_its_value(tm):
    manager = tm()
    manager.task(add)
    assert manager.add_task({"method": add, "args": [2, 3]}).result(SOON) == 5
    assert manager.add_task({"method": add, "args": [2], "kwargs": {"b": 5}}).result(SOON) == 7
    assert manager.schedule_task({"method": add, "args": [1, 1], "delay": 0.01}).result(SOON) == 2


def test_a_name_given_at_the_call_is_the_handles_name(tm):
    """Before: with a broker, ``name=`` was dropped."""
    manager, jobs = jobs_of(tm)
    handle = jobs.add_task(jobs.echo, args=[1], name="x")
    assert handle.name == "x"
    assert handle.result(SOON) == 1 and handle.name == "x"
    assert jobs.schedule_task(jobs.echo, 0.01, args=[1], name="y").name == "y"
    manager.task(add)
    assert manager.add_task({"method": add, "args": [1, 2], "name": "z"}).name == "z"


# --- Callbacks ------------------------------------------------------------


def test_callbacks_after_a_failing_one_still_run_and_the_handle_has_its_exception(tm, token):
    """Before: with a broker, the callbacks stopped at the one that raised."""
    _, jobs = jobs_of(tm)
    handle = jobs.add_task(
        jobs.tagged, args=[token, 7], callback=[jobs.good_callback, jobs.bad_callback, jobs.good_callback]
    )
    assert_raised(tm.mode, handle, "KeyError", "bad callback got 7")
    assert seen(token) == [("good", 7), ("bad", 7), ("good", 7)]


def test_callbacks_run_in_order_with_the_value_before_the_handle_is_done(tm, token):
    _, jobs = jobs_of(tm)
    callbacks = [jobs.good_callback, jobs.async_callback, jobs.good_callback]
    assert jobs.add_task(jobs.tagged, args=[token, "v"], callback=callbacks).result(SOON) == [token, "v"]
    assert seen(token) == [("good", "v"), ("async", "v"), ("good", "v")]
    # A single callable is a callback too.
    jobs.add_task(jobs.tagged, args=[token, "one"], callback=jobs.good_callback).result(SOON)
    assert seen(token)[-1] == ("good", "one")


def test_callbacks_do_not_run_when_the_method_raises(tm, token):
    _, jobs = jobs_of(tm)
    handle = jobs.add_task(jobs.fail, args=["no"], callback=[jobs.good_callback])
    assert_raised(tm.mode, handle, "ValueError", "no")
    assert seen(token) == []


# --- Scheduling -----------------------------------------------------------


def test_a_decimal_delay_is_accepted_and_a_one_shot_delay_is_honoured(tm):
    _, jobs = jobs_of(tm)
    assert jobs.schedule_task(jobs.echo, Decimal("0.01"), args=["d"]).result(SOON) == "d"
    submitted = time.monotonic()
    ran_at = jobs.schedule_task(jobs.now, 0.3).result(SOON)
    assert ran_at - submitted >= 0.3


def test_run_now_runs_a_one_shot_task_once_at_once(tm, token):
    _, jobs = jobs_of(tm)
    handle = jobs.schedule_task(jobs.record, 60, args=[token, "now"], run_now=True)
    assert handle.result(SOON) == "now"
    time.sleep(0.2)
    assert seen(token) == ["now"]


def test_two_recurring_schedules_of_one_method_with_different_args_both_run(tm, token):
    """Before: with a broker, the second schedule silently was the first."""
    _, jobs = jobs_of(tm)
    first = jobs.schedule_task(jobs.record, 0.05, args=[token, "a"], reoccurring=True)
    second = jobs.schedule_task(jobs.record, 0.05, args=[token, "b"], reoccurring=True)
    try:
        if tm.mode == "inprocess":
            assert isinstance(first, RecurringHandle) and isinstance(second, RecurringHandle)
            assert first is not second
        else:
            assert isinstance(first, SharedSchedule) and isinstance(second, SharedSchedule)
            assert first.created and second.created
            assert first.key != second.key
        assert wait_until(lambda: {"a", "b"} <= set(seen(token))), seen(token)
    finally:
        assert first.cancel() and second.cancel()


def test_a_second_cancel_of_a_recurring_task_is_true_as_the_first(tm, token):
    """A RecurringHandle's cancel() is a Future's: True once cancelled, by
    this call or an earlier one. Before: a SharedSchedule's second cancel()
    was False (the schedule no longer existed)."""
    _, jobs = jobs_of(tm)
    schedule = jobs.schedule_task(jobs.record, 10, args=[token, "r"], reoccurring=True)
    assert schedule.cancel() is True
    assert schedule.cancel() is True


def test_a_recurring_task_runs_again_and_stops_at_cancel(tm, token):
    _, jobs = jobs_of(tm)
    schedule = jobs.schedule_task(jobs.record, 0.05, args=[token, "tick"], reoccurring=True)
    assert wait_until(lambda: len(seen(token)) >= 3)
    assert schedule.cancel()
    time.sleep(0.3)  # a run in progress at the cancel finishes
    after = len(seen(token))
    time.sleep(0.3)
    assert len(seen(token)) == after


# --- Failures -------------------------------------------------------------


def test_a_raising_task_counts_as_failed_not_completed(tm):
    """Before: with a broker, a task that raised counted as completed."""
    _, jobs = jobs_of(tm)
    assert jobs.add_task(jobs.echo, args=[1]).result(SOON) == 1
    before = jobs.stats()
    assert (before.completed, before.failed) == (1, 0)
    jobs.add_task(jobs.fail, args=["no"]).exception(SOON)
    counts = lambda: (lambda s: (s.completed, s.failed))(jobs.stats())
    if tm.mode == "inprocess":
        # Counted before the handle says done.
        assert counts() == (1, 1)
    else:
        # Counted by the worker that ran it, which sent the result first:
        # across processes there is no "before" to promise.
        assert wait_until(lambda: counts() == (1, 1)), jobs.stats()


def test_a_raising_tasks_exception_reaches_the_handle_in_each_modes_form(tm):
    """Deliberate difference: in-process the exception itself; with a
    broker a RemoteError with the type's name as ``kind``."""
    _, jobs = jobs_of(tm)
    exc = assert_raised(tm.mode, jobs.add_task(jobs.fail, args=["bad value"]), "ValueError", "bad value")
    if tm.mode == "redis":
        assert "raise ValueError" in exc.remote_traceback
    # A task after it still runs.
    assert jobs.add_task(jobs.echo, args=["after"]).result(SOON) == "after"


# --- Cancelling and waiting -----------------------------------------------


def test_cancel_of_a_delayed_task_returns_true_promptly(tm, token):
    """Before (main 416a74a): with a broker, ``cancel()`` blocked forever."""
    _, jobs = jobs_of(tm)
    handle = jobs.schedule_task(jobs.record, 30, args=[token, "never"])
    started = time.monotonic()
    assert handle.cancel() is True
    assert time.monotonic() - started < 2
    assert handle.cancelled() and handle.done()
    with pytest.raises(concurrent.futures.CancelledError):
        handle.result(0)


def test_cancel_of_a_task_queued_behind_a_busy_worker_returns_true_promptly(tm, token):
    _, jobs = jobs_of(tm, max_workers=1)
    busy = jobs.add_task(jobs.hold, args=[token])
    assert wait_until(lambda: seen(token) == ["started"]), "the blocking task never started"
    queued = jobs.add_task(jobs.record, args=[token, "queued"])
    started = time.monotonic()
    assert queued.cancel() is True
    assert time.monotonic() - started < 2
    assert queued.cancelled()
    GATES[token].set()
    assert busy.result(SOON) == "released"
    # The next task runs; the cancelled one never did.
    assert jobs.add_task(jobs.record, args=[token, "next"]).result(SOON) == "next"
    assert seen(token) == ["started", "next"]


def test_cancel_of_a_running_task_returns_false(tm, token):
    _, jobs = jobs_of(tm, max_workers=1)
    busy = jobs.add_task(jobs.hold, args=[token])
    assert wait_until(lambda: seen(token) == ["started"])
    assert busy.cancel() is False
    assert not busy.cancelled()
    GATES[token].set()
    assert busy.result(SOON) == "released"


def test_a_handle_is_running_while_its_task_runs(tm, token):
    """Before: with a broker, ``running()`` was never True (the submitter
    does not see the start; now it asks Redis whether a worker claimed it)."""
    _, jobs = jobs_of(tm, max_workers=1)
    busy = jobs.add_task(jobs.hold, args=[token])
    assert wait_until(lambda: seen(token) == ["started"])
    queued = jobs.add_task(jobs.record, args=[token, "queued"])
    later = jobs.schedule_task(jobs.record, 30, args=[token, "later"])
    try:
        assert busy.running() and not busy.done()
        # Not started: waiting for the one worker, or for its time.
        assert not queued.running() and not later.running()
    finally:
        GATES[token].set()
    assert busy.result(SOON) == "released"
    assert not busy.running() and busy.done()
    assert queued.result(SOON) == "queued" and not queued.running()
    assert later.cancel() and not later.running()


def test_a_delayed_tasks_handle_is_running_while_it_runs(tm, token):
    """With a broker the task that runs is not the entry first sent (a
    delayed task enters its queue when due): found all the same."""
    _, jobs = jobs_of(tm, max_workers=1)
    handle = jobs.schedule_task(jobs.hold, 0.5, args=[token])
    assert not handle.running()
    assert wait_until(lambda: seen(token) == ["started"])
    try:
        assert handle.running() and not handle.done()
        assert handle.cancel() is False  # running: not cancelled
    finally:
        GATES[token].set()
    assert handle.result(SOON) == "released"
    assert not handle.running() and not handle.cancelled()


@pytest.mark.parametrize("state", ["delayed", "queued", "running"])
@pytest.mark.parametrize("how", ["wrap_future", "await"])
def test_an_asyncio_timeout_on_a_handle_raises_without_freezing_the_loop(tm, token, how, state):
    """The timeout cancels the handle from the loop's thread: a task not
    started is cancelled, a running one goes on. Before (main 416a74a):
    with a broker, the loop hung here for a delayed or queued task (its
    ``cancel()`` blocked forever)."""
    _, jobs = jobs_of(tm, max_workers=1)
    if state == "delayed":
        handle = jobs.schedule_task(jobs.record, 30, args=[token, "never"])
    else:
        busy = jobs.add_task(jobs.hold, args=[token])
        assert wait_until(lambda: seen(token) == ["started"])
        handle = busy if state == "running" else jobs.add_task(jobs.record, args=[token, "never"])
    ticks = []

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def wait():
        beat = asyncio.get_running_loop().create_task(ticker())
        try:
            if how == "wrap_future":
                await asyncio.wait_for(asyncio.wrap_future(handle), 0.5)
            else:

                async def awaited():
                    return await handle

                await asyncio.wait_for(awaited(), 0.5)
        finally:
            beat.cancel()

    result = {}

    def run():
        try:
            asyncio.run(wait())
        except BaseException as e:  # noqa: BLE001 - reported below
            result["error"] = e

    # In a thread of its own: a hang fails the test instead of freezing it.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "asyncio.run never returned"
    assert isinstance(result.get("error"), asyncio.TimeoutError), result
    assert len(ticks) >= 2, "the loop did not run while waiting"
    if state == "running":
        assert not handle.cancelled()  # a running task cannot be cancelled
    else:
        assert wait_until(handle.cancelled), handle
    GATES[token].set()
    if state != "delayed":
        assert busy.result(SOON) == "released"
    time.sleep(0.1)
    assert "never" not in seen(token)


def test_a_handle_is_awaitable_and_a_future(tm):
    _, jobs = jobs_of(tm)

    async def main():
        return await jobs.add_task(jobs.echo_async, args=["awaited"])

    assert asyncio.run(main()) == "awaited"
    handles = [jobs.add_task(jobs.echo, args=[i]) for i in range(5)]
    done, not_done = concurrent.futures.wait(handles, timeout=SOON)
    assert not not_done
    assert sorted(h.result() for h in done) == list(range(5))
    called = threading.Event()
    values = []
    handle = jobs.add_task(jobs.echo, args=["cb"])
    handle.add_done_callback(lambda h: (values.append(h.result()), called.set()))
    assert called.wait(SOON) and values == ["cb"]


# --- Bad input ------------------------------------------------------------


def test_unnamed_callables_and_non_json_arguments_in_each_mode(tm):
    """Deliberate difference: in-process any callable and any argument;
    with a broker a TypeError at the call naming what cannot cross."""
    manager, jobs = jobs_of(tm)

    def local(value):
        return value

    marker = object()
    calls = [
        (lambda: jobs.add_task(lambda: 1), 1, "lambda"),
        (lambda: jobs.add_task(local, args=[2]), 2, "local function"),
        (lambda: jobs.add_task(jobs.echo, args=[marker]), marker, r"args\[0\]"),
        (lambda: jobs.add_task(jobs.echo, kwargs={"value": {1, 2}}), {1, 2}, r"kwargs\['value'\]"),
        (lambda: jobs.add_task(jobs.echo, args=[1], callback=print), 1, "callback"),
        (lambda: manager.add_task({"method": add, "args": [1, 2]}), 3, "not registered"),
    ]
    for submit, value, message in calls:
        if tm.mode == "inprocess":
            assert submit().result(SOON) == value
        else:
            with pytest.raises(TypeError, match=message):
                submit()


# --- Listing --------------------------------------------------------------


def test_get_tasks_lists_a_delayed_one_shot_task(tm, token):
    """Before: with a broker, a delayed one-shot task (waiting in Redis, not
    in a local timer) was not listed."""
    manager, jobs = jobs_of(tm)
    handle = jobs.schedule_task(jobs.record, 30, args=[token, "later"], name="later")
    try:
        listed = [t for t in manager.get_tasks() if t.name == "later"]
        assert len(listed) == 1, manager.get_tasks()
        assert listed[0].interval is None and listed[0].state == "scheduled"
        assert listed[0].id == handle.id
        assert 25 < listed[0].next_due <= 30, listed[0]
    finally:
        assert handle.cancel()
    assert not [t for t in manager.get_tasks() if t.name == "later"]


def test_get_tasks_lists_a_delayed_task_whose_handle_was_dropped_until_it_runs(tm, token):
    manager, jobs = jobs_of(tm)
    # Due in 2 s: listed before then even on a loaded machine (0.5 s was
    # once not enough: gc.collect() of a whole suite's heap took longer).
    jobs.schedule_task(jobs.record, 2.0, args=[token, "dropped"], name="dropped")
    gc.collect()
    assert [t.name for t in manager.get_tasks()].count("dropped") == 1, manager.get_tasks()
    assert wait_until(lambda: seen(token) == ["dropped"], timeout=20)
    assert not [t for t in manager.get_tasks() if t.name == "dropped"]


def test_get_tasks_lists_a_recurring_task_until_cancelled(tm, token):
    manager, jobs = jobs_of(tm)
    schedule = jobs.schedule_task(jobs.record, 10, args=[token, "r"], reoccurring=True, name="every")
    try:
        listed = [t for t in manager.get_tasks() if t.name == "every" or t.name.startswith("every")]
        assert len(listed) == 1, manager.get_tasks()
        assert listed[0].interval == pytest.approx(10)
    finally:
        assert schedule.cancel()
    assert wait_until(lambda: not [t for t in manager.get_tasks() if t.name.startswith("every")])


def test_a_task_cancelled_before_it_ran_counts_as_cancelled(tm, token):
    _, jobs = jobs_of(tm)
    assert jobs.schedule_task(jobs.record, 30, args=[token, "never"]).cancel()
    assert wait_until(lambda: jobs.stats().cancelled == 1), jobs.stats()
