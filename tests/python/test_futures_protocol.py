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

Most tests run in both modes (conftest.py's ``mode``, ``tm`` and
``token``): the tasks are methods of the module-level ``Jobs`` Module
subclass with JSON arguments, and a held task waits on the test's gate
(``_util.GATES[token]``). What differs by design, per mode:

* a recurring task's handle is a ``RecurringHandle`` in-process, a
  ``SharedSchedule`` (not a Future) with a broker: the recurring states are
  in-process only;
* a shutdown of the submitter does not cancel a task sent to Redis (it
  waits there and runs anyway): its handle ends with ``ResultLost``
  (states ``lost_by_shutdown`` and ``lost_by_cancel_pending``, broker
  only), where in-process it is cancelled (``cancelled_by_shutdown``,
  ``cancelled_by_cancel_pending``, in-process only);
* a task's exception is a ``RemoteError`` naming its type with a broker.

(``running()`` is True for a running task in both modes: with a broker it
asks Redis whether a worker claimed the task, while the handle's state
stays pending until the result comes.)
"""

import asyncio
import concurrent.futures as cf
import logging
import sys
import threading
import time

import pytest

from taskmanager import Module, RecurringHandle, RemoteError, ResultLost, TaskHandle

from _util import GATES, SOON, Blocker, Recorder, note, seen, settle, wait_until

SHORT = 0.2  # how long a wait that must time out waits
MODES = ("inprocess", "redis")


class Boom(Exception):
    pass


def boom():
    raise Boom("raised")


class Jobs(Module):
    """The tasks of this file's handles (JSON arguments, so that they run
    in both modes)."""

    def value(self, value):
        return value

    def boom(self):
        boom()

    def hold(self, token, tag):
        """Notes ``("started", tag)``, then waits on the test's gate."""
        note(token, ("started", tag))
        assert GATES[token].wait(30), "gate never opened"
        return "released"

    def hold_then_raise(self, token, tag):
        note(token, ("started", tag))
        assert GATES[token].wait(30), "gate never opened"
        boom()

    def nothing(self):
        return None


class Single(Jobs):
    """A second module on the test's manager (with a broker a manager has
    one module per Module subclass)."""


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
    """Makes handles in each state, on the test's manager (``tm``); the
    shutdown states on managers of their own (``tm`` shuts them all down at
    the end). ``gate`` is the test's gate: held tasks wait on it."""

    def __init__(self, tm, token):
        self.mode = tm.mode
        self.tm = tm
        self.token = token
        self.gate = GATES[token]
        self.manager = tm()
        self.module = Jobs(task_manager=self.manager, max_workers=4)
        self._single = None
        self._tags = iter(range(10**6))

    def make(self, state):
        handle = getattr(self, state)()
        assert handle is not None
        return handle

    def own(self, max_workers=1):
        """A started manager of the test's own, and a module on it."""
        m = self.tm()
        return m, Jobs(task_manager=m, max_workers=max_workers)

    def hold(self, module):
        """Submits a task to ``module`` that waits on the gate; returns its
        handle once it has started."""
        tag = next(self._tags)
        handle = module.add_task(module.hold, args=[self.token, tag])
        assert wait_until(lambda: ("started", tag) in seen(self.token)), "the held task never started"
        return handle

    def single(self):
        """The manager's one-worker module, its worker held on the gate."""
        if self._single is None:
            self._single = Single(task_manager=self.manager, max_workers=1)
            self.hold(self._single)
        return self._single

    def close(self):
        self.gate.set()

    # Not done.

    def pending(self):
        return self.module.schedule_task(self.module.value, 60, args=["late"])

    def running(self):
        return self.hold(self.module)

    def recurring_pending(self):
        return self.module.schedule_task(self.module.nothing, 60, reoccurring=True)

    def recurring_running(self):
        tag = next(self._tags)
        handle = self.module.schedule_task(
            self.module.hold, 60, args=[self.token, tag], reoccurring=True, run_now=True
        )
        assert wait_until(lambda: ("started", tag) in seen(self.token))
        return handle

    # Finished.

    def finished(self):
        handle = self.module.add_task(self.module.value, args=[42])
        assert wait_until(handle.done)
        return handle

    def raised(self):
        handle = self.module.add_task(self.module.boom)
        assert wait_until(handle.done)
        return handle

    # Cancelled (a recurring handle is only ever cancelled).

    def cancelled(self):
        handle = self.pending()
        assert handle.cancel()
        return handle

    def queued(self):
        """A task queued behind the held worker of ``single()``."""
        single = self.single()
        return single.add_task(single.value, args=["queued"])

    def cancelled_queued(self):
        handle = self.queued()
        assert handle.cancel()
        return handle

    def cancelled_by_shutdown(self):
        m, module = self.own()
        handle = module.schedule_task(module.value, 60, args=["late"])
        m.shutdown()
        return handle

    def cancelled_by_cancel_pending(self):
        m, module = self.own()
        self.hold(module)
        handle = module.add_task(module.value, args=["queued"])
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
        handle = module.schedule_task(module.nothing, 60, reoccurring=True)
        m.shutdown()
        return handle

    # With a broker, a shutdown leaves a sent task in Redis (it runs
    # anyway): the handle ends with ResultLost.

    def lost_by_shutdown(self):
        handle = self.cancelled_by_shutdown()
        assert wait_until(handle.done)
        return handle

    def lost_by_cancel_pending(self):
        handle = self.cancelled_by_cancel_pending()
        assert wait_until(handle.done)
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
LOST = ["lost_by_shutdown", "lost_by_cancel_pending"]
DONE = FINISHED + CANCELLED + LOST
STATES = NOT_DONE + DONE

