"""``async def`` methods and callbacks: their coroutines run to completion on
the worker, on an event loop the worker thread keeps, and their values and
exceptions are the task's.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py) through the module-level ``Async`` Module subclass and
the registered ``double``; the others need closures, loop objects or a
RecurringHandle's counters, which only exist in-process."""

import asyncio
import gc
import logging
import threading
import warnings

import pytest

from taskmanager import Module, RemoteError, TaskManager

from _util import GATES, SOON, Recorder, note, seen, settle, wait_until

# Barriers of the tests run in both modes, by token.
BARRIERS = {}


class Boom(Exception):
    pass


async def double(x):
    await asyncio.sleep(0.01)
    return 2 * x


async def failing():
    await asyncio.sleep(0)
    raise Boom("in a coroutine")


async def running_loop():
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


class Async(Module):
    """The tasks of the tests run in both modes (one per manager)."""

    async def double(self, x):
        return await double(x)

    def returns_a_coroutine(self, x):
        return double(x)

    async def failing(self):
        await failing()

    async def record(self, token, value):
        await asyncio.sleep(0.001)
        note(token, value)  # after an await: only a coroutine that runs gets here
        return value

    def echo(self, token, value):
        return [token, value]

    async def async_callback(self, result):
        await asyncio.sleep(0.001)
        note(result[0], ("async", result[1]))

    def sync_callback(self, result):
        note(result[0], ("sync", result[1]))

    async def bad_callback(self, result):
        raise Boom(f"callback got {result[1]}")

    async def inside(self):
        loop = asyncio.get_running_loop()
        assert asyncio.get_event_loop() is loop
        await asyncio.sleep(0.001)
        return [loop.is_running(), threading.current_thread().name]

    async def loop_id(self):
        await asyncio.sleep(0)
        return id(asyncio.get_running_loop())

    async def meet(self, token):
        BARRIERS[token].wait()  # the two run at once, on two workers
        return await self.loop_id()

    async def start_background(self, token):
        async def background():
            await asyncio.sleep(0.01)
            GATES[token].set()

        asyncio.get_running_loop().create_task(background())

    async def wait_a_little(self):
        await asyncio.sleep(0.05)


def async_of(tm, max_workers=4):
    manager = tm()
    manager.task(double)
    return manager, Async(task_manager=manager, max_workers=max_workers)


class NoUnawaited:
    """Records warnings (from every thread) and fails if a coroutine was
    never awaited, once garbage is collected."""

    def __enter__(self):
        self._catch = warnings.catch_warnings(record=True)
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        gc.collect()
        self._catch.__exit__(*exc)
        unawaited = [str(w.message) for w in self.caught if "never awaited" in str(w.message)]
        assert unawaited == [], unawaited


def test_result_of_an_async_task_in_both_modes(tm):
    manager, mod = async_of(tm)
    with NoUnawaited():
        assert mod.add_task(mod.double, args=(21,)).result(SOON) == 42
        assert mod.schedule_task(mod.double, 0.01, kwargs={"x": 4}).result(SOON) == 8
        assert mod.schedule_task(mod.double, 60, args=(1,), run_now=True).result(SOON) == 2
        assert manager.add_task({"method": double, "args": (5,)}).result(SOON) == 10
        assert manager.schedule_task({"method": double, "args": (6,), "delay": 0}).result(SOON) == 12


def test_a_method_returning_a_coroutine_is_awaited_in_both_modes(tm):
    _, mod = async_of(tm)
    with NoUnawaited():
        assert mod.add_task(mod.returns_a_coroutine, args=[3]).result(SOON) == 6


def test_a_recurring_async_task_runs_its_body_in_both_modes(tm, token):
    _, mod = async_of(tm)
    with NoUnawaited():
        h = mod.schedule_task(mod.record, 0.02, args=[token, "ran"], reoccurring=True)
        assert wait_until(lambda: len(seen(token)) >= 3)
        assert h.cancel()


def test_async_callbacks_are_awaited_with_the_value_in_both_modes(tm, token):
    _, mod = async_of(tm)
    with NoUnawaited():
        h = mod.add_task(mod.echo, args=[token, 10], callback=[mod.async_callback, mod.sync_callback])
        assert h.result(SOON) == [token, 10]
        assert seen(token) == [("async", 10), ("sync", 10)]


def test_a_recurring_async_callback_in_both_modes(tm, token):
    _, mod = async_of(tm)
    with NoUnawaited():
        h = mod.schedule_task(mod.echo, 0.02, args=[token, 2], callback=mod.async_callback, reoccurring=True)
        assert wait_until(lambda: len(seen(token)) >= 2)
        assert h.cancel()
        assert set(seen(token)) == {("async", 2)}


