"""Handles keep the concurrent.futures.Future protocol, in every state.

Modelled on CPython's Lib/test/test_concurrent_futures (test_wait.py,
test_as_completed.py, test_future.py), with handles made by the manager
instead of by hand: pending (scheduled far ahead), running (held on a
gate), cancelled (by the user, while queued, by shutdown, by
``cancel_pending``), finished and raised; and a recurring task's handle
between runs, during a run, and cancelled in each of those ways.

A cancelled handle must be *done* for ``concurrent.futures.wait`` and
``as_completed`` (state CANCELLED_AND_NOTIFIED, waiters told), not only
for ``done()``: every wait here is bounded, so a handle that is never
reported fails the test instead of hanging it.
"""

import asyncio
import concurrent.futures as cf
import logging
import sys
import threading
import time

import pytest

from taskmanager import Module, RecurringHandle, TaskHandle, TaskManager

from _util import SOON, Blocker, Recorder, settle, wait_until

SHORT = 0.2  # how long a wait that must time out waits


class Boom(Exception):
    pass


def boom():
    raise Boom("raised")


def bounded(fn, timeout=SOON):
    """``fn()`` on another thread: what it returns (or raises), or a failure
    if it has not returned within ``timeout`` (it hangs)."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test's thread
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"did not return within {timeout} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def waiting(handle):
    """Whether a wait or as_completed has installed its waiter on ``handle``."""
    return bool(handle._waiters)


# --- handles in every state --------------------------------------------------------------


class Handles:
    """Makes handles in each state, on the test's manager; the shutdown
    states on managers of their own, shut down here at the end."""

    def __init__(self, manager, gate):
        self.manager = manager
        self.gate = gate
        self.module = Module(task_manager=manager, max_workers=4)
        self.others = []

    def make(self, state):
        handle = getattr(self, state)()
        assert handle is not None
        return handle

    def own(self, max_workers=1):
        """A started manager of the test's own, and a module on it."""
        m = TaskManager()
        m.start_thread()
        self.others.append(m)
        return m, Module(task_manager=m, max_workers=max_workers)

    def blocked(self, module):
        """Holds ``module``'s only worker on the gate."""
        blocker = Blocker(self.gate)
        module.add_task(blocker)
        assert blocker.started.wait(SOON)

    def close(self):
        self.gate.set()
        for m in self.others:
            m.shutdown(cancel_pending=True)

    # Not done.

    def pending(self):
        return self.module.schedule_task(lambda: "late", 60)

    def running(self):
        blocker = Blocker(self.gate)
        handle = self.module.add_task(blocker)
        assert blocker.started.wait(SOON)
        return handle

    def recurring_pending(self):
        return self.module.schedule_task(lambda: None, 60, reoccurring=True)

    def recurring_running(self):
        blocker = Blocker(self.gate)
        handle = self.module.schedule_task(blocker, 60, reoccurring=True, run_now=True)
        assert blocker.started.wait(SOON)
        return handle

    # Finished.

    def finished(self):
        handle = self.module.add_task(lambda: 42)
        assert wait_until(handle.done)
        return handle

    def raised(self):
        handle = self.module.add_task(boom)
        assert wait_until(handle.done)
        return handle

    # Cancelled (a recurring handle is only ever cancelled).

    def cancelled(self):
        handle = self.pending()
        assert handle.cancel()
        return handle

    def cancelled_queued(self):
        single = Module(task_manager=self.manager, max_workers=1)
        self.blocked(single)
        handle = single.add_task(lambda: "queued")
        assert handle.cancel()
        return handle

    def cancelled_by_shutdown(self):
        m, module = self.own()
        handle = module.schedule_task(lambda: "late", 60)
        m.shutdown()
        return handle

    def cancelled_by_cancel_pending(self):
        m, module = self.own()
        self.blocked(module)
        handle = module.add_task(lambda: "queued")
        m.shutdown(wait=False, cancel_pending=True)
        return handle

    def recurring_cancelled(self):
        handle = self.recurring_pending()
        assert handle.cancel()
        return handle

    def recurring_cancelled_during_run(self):
        handle = self.recurring_running()
        assert handle.cancel()
        return handle

    def recurring_cancelled_by_shutdown(self):
        m, module = self.own()
        handle = module.schedule_task(lambda: None, 60, reoccurring=True)
        m.shutdown()
        return handle