# What each mode cannot make (see the module docs).
NOT_IN = {
    "inprocess": set(LOST),
    "redis": {s for s in STATES if s.startswith("recurring")}
    | {"cancelled_by_shutdown", "cancelled_by_cancel_pending"},
}


def cases(names, not_in=NOT_IN):
    """``(mode, name)`` parameters, ``mode`` for conftest's indirect
    fixture, leaving out what a mode cannot make."""
    return [
        pytest.param(mode, name, id=f"{mode}-{name}") for mode in MODES for name in names if name not in not_in[mode]
    ]


def raised_type(mode):
    """What a task's exception is on its handle in ``mode``."""
    return Boom if mode == "inprocess" else RemoteError


def assert_raised(mode, exc):
    assert isinstance(exc, raised_type(mode)), repr(exc)
    if mode == "redis":
        assert exc.kind == "Boom" and exc.message == "raised", repr(exc)


@pytest.fixture
def handles(tm, token):
    made = Handles(tm, token)
    try:
        yield made
    finally:
        made.close()


in_process_only = pytest.mark.parametrize("mode", ["inprocess"], indirect=True)


# --- the state predicates and cancel() ------------------------------------------------------


@pytest.mark.parametrize("mode,state", cases(STATES), indirect=["mode"])
def test_state_predicates(handles, mode, state):
    h = handles.make(state)
    assert type(h) is (RecurringHandle if state.startswith("recurring") else TaskHandle)
    # A recurring handle stays pending while it recurs, a run in progress or not.
    expected = {
        "running": (False, True, False),
        **{s: (False, False, False) for s in NOT_DONE if s != "running"},
        **{s: (False, False, True) for s in FINISHED + LOST},
        **{s: (True, False, True) for s in CANCELLED},
    }
    assert (h.cancelled(), h.running(), h.done()) == expected[state]