def test_an_exception_in_a_coroutine_goes_to_the_handle_in_each_modes_form(tm):
    _, mod = async_of(tm)
    with NoUnawaited():
        h = mod.add_task(mod.failing)
        exc = h.exception(SOON)
        if tm.mode == "inprocess":
            assert isinstance(exc, Boom) and str(exc) == "in a coroutine"
        else:
            assert isinstance(exc, RemoteError)
            assert (exc.kind, exc.message) == ("Boom", "in a coroutine")
            # The traceback reaches into the coroutine.
            assert "in failing" in exc.remote_traceback


def test_an_exception_in_an_async_callback_goes_to_the_handle_in_both_modes(tm, token):
    _, mod = async_of(tm)
    with NoUnawaited():
        h = mod.add_task(mod.echo, args=[token, 7], callback=[mod.bad_callback, mod.sync_callback])
        exc = h.exception(SOON)
        if tm.mode == "inprocess":
            assert isinstance(exc, Boom) and str(exc) == "callback got 7"
        else:
            assert isinstance(exc, RemoteError) and (exc.kind, exc.message) == ("Boom", "callback got 7")
        assert seen(token) == [("sync", 7)]  # the callbacks after it still ran


def test_get_running_loop_inside_in_both_modes(tm):
    _, mod = async_of(tm)
    running, thread = mod.add_task(mod.inside).result(SOON)
    assert running
    assert thread != threading.main_thread().name


def test_the_loop_is_reused_across_a_workers_tasks_in_both_modes(tm):
    _, mod = async_of(tm, max_workers=1)
    with NoUnawaited():
        handles = [mod.add_task(mod.loop_id) for _ in range(5)]
        assert len({h.result(SOON) for h in handles}) == 1


def test_workers_have_loops_of_their_own_in_both_modes(tm, token):
    _, mod = async_of(tm, max_workers=2)
    BARRIERS[token] = threading.Barrier(2, timeout=SOON)
    try:
        first, second = mod.add_task(mod.meet, args=[token]), mod.add_task(mod.meet, args=[token])
        assert first.result(SOON) != second.result(SOON)
    finally:
        BARRIERS.pop(token).abort()


def test_tasks_a_coroutine_leaves_go_on_with_the_next_in_both_modes(tm, token):
    _, mod = async_of(tm, max_workers=1)
    mod.add_task(mod.start_background, args=[token]).result(SOON)
    mod.add_task(mod.wait_a_little).result(SOON)
    assert GATES[token].is_set()


def test_result_of_an_async_task(module, manager):
    with NoUnawaited():
        assert module.add_task(double, args=(21,)).result(SOON) == 42
        assert module.schedule_task(double, 0.01, kwargs={"x": 4}).result(SOON) == 8
        assert module.schedule_task(double, 60, args=(1,), run_now=True).result(SOON) == 2
        assert manager.add_task({"method": double, "args": (5,)}).result(SOON) == 10
        assert manager.schedule_task({"method": double, "args": (6,), "delay": 0}).result(SOON) == 12


def test_a_method_returning_a_coroutine_is_awaited_too(module):
    """What counts is the returned object: a plain function that returns a
    coroutine is awaited the same way."""
    with NoUnawaited():
        assert module.add_task(lambda: double(3)).result(SOON) == 6


def test_a_generator_is_a_value_not_a_coroutine(module):
    def numbers():
        yield 1
        yield 2

    h = module.add_task(numbers)
    assert list(h.result(SOON)) == [1, 2]


def test_recurring_async_task_runs_its_body_every_run(module):
    body = Recorder()

    async def tick():
        await asyncio.sleep(0.001)
        body("ran")  # after an await: only a coroutine that runs gets here

    with NoUnawaited():
        h = module.schedule_task(tick, 0.02, reoccurring=True)
        assert wait_until(lambda: len(body) >= 3)
        h.cancel()
        runs = settle(lambda: h.runs)
        assert len(body) == runs and h.failures == 0


def test_async_callbacks_are_awaited_with_the_value(module):
    got = Recorder()

    async def callback(value):
        await asyncio.sleep(0.001)
        got(("async", value))

    with NoUnawaited():
        h = module.add_task(double, args=(5,), callback=[callback, lambda v: got(("sync", v))])
        assert h.result(SOON) == 10
        assert got.snapshot() == [("async", 10), ("sync", 10)]


def test_recurring_async_callback(module):
    got = Recorder()

    async def callback(value):
        await asyncio.sleep(0)
        got(value)

    with NoUnawaited():
        h = module.schedule_task(double, 0.02, args=(1,), callback=callback, reoccurring=True)
        assert wait_until(lambda: len(got) >= 2)
        h.cancel()
        settle(lambda: len(got))
        assert set(got.snapshot()) == {2}