NOT_DONE = ["pending", "running", "recurring_pending", "recurring_running"]
FINISHED = ["finished", "raised"]
CANCELLED = [
    "cancelled",
    "cancelled_queued",
    "cancelled_by_shutdown",
    "cancelled_by_cancel_pending",
    "recurring_cancelled",
    "recurring_cancelled_during_run",
    "recurring_cancelled_by_shutdown",
]
DONE = FINISHED + CANCELLED
STATES = NOT_DONE + DONE


@pytest.fixture
def handles(manager, gate):
    made = Handles(manager, gate)
    try:
        yield made
    finally:
        made.close()


# --- the state predicates and cancel() ------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_state_predicates(handles, state):
    h = handles.make(state)
    assert type(h) is (RecurringHandle if state.startswith("recurring") else TaskHandle)
    # A recurring handle stays pending while it recurs, a run in progress or not.
    expected = {
        "running": (False, True, False),
        **{s: (False, False, False) for s in NOT_DONE if s != "running"},
        **{s: (False, False, True) for s in FINISHED},
        **{s: (True, False, True) for s in CANCELLED},
    }
    assert (h.cancelled(), h.running(), h.done()) == expected[state]


@pytest.mark.parametrize("state", STATES)
def test_cancel_return_value(handles, state):
    h = handles.make(state)
    # A task that runs, or has run, cannot be cancelled; a recurring one
    # can be, even during a run (no new run starts).
    cancellable = state != "running" and state not in FINISHED
    assert h.cancel() is cancellable
    assert h.cancel() is cancellable  # and again: nothing changes
    assert h.cancelled() is cancellable
    assert h.done() is (cancellable or state in FINISHED)
    if cancellable:
        assert bounded(lambda: cf.wait([h], timeout=SOON)).done == {h}


# --- result() and exception() -------------------------------------------------------------


@pytest.mark.parametrize("state", NOT_DONE)
def test_result_and_exception_time_out_while_not_done(handles, state):
    h = handles.make(state)
    for get in (h.result, h.exception):
        start = time.monotonic()
        with pytest.raises(cf.TimeoutError):
            get(timeout=SHORT)
        assert time.monotonic() - start >= SHORT * 0.9
    assert not h.done()


@pytest.mark.parametrize("state", DONE)
def test_result_and_exception_of_a_done_handle(handles, state):
    h = handles.make(state)
    for timeout in (0, SHORT, None):
        if state == "finished":
            assert h.result(timeout) == 42 and h.exception(timeout) is None
        elif state == "raised":
            with pytest.raises(Boom):
                h.result(timeout)
            assert isinstance(h.exception(timeout), Boom)
        else:
            with pytest.raises(cf.CancelledError):
                h.result(timeout)
            with pytest.raises(cf.CancelledError):
                h.exception(timeout)


# --- concurrent.futures.wait -------------------------------------------------------------------