@pytest.mark.parametrize("mode,state", cases(STATES), indirect=["mode"])
def test_cancel_return_value(handles, state):
    h = handles.make(state)
    # A task that runs, or has run, cannot be cancelled; a recurring one
    # can be, even during a run (no new run starts). Nor can a lost one.
    cancellable = state != "running" and state not in FINISHED + LOST
    assert h.cancel() is cancellable
    assert h.cancel() is cancellable  # and again: nothing changes
    assert h.cancelled() is cancellable
    assert h.done() is (cancellable or state in FINISHED + LOST)
    if cancellable:
        assert bounded(lambda: cf.wait([h], timeout=SOON)).done == {h}


# --- result() and exception() -------------------------------------------------------------


@pytest.mark.parametrize("mode,state", cases(NOT_DONE), indirect=["mode"])
def test_result_and_exception_time_out_while_not_done(handles, state):
    h = handles.make(state)
    for get in (h.result, h.exception):
        start = time.monotonic()
        with pytest.raises(cf.TimeoutError):
            get(timeout=SHORT)
        assert time.monotonic() - start >= SHORT * 0.9
    assert not h.done()


@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_result_and_exception_of_a_done_handle(handles, mode, state):
    h = handles.make(state)
    for timeout in (0, SHORT, None):
        if state == "finished":
            assert h.result(timeout) == 42 and h.exception(timeout) is None
        elif state == "raised":
            with pytest.raises(raised_type(mode)):
                h.result(timeout)
            assert_raised(mode, h.exception(timeout))
        elif state in LOST:
            with pytest.raises(ResultLost):
                h.result(timeout)
            assert isinstance(h.exception(timeout), ResultLost)
        else:
            with pytest.raises(cf.CancelledError):
                h.result(timeout)
            with pytest.raises(cf.CancelledError):
                h.exception(timeout)


# --- concurrent.futures.wait -------------------------------------------------------------------


