"""The spec's API: imports, the dict form on TaskManager, the keyword form on
Module, the spec's subclassing example, and reprs.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks are ``@manager.task`` functions and methods
of module-level Module subclasses (``Api``, ``SomeModule``, ``Counter``),
with JSON arguments, and what they see is kept under the test's ``token``
(_util.SEEN). Per mode by design: a recurring task's handle is a
``RecurringHandle`` in-process and a ``SharedSchedule`` with a broker (its
runs read through ``counts()``); a handle never reads "running" with a
broker (a known gap). Builtins as tasks and callbacks, and a
RecurringHandle's repr, stay in-process."""

import concurrent.futures
import threading

import pytest

import taskmanager
from taskmanager import Module, RecurringHandle, SharedSchedule, TaskHandle, TaskManager

from _util import GATES, SOON, Recorder, note, seen, wait_until


# --- tasks of the tests run in both modes ------------------------------------


def tagged_sum(token, a, b, c=0):
    return [token, a + b + c]


def tagged_product(token, x, y=0):
    return [token, x * y]


def note_tagged(result):
    """A callback: notes the value of a ``[token, value]`` result."""
    token, value = result
    note(token, value)


def record(token, value=None):
    note(token, value)
    return value


def constant(value="only"):
    return value


def power(x, y):
    return x**y


FUNCTIONS = (tagged_sum, tagged_product, note_tagged, record, constant, power)


class Api(Module):
    """Methods for the keyword form (JSON arguments and results)."""

    def record(self, token, value=None):
        note(token, value)
        return value

    def noted(self, result):
        """A callback: notes the value of a ``[token, value]`` result."""
        token, value = result
        note(token, value)

    def joined(self, token, a, b, sep=""):
        return [token, f"{a}{sep}{b}"]

    def divided(self, token, a, b):
        return [token, list(divmod(a, b))]

    def bare(self):
        return "bare"

    def count_args(self, token, *args):
        note(token, list(args))
        return len(args)

    def sorted_kwargs(self, **kwargs):
        return [[k, v] for k, v in sorted(kwargs.items())]

    def echo_args(self, *args, **kwargs):
        return [list(args), kwargs]

    def plus_one(self, token, x):
        return [token, x + 1]

    def minus(self, x, y):
        return x - y

    def hold(self, token):
        note(token, "started")
        assert GATES[token].wait(30), "gate never opened"
        return "released"


class Single(Api):
    """A second module on one manager (one module per class with a broker)."""


def api_of(tm, max_workers=4, start=True, **options):
    """A manager of this test's mode with ``FUNCTIONS`` registered, and its
    Api module."""
    manager = tm(start=start, **options)
    for function in FUNCTIONS:
        manager.task(function)
    return manager, Api(task_manager=manager, max_workers=max_workers)


def assert_recurring(mode, handle):
    """A recurring task's handle in each mode's documented form."""
    assert isinstance(handle, RecurringHandle if mode == "inprocess" else SharedSchedule), repr(handle)


def runs(handle):
    """Runs of a recurring task: a RecurringHandle's ``runs``, a
    SharedSchedule's ticks run (cluster-wide)."""
    if isinstance(handle, RecurringHandle):
        return handle.runs
    counts = handle.counts()
    return 0 if counts is None else counts[0]


# --- imports ----------------------------------------------------------------


def test_spec_import_line():
    from taskmanager import TaskManager as TM, Module as M  # the spec's line

    assert TM is TaskManager and M is Module
    assert isinstance(TM, type) and isinstance(M, type)