@pytest.mark.parametrize("return_when", [cf.ALL_COMPLETED, cf.FIRST_COMPLETED, cf.FIRST_EXCEPTION])
@pytest.mark.parametrize("timeout", [None, SOON], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("state", DONE)
def test_wait_returns_a_done_handle_at_once(handles, state, return_when, timeout):
    h = handles.make(state)
    start = time.monotonic()
    done, not_done = bounded(lambda: cf.wait([h], timeout=timeout, return_when=return_when))
    assert done == {h} and not_done == set()
    assert time.monotonic() - start < SOON / 2


@pytest.mark.parametrize("return_when", [cf.ALL_COMPLETED, cf.FIRST_COMPLETED, cf.FIRST_EXCEPTION])
@pytest.mark.parametrize("state", NOT_DONE)
def test_wait_times_out_on_a_handle_not_done(handles, state, return_when):
    h = handles.make(state)
    start = time.monotonic()
    done, not_done = cf.wait([h], timeout=SHORT, return_when=return_when)
    assert done == set() and not_done == {h}
    assert time.monotonic() - start >= SHORT * 0.9


@pytest.mark.parametrize("state", DONE)
def test_wait_first_completed_with_one_pending(handles, state):
    h, pending = handles.make(state), handles.pending()
    done, not_done = bounded(lambda: cf.wait([pending, h], timeout=SOON, return_when=cf.FIRST_COMPLETED))
    assert done == {h} and not_done == {pending}


def test_wait_first_exception(handles):
    raised, pending, finished = handles.raised(), handles.pending(), handles.finished()
    # An exception ends the wait at once, whatever else is pending.
    done, not_done = bounded(lambda: cf.wait([pending, finished, raised], return_when=cf.FIRST_EXCEPTION))
    assert done == {raised, finished} and not_done == {pending}


@pytest.mark.parametrize("state", CANCELLED)
def test_wait_first_exception_counts_a_cancelled_handle_as_done(handles, state):
    h, pending, finished = handles.make(state), handles.pending(), handles.finished()
    # Cancelled is not an exception: the wait goes on, and times out ...
    done, not_done = bounded(lambda: cf.wait([h, pending], timeout=SHORT, return_when=cf.FIRST_EXCEPTION))
    assert done == {h} and not_done == {pending}
    # ... unless everything is done, which ends it at once, as ALL_COMPLETED.
    done, not_done = bounded(lambda: cf.wait([h, finished], return_when=cf.FIRST_EXCEPTION))
    assert done == {h, finished} and not_done == set()


def test_wait_all_completed_over_every_done_state(handles):
    hs = [handles.make(state) for state in DONE]
    done, not_done = bounded(lambda: cf.wait(hs))
    assert done == set(hs) and not_done == set()
    # Duplicates are counted once.
    done, not_done = bounded(lambda: cf.wait(hs + hs, timeout=SOON))
    assert done == set(hs) and not_done == set()


# --- concurrent.futures.as_completed ---------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, SOON], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("state", DONE)
def test_as_completed_yields_a_done_handle(handles, state, timeout):
    h = handles.make(state)
    assert bounded(lambda: list(cf.as_completed([h], timeout=timeout))) == [h]


def test_as_completed_duplicates_yield_once(handles):
    hs = [handles.make(state) for state in DONE]
    got = bounded(lambda: list(cf.as_completed(hs + hs[::-1] + hs, timeout=SOON)))
    assert len(got) == len(hs) and set(got) == set(hs)


@pytest.mark.parametrize("state", DONE)
def test_as_completed_timeout_after_the_done_ones(handles, state):
    h, pending = handles.make(state), handles.pending()

    def iterate():
        it = cf.as_completed([pending, h], timeout=SHORT)
        first = next(it)
        with pytest.raises(cf.TimeoutError):
            next(it)
        return first

    assert bounded(iterate) is h


def test_as_completed_in_order_of_cancellation(handles):
    hs = [handles.pending(), handles.recurring_pending(), handles.pending()]
    got = []

    def iterate():
        for h in cf.as_completed(hs, timeout=SOON):
            got.append(h)
        return got

    thread = threading.Thread(target=iterate, daemon=True)
    thread.start()
    assert wait_until(lambda: all(waiting(h) for h in hs))
    for i in (2, 0, 1):
        assert hs[i].cancel()
        assert wait_until(lambda: len(got) == (2, 0, 1).index(i) + 1)
    thread.join(SOON)
    assert got == [hs[2], hs[0], hs[1]]


# --- waiters woken by the change --------------------------------------------------------------


class Change:
    """A handle not done yet and how it becomes done, for a waiter that
    waits before: ``kind`` is ``cancelled``, ``value`` or ``raised``."""

    def __init__(self, handle, trigger, kind):
        self.handle, self.trigger, self.kind = handle, trigger, kind


def _change(handles, how):
    if how == "user":
        h = handles.pending()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "user_queued":
        single = Module(task_manager=handles.manager, max_workers=1)
        handles.blocked(single)
        h = single.add_task(lambda: "queued")
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "shutdown":
        m, module = handles.own()
        return Change(module.schedule_task(lambda: "late", 60), m.shutdown, "cancelled")
    if how == "cancel_pending":
        m, module = handles.own()
        handles.blocked(module)
        h = module.add_task(lambda: "queued")
        return Change(h, lambda: m.shutdown(wait=False, cancel_pending=True), "cancelled")
    if how == "recurring_user":
        h = handles.recurring_pending()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "recurring_during_run":
        h = handles.recurring_running()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "recurring_shutdown":
        m, module = handles.own()
        return Change(module.schedule_task(lambda: None, 60, reoccurring=True), m.shutdown, "cancelled")
    if how == "finish":
        return Change(handles.running(), handles.gate.set, "value")
    if how == "raise":
        go = threading.Event()
        started = threading.Event()

        def fail():
            started.set()
            assert go.wait(SOON)
            boom()

        h = handles.module.add_task(fail)
        assert started.wait(SOON)
        return Change(h, go.set, "raised")
    raise AssertionError(how)


def assert_cancel(h):
    assert h.cancel()


CHANGES = [
    "user",
    "user_queued",
    "shutdown",
    "cancel_pending",
    "recurring_user",
    "recurring_during_run",
    "recurring_shutdown",
    "finish",
    "raise",
]

WAITS = {
    "wait": lambda h: h in cf.wait([h]).done,
    "wait_timeout": lambda h: h in cf.wait([h], timeout=SOON).done,
    "wait_first_completed": lambda h: h in cf.wait([h], return_when=cf.FIRST_COMPLETED).done,
    "wait_first_exception": lambda h: h in cf.wait([h], return_when=cf.FIRST_EXCEPTION).done,
    "as_completed": lambda h: list(cf.as_completed([h])) == [h],
    "as_completed_timeout": lambda h: list(cf.as_completed([h], timeout=SOON)) == [h],
}


@pytest.mark.parametrize("wait", list(WAITS))
@pytest.mark.parametrize("how", CHANGES)
def test_a_waiter_is_woken(handles, how, wait):
    change = _change(handles, how)
    h = change.handle
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("woken", WAITS[wait](h)), daemon=True)
    thread.start()
    assert wait_until(lambda: waiting(h)), "the waiter was never installed"
    assert "woken" not in box
    change.trigger()
    thread.join(SOON)
    assert not thread.is_alive(), f"{wait} was not woken when the handle became done ({how})"
    assert box["woken"] is True
    assert not waiting(h)  # the waiter removed itself


