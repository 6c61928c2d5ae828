"""Nothing a task held outlives it; threads do not pile up."""

import concurrent.futures
import gc
import os
import threading
import time
import weakref

import pytest

from taskmanager import Module, TaskManager

from _util import SOON, wait_until


class Payload:
    """A weak-referenceable object, referenced only by the task."""


class CallablePayload:
    def __call__(self, *args, **kwargs):
        return "called"


def released(ref, timeout=SOON):
    def gone():
        gc.collect()
        return ref() is None

    return wait_until(gone, timeout=timeout, interval=0.02)


def submit(module, where, obj, delay=None, reoccurring=False):
    method, args, kwargs, callback = (lambda *a, **k: "ok"), (), None, None
    if where == "args":
        args = (obj,)
    elif where == "kwargs":
        kwargs = {"payload": obj}
    elif where == "callback":
        callback = [obj]
    elif where == "method":
        method = obj
    if delay is None:
        return module.add_task(method, args=args, kwargs=kwargs, callback=callback)
    return module.schedule_task(method, delay, args=args, kwargs=kwargs, callback=callback, reoccurring=reoccurring)


WHERE = ["args", "kwargs", "callback", "method"]


@pytest.mark.parametrize("where", WHERE)
def test_released_after_task_ends(module, where):
    obj = CallablePayload()
    ref = weakref.ref(obj)
    h = submit(module, where, obj)
    del obj
    assert h.result(SOON) is not None
    assert released(ref), f"the object in {where} outlived its task"


@pytest.mark.parametrize("where", WHERE)
def test_released_after_scheduled_task_ends(module, where):
    obj = CallablePayload()
    ref = weakref.ref(obj)
    h = submit(module, where, obj, delay=0.02)
    del obj
    h.result(SOON)
    assert released(ref)


def test_released_after_failing_task(module, caplog):
    """The handle keeps the exception; the arguments still go."""
    import logging

    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    obj = Payload()
    ref = weakref.ref(obj)

    def fails(payload):
        raise ValueError("x")

    h = module.add_task(fails, args=(obj,))
    del obj
    assert isinstance(h.exception(SOON), ValueError)
    caplog.clear()
    h = None
    assert released(ref)


@pytest.mark.parametrize("where", WHERE)
def test_released_after_cancel_of_scheduled(module, where):
    obj = CallablePayload()
    ref = weakref.ref(obj)
    h = submit(module, where, obj, delay=30)
    del obj
    assert h.cancel()
    gc.collect()
    assert ref() is None, f"a cancelled task kept its {where}"


def test_released_after_cancel_of_queued(single, gate):
    single.add_task(gate.wait, args=(SOON,))
    obj = Payload()
    ref = weakref.ref(obj)
    h = single.add_task(lambda p: None, args=(obj,))
    del obj
    assert h.cancel()
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("where", WHERE)
def test_released_after_cancel_of_recurring(module, where):
    obj = CallablePayload()
    ref = weakref.ref(obj)
    h = submit(module, where, obj, delay=0.02, reoccurring=True)
    del obj
    assert wait_until(lambda: h.runs >= 2)
    assert ref() is not None  # held while it recurs
    assert h.cancel()
    assert released(ref, timeout=2), f"a cancelled recurring task kept its {where}"


def test_released_after_shutdown_cancels():
    m = TaskManager()
    m.start_thread()
    mod = Module(task_manager=m, max_workers=1)
    objs = [Payload() for _ in range(3)]
    refs = [weakref.ref(o) for o in objs]
    handles = [
        mod.schedule_task(lambda p: None, 30, args=(objs[0],)),
        mod.schedule_task(lambda p: None, 0.02, args=(objs[1],), reoccurring=True),
        m.schedule_task({"method": lambda p: None, "delay": 30, "args": (objs[2],)}),
    ]
    del objs
    m.shutdown()
    assert all(h.cancelled() for h in handles)
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def test_handle_itself_collectable(module):
    h = module.add_task(lambda: Payload())
    h.result(SOON)
    ref = weakref.ref(h)
    value_ref = weakref.ref(h.result())
    del h
    gc.collect()
    assert ref() is None and value_ref() is None


def _os_threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only")
def test_no_thread_growth_after_shutdown():
    before_os = _os_threads()
    before_py = threading.active_count()
    for round_ in range(3):
        m = TaskManager(max_workers=4)
        m.start_thread()
        mods = [Module(task_manager=m, max_workers=3) for _ in range(3)]
        hs = []
        for i in range(60):
            mod = mods[i % 3]
            hs.append(mod.add_task(time.sleep, args=(0.002,)))
            hs.append(m.add_task({"method": lambda: None}))
        hs.append(mods[0].schedule_task(lambda: None, 0.01))
        rec = mods[1].schedule_task(lambda: None, 0.01, reoccurring=True)
        done, _ = concurrent.futures.wait(hs, timeout=SOON)
        assert len(done) == len(hs)
        assert _os_threads() > before_os  # the workers were real threads
        m.shutdown()
        assert rec.cancelled()
        assert wait_until(lambda: _os_threads() <= before_os, timeout=2)
        assert _os_threads() == before_os, f"round {round_}: threads left after shutdown"
        assert threading.active_count() == before_py


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux only")
def test_workers_bounded_by_max_workers():
    before = _os_threads()
    m = TaskManager(max_workers=2)
    m.start_thread()
    try:
        mod = Module(task_manager=m, max_workers=3)
        peak = [0]

        def task():
            peak[0] = max(peak[0], _os_threads())
            time.sleep(0.005)

        hs = [mod.add_task(task) for _ in range(100)] + [m.add_task({"method": task}) for _ in range(50)]
        concurrent.futures.wait(hs, timeout=SOON)
        # At most 3 + 2 workers and one timer thread: no thread per task.
        assert peak[0] - before <= 3 + 2 + 1
    finally:
        m.shutdown()