def test_all_exports_public_names():
    assert set(taskmanager.__all__) >= {"TaskManager", "Module"}
    assert set(taskmanager.__all__) == {
        "TaskManager", "Module", "TaskHandle", "RecurringHandle", "QueueFull", "ShutdownTimedOut", "Stats", "TaskInfo",
        "Event", "RemoteError", "ResultLost", "SharedSchedule", "ClusterStats", "ModuleLoad", "ScheduleInfo", "Retry",
        "DeadLettered", "DeadLetter", "TimeLimitExceeded",
        "WorkerInfo", "MetricsServer", "MetricsCollector", "Dashboard", "TaskOutcomes", "Outcomes", "ClaimedTask",
    }
    for name in taskmanager.__all__:
        assert hasattr(taskmanager, name), name
    ns = {}
    exec("from taskmanager import *", ns)
    assert ns["TaskManager"] is TaskManager and ns["Module"] is Module


# --- dict form on TaskManager -------------------------------------------------


def test_add_task_dict_full(tm, token):
    manager, _ = api_of(tm)
    h = manager.add_task({"method": tagged_sum, "args": [token, 1, 2], "kwargs": {"c": 3}, "callback": note_tagged})
    assert h.result(SOON) == [token, 6]
    assert seen(token) == [6]


def test_add_task_dict_only_method(tm):
    manager, _ = api_of(tm)
    assert manager.add_task({"method": constant}).result(SOON) == "only"


def test_add_task_dict_none_values(tm):
    manager, _ = api_of(tm)
    h = manager.add_task({"method": constant, "args": [7], "kwargs": None, "callback": None})
    assert h.result(SOON) == 7
    h = manager.add_task({"method": constant, "args": None, "kwargs": None, "callback": None})
    assert h.result(SOON) == "only"


def test_add_task_dict_tuple_args(tm):
    manager, _ = api_of(tm)
    assert manager.add_task({"method": power, "args": (2, 5)}).result(SOON) == 32


def test_builtins_as_tasks_and_callbacks(manager, module):
    """In-process only: with a broker only named callables run (a builtin is
    refused at the call)."""
    assert manager.add_task({"method": pow, "args": (2, 5)}).result(SOON) == 32
    seen_ = Recorder()
    h = module.add_task(divmod, (17, 5), None, seen_)
    assert h.result(SOON) == (3, 2)
    assert seen_.snapshot() == [(3, 2)]


def test_dict_form_runs_closures(manager):
    """In-process only: lambdas as task and callback in the dict forms."""
    got = Recorder()
    h = manager.add_task({"method": lambda a, b, c=0: a + b + c, "args": [1, 2], "kwargs": {"c": 3}, "callback": got})
    assert h.result(SOON) == 6
    h = manager.schedule_task({"method": lambda x, y=0: x * y, "args": (6,), "kwargs": {"y": 7}, "delay": 0.05})
    assert h.result(SOON) == 42
    assert got.snapshot() == [6]


def test_schedule_task_dict_one_shot(tm, token):
    manager, _ = api_of(tm)
    h = manager.schedule_task(
        {"method": tagged_product, "args": (token, 6), "kwargs": {"y": 7}, "callback": [note_tagged], "delay": 0.05}
    )
    assert type(h) is TaskHandle
    assert h.result(SOON) == [token, 42]
    assert seen(token) == [42]


def test_schedule_task_dict_only_method_and_delay(tm):
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": constant, "delay": 0})
    assert h.result(SOON) == "only"


def test_schedule_task_dict_none_values(tm):
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": constant, "delay": 0.01, "args": None, "kwargs": None, "callback": None})
    assert h.result(SOON) == "only"


@pytest.mark.parametrize("key", ["reoccurring", "run_now", "recurring"])
def test_schedule_task_dict_none_flag_means_default(tm, key):
    """Keys may be given as None: a flag given as None means its default (a
    one-shot, not run now), as 'args': None does."""
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": constant, "args": ["x"], "delay": 0.01, key: None})
    assert type(h) is TaskHandle
    assert h.result(SOON) == "x"


def test_schedule_task_dict_reoccurring(tm, token):
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": record, "args": (token, "r"), "delay": 0.02, "reoccurring": True})
    assert_recurring(tm.mode, h)
    assert wait_until(lambda: len(seen(token)) >= 2)
    assert h.cancel()
    assert set(seen(token)) == {"r"}