@pytest.mark.parametrize("return_when", [cf.ALL_COMPLETED, cf.FIRST_COMPLETED, cf.FIRST_EXCEPTION])
@pytest.mark.parametrize("timeout", [None, SOON], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_wait_returns_a_done_handle_at_once(handles, state, return_when, timeout):
    h = handles.make(state)
    start = time.monotonic()
    done, not_done = bounded(lambda: cf.wait([h], timeout=timeout, return_when=return_when))
    assert done == {h} and not_done == set()
    assert time.monotonic() - start < SOON / 2


@pytest.mark.parametrize("return_when", [cf.ALL_COMPLETED, cf.FIRST_COMPLETED, cf.FIRST_EXCEPTION])
@pytest.mark.parametrize("mode,state", cases(NOT_DONE), indirect=["mode"])
def test_wait_times_out_on_a_handle_not_done(handles, state, return_when):
    h = handles.make(state)
    start = time.monotonic()
    done, not_done = cf.wait([h], timeout=SHORT, return_when=return_when)
    assert done == set() and not_done == {h}
    assert time.monotonic() - start >= SHORT * 0.9


@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_wait_first_completed_with_one_pending(handles, state):
    h, pending = handles.make(state), handles.pending()
    done, not_done = bounded(lambda: cf.wait([pending, h], timeout=SOON, return_when=cf.FIRST_COMPLETED))
    assert done == {h} and not_done == {pending}


def test_wait_first_exception(handles):
    raised, pending, finished = handles.raised(), handles.pending(), handles.finished()
    # An exception ends the wait at once, whatever else is pending.
    done, not_done = bounded(lambda: cf.wait([pending, finished, raised], return_when=cf.FIRST_EXCEPTION))
    assert done == {raised, finished} and not_done == {pending}


@pytest.mark.parametrize("mode,state", cases(CANCELLED), indirect=["mode"])
def test_wait_first_exception_counts_a_cancelled_handle_as_done(handles, state):
    h, pending, finished = handles.make(state), handles.pending(), handles.finished()
    # Cancelled is not an exception: the wait goes on, and times out ...
    done, not_done = bounded(lambda: cf.wait([h, pending], timeout=SHORT, return_when=cf.FIRST_EXCEPTION))
    assert done == {h} and not_done == {pending}
    # ... unless everything is done, which ends it at once, as ALL_COMPLETED.
    done, not_done = bounded(lambda: cf.wait([h, finished], return_when=cf.FIRST_EXCEPTION))
    assert done == {h, finished} and not_done == set()


def done_states(mode):
    return [s for s in DONE if s not in NOT_IN[mode]]


def test_wait_all_completed_over_every_done_state(handles, mode):
    hs = [handles.make(state) for state in done_states(mode)]
    done, not_done = bounded(lambda: cf.wait(hs))
    assert done == set(hs) and not_done == set()
    # Duplicates are counted once.
    done, not_done = bounded(lambda: cf.wait(hs + hs, timeout=SOON))
    assert done == set(hs) and not_done == set()


# --- concurrent.futures.as_completed ---------------------------------------------------------


@pytest.mark.parametrize("timeout", [None, SOON], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_as_completed_yields_a_done_handle(handles, state, timeout):
    h = handles.make(state)
    assert bounded(lambda: list(cf.as_completed([h], timeout=timeout))) == [h]


def test_as_completed_duplicates_yield_once(handles, mode):
    hs = [handles.make(state) for state in done_states(mode)]
    got = bounded(lambda: list(cf.as_completed(hs + hs[::-1] + hs, timeout=SOON)))
    assert len(got) == len(hs) and set(got) == set(hs)


@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_as_completed_timeout_after_the_done_ones(handles, state):
    h, pending = handles.make(state), handles.pending()

    def iterate():
        it = cf.as_completed([pending, h], timeout=SHORT)
        first = next(it)
        with pytest.raises(cf.TimeoutError):
            next(it)
        return first

    assert bounded(iterate) is h


def test_as_completed_in_order_of_cancellation(handles, mode):
    # With a broker a recurring task has no Future: a queued one instead.
    middle = handles.recurring_pending() if mode == "inprocess" else handles.queued()
    hs = [handles.pending(), middle, handles.pending()]
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
    waits before: ``kind`` is ``cancelled``, ``value``, ``raised`` or
    ``lost`` (ResultLost: a shutdown with a broker)."""

    def __init__(self, handle, trigger, kind):
        self.handle, self.trigger, self.kind = handle, trigger, kind


def _change(handles, how):
    # A shutdown cancels in-process; with a broker the task stays in Redis
    # and the handle ends with ResultLost.
    shut = "cancelled" if handles.mode == "inprocess" else "lost"
    if how == "user":
        h = handles.pending()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "user_queued":
        h = handles.queued()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "shutdown":
        m, module = handles.own()
        return Change(module.schedule_task(module.value, 60, args=["late"]), m.shutdown, shut)
    if how == "cancel_pending":
        m, module = handles.own()
        handles.hold(module)
        h = module.add_task(module.value, args=["queued"])
        return Change(h, lambda: m.shutdown(wait=False, cancel_pending=True), shut)
    if how == "recurring_user":
        h = handles.recurring_pending()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "recurring_during_run":
        h = handles.recurring_running()
        return Change(h, lambda: assert_cancel(h), "cancelled")
    if how == "recurring_shutdown":
        m, module = handles.own()
        return Change(module.schedule_task(module.nothing, 60, reoccurring=True), m.shutdown, "cancelled")
    if how == "finish":
        return Change(handles.running(), handles.gate.set, "value")
    if how == "raise":
        tag = next(handles._tags)
        h = handles.module.add_task(handles.module.hold_then_raise, args=[handles.token, tag])
        assert wait_until(lambda: ("started", tag) in seen(handles.token))
        return Change(h, handles.gate.set, "raised")
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
CHANGES_NOT_IN = {"inprocess": set(), "redis": {c for c in CHANGES if c.startswith("recurring")}}


def changes(names):
    return cases(names, CHANGES_NOT_IN)


WAITS = {
    "wait": lambda h: h in cf.wait([h]).done,
    "wait_timeout": lambda h: h in cf.wait([h], timeout=SOON).done,
    "wait_first_completed": lambda h: h in cf.wait([h], return_when=cf.FIRST_COMPLETED).done,
    "wait_first_exception": lambda h: h in cf.wait([h], return_when=cf.FIRST_EXCEPTION).done,
    "as_completed": lambda h: list(cf.as_completed([h])) == [h],
    "as_completed_timeout": lambda h: list(cf.as_completed([h], timeout=SOON)) == [h],
}


@pytest.mark.parametrize("wait", list(WAITS))
@pytest.mark.parametrize("mode,how", changes(CHANGES), indirect=["mode"])
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


@pytest.mark.parametrize("mode,how", changes(CHANGES), indirect=["mode"])
def test_result_waiter_is_woken(handles, mode, how):
    change = _change(handles, how)
    h = change.handle

    def result():
        try:
            return "value", h.result(timeout=SOON)
        except cf.CancelledError:
            return "cancelled", None
        except raised_type(mode):
            return "raised", None
        except ResultLost:
            return "lost", None

    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("got", result()), daemon=True)
    thread.start()
    time.sleep(0.05)  # let it wait (a result() waiter leaves no trace to look for)
    change.trigger()
    thread.join(SOON)
    assert not thread.is_alive()
    assert box["got"][0] == change.kind


# --- done-callbacks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,how", changes(CHANGES), indirect=["mode"])
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


@pytest.mark.parametrize("mode,state", cases(DONE), indirect=["mode"])
def test_done_callback_added_to_a_done_handle_runs_at_once(handles, state):
    h = handles.make(state)
    calls = []
    h.add_done_callback(calls.append)
    assert calls == [h]  # before add_done_callback returned, on this thread
    h.add_done_callback(calls.append)
    assert calls == [h, h]


@pytest.mark.parametrize(
    "mode,how", changes(["user", "shutdown", "recurring_user", "recurring_during_run", "finish"]), indirect=["mode"]
)
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


@in_process_only
def test_recurring_cancelled_during_a_run_is_cancelled_once(handles, caplog, monkeypatch):
    """Cancelled at once by the user, and again by the core when the run in
    progress ends: the second is a no-op (no 'Future in unexpected state',
    no unraisable error, callbacks and waiters told once). In-process only:
    a RecurringHandle (with a broker, a SharedSchedule)."""
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


@pytest.mark.parametrize("mode,state", cases(CANCELLED), indirect=["mode"])
def test_await_a_cancelled_handle_raises_cancelled_error(handles, state):
    h = handles.make(state)

    async def main():
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.wrap_future(h), SOON)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(h, SOON)

    asyncio.run(main())


@pytest.mark.parametrize(
    "mode,how",
    changes(["user", "shutdown", "cancel_pending", "recurring_user", "recurring_during_run"]),
    indirect=["mode"],
)
def test_await_raises_cancelled_error_when_cancelled_meanwhile(handles, how):
    """(With a broker, a shutdown ends the await with ResultLost.)"""
    change = _change(handles, how)
    expected = asyncio.CancelledError if change.kind == "cancelled" else ResultLost

    async def main():
        awaiting = asyncio.ensure_future(asyncio.wait_for(change.handle, SOON))
        await asyncio.sleep(0.05)
        assert not awaiting.done()
        await asyncio.get_running_loop().run_in_executor(None, change.trigger)
        with pytest.raises(expected):
            await awaiting

    asyncio.run(main())


@pytest.mark.parametrize("mode,state", cases(FINISHED), indirect=["mode"])
def test_await_a_finished_handle(handles, mode, state):
    h = handles.make(state)

    async def main():
        if state == "finished":
            assert await asyncio.wait_for(h, SOON) == 42
        else:
            with pytest.raises(raised_type(mode)):
                await asyncio.wait_for(h, SOON)

    asyncio.run(main())
