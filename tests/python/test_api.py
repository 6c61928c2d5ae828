"""The spec's API: imports, the dict form on TaskManager, the keyword form on
Module, the spec's subclassing example, and reprs."""

import concurrent.futures
import threading

import pytest

import taskmanager
from taskmanager import Module, RecurringHandle, TaskHandle, TaskManager

from _util import SOON, Recorder, wait_until


# --- imports ----------------------------------------------------------------


def test_spec_import_line():
    from taskmanager import TaskManager as TM, Module as M  # the spec's line

    assert TM is TaskManager and M is Module
    assert isinstance(TM, type) and isinstance(M, type)


def test_all_exports_public_names():
    assert set(taskmanager.__all__) >= {"TaskManager", "Module"}
    assert set(taskmanager.__all__) == {
        "TaskManager", "Module", "TaskHandle", "RecurringHandle", "QueueFull", "ShutdownTimedOut", "Stats", "TaskInfo",
        "Event", "RemoteError", "ResultLost", "SharedSchedule", "ClusterStats", "ModuleLoad", "ScheduleInfo",
        "WorkerInfo",
    }
    for name in taskmanager.__all__:
        assert hasattr(taskmanager, name), name
    ns = {}
    exec("from taskmanager import *", ns)
    assert ns["TaskManager"] is TaskManager and ns["Module"] is Module


# --- dict form on TaskManager -------------------------------------------------


def test_add_task_dict_full(manager):
    seen = Recorder()
    h = manager.add_task(
        {"method": lambda a, b, c=0: a + b + c, "args": [1, 2], "kwargs": {"c": 3}, "callback": seen}
    )
    assert h.result(SOON) == 6
    assert seen.snapshot() == [6]


def test_add_task_dict_only_method(manager):
    assert manager.add_task({"method": lambda: "only"}).result(SOON) == "only"


def test_add_task_dict_none_values(manager):
    h = manager.add_task({"method": lambda: 7, "args": None, "kwargs": None, "callback": None})
    assert h.result(SOON) == 7


def test_add_task_dict_tuple_args(manager):
    assert manager.add_task({"method": pow, "args": (2, 5)}).result(SOON) == 32


def test_schedule_task_dict_one_shot(manager):
    seen = Recorder()
    h = manager.schedule_task(
        {"method": lambda x, y=0: x * y, "args": (6,), "kwargs": {"y": 7}, "callback": [seen], "delay": 0.05}
    )
    assert type(h) is TaskHandle
    assert h.result(SOON) == 42
    assert seen.snapshot() == [42]


def test_schedule_task_dict_only_method_and_delay(manager):
    h = manager.schedule_task({"method": lambda: "d", "delay": 0})
    assert h.result(SOON) == "d"


def test_schedule_task_dict_none_values(manager):
    h = manager.schedule_task(
        {"method": lambda: 1, "delay": 0.01, "args": None, "kwargs": None, "callback": None}
    )
    assert h.result(SOON) == 1


@pytest.mark.parametrize("key", ["reoccurring", "run_now", "recurring"])
def test_schedule_task_dict_none_flag_means_default(manager, key):
    """Keys may be given as None: a flag given as None means its default (a
    one-shot, not run now), as 'args': None does."""
    h = manager.schedule_task({"method": lambda: "x", "delay": 0.01, key: None})
    assert type(h) is TaskHandle
    assert h.result(SOON) == "x"


def test_schedule_task_dict_reoccurring(manager):
    runs = Recorder()
    h = manager.schedule_task({"method": runs, "args": ("r",), "delay": 0.02, "reoccurring": True})
    assert isinstance(h, RecurringHandle)
    assert wait_until(lambda: len(runs) >= 2)
    assert h.cancel()
    assert set(runs.snapshot()) == {"r"}


def test_schedule_task_dict_recurring_alias(manager):
    runs = Recorder()
    h = manager.schedule_task({"method": runs, "delay": 0.02, "recurring": True})
    assert isinstance(h, RecurringHandle)
    assert wait_until(lambda: len(runs) >= 2)
    assert h.cancel()


def test_schedule_task_dict_run_now(manager):
    runs = Recorder()
    h = manager.schedule_task({"method": runs, "args": (1,), "delay": 30, "reoccurring": True, "run_now": True})
    # Runs now although the first tick is 30 s away.
    assert wait_until(lambda: len(runs) == 1)
    assert h.runs == 1
    h.cancel()


@pytest.mark.parametrize("key", ["callbak", "delay", "reoccurring", "run_now", "Method", "arg"])
def test_add_task_dict_unknown_key(manager, key):
    ran = Recorder()
    with pytest.raises(ValueError, match=repr(key)):
        manager.add_task({"method": ran, key: 1})
    assert len(ran) == 0