@pytest.mark.parametrize("how", CHANGES)
def test_result_waiter_is_woken(handles, how):
    change = _change(handles, how)
    h = change.handle

    def result():
        try:
            return "value", h.result(timeout=SOON)
        except cf.CancelledError:
            return "cancelled", None
        except Boom:
            return "raised", None

    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("got", result()), daemon=True)
    thread.start()
    time.sleep(0.05)  # let it wait (a result() waiter leaves no trace to look for)
    change.trigger()
    thread.join(SOON)
    assert not thread.is_alive()
    assert box["got"][0] == change.kind


# --- done-callbacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", CHANGES)
def test_done_callbacks_run_once_in_order(handles, how):
    change = _change(handles, how)
    h = change.handle
    calls = Recorder()
    for i in range(3):
        h.add_done_callback(lambda f, i=i: calls((i, f)))
    assert len(calls) == 0
    change.trigger()
    assert wait_until(lambda: len(calls) == 3)
    # A run that was in progress at the cancel ends, and the core reports
    # the cancellation again: the callbacks must not run again.
    handles.gate.set()
    if isinstance(h, RecurringHandle):
        assert wait_until(lambda: h._core.done)
    settle(lambda: len(calls))
    assert calls.snapshot() == [(0, h), (1, h), (2, h)]


