"""Exceptions in tasks, and bad arguments rejected at the call."""

import logging
import math
import re
import traceback

import pytest

from taskmanager import Module, TaskManager

from _util import SOON, Recorder, settle, wait_until


class Boom(Exception):
    pass


def explode_here(msg="boom"):
    raise Boom(msg)


# --- exceptions raised by tasks ---------------------------------------------------


def test_task_exception_logged_with_traceback(module, caplog):
    caplog.set_level(logging.ERROR, logger="taskmanager")
    h = module.add_task(explode_here, args=("logged",))
    exc = h.exception(timeout=SOON)
    assert isinstance(exc, Boom) and str(exc) == "logged"
    records = [r for r in caplog.records if r.name == "taskmanager"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[1] is exc
    assert record.exc_info[2] is not None
    assert "Traceback (most recent call last)" in caplog.text
    assert "explode_here" in caplog.text
    assert "explode_here" in record.getMessage()  # names the failing callable


def test_task_exception_reraised_with_traceback(module):
    h = module.add_task(explode_here)
    with pytest.raises(Boom) as info:
        h.result(SOON)
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "explode_here" in names


@pytest.mark.parametrize(
    "exc",
    [ValueError("v"), KeyError("k"), RuntimeError("r"), ZeroDivisionError("z"), StopIteration(), SystemExit(3)],
)
def test_exception_types_preserved(module, exc, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")

    def raiser():
        raise exc

    h = module.add_task(raiser)
    assert h.exception(SOON) is exc
    with pytest.raises(type(exc)):
        h.result()


def test_worker_survives_exceptions(single, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")
    hs = [single.add_task(explode_here) for _ in range(3)]
    after = single.add_task(lambda: "still running")
    assert after.result(SOON) == "still running"
    assert all(isinstance(h.exception(0), Boom) for h in hs)
    # And a scheduled one later on the same single worker.
    assert single.schedule_task(lambda: "later", 0.02).result(SOON) == "later"


def test_worker_survives_base_exception(single, caplog):
    caplog.set_level(logging.CRITICAL, logger="taskmanager")

    def exit_task():
        raise SystemExit("not the process")

    h = single.add_task(exit_task)
    assert isinstance(h.exception(SOON), SystemExit)
    assert single.add_task(lambda: 1).result(SOON) == 1


def test_recurring_that_always_raises_keeps_running(module, caplog):
    caplog.set_level(logging.ERROR, logger="taskmanager")
    count = iter(range(10**6))

    def failing():
        raise Boom(f"failure {next(count)}")

    h = module.schedule_task(failing, 0.02, reoccurring=True)
    assert wait_until(lambda: h.failures >= 4)
    assert not h.done()  # still scheduled
    h.cancel()
    settle(lambda: (h.runs, h.failures))
    assert h.runs == h.failures >= 4
    assert isinstance(h.last_exception, Boom)
    assert str(h.last_exception) == f"failure {h.failures - 1}"  # the latest
    assert len([r for r in caplog.records if r.name == "taskmanager"]) == h.failures


# --- bad arguments -----------------------------------------------------------------------

# The ways to submit, each as f(module-or-manager kwargs) -> handle; the
# method defaults to the context's (``print`` in-process).
_DEFAULT = object()


def _mod_add(ctx, method=_DEFAULT, **kw):
    return ctx["module"].add_task(ctx["method"] if method is _DEFAULT else method, **kw)


def _mod_sched(ctx, method=_DEFAULT, delay=1, **kw):
    return ctx["module"].schedule_task(ctx["method"] if method is _DEFAULT else method, delay, **kw)


def _dict_add(ctx, method=_DEFAULT, **kw):
    return ctx["manager"].add_task({"method": ctx["method"] if method is _DEFAULT else method, **kw})


def _dict_sched(ctx, method=_DEFAULT, delay=1, **kw):
    method = ctx["method"] if method is _DEFAULT else method
    return ctx["manager"].schedule_task({"method": method, "delay": delay, **kw})


ADD_FORMS = [_mod_add, _mod_sched, _dict_add, _dict_sched]
SCHED_FORMS = [_mod_sched, _dict_sched]


@pytest.fixture
def ctx(manager, module):
    """In-process: any callable runs."""
    return {"manager": manager, "module": module, "method": print, "callback": print}


class Target(Module):
    """The method and callback of ``both`` (named, so they run with a broker)."""

    def run(self, *args, **kwargs):
        return None

    def callback(self, value):
        return None


@pytest.fixture
def both(tm):
    """As ``ctx``, in both modes (conftest.py's ``mode``): the argument
    checks are one path, with or without a broker."""
    manager = tm()
    module = Target(task_manager=manager, max_workers=4)
    return {"manager": manager, "module": module, "method": module.run, "callback": module.callback}


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("method", [None, 42, "print", [print], (print,)])
def test_bad_method(both, form, method):
    with pytest.raises(TypeError, match="method"):
        form(both, method=method)


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("callback", [42, "print", object(), {"cb": print}])
def test_bad_callback(both, form, callback):
    with pytest.raises(TypeError, match="callback"):
        form(both, callback=callback)


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("container", [list, tuple])
def test_bad_callback_in_sequence_names_index(both, form, container):
    with pytest.raises(TypeError, match=r"callback\[1\]"):
        form(both, callback=container([both["callback"], "not callable", both["callback"]]))
    with pytest.raises(TypeError, match=r"callback\[0\]"):
        form(both, callback=container([None]))


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("args", ["abc", 5, {"a": 1}, {1, 2}, b"xy"])
def test_bad_args(both, form, args):
    with pytest.raises(TypeError, match="args"):
        form(both, args=args)


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("kwargs", [[("a", 1)], "a=1", 3, ("a",)])
def test_bad_kwargs_type(both, form, kwargs):
    with pytest.raises(TypeError, match="kwargs"):
        form(both, kwargs=kwargs)


@pytest.mark.parametrize("form", ADD_FORMS)
@pytest.mark.parametrize("kwargs", [{1: "a"}, {"ok": 1, None: 2}, {("t",): 1}])
def test_bad_kwargs_keys(both, form, kwargs):
    with pytest.raises(TypeError, match="kwargs"):
        form(both, kwargs=kwargs)


@pytest.mark.parametrize("form", SCHED_FORMS)
@pytest.mark.parametrize("delay", [-1, -0.001, math.nan, math.inf, -math.inf, 1e300])
def test_bad_delay_value(both, form, delay):
    with pytest.raises(ValueError, match="delay"):
        form(both, delay=delay)
    with pytest.raises(ValueError, match="delay"):
        form(both, delay=delay, reoccurring=True)


@pytest.mark.parametrize("form", SCHED_FORMS)
def test_huge_int_delay(both, form):
    """An int too large for a float is a bad delay too: ValueError naming
    the delay, like 1e300, not an OverflowError."""
    with pytest.raises(ValueError, match="delay"):
        form(both, delay=10**400)


@pytest.mark.parametrize("form", SCHED_FORMS)
def test_huge_negative_int_delay(both, form):
    """An int too large for a float but negative is below the lower bound,
    and the error says so (not "at most")."""
    with pytest.raises(ValueError, match="delay must be >= 0"):
        form(both, delay=-(10**400))


@pytest.mark.parametrize("form", SCHED_FORMS)
@pytest.mark.parametrize("delay", ["1", None, True, False, [1], 1j])
def test_bad_delay_type(both, form, delay):
    with pytest.raises(TypeError, match="delay"):
        form(both, delay=delay)


@pytest.mark.parametrize("form", SCHED_FORMS)
@pytest.mark.parametrize("delay", [0, 0.0])
def test_zero_delay_recurring(both, form, delay):
    with pytest.raises(ValueError, match="delay"):
        form(both, delay=delay, reoccurring=True)
    with pytest.raises(ValueError, match="delay"):
        form(both, delay=delay, reoccurring=True, run_now=True)


def test_zero_delay_recurring_alias(ctx):
    with pytest.raises(ValueError, match="delay"):
        ctx["module"].schedule_task(print, 0, recurring=True)
    with pytest.raises(ValueError, match="delay"):
        ctx["manager"].schedule_task({"method": print, "delay": 0, "recurring": True})


MIN_INTERVAL_RULE = r"delay must be at least 0\.001 seconds for a reoccurring task \(it is the interval between runs\)"


@pytest.mark.parametrize("form", SCHED_FORMS)
@pytest.mark.parametrize("delay", [1e-12, 1e-10, 5e-324, 0.0009999, -1, -(10**400)], ids=lambda d: repr(d)[:12])
def test_recurring_delay_below_min_interval(ctx, form, delay):
    """A reoccurring delay is the interval between runs: below 1 ms (the
    core's Recurrence::MIN_INTERVAL) it is refused with that rule, negative
    ones included, and a one-shot delay of 0 stays fine."""
    with pytest.raises(ValueError, match=MIN_INTERVAL_RULE + rf", got {re.escape(repr(delay))}$"):
        form(ctx, method=lambda: None, delay=delay, reoccurring=True)
    with pytest.raises(ValueError, match=MIN_INTERVAL_RULE):
        form(ctx, method=lambda: None, delay=delay, recurring=True, run_now=True)
    assert form(ctx, method=lambda: "once", delay=0).result(SOON) == "once"


@pytest.mark.parametrize("form", SCHED_FORMS)
def test_recurring_delay_at_min_interval(ctx, form):
    h = form(ctx, method=lambda: None, delay=0.001, reoccurring=True)
    assert type(h).__name__ == "RecurringHandle"
    assert wait_until(lambda: h.runs >= 2)
    assert h.cancel() and h.cancelled()


@pytest.mark.parametrize("form", SCHED_FORMS)
@pytest.mark.parametrize("name", ["reoccurring", "run_now"])
@pytest.mark.parametrize("value", [1, 0, "yes", "True", 1.0, [True]])
def test_bad_flags(both, form, name, value):
    with pytest.raises(TypeError, match=name):
        form(both, **{name: value})


@pytest.mark.parametrize("value", [1, "yes"])
def test_bad_flags_keyword_form(ctx, value):
    with pytest.raises(TypeError, match="reoccurring"):
        ctx["module"].schedule_task(print, 1, reoccurring=value)
    with pytest.raises(TypeError, match="run_now"):
        ctx["module"].schedule_task(print, 1, run_now=value)


def test_none_flags_mean_the_default_in_the_keyword_form_too(ctx):
    # One rule for both forms: None is the default (False), as in the dict.
    handle = ctx["module"].schedule_task(lambda: "once", 0.01, reoccurring=None, run_now=None)
    assert type(handle).__name__ == "TaskHandle"
    assert handle.result(timeout=5) == "once"


@pytest.mark.parametrize("spec, alias", [(True, False), (False, True)])
def test_conflicting_recurring_alias(ctx, spec, alias):
    """An explicit reoccurring=False and recurring=True disagree as much as
    the reverse: either way a ValueError, nothing scheduled."""
    message = rf"reoccurring={spec} and recurring={alias} disagree"
    with pytest.raises(ValueError, match=message):
        ctx["module"].schedule_task(print, 1, reoccurring=spec, recurring=alias)
    with pytest.raises(ValueError, match=message):
        ctx["manager"].schedule_task({"method": print, "delay": 1, "reoccurring": spec, "recurring": alias})
    assert "outstanding=0" in repr(ctx["manager"])


@pytest.mark.parametrize("flag", [True, False])
def test_agreeing_or_single_recurring_flags(ctx, flag):
    """Given once, or twice alike, the flag decides; None is not given."""
    kinds = {True: "RecurringHandle", False: "TaskHandle"}
    calls = [
        lambda: ctx["module"].schedule_task(print, 30, reoccurring=flag, recurring=flag),
        lambda: ctx["module"].schedule_task(print, 30, recurring=flag),
        lambda: ctx["module"].schedule_task(print, 30, reoccurring=flag, recurring=None),
        lambda: ctx["module"].schedule_task(print, 30, reoccurring=None, recurring=flag),
        lambda: ctx["manager"].schedule_task({"method": print, "delay": 30, "recurring": flag}),
        lambda: ctx["manager"].schedule_task({"method": print, "delay": 30, "reoccurring": flag, "recurring": flag}),
    ]
    for call in calls:
        h = call()
        assert type(h).__name__ == kinds[flag]
        assert h.cancel()


class Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")


def test_unknown_key_that_cannot_be_printed(manager):
    """An unknown key whose str() raises is still reported as an unknown
    key (a ValueError naming its type), not by the key's own error."""
    with pytest.raises(ValueError, match=r"unknown key.*unprintable Unprintable key"):
        manager.add_task({"method": print, Unprintable(): 1})
    with pytest.raises(ValueError, match=r"unknown key.*'extra'.*unprintable Unprintable key"):
        manager.schedule_task({"method": print, "delay": 1, Unprintable(): 1, "extra": 2})


@pytest.mark.parametrize("max_workers", [0, -1])
def test_module_bad_max_workers_value(manager, max_workers):
    with pytest.raises(ValueError, match="max_workers"):
        Module(task_manager=manager, max_workers=max_workers)


@pytest.mark.parametrize("max_workers", [2.5, "3", True, False, 3.0, [3]])
def test_module_bad_max_workers_type(manager, max_workers):
    with pytest.raises(TypeError, match="max_workers"):
        Module(task_manager=manager, max_workers=max_workers)


@pytest.mark.parametrize("max_workers", [0, -1])
def test_manager_bad_max_workers_value(max_workers):
    with pytest.raises(ValueError, match="max_workers"):
        TaskManager(max_workers=max_workers)


@pytest.mark.parametrize("max_workers", [2.5, "3", True])
def test_manager_bad_max_workers_type(max_workers):
    with pytest.raises(TypeError, match="max_workers"):
        TaskManager(max_workers=max_workers)


@pytest.mark.parametrize(
    "make",
    [lambda m: Module(task_manager=m, max_workers=10**30), lambda m: TaskManager(max_workers=10**30)],
    ids=["Module", "TaskManager"],
)
def test_huge_max_workers(manager, make):
    """A max_workers too large for the core is rejected with an error naming
    max_workers (ValueError), not an OverflowError."""
    with pytest.raises(ValueError, match="max_workers"):
        make(manager)


def test_module_needs_task_manager():
    with pytest.raises(TypeError, match="task_manager"):
        Module()
    with pytest.raises(TypeError, match="task_manager"):
        Module(max_workers=2)


@pytest.mark.parametrize("bad", [object(), "manager", 5, Module])
def test_module_task_manager_wrong_type(bad):
    with pytest.raises(TypeError, match="task_manager"):
        Module(task_manager=bad, max_workers=1)


def test_module_of_module_rejected(manager):
    mod = Module(task_manager=manager, max_workers=1)
    with pytest.raises(TypeError, match="task_manager"):
        Module(task_manager=mod, max_workers=1)


@pytest.mark.parametrize("daemon", [1, "yes", None])
def test_start_thread_daemon_must_be_bool(daemon):
    m = TaskManager()
    try:
        with pytest.raises(TypeError, match="daemon"):
            m.start_thread(daemon=daemon)
    finally:
        m.shutdown()


def test_rejected_call_queues_nothing(ctx):
    ran = Recorder()
    bad_calls = [
        lambda: ctx["module"].add_task(ran, callback=[print, 3]),
        lambda: ctx["module"].add_task(ran, args="x"),
        lambda: ctx["module"].schedule_task(ran, -1),
        lambda: ctx["module"].schedule_task(ran, 0, reoccurring=True),
        lambda: ctx["module"].schedule_task(ran, 0, run_now=1),
        lambda: ctx["manager"].add_task({"method": ran, "callbak": print}),
        lambda: ctx["manager"].schedule_task({"method": ran, "delay": 0, "kwargs": {1: 1}}),
    ]
    for call in bad_calls:
        with pytest.raises((TypeError, ValueError)):
            call()
    assert "outstanding=0" in repr(ctx["manager"])
    # The module still works, and nothing rejected ever ran.
    assert ctx["module"].add_task(lambda: "ok").result(SOON) == "ok"
    assert ctx["module"].schedule_task(lambda: "ok", 0).result(SOON) == "ok"
    assert ran.snapshot() == []


def test_non_bool_reoccurring_rejected_even_with_recurring_alias(ctx):
    """reoccurring must be a bool whatever else is given: 1 is not True."""
    with pytest.raises(TypeError, match="reoccurring"):
        ctx["module"].schedule_task(print, 1, reoccurring=1, recurring=True)


@pytest.mark.parametrize(
    "kw",
    [{"wait": 1}, {"wait": "no"}, {"cancel_pending": 1}, {"wait": None}],
    ids=["wait=1", "wait='no'", "cancel_pending=1", "wait=None"],
)
def test_shutdown_bad_flag_rejected_without_effect(kw):
    """A shutdown() call rejected for a bad argument does nothing: the
    manager keeps running and accepting tasks."""
    m = TaskManager()
    m.start_thread()
    try:
        name = next(iter(kw))
        with pytest.raises(TypeError, match=name):
            m.shutdown(**kw)
        assert "running" in repr(m)
        assert m.add_task({"method": lambda: "still accepting"}).result(SOON) == "still accepting"
    finally:
        m.shutdown()
