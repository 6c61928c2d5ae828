"""Handles behave like concurrent.futures.Future, and can be awaited."""

import asyncio
import concurrent.futures
import re
import threading
import time

import pytest

from taskmanager import RecurringHandle, TaskHandle

from _util import SOON, Blocker, Recorder, settle, wait_until


class TaskError(Exception):
    pass


def raise_task_error(msg="task went wrong"):
    raise TaskError(msg)


def test_handles_are_futures(module, manager):
    handles = [
        module.add_task(lambda: 1),
        module.schedule_task(lambda: 1, 0.01),
        manager.add_task({"method": lambda: 1}),
        manager.schedule_task({"method": lambda: 1, "delay": 0.01}),
    ]
    rec = module.schedule_task(lambda: 1, 30, reoccurring=True)
    for h in handles + [rec]:
        assert isinstance(h, concurrent.futures.Future)
        assert isinstance(h, TaskHandle)
    assert isinstance(rec, RecurringHandle)
    assert [h.result(SOON) for h in handles] == [1, 1, 1, 1]
    rec.cancel()


def test_result_returns_value(module):
    obj = object()
    h = module.add_task(lambda: obj)
    assert h.result(timeout=SOON) is obj
    assert h.done() and not h.cancelled() and not h.running()
    assert h.exception(timeout=0) is None
    assert h.result(timeout=0) is obj  # again, without waiting


def test_result_reraises_task_exception(module):
    h = module.add_task(raise_task_error, args=("bad input 17",))
    with pytest.raises(TaskError, match="bad input 17") as info:
        h.result(timeout=SOON)
    assert type(info.value) is TaskError
    assert h.exception() is info.value
    with pytest.raises(TaskError) as again:
        h.result()
    assert again.value is info.value
    assert h.done() and not h.cancelled()