@pytest.mark.parametrize("state", DONE)
def test_done_callback_added_to_a_done_handle_runs_at_once(handles, state):
    h = handles.make(state)
    calls = []
    h.add_done_callback(calls.append)
    assert calls == [h]  # before add_done_callback returned, on this thread
    h.add_done_callback(calls.append)
    assert calls == [h, h]


@pytest.mark.parametrize("how", ["user", "shutdown", "recurring_user", "recurring_during_run", "finish"])
def test_done_callback_exceptions_are_logged_not_raised(handles, how, caplog):
    change = _change(handles, how)
    h = change.handle
    calls = Recorder()

    def bad(f):
        raise Boom("in a done-callback")

    h.add_done_callback(bad)
    h.add_done_callback(calls)
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        change.trigger()  # does not raise
        assert wait_until(lambda: len(calls) == 1)
        # Added to the done handle: called at once, and logged too.
        h.add_done_callback(bad)
    logged = [r for r in caplog.records if r.name == "concurrent.futures" and "callback" in r.getMessage()]
    assert len(logged) == 2
    assert all(isinstance(r.exc_info[1], Boom) for r in logged)
    assert calls.snapshot() == [h]


# --- a recurring handle cancelled during a run ---------------------------------------------------


def test_recurring_cancelled_during_a_run_is_cancelled_once(handles, caplog, monkeypatch):
    """Cancelled at once by the user, and again by the core when the run in
    progress ends: the second is a no-op (no 'Future in unexpected state',
    no unraisable error, callbacks and waiters told once)."""
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    runs = Recorder()
    blocker = Blocker(handles.gate)

    def run():
        runs()
        blocker()

    h = handles.module.schedule_task(run, 60, reoccurring=True, run_now=True)
    assert blocker.started.wait(SOON)
    calls = Recorder()
    h.add_done_callback(calls)
    with caplog.at_level(logging.DEBUG, logger="concurrent.futures"):
        waiter = threading.Thread(target=lambda: cf.wait([h]), daemon=True)
        waiter.start()
        assert wait_until(lambda: waiting(h))
        assert h.cancel()
        waiter.join(SOON)
        assert not waiter.is_alive(), "wait() not woken by the cancel during a run"
        assert h.cancelled() and h.done() and len(calls) == 1
        assert not h._core.done  # the run is still in progress
        handles.gate.set()
        assert wait_until(lambda: h._core.done)
        settle(lambda: len(calls))
        assert h.cancel() and h.cancelled()
    assert calls.snapshot() == [h]
    assert len(runs) == 1
    assert [r for r in caplog.records if r.name == "concurrent.futures"] == []
    assert unraisable == []
    assert bounded(lambda: list(cf.as_completed([h]))) == [h]


# --- asyncio ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", CANCELLED)
def test_await_a_cancelled_handle_raises_cancelled_error(handles, state):
    h = handles.make(state)

    async def main():
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.wrap_future(h), SOON)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(h, SOON)

    asyncio.run(main())


@pytest.mark.parametrize("how", ["user", "shutdown", "cancel_pending", "recurring_user", "recurring_during_run"])
def test_await_raises_cancelled_error_when_cancelled_meanwhile(handles, how):
    change = _change(handles, how)

    async def main():
        awaiting = asyncio.ensure_future(asyncio.wait_for(change.handle, SOON))
        await asyncio.sleep(0.05)
        assert not awaiting.done()
        await asyncio.get_running_loop().run_in_executor(None, change.trigger)
        with pytest.raises(asyncio.CancelledError):
            await awaiting

    asyncio.run(main())


@pytest.mark.parametrize("state", FINISHED)
def test_await_a_finished_handle(handles, state):
    h = handles.make(state)

    async def main():
        if state == "finished":
            assert await asyncio.wait_for(h, SOON) == 42
        else:
            with pytest.raises(Boom):
                await asyncio.wait_for(h, SOON)

    asyncio.run(main())