def test_exception_in_a_coroutine_goes_to_the_handle(module, caplog):
    with caplog.at_level(logging.ERROR, logger="taskmanager"), NoUnawaited():
        h = module.add_task(failing)
        with pytest.raises(Boom, match="in a coroutine"):
            h.result(SOON)
        exc = h.exception()
        # The traceback reaches into the coroutine.
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        assert "failing" in frames
        logged = [r for r in caplog.records if r.name == "taskmanager"]
        assert len(logged) == 1 and logged[0].exc_info[1] is exc
        assert "task" in logged[0].getMessage()


def test_exception_in_a_recurring_coroutine(module):
    with NoUnawaited():
        h = module.schedule_task(failing, 0.02, reoccurring=True)
        assert wait_until(lambda: h.failures >= 2)
        h.cancel()
        assert isinstance(h.last_exception, Boom)


def test_exception_in_an_async_callback_goes_to_the_handle(module):
    later = Recorder()

    async def bad(value):
        raise Boom(f"callback got {value}")

    with NoUnawaited():
        h = module.add_task(lambda: 7, callback=[bad, later])
        with pytest.raises(Boom, match="callback got 7"):
            h.result(SOON)
        assert later.snapshot() == [7]  # the callbacks after it still ran


def test_get_running_loop_inside(module):
    async def inside():
        loop = asyncio.get_running_loop()
        assert asyncio.get_event_loop() is loop
        await asyncio.sleep(0.001)
        return loop.is_running(), threading.current_thread().name

    running, thread = module.add_task(inside).result(SOON)
    assert running
    assert thread != threading.main_thread().name


def test_the_loop_is_reused_across_a_workers_tasks(single):
    with NoUnawaited():
        loops = [single.add_task(running_loop) for _ in range(5)]
        loops = [h.result(SOON) for h in loops]
        assert len({id(loop) for loop in loops}) == 1
        assert not loops[0].is_closed()


def test_tasks_a_coroutine_leaves_go_on_with_the_next(single):
    """A task a coroutine starts and leaves runs on the worker's loop while
    later coroutines run there."""
    done = threading.Event()

    async def background():
        await asyncio.sleep(0.01)
        done.set()

    async def start():
        asyncio.get_running_loop().create_task(background())

    async def wait_a_little():
        await asyncio.sleep(0.05)

    single.add_task(start).result(SOON)
    single.add_task(wait_a_little).result(SOON)
    assert done.is_set()


def test_workers_have_loops_of_their_own(manager):
    module = Module(task_manager=manager, max_workers=2)
    both = threading.Barrier(2, timeout=SOON)

    async def meet():
        both.wait()  # the two run at once, on two workers
        return await running_loop()

    first, second = module.add_task(meet), module.add_task(meet)
    loops = first.result(SOON), second.result(SOON)
    assert all(isinstance(loop, asyncio.AbstractEventLoop) for loop in loops)
    assert loops[0] is not loops[1]


def test_the_loop_is_closed_when_the_worker_exits():
    m = TaskManager()
    m.start_thread()
    left = []

    async def start():
        loop = asyncio.get_running_loop()
        left.append(loop.create_task(asyncio.sleep(3600)))  # never finishes by itself
        return loop

    try:
        loop = Module(task_manager=m, max_workers=1).add_task(start).result(SOON)
        assert not loop.is_closed()
    finally:
        m.shutdown()
    assert loop.is_closed()
    assert left[0].cancelled()  # cancelled at the close, as asyncio.run does


@pytest.mark.parametrize(
    "submit",
    [
        lambda mgr, mod, coro: mod.add_task(coro),
        lambda mgr, mod, coro: mod.schedule_task(coro, 1),
        lambda mgr, mod, coro: mod.schedule_task(coro, 1, reoccurring=True),
        lambda mgr, mod, coro: mgr.add_task({"method": coro}),
        lambda mgr, mod, coro: mgr.schedule_task({"method": coro, "delay": 1}),
    ],
    ids=["add_task", "schedule_task", "recurring", "dict add_task", "dict schedule_task"],
)
def test_a_coroutine_object_as_method_is_a_type_error(tm, submit):
    manager, module = async_of(tm)
    with NoUnawaited():
        coro = double(1)
        message = r"^method must be callable, got a coroutine object .*pass the async function itself: double, not "
        with pytest.raises(TypeError, match=message):
            submit(manager, module, coro)
        assert coro.cr_frame is None  # closed: it will not warn
        del coro
    assert "outstanding=0" in repr(manager)


@pytest.mark.parametrize("callback, name", [("one", r"callback"), ("list", r"callback\[1\]")])
def test_a_coroutine_object_as_callback_is_a_type_error(tm, callback, name):
    _, module = async_of(tm)
    with NoUnawaited():
        coro = double(1)
        given = coro if callback == "one" else [module.sync_callback, coro]
        with pytest.raises(TypeError, match=rf"^{name} must be callable, got a coroutine object"):
            module.add_task(module.echo, args=["t", 1], callback=given)
        assert coro.cr_frame is None
        del coro, given
