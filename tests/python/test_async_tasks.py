"""``async def`` methods and callbacks: their coroutines run to completion on
the worker, on an event loop the worker thread keeps, and their values and
exceptions are the task's."""

import asyncio
import gc
import logging
import threading
import warnings

import pytest

from taskmanager import Module, TaskManager

from _util import SOON, Recorder, settle, wait_until


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
def test_a_coroutine_object_as_method_is_a_type_error(manager, module, submit):
    with NoUnawaited():
        coro = double(1)
        message = r"^method must be callable, got a coroutine object .*pass the async function itself: double, not "
        with pytest.raises(TypeError, match=message):
            submit(manager, module, coro)
        assert coro.cr_frame is None  # closed: it will not warn
        del coro
    assert "outstanding=0" in repr(manager)


@pytest.mark.parametrize("callback, name", [("one", r"callback"), ("list", r"callback\[1\]")])
def test_a_coroutine_object_as_callback_is_a_type_error(module, callback, name):
    with NoUnawaited():
        coro = double(1)
        given = coro if callback == "one" else [print, coro]
        with pytest.raises(TypeError, match=rf"^{name} must be callable, got a coroutine object"):
            module.add_task(print, callback=given)
        assert coro.cr_frame is None
        del coro, given