@pytest.mark.parametrize("key", ["callbak", "dealy", "reocurring", "interval"])
def test_schedule_task_dict_unknown_key(manager, key):
    with pytest.raises(ValueError, match=repr(key)):
        manager.schedule_task({"method": print, "delay": 1, key: 1})


def test_dict_missing_method(manager):
    with pytest.raises(ValueError, match="method"):
        manager.add_task({"args": (1,)})
    with pytest.raises(ValueError, match="method"):
        manager.add_task({})
    with pytest.raises(ValueError, match="method"):
        manager.schedule_task({"delay": 1})


def test_dict_missing_delay(manager):
    with pytest.raises(ValueError, match="delay"):
        manager.schedule_task({"method": print})


@pytest.mark.parametrize("task", [None, print, [print], ("method", print), "method", 3])
def test_dict_form_needs_a_dict(manager, task):
    with pytest.raises(TypeError, match="dict"):
        manager.add_task(task)
    with pytest.raises(TypeError, match="dict"):
        manager.schedule_task(task)


# --- keyword form on Module ---------------------------------------------------


def test_module_add_task_keywords(module):
    seen = Recorder()
    h = module.add_task(lambda a, b, sep="": f"{a}{sep}{b}", args=["x", "y"], kwargs={"sep": "-"}, callback=seen)
    assert h.result(SOON) == "x-y"
    assert seen.snapshot() == ["x-y"]


def test_module_add_task_positional(module):
    seen = Recorder()
    h = module.add_task(divmod, (17, 5), None, seen)
    assert h.result(SOON) == (3, 2)
    assert seen.snapshot() == [(3, 2)]


def test_module_add_task_defaults(module):
    assert module.add_task(lambda: "bare").result(SOON) == "bare"


@pytest.mark.parametrize("args", [(1, 2), [1, 2]])
def test_module_args_list_or_tuple(module, args):
    got = []
    h = module.add_task(lambda *a: got.append(a) or len(a), args=args)
    assert h.result(SOON) == 2
    assert got == [(1, 2)]


def test_module_kwargs_dict(module):
    h = module.add_task(lambda **kw: sorted(kw.items()), kwargs={"b": 2, "a": 1})
    assert h.result(SOON) == [("a", 1), ("b", 2)]


def test_module_args_are_copied_at_submission(module, gate):
    """The task sees the arguments as they were when submitted."""
    args = [1]
    kwargs = {"k": 1}
    h = module.schedule_task(lambda *a, **kw: (a, kw), 0.05, args=args, kwargs=kwargs)
    args.append(2)
    kwargs["k"] = 2
    assert h.result(SOON) == ((1,), {"k": 1})


def test_module_schedule_task_keywords(module):
    seen = Recorder()
    h = module.schedule_task(
        lambda x: x + 1, 0.05, args=(1,), kwargs=None, callback=seen, reoccurring=False, run_now=False
    )
    assert type(h) is TaskHandle
    assert h.result(SOON) == 2
    assert seen.snapshot() == [2]


def test_module_schedule_task_positional(module):
    h = module.schedule_task(lambda x, y: x - y, 0.01, (5, 3))
    assert h.result(SOON) == 2


def test_module_schedule_task_recurring_keyword_alias(module):
    runs = Recorder()
    h = module.schedule_task(runs, 0.02, args=(0,), recurring=True)
    assert isinstance(h, RecurringHandle)
    assert wait_until(lambda: len(runs) >= 2)
    h.cancel()


def test_module_default_max_workers_is_managers():
    m = TaskManager(max_workers=3)
    try:
        assert Module(task_manager=m).max_workers == 3
        assert Module(task_manager=m, max_workers=None).max_workers == 3
        assert Module(task_manager=m, max_workers=7).max_workers == 7
    finally:
        m.shutdown()


def test_manager_default_max_workers_like_thread_pool():
    import os

    m = TaskManager()
    try:
        assert m.max_workers == min(32, (os.cpu_count() or 1) + 4)
    finally:
        m.shutdown()


def test_tasks_before_start_thread_wait_then_run():
    m = TaskManager()
    try:
        mod = Module(task_manager=m, max_workers=2)
        ran = Recorder()
        hs = [mod.add_task(ran, args=(i,)) for i in range(3)]
        hs.append(m.add_task({"method": ran, "args": ("dict",)}))
        done, _ = concurrent.futures.wait(hs, timeout=0.2)
        assert not done and len(ran) == 0  # nothing runs before start_thread
        m.start_thread()
        m.start_thread()  # harmless
        assert [h.result(SOON) for h in hs] == [0, 1, 2, "dict"]
    finally:
        m.shutdown(cancel_pending=True)