def test_schedule_task_dict_recurring_alias(tm, token):
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": record, "args": (token,), "delay": 0.02, "recurring": True})
    assert_recurring(tm.mode, h)
    assert wait_until(lambda: len(seen(token)) >= 2)
    assert h.cancel()


def test_schedule_task_dict_run_now(tm, token):
    manager, _ = api_of(tm)
    h = manager.schedule_task({"method": record, "args": (token, 1), "delay": 30, "reoccurring": True, "run_now": True})
    # Runs now although the first tick is 30 s away.
    assert wait_until(lambda: seen(token) == [1])
    assert wait_until(lambda: runs(h) == 1)
    assert h.cancel()
    assert seen(token) == [1]


@pytest.mark.parametrize("key", ["callbak", "delay", "reoccurring", "run_now", "Method", "arg"])
def test_add_task_dict_unknown_key(tm, token, key):
    manager, _ = api_of(tm)
    with pytest.raises(ValueError, match=repr(key)):
        manager.add_task({"method": record, "args": [token, 1], key: 1})
    manager.add_task({"method": record, "args": [token, "after"]}).result(SOON)
    assert seen(token) == ["after"]


@pytest.mark.parametrize("key", ["callbak", "dealy", "reocurring", "interval"])
def test_schedule_task_dict_unknown_key(tm, key):
    manager = tm()
    with pytest.raises(ValueError, match=repr(key)):
        manager.schedule_task({"method": print, "delay": 1, key: 1})


def test_dict_missing_method(tm):
    manager = tm()
    with pytest.raises(ValueError, match="method"):
        manager.add_task({"args": (1,)})
    with pytest.raises(ValueError, match="method"):
        manager.add_task({})
    with pytest.raises(ValueError, match="method"):
        manager.schedule_task({"delay": 1})


def test_dict_missing_delay(tm):
    manager = tm()
    with pytest.raises(ValueError, match="delay"):
        manager.schedule_task({"method": print})


@pytest.mark.parametrize("task", [None, print, [print], ("method", print), "method", 3])
def test_dict_form_needs_a_dict(tm, task):
    manager = tm()
    with pytest.raises(TypeError, match="dict"):
        manager.add_task(task)
    with pytest.raises(TypeError, match="dict"):
        manager.schedule_task(task)


# --- keyword form on Module ---------------------------------------------------


def test_module_add_task_keywords(tm, token):
    _, api = api_of(tm)
    h = api.add_task(api.joined, args=[token, "x", "y"], kwargs={"sep": "-"}, callback=api.noted)
    assert h.result(SOON) == [token, "x-y"]
    assert seen(token) == ["x-y"]


def test_module_add_task_positional(tm, token):
    _, api = api_of(tm)
    h = api.add_task(api.divided, (token, 17, 5), None, api.noted)
    assert h.result(SOON) == [token, [3, 2]]
    assert seen(token) == [[3, 2]]


def test_module_add_task_defaults(tm):
    _, api = api_of(tm)
    assert api.add_task(api.bare).result(SOON) == "bare"


@pytest.mark.parametrize("form", [tuple, list])
def test_module_args_list_or_tuple(tm, token, form):
    _, api = api_of(tm)
    h = api.add_task(api.count_args, args=form([token, 1, 2]))
    assert h.result(SOON) == 2
    assert seen(token) == [[1, 2]]


def test_module_kwargs_dict(tm):
    _, api = api_of(tm)
    h = api.add_task(api.sorted_kwargs, kwargs={"b": 2, "a": 1})
    assert h.result(SOON) == [["a", 1], ["b", 2]]


