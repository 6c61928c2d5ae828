"""Handles behave like concurrent.futures.Future, and can be awaited.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks are methods of the module-level ``Jobs``
Module subclass (and ``@manager.task`` functions), with JSON arguments,
waiting on the test's gate (``GATES[token]``) or recording under its
``token`` (_util.SEEN). Per mode by design: a task's exception is the
exception itself in-process, a ``RemoteError`` naming its type with a
broker; a result crosses as JSON with a broker (equal, not the same
object); a recurring task's handle is a ``RecurringHandle`` (a Future)
in-process, a ``SharedSchedule`` (not a Future; no ``runs``,
``set_interval``, ``add_done_callback``) with a broker.
"""

import asyncio
import concurrent.futures
import re
import threading
import time

import pytest

from taskmanager import Module, RecurringHandle, RemoteError, SharedSchedule, TaskHandle

from _util import GATES, SOON, Recorder, note, runs, seen, settle, wait_until


class TaskError(Exception):
    pass


class Jobs(Module):
    def one(self):
        return 1

    def echo(self, value):
        return value

    def square(self, i):
        return i * i

    def triple(self, i):
        return i * 3

    def double(self, x):
        return x * 2

    def raise_task_error(self, msg="task went wrong"):
        raise TaskError(msg)

    def hold(self, token, value="blocked"):
        """Notes "started", then waits on the test's gate."""
        note(token, "started")
        assert GATES[token].wait(30), "gate never opened"
        return value

    def record(self, token, value=None):
        note(token, value)
        return value

    def fetch_prices(self):
        return 1

    def nothing(self):
        return None


def one():
    return 1


def jobs_of(tm, max_workers=4):
    """A started manager of this test's mode (``one`` registered), and its
    Jobs module."""
    manager = tm()
    manager.task(one)
    return manager, Jobs(task_manager=manager, max_workers=max_workers)


def assert_task_error(mode, exc, message):
    """A TaskError in each mode's documented form."""
    if mode == "inprocess":
        assert type(exc) is TaskError, repr(exc)
        assert message in str(exc)
    else:
        assert isinstance(exc, RemoteError), repr(exc)
        assert exc.kind == "TaskError" and message in exc.message, repr(exc)


def raised_type(mode):
    return TaskError if mode == "inprocess" else RemoteError


def test_handles_are_futures(tm):
    manager, module = jobs_of(tm)
    handles = [
        module.add_task(module.one),
        module.schedule_task(module.one, 0.01),
        manager.add_task({"method": one}),
        manager.schedule_task({"method": one, "delay": 0.01}),
    ]
    rec = module.schedule_task(module.one, 30, reoccurring=True)
    for h in handles:
        assert isinstance(h, concurrent.futures.Future)
        assert isinstance(h, TaskHandle)
    if tm.mode == "inprocess":
        assert isinstance(rec, concurrent.futures.Future) and isinstance(rec, TaskHandle)
        assert isinstance(rec, RecurringHandle)
    else:
        assert isinstance(rec, SharedSchedule)
    assert [h.result(SOON) for h in handles] == [1, 1, 1, 1]
    assert rec.cancel()


def test_result_returns_value(tm):
    _, module = jobs_of(tm)
    value = {"a": [1, "b"]}
    h = module.add_task(module.echo, args=(value,))
    got = h.result(timeout=SOON)
    if tm.mode == "inprocess":
        assert got is value
    else:  # crossed as JSON
        assert got == value
    assert h.done() and not h.cancelled() and not h.running()
    assert h.exception(timeout=0) is None
    assert h.result(timeout=0) is got  # again, without waiting


def test_result_reraises_task_exception(tm):
    _, module = jobs_of(tm)
    h = module.add_task(module.raise_task_error, args=("bad input 17",))
    with pytest.raises(raised_type(tm.mode), match="bad input 17") as info:
        h.result(timeout=SOON)
    assert_task_error(tm.mode, info.value, "bad input 17")
    assert h.exception() is info.value
    with pytest.raises(raised_type(tm.mode)) as again:
        h.result()
    assert again.value is info.value
    assert h.done() and not h.cancelled()