def test_result_timeout_on_blocked_task(single, gate):
    blocker = Blocker(gate)
    running = single.add_task(blocker)
    queued = single.add_task(lambda: "after")
    assert blocker.started.wait(SOON)
    with pytest.raises(concurrent.futures.TimeoutError):
        running.result(timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        queued.result(timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        queued.exception(timeout=0.05)
    assert running.running() and not running.done()
    assert not queued.running() and not queued.done()
    gate.set()
    assert running.result(SOON) == "blocked"
    assert queued.result(SOON) == "after"


def test_timeout_on_scheduled_task(module):
    h = module.schedule_task(lambda: 1, 30)
    with pytest.raises(concurrent.futures.TimeoutError):
        h.result(timeout=0.05)
    assert not h.done()
    assert h.cancel()


def test_cancel_queued_task(single, gate):
    blocker = Blocker(gate)
    single.add_task(blocker)
    assert blocker.started.wait(SOON)
    ran = Recorder()
    h = single.add_task(ran, args=("should not run",))
    assert h.cancel() is True
    assert h.cancelled() and h.done()
    assert h.cancel() is True  # cancelling again still reports cancelled
    with pytest.raises(concurrent.futures.CancelledError):
        h.result(timeout=0)
    with pytest.raises(concurrent.futures.CancelledError):
        h.exception(timeout=0)
    gate.set()
    assert single.add_task(lambda: "next").result(SOON) == "next"
    assert len(ran) == 0


def test_cancel_running_task_returns_false(single, gate):
    blocker = Blocker(gate)
    h = single.add_task(blocker)
    assert blocker.started.wait(SOON)
    assert h.cancel() is False
    assert not h.cancelled()
    gate.set()
    assert h.result(SOON) == "blocked"


def test_cancel_finished_task_returns_false(module):
    h = module.add_task(lambda: 3)
    assert h.result(SOON) == 3
    assert h.cancel() is False
    assert not h.cancelled()
    assert h.result() == 3


def test_cancel_failed_task_returns_false(module):
    h = module.add_task(raise_task_error)
    assert isinstance(h.exception(SOON), TaskError)
    assert h.cancel() is False
    assert not h.cancelled()


def test_add_done_callback_called_once_with_handle(module, gate):
    calls = Recorder()
    h = module.add_task(lambda: gate.wait(SOON) and "v")
    h.add_done_callback(calls)
    assert calls.snapshot() == []
    gate.set()
    assert h.result(SOON) == "v"
    assert wait_until(lambda: len(calls) == 1)
    threading.Event().wait(0.05)
    assert calls.snapshot() == [h]


def test_add_done_callback_after_done_called_at_once(module):
    h = module.add_task(lambda: 1)
    h.result(SOON)
    calls = []
    h.add_done_callback(calls.append)
    assert calls == [h]


def test_add_done_callback_on_failure_and_cancel(module):
    failed = module.add_task(raise_task_error)
    cancelled = module.schedule_task(lambda: 1, 30)
    calls = Recorder()
    failed.add_done_callback(calls)
    cancelled.add_done_callback(calls)
    failed.exception(SOON)
    assert cancelled.cancel()
    assert wait_until(lambda: len(calls) == 2)
    assert set(map(id, calls.snapshot())) == {id(failed), id(cancelled)}


def test_add_done_callback_on_recurring_cancel(module):
    rec = module.schedule_task(lambda: None, 0.02, reoccurring=True)
    calls = []
    rec.add_done_callback(calls.append)
    assert wait_until(lambda: rec.runs >= 1)
    assert calls == []
    assert rec.cancel()
    assert calls == [rec]


def test_futures_wait_and_as_completed(module):
    hs = [module.add_task(lambda i=i: i * i) for i in range(10)]
    done, not_done = concurrent.futures.wait(hs, timeout=SOON)
    assert done == set(hs) and not not_done
    hs2 = [module.schedule_task(lambda i=i: i, 0.01 * (i % 3)) for i in range(6)]
    got = sorted(f.result() for f in concurrent.futures.as_completed(hs2, timeout=SOON))
    assert got == list(range(6))


def test_futures_wait_first_exception(module, gate):
    slow = module.add_task(lambda: gate.wait(SOON))
    bad = module.add_task(raise_task_error)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=SOON, return_when=concurrent.futures.FIRST_EXCEPTION
    )
    assert bad in done and slow in not_done
    gate.set()
    assert slow.result(SOON) is True


def test_await_handle(module):
    async def main():
        a = await module.add_task(lambda: "a")
        b = await module.schedule_task(lambda x: x * 2, 0.02, args=("b",))
        return a, b

    assert asyncio.run(main()) == ("a", "bb")


def test_await_handle_raises(module):
    async def main():
        await module.add_task(raise_task_error, args=("from await",))

    with pytest.raises(TaskError, match="from await"):
        asyncio.run(main())


def test_wrap_future_and_gather(module):
    async def main():
        futs = [asyncio.wrap_future(module.add_task(lambda i=i: i + 1)) for i in range(5)]
        return await asyncio.wait_for(asyncio.gather(*futs), SOON)

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_await_cancelled_handle_raises_cancelled(module):
    h = module.schedule_task(lambda: 1, 30)

    async def main():
        asyncio.get_running_loop().call_later(0.02, h.cancel)
        await h

    with pytest.raises((asyncio.CancelledError, concurrent.futures.CancelledError)):
        asyncio.run(main())
    assert h.cancelled()


def test_asyncio_timeout_cancels_the_task(module):
    """Cancelling the awaiting coroutine cancels a task that has not started."""
    ran = Recorder()
    h = module.schedule_task(ran, 0.3, args=(1,))

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(h, 0.05)

    asyncio.run(main())
    assert wait_until(h.cancelled)
    threading.Event().wait(0.4)
    assert len(ran) == 0


# --- handles make their lock only when used: racing first use and completion ---


@pytest.mark.parametrize("use", ["result", "add_done_callback", "wait", "as_completed", "cancel"])
def test_first_use_racing_completion_never_loses_a_wakeup(module, use):
    """Watchers start while tasks complete: every watcher sees its task end
    exactly once, whether it made the handle's lock before, during or after
    the task settled."""
    n = 400
    seen = [0] * n
    lock = threading.Lock()

    def saw(i):
        with lock:
            seen[i] += 1

    handles = [module.add_task(lambda i=i: i * 3) for i in range(n)]

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


def test_waiting_again_on_finished_handles(module):
    """Finished handles answer state queries, results and repeated waits
    (their lock, made after they finished, is a plain one)."""
    handles = [module.add_task(lambda i=i: i) for i in range(200)]
    concurrent.futures.wait(handles, timeout=SOON)
    assert all(h.done() and not h.running() and not h.cancelled() for h in handles)
    # A second wait over the same (now finished) handles returns at once.
    done, not_done = concurrent.futures.wait(handles, timeout=0)
    assert len(done) == 200 and not not_done
    assert [h.result(0) for h in handles] == list(range(200))


def test_handles_have_ids_and_names(module, manager):
    def fetch_prices():
        return 1

    h = module.add_task(fetch_prices)
    assert h.name == "test_handles_have_ids_and_names.<locals>.fetch_prices"
    named = module.schedule_task(print, 30, name="nightly-report")
    assert named.name == "nightly-report" and "nightly-report" in repr(named)
    rec = module.schedule_task(print, 30, reoccurring=True, name="poll")
    assert rec.name == "poll" and "poll" in repr(rec)
    assert manager.add_task({"method": len, "args": ([],), "name": "n"}).name == "n"
    assert module.add_task(len, args=([],)).name == "len"
    ids = {h.id, named.id, rec.id}
    assert len(ids) == 3 and all(isinstance(i, int) and i > 0 for i in ids)
    with pytest.raises(TypeError, match="name"):
        module.add_task(print, name=5)
    h.result(SOON)
    named.cancel()
    rec.cancel()


def test_pause_and_resume_a_recurring_task(module):
    h = module.schedule_task(Recorder(), 0.01, reoccurring=True, name="poll")
    assert wait_until(lambda: h.runs >= 2)
    assert h.pause() and not h.pause() and h.paused
    assert "paused" in repr(h)
    settled = settle(lambda: h.runs)  # a run in progress may finish
    skipped = h.skipped_ticks
    time.sleep(0.1)
    assert h.runs == settled, "no run while paused"
    assert h.skipped_ticks >= skipped + 3
    assert h.resume() and not h.resume() and not h.paused
    assert wait_until(lambda: h.runs >= settled + 2)
    h.cancel()
    assert not h.pause() and not h.resume()


def test_set_interval_changes_a_recurring_task_at_once(module):
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