def test_module_args_are_copied_at_submission(tm):
    """The task sees the arguments as they were when submitted."""
    _, api = api_of(tm)
    args = [1]
    kwargs = {"k": 1}
    h = api.schedule_task(api.echo_args, 0.05, args=args, kwargs=kwargs)
    args.append(2)
    kwargs["k"] = 2
    assert h.result(SOON) == [[1], {"k": 1}]


def test_module_schedule_task_keywords(tm, token):
    _, api = api_of(tm)
    h = api.schedule_task(
        api.plus_one, 0.05, args=(token, 1), kwargs=None, callback=api.noted, reoccurring=False, run_now=False
    )
    assert type(h) is TaskHandle
    assert h.result(SOON) == [token, 2]
    assert seen(token) == [2]


def test_module_schedule_task_positional(tm):
    _, api = api_of(tm)
    h = api.schedule_task(api.minus, 0.01, (5, 3))
    assert h.result(SOON) == 2


def test_module_schedule_task_recurring_keyword_alias(tm, token):
    _, api = api_of(tm)
    h = api.schedule_task(api.record, 0.02, args=(token, 0), recurring=True)
    assert_recurring(tm.mode, h)
    assert wait_until(lambda: len(seen(token)) >= 2)
    assert h.cancel()


class DefaultWidth(Module):
    pass


class SevenWide(Module):
    pass


def test_module_default_max_workers_is_managers(tm):
    m = tm(max_workers=3, start=False)
    assert Module(task_manager=m).max_workers == 3
    assert DefaultWidth(task_manager=m, max_workers=None).max_workers == 3
    assert SevenWide(task_manager=m, max_workers=7).max_workers == 7


def test_manager_default_max_workers_like_thread_pool(tm):
    import os

    m = tm(start=False)
    assert m.max_workers == min(32, (os.cpu_count() or 1) + 4)


def test_tasks_before_start_thread_wait_then_run(tm, token):
    m, api = api_of(tm, max_workers=2, start=False)
    hs = [api.add_task(api.record, args=(token, i)) for i in range(3)]
    hs.append(m.add_task({"method": record, "args": (token, "dict")}))
    done, _ = concurrent.futures.wait(hs, timeout=0.2)
    assert not done and seen(token) == []  # nothing runs before start_thread
    m.start_thread()
    m.start_thread()  # harmless
    assert [h.result(SOON) for h in hs] == [0, 1, 2, "dict"]


def test_same_module_fifo(tm, token):
    manager, _ = api_of(tm)
    single = Single(task_manager=manager, max_workers=1)
    single.add_task(single.hold, args=[token])
    assert wait_until(lambda: seen(token) == ["started"])
    hs = [single.add_task(single.record, args=(token, i)) for i in range(20)]
    GATES[token].set()
    concurrent.futures.wait(hs, timeout=SOON)
    assert seen(token) == ["started", *range(20)]


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


def test_spec_subclass_example(tm, capsys):
    manager = tm()
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
    assert_recurring(tm.mode, h4)
    assert_recurring(tm.mode, h5)
    assert h3.result(SOON) is None
    assert wait_until(lambda: runs(h4) >= 2 and runs(h5) >= 1)
    h4.cancel()
    h5.cancel()

    def events():
        with something.lock:
            return list(something.events)

    # With a broker a tick's count may precede its run's end.
    assert wait_until(lambda: events().count(("event", "every")) >= 2 and ("event", "now") in events())
    assert ("event", "hello") in events()
    assert ("callback", "hello") in events()
    assert events().count(("event", "once")) == 1
    assert events().count(("event", "now")) == 1
    out = capsys.readouterr().out.split()
    assert out.count("hello") == 2 and out.count("once") == 1


class Counter(Module):
    def __init__(self, start, **kwargs):
        super().__init__(**kwargs)
        self.count = start

    def bump(self, by):
        self.count += by
        return self.count