def test_result_timeout_on_blocked_task(tm, token):
    _, single = jobs_of(tm, max_workers=1)
    running = single.add_task(single.hold, args=(token,))
    # The same method: with a broker each method has a stream of its own,
    # and only within one is the order of submission the order of runs.
    queued = single.add_task(single.hold, args=(token, "after"))
    assert wait_until(lambda: seen(token) == ["started"])
    with pytest.raises(concurrent.futures.TimeoutError):
        running.result(timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        queued.result(timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        queued.exception(timeout=0.05)
    assert running.running() and not running.done()
    assert not queued.running() and not queued.done()
    GATES[token].set()
    assert running.result(SOON) == "blocked"
    assert queued.result(SOON) == "after"


def test_timeout_on_scheduled_task(tm):
    _, module = jobs_of(tm)
    h = module.schedule_task(module.one, 30)
    with pytest.raises(concurrent.futures.TimeoutError):
        h.result(timeout=0.05)
    assert not h.done()
    assert h.cancel()


def test_cancel_queued_task(tm, token):
    _, single = jobs_of(tm, max_workers=1)
    single.add_task(single.hold, args=(token,))
    assert wait_until(lambda: seen(token) == ["started"])
    h = single.add_task(single.hold, args=(token, "should not run"))  # the same stream: queued behind
    assert h.cancel() is True
    assert h.cancelled() and h.done()
    assert h.cancel() is True  # cancelling again still reports cancelled
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=0)
    with pytest.raises(concurrent.futures.CancelledError):
        h.exception(timeout=0)
    GATES[token].set()
    assert single.add_task(single.echo, args=("next",)).result(SOON) == "next"
    assert seen(token) == ["started"]


def test_cancel_running_task_returns_false(tm, token):
    _, single = jobs_of(tm, max_workers=1)
    h = single.add_task(single.hold, args=(token,))
    assert wait_until(lambda: seen(token) == ["started"])
    assert h.cancel() is False
    assert not h.cancelled()
    GATES[token].set()
    assert h.result(SOON) == "blocked"


def test_cancel_finished_task_returns_false(tm):
    _, module = jobs_of(tm)
    h = module.add_task(module.echo, args=(3,))
    assert h.result(SOON) == 3
    assert h.cancel() is False
    assert not h.cancelled()
    assert h.result() == 3


def test_cancel_failed_task_returns_false(tm):
    _, module = jobs_of(tm)
    h = module.add_task(module.raise_task_error)
    assert_task_error(tm.mode, h.exception(SOON), "task went wrong")
    assert h.cancel() is False
    assert not h.cancelled()


def test_add_done_callback_called_once_with_handle(tm, token):
    _, module = jobs_of(tm)
    calls = Recorder()
    h = module.add_task(module.hold, args=(token, "v"))
    h.add_done_callback(calls)
    assert calls.snapshot() == []
    GATES[token].set()
    assert h.result(SOON) == "v"
    assert wait_until(lambda: len(calls) == 1)
    threading.Event().wait(0.05)
    assert calls.snapshot() == [h]


def test_add_done_callback_after_done_called_at_once(tm):
    _, module = jobs_of(tm)
    h = module.add_task(module.one)
    h.result(SOON)
    calls = []
    h.add_done_callback(calls.append)
    assert calls == [h]


def test_add_done_callback_on_failure_and_cancel(tm):
    _, module = jobs_of(tm)
    failed = module.add_task(module.raise_task_error)
    cancelled = module.schedule_task(module.one, 30)
    calls = Recorder()
    failed.add_done_callback(calls)
    cancelled.add_done_callback(calls)
    failed.exception(SOON)
    assert cancelled.cancel()
    assert wait_until(lambda: len(calls) == 2)
    assert set(map(id, calls.snapshot())) == {id(failed), id(cancelled)}


def test_add_done_callback_on_recurring_cancel(module):
    # In-process only: a SharedSchedule is not a Future (no add_done_callback).
    rec = module.schedule_task(lambda: None, 0.02, reoccurring=True)
    calls = []
    rec.add_done_callback(calls.append)
    assert wait_until(lambda: rec.runs >= 1)
    assert calls == []
    assert rec.cancel()
    assert calls == [rec]


def test_futures_wait_and_as_completed(tm):
    _, module = jobs_of(tm)
    hs = [module.add_task(module.square, args=(i,)) for i in range(10)]
    done, not_done = concurrent.futures.wait(hs, timeout=SOON)
    assert done == set(hs) and not not_done
    assert [h.result(0) for h in hs] == [i * i for i in range(10)]
    hs2 = [module.schedule_task(module.echo, 0.01 * (i % 3), args=(i,)) for i in range(6)]
    got = sorted(f.result() for f in concurrent.futures.as_completed(hs2, timeout=SOON))
    assert got == list(range(6))


def test_futures_wait_first_exception(tm, token):
    _, module = jobs_of(tm)
    slow = module.add_task(module.hold, args=(token, True))
    bad = module.add_task(module.raise_task_error)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=SOON, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert bad in done and slow in not_done
    GATES[token].set()
    assert slow.result(SOON) is True


def test_await_handle(tm):
    _, module = jobs_of(tm)

    async def main():
        a = await module.add_task(module.echo, args=("a",))
        b = await module.schedule_task(module.double, 0.02, args=("b",))
        return a, b

    assert asyncio.run(main()) == ("a", "bb")


def test_await_handle_raises(tm):
    _, module = jobs_of(tm)

    async def main():
        await module.add_task(module.raise_task_error, args=("from await",))

    with pytest.raises(raised_type(tm.mode), match="from await") as info:
        asyncio.run(main())
    assert_task_error(tm.mode, info.value, "from await")


def test_wrap_future_and_gather(tm):
    _, module = jobs_of(tm)

    async def main():
        futs = [asyncio.wrap_future(module.add_task(module.echo, args=(i + 1,))) for i in range(5)]
        return await asyncio.wait_for(asyncio.gather(*futs), SOON)

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_await_cancelled_handle_raises_cancelled(tm):
    _, module = jobs_of(tm)
    h = module.schedule_task(module.one, 30)

    async def main():
        asyncio.get_running_loop().call_later(0.02, h.cancel)
        await h

    with pytest.raises((asyncio.CancelledError, concurrent.futures.CancelledError)):
        asyncio.run(main())
    assert h.cancelled()


def test_asyncio_timeout_cancels_the_task(tm, token):
    """Cancelling the awaiting coroutine cancels a task that has not started."""
    _, module = jobs_of(tm)
    h = module.schedule_task(module.record, 0.3, args=(token, 1))

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(h, 0.05)

    asyncio.run(main())
    assert wait_until(h.cancelled)
    threading.Event().wait(0.4)
    assert seen(token) == []


# --- handles make their lock only when used: racing first use and completion ---


@pytest.mark.parametrize("use", ["result", "add_done_callback", "wait", "as_completed", "cancel"])
def test_first_use_racing_completion_never_loses_a_wakeup(tm, use):
    """Watchers start while tasks complete: every watcher sees its task end
    exactly once, whether it made the handle's lock before, during or after
    the task settled."""
    n = 400
    seen = [0] * n
    lock = threading.Lock()

    def saw(i):
        with lock:
            seen[i] += 1

    _, module = jobs_of(tm)
    handles = [module.add_task(module.triple, args=(i,)) for i in range(n)]

    def watch(i, h):
        if use == "result":
            assert h.result(SOON) == i * 3
            saw(i)
        elif use == "add_done_callback":
            h.add_done_callback(lambda f, i=i: saw(i) if f.result() == i * 3 else None)
        elif use == "wait":
            done, _ = concurrent.futures.wait([h], timeout=SOON)
            assert done == {h}
            saw(i)
        elif use == "as_completed":
            for f in concurrent.futures.as_completed([h], timeout=SOON):
                assert f.result() == i * 3
                saw(i)
        else:  # cancel: either it was cancelled before it ran, or it ran.
            if h.cancel():
                assert h.cancelled()
            else:
                assert h.result(SOON) == i * 3
            saw(i)

    threads = [threading.Thread(target=lambda k=k: [watch(i, handles[i]) for i in range(k, n, 4)]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SOON)
    assert wait_until(lambda: all(s == 1 for s in seen)), [i for i, s in enumerate(seen) if s != 1][:10]
    assert all(h.done() for h in handles)


def test_waiting_again_on_finished_handles(tm):
    """Finished handles answer state queries, results and repeated waits
    (their lock, made after they finished, is a plain one)."""
    _, module = jobs_of(tm)
    handles = [module.add_task(module.echo, args=(i,)) for i in range(200)]
    concurrent.futures.wait(handles, timeout=SOON)
    assert all(h.done() and not h.running() and not h.cancelled() for h in handles)
    # A second wait over the same (now finished) handles returns at once.
    done, not_done = concurrent.futures.wait(handles, timeout=0)
    assert len(done) == 200 and not not_done
    assert [h.result(0) for h in handles] == list(range(200))


def test_handles_have_ids_and_names(tm):
    manager, module = jobs_of(tm)
    h = module.add_task(module.fetch_prices)
    assert h.name == "Jobs.fetch_prices"
    named = module.schedule_task(module.nothing, 30, name="nightly-report")
    assert named.name == "nightly-report" and "nightly-report" in repr(named)
    rec = module.schedule_task(module.nothing, 30, reoccurring=True, name="poll")
    if tm.mode == "inprocess":
        assert rec.name == "poll" and "poll" in repr(rec)
    else:  # a SharedSchedule is named by its key
        assert rec.key == "poll" and "poll" in repr(rec)
    assert manager.add_task({"method": one, "name": "n"}).name == "n"
    assert manager.add_task({"method": one}).name == "one"
    ids = {h.id, named.id} | ({rec.id} if tm.mode == "inprocess" else set())
    assert len(ids) == (3 if tm.mode == "inprocess" else 2)
    assert all(isinstance(i, int) and i > 0 for i in ids)
    with pytest.raises(TypeError, match="name"):
        module.add_task(module.nothing, name=5)
    assert h.result(SOON) == 1
    assert named.cancel()
    assert rec.cancel()


def test_a_local_function_or_a_builtin_is_named_by_its_qualname(module, manager):
    # In-process only: a local function and an unregistered builtin cannot
    # run by name with a broker.
    def fetch_prices():
        return 1

    h = module.add_task(fetch_prices)
    assert h.name == "test_a_local_function_or_a_builtin_is_named_by_its_qualname.<locals>.fetch_prices"
    assert manager.add_task({"method": len, "args": ([],), "name": "n"}).name == "n"
    assert module.add_task(len, args=([],)).name == "len"
    assert h.result(SOON) == 1


def test_pause_and_resume_a_recurring_task(tm):
    manager, module = jobs_of(tm)
    h = module.schedule_task(module.nothing, 0.01, reoccurring=True, name="poll")
    inprocess = tm.mode == "inprocess"

    def paused():
        if inprocess:
            return h.paused
        return [t.state for t in manager.get_tasks() if t.name == h.key] == ["paused"]

    assert wait_until(lambda: runs(h) >= 2)
    assert h.pause() and paused()
    assert not h.pause()  # already paused: this call changed nothing
    if inprocess:
        assert "paused" in repr(h)
    settled = settle(lambda: runs(h))  # a run in progress may finish
    skipped = h.skipped_ticks if inprocess else None  # a RecurringHandle's counter
    time.sleep(0.1)
    assert runs(h) == settled, "no run while paused"
    if inprocess:
        assert h.skipped_ticks >= skipped + 3
    assert h.resume() and not paused()
    assert not h.resume()  # already running
    assert wait_until(lambda: runs(h) >= settled + 2)
    assert h.cancel()
    assert not h.pause() and not h.resume()


def test_set_interval_changes_a_recurring_task_at_once(module):
    # In-process only: set_interval is a RecurringHandle's (a SharedSchedule has none).
    h = module.schedule_task(Recorder(), 3600, reoccurring=True)
    time.sleep(0.01)
    h.set_interval(0.01)  # the hour-long wait ends now
    assert wait_until(lambda: h.runs >= 3)
    (info,) = [t for t in module.task_manager.get_tasks() if t.id == h.id]
    assert info.interval == 0.01
    # One rule, stated whatever the value broke it with: at least 1 ms.
    for short in (0, -1, 0.0009, 1e-12, -(10**400)):
        rule = rf"seconds must be at least 0\.001 seconds .*, got {re.escape(repr(short))}$"
        with pytest.raises(ValueError, match=rule):
            h.set_interval(short)
    h.set_interval(0.001)
    h.set_interval(0.01)
    with pytest.raises(TypeError, match="seconds must be a number"):
        h.set_interval("1")
    h.cancel()