def test_same_module_fifo(single, gate):
    from _util import Blocker

    blocker = Blocker(gate)
    single.add_task(blocker)
    assert blocker.started.wait(SOON)
    order = Recorder()
    hs = [single.add_task(order, args=(i,)) for i in range(20)]
    gate.set()
    concurrent.futures.wait(hs, timeout=SOON)
    assert order.snapshot() == list(range(20))


# --- the spec's example: subclassing Module ------------------------------------


class SomeModule(Module):
    def __init__(self, **kwargs):
        super(SomeModule, self).__init__(**kwargs)
        self.lock = threading.Lock()
        self.events = []

    def some_event(self, some_string):
        print(some_string)
        with self.lock:
            self.events.append(("event", some_string))

    def some_other_event(self, some_string):
        return some_string

    def some_callback(self, data):
        print(data)
        with self.lock:
            self.events.append(("callback", data))


def test_spec_subclass_example(manager, capsys):
    something = SomeModule(task_manager=manager, max_workers=5)
    assert isinstance(something, Module)
    assert something.max_workers == 5
    assert something.task_manager is manager

    h1 = something.add_task(something.some_event, args=("hello",), kwargs=None, callback=None)
    h2 = something.add_task(
        something.some_other_event, args=("hello",), kwargs=None, callback=something.some_callback
    )
    assert h1.result(SOON) is None
    assert h2.result(SOON) == "hello"
    h3 = something.schedule_task(
        something.some_event, 0.1, args=("once",), kwargs=None, callback=None, reoccurring=False, run_now=False
    )
    h4 = something.schedule_task(
        something.some_event, 0.05, args=("every",), kwargs=None, callback=None, reoccurring=True, run_now=False
    )
    h5 = something.schedule_task(
        something.some_event, 30, args=("now",), kwargs=None, callback=None, reoccurring=True, run_now=True
    )
    assert h3.result(SOON) is None
    assert wait_until(lambda: h4.runs >= 2 and h5.runs >= 1)
    h4.cancel()
    h5.cancel()
    with something.lock:
        events = list(something.events)
    assert ("event", "hello") in events
    assert ("callback", "hello") in events
    assert events.count(("event", "once")) == 1
    assert events.count(("event", "every")) >= 2
    assert events.count(("event", "now")) == 1
    out = capsys.readouterr().out.split()
    assert out.count("hello") == 2 and out.count("once") == 1


def test_subclass_with_extra_state_and_positional_super():
    class Counter(Module):
        def __init__(self, start, **kwargs):
            super().__init__(**kwargs)
            self.count = start

        def bump(self, by):
            self.count += by
            return self.count

    m = TaskManager()
    m.start_thread()
    try:
        c = Counter(10, task_manager=m, max_workers=1)
        hs = [c.add_task(c.bump, args=(1,)) for _ in range(5)]
        assert [h.result(SOON) for h in hs] == [11, 12, 13, 14, 15]
    finally:
        m.shutdown()


# --- repr ----------------------------------------------------------------------


def test_repr_manager_states():
    m = TaskManager(max_workers=3)
    r = repr(m)
    assert "TaskManager" in r and "not started" in r and "max_workers=3" in r
    m.start_thread()
    assert "running" in repr(m) and "not started" not in repr(m)
    m.shutdown()
    assert "shut down" in repr(m)


def test_repr_module(manager):
    mod = Module(task_manager=manager, max_workers=2)
    r = repr(mod)
    assert "Module" in r and "max_workers=2" in r and "running=0" in r and "queued=0" in r
    mod.add_task(len, args=([],)).result(SOON)
    mod.schedule_task(print, 3600).cancel()
    mod.schedule_task(print, 3600)
    assert wait_until(lambda: "completed=1" in repr(mod)), repr(mod)
    assert "timers=1" in repr(mod) and "cancelled=1" in repr(mod), repr(mod)
    assert "completed=1" in repr(manager) and "timers=1" in repr(manager), repr(manager)

    class Sub(Module):
        pass

    assert "Sub" in repr(Sub(task_manager=manager, max_workers=1))


def test_repr_handles(single, gate):
    from _util import Blocker

    blocker = Blocker(gate)
    running = single.add_task(blocker)
    assert blocker.started.wait(SOON)
    pending = single.add_task(lambda: 1)
    cancelled = single.add_task(lambda: 2)
    assert "running" in repr(running) and "TaskHandle" in repr(running)
    assert "pending" in repr(pending)
    assert cancelled.cancel()
    assert "cancelled" in repr(cancelled)
    gate.set()
    pending.result(SOON)
    assert "finished" in repr(pending)
    rec = single.schedule_task(lambda: None, 30, reoccurring=True)
    assert "RecurringHandle" in repr(rec) and "pending" in repr(rec) and "runs=0" in repr(rec)
    rec.cancel()
    assert "cancelled" in repr(rec)