def test_subclass_with_extra_state_and_positional_super(tm):
    c = Counter(10, task_manager=tm(), max_workers=1)
    hs = [c.add_task(c.bump, args=(1,)) for _ in range(5)]
    assert [h.result(SOON) for h in hs] == [11, 12, 13, 14, 15]


def test_local_subclass_with_extra_state():
    """In-process only: a class defined in a function (with a broker its
    methods have no name another process finds)."""

    class LocalCounter(Counter):
        pass

    m = TaskManager()
    m.start_thread()
    try:
        c = LocalCounter(10, task_manager=m, max_workers=1)
        hs = [c.add_task(c.bump, args=(1,)) for _ in range(5)]
        assert [h.result(SOON) for h in hs] == [11, 12, 13, 14, 15]
    finally:
        m.shutdown()


# --- repr ----------------------------------------------------------------------


def test_repr_manager_states(tm):
    m = tm(max_workers=3, start=False)
    r = repr(m)
    assert "TaskManager" in r and "not started" in r and "max_workers=3" in r
    m.start_thread()
    assert "running" in repr(m) and "not started" not in repr(m)
    m.shutdown()
    assert "shut down" in repr(m)


class Sub(Module):
    pass


def test_repr_module(tm):
    manager, mod = api_of(tm, max_workers=2)
    r = repr(mod)
    assert "Api" in r and "max_workers=2" in r and "running=0" in r and "queued=0" in r
    mod.add_task(mod.bare).result(SOON)
    assert mod.schedule_task(mod.bare, 3600).cancel()
    mod.schedule_task(mod.bare, 3600)
    assert wait_until(lambda: "completed=1" in repr(mod)), repr(mod)
    # A repr is this process's own count (it never calls Redis): with a
    # broker a delayed task waits in Redis, not in a local timer, and the
    # cluster's count has it.
    timers = 1 if tm.mode == "inprocess" else 0
    assert f"timers={timers}" in repr(mod) and "cancelled=1" in repr(mod), repr(mod)
    assert "completed=1" in repr(manager) and f"timers={timers}" in repr(manager), repr(manager)
    if tm.mode == "redis":
        assert manager.cluster_stats().delayed == 1
    assert "Sub" in repr(Sub(task_manager=manager, max_workers=1))


def test_repr_module_builtins(manager):
    """In-process only: builtins as tasks."""
    mod = Module(task_manager=manager, max_workers=2)
    r = repr(mod)
    assert "Module" in r and "max_workers=2" in r and "running=0" in r and "queued=0" in r
    mod.add_task(len, args=([],)).result(SOON)
    mod.schedule_task(print, 3600).cancel()
    mod.schedule_task(print, 3600)
    assert wait_until(lambda: "completed=1" in repr(mod)), repr(mod)
    assert "timers=1" in repr(mod) and "cancelled=1" in repr(mod), repr(mod)


def test_repr_handles(tm, token):
    manager, _ = api_of(tm)
    single = Single(task_manager=manager, max_workers=1)
    running = single.add_task(single.hold, args=[token])
    assert wait_until(lambda: seen(token) == ["started"])
    pending = single.add_task(single.minus, args=[2, 1])
    cancelled = single.add_task(single.minus, args=[3, 1])
    assert "TaskHandle" in repr(running)
    # With a broker a handle never reads running (a known gap, test_parity.py).
    assert ("running" if tm.mode == "inprocess" else "pending") in repr(running)
    assert "pending" in repr(pending)
    assert cancelled.cancel()
    assert "cancelled" in repr(cancelled)
    GATES[token].set()
    pending.result(SOON)
    assert "finished" in repr(pending)


def test_repr_recurring_handle(single):
    """In-process only: a RecurringHandle (with a broker, a SharedSchedule)."""
    rec = single.schedule_task(lambda: None, 30, reoccurring=True)
    assert "RecurringHandle" in repr(rec) and "pending" in repr(rec) and "runs=0" in repr(rec)
    rec.cancel()
    assert "cancelled" in repr(rec)
