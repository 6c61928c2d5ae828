"""Property tests of the Python API on arbitrary input.

Whatever a caller passes, each entry point either does what the spec says
(returns a handle whose task then runs, or can be cancelled) or refuses at
once with a TypeError or ValueError whose message names the argument at
fault. Any other exception, a crash or a hang is a bug.

The oracle (the ``*_faults`` functions) restates the documented rules in
plain Python: the spec, the docstrings of ``taskmanager`` and the checks in
``bindings/python/src/checks.rs``. Hypothesis draws each argument from a
wide pool biased towards valid values, and each call is compared with the
oracle. An accepted one-shot task is then run (or cancelled) and its
outcome compared with calling the method here; a recurring one is
cancelled. The module ends by checking that no thread outlived the
managers.

Each property runs 300 examples; the file takes about 5-10 s.
"""

import concurrent.futures
import faulthandler
import functools
import logging
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from taskmanager import Module, RecurringHandle, TaskHandle, TaskManager

from _util import SOON, wait_until

MAX_DELAY = 500 * 365 * 24 * 3600  # checks.rs: MAX_DELAY
MIN_INTERVAL = 0.001  # schedule.rs: Recurrence::MIN_INTERVAL, a reoccurring delay's least
MAX_WORKERS = 2**31 - 1  # __init__.py: _MAX_WORKERS
SHORT = 0.05  # a one-shot task due this soon is waited for
LONG = 5.0  # a one-shot task due this late must still be cancellable

EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- hostile and ordinary values --------------------------------------------------


class Sabotage(Exception):
    """Raised by the hostile objects below, and by nothing else."""


def sabotage(*args, **kwargs):
    raise Sabotage("called")


# Hostile objects misbehave only while a property runs (see ``armed``):
# hypothesis must still be able to hash, compare and print them.
_armed = False


def armed(test):
    """Runs ``test`` (one example) with the hostile objects armed."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        global _armed
        _armed = True
        try:
            return test(*args, **kwargs)
        finally:
            _armed = False

    return run


def _missing_item(self, key):
    raise KeyError(key)


# What a hostile method does when disarmed and no built-in base has it.
_DISARMED = {
    "__bool__": lambda self: True,
    "__len__": lambda self: 0,
    "__iter__": lambda self: iter(()),
    "__getitem__": _missing_item,
}


def hostile(name):
    """A method ``name`` that raises Sabotage while armed, and otherwise
    does what the built-in base class does."""

    def method(self, *args, **kwargs):
        if _armed:
            raise Sabotage(name)
        for base in type(self).__mro__:
            if base.__module__ == "builtins" and name in vars(base):
                return vars(base)[name](self, *args, **kwargs)
        return _DISARMED[name](self, *args, **kwargs)

    method.__name__ = name
    return method


def hostile_class(name, base, *methods, **namespace):
    return type(name, (base,), {**{m: hostile(m) for m in methods}, **namespace})


_PRINT = ("__repr__", "__str__")
_COMPARE = ("__eq__", "__ne__")
_CONTAINER = ("__iter__", "__len__", "__repr__", "__eq__", "__bool__")
BadRepr = hostile_class("BadRepr", object, *_PRINT)  # hashable: can be a dict key
BadEq = hostile_class("BadEq", object, *_COMPARE, __hash__=object.__hash__)
BadHash = hostile_class("BadHash", object, "__hash__")
BadBool = hostile_class("BadBool", object, "__bool__")
BadLen = hostile_class("BadLen", object, "__len__")
BadIter = hostile_class("BadIter", object, "__iter__")
# Every protocol method a library might call by accident raises.
Hostile = hostile_class("Hostile", object, *_PRINT, *_COMPARE, "__hash__", "__bool__", "__len__", "__iter__")
HostileCallable = type("HostileCallable", (Hostile,), {"__call__": lambda self, *a, **k: "hostile called"})
RaisingCallable = type("RaisingCallable", (BadRepr,), {"__call__": sabotage})
# list, tuple and dict subclasses whose Python-level protocol raises: the
# package may read them only as the built-in types they are.
HostileList = hostile_class("HostileList", list, *_CONTAINER, __hash__=None)
HostileTuple = hostile_class("HostileTuple", tuple, *_CONTAINER, __hash__=None)
HostileDict = hostile_class("HostileDict", dict, *_CONTAINER, "keys", "items", "values", __hash__=None)


class FrozenMap(Mapping):
    """A Mapping that is not a dict."""

    def __init__(self, *args, **kwargs):
        self._items = dict(*args, **kwargs)

    def __getitem__(self, key):
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)


class BrokenMap(Mapping):
    """A Mapping that cannot be read: reading it raises the caller's own error."""

    __getitem__ = hostile("__getitem__")
    __iter__ = hostile("__iter__")
    __len__ = hostile("__len__")


class Count(int):
    pass


class Seconds(float):
    pass


def const(*args, **kwargs):
    return "const"


def echo(*args, **kwargs):
    return args, kwargs


class Plain:
    pass


class CallableObject:
    def __call__(self, *args, **kwargs):
        return "called", len(args), sorted(kwargs)


# Callables that are safe to run with any arguments here and on a worker:
# deterministic, quick, no side effects.
CALLABLES = [
    const,
    echo,
    lambda *args, **kwargs: None,
    sabotage,
    len,
    abs,
    bool,
    str,
    repr,
    int,
    sorted,
    max,
    list,
    tuple,
    dict,
    Plain,
    CallableObject,
    CallableObject(),
    Hostile,
    FrozenMap,
    Sabotage,
]

EDGE_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 2**64, 10**400, -(10**400), int(MAX_DELAY), int(MAX_DELAY) + 1]
EDGE_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    0.0,
    5e-324,
    1e-10,
    1e-9,
    2.2250738585072014e-308,
    float(MAX_DELAY),
    math.nextafter(float(MAX_DELAY), math.inf),
    1e300,
    -1e-300,
]

# Hostile instances are made per example: hypothesis hashes what it samples.
callables = st.one_of(st.sampled_from(CALLABLES), st.builds(HostileCallable), st.builds(RaisingCallable))
dict_keys = st.one_of(
    st.text(max_size=4), st.integers(), st.none(), st.binary(max_size=3), st.tuples(st.integers()), st.builds(BadRepr)
)
atoms = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_INTS),
    st.integers().map(Count),
    st.floats(),
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=False).map(Seconds),
    st.decimals(),
    st.fractions(),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.complex_numbers(max_magnitude=10),
    callables,
    st.sampled_from([BadRepr, BadEq, BadHash, BadBool, BadLen, BadIter, Hostile, BrokenMap]).map(lambda t: t()),
)


def _containers(inner):
    items = st.lists(inner, max_size=3)
    str_dicts = st.dictionaries(st.text(max_size=4), inner, max_size=3)
    return st.one_of(
        items,
        items.map(tuple),
        items.map(HostileList),
        items.map(HostileTuple),
        str_dicts,
        str_dicts.map(FrozenMap),
        str_dicts.map(HostileDict),
        st.dictionaries(dict_keys, inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    )


values = st.recursive(atoms, _containers, max_leaves=6)

MISSING = object()  # an argument left out of the call


def absent(value):
    """Left out or None (compared by identity: hostile values cannot be
    compared)."""
    return value is None or value is MISSING


def maybe(strategy):
    # Hypothesis favours the first branch: the value, not its absence.
    return st.one_of(strategy, st.just(MISSING))


def _sequences(items):
    lists = st.lists(items, max_size=3)
    return st.one_of(lists, lists.map(tuple), lists.map(HostileList), lists.map(HostileTuple))


_str_dicts = st.dictionaries(st.text(max_size=4), values, max_size=3)

# Each argument as (what it should be, anything else): a call mostly gets
# good arguments and one or two bad ones, so each rule is reached alone.
ARGUMENTS = {
    "method": (callables, st.one_of(values, st.just(MISSING))),
    "args": (maybe(st.one_of(st.none(), _sequences(values))), values),
    "kwargs": (
        maybe(st.one_of(st.none(), _str_dicts, _str_dicts.map(FrozenMap), _str_dicts.map(HostileDict))),
        st.one_of(st.dictionaries(dict_keys, values, min_size=1, max_size=3), st.builds(BrokenMap), values),
    ),
    "callback": (
        maybe(st.one_of(st.none(), callables, _sequences(callables))),
        st.one_of(st.lists(st.one_of(callables, values), min_size=1, max_size=3), values),
    ),
    "delay": (
        st.one_of(
            st.just(0),
            st.floats(0, SHORT),
            st.floats(LONG, MAX_DELAY),
            st.integers(int(LONG), int(MAX_DELAY)),
            st.floats(0, SHORT).map(Seconds),
            st.integers(0, 0).map(Count),
            st.sampled_from([-0.0, 5e-324, 1e-10, 1e-9, float(MAX_DELAY), int(MAX_DELAY)]),
            # Around the least interval of a reoccurring task.
            st.sampled_from([MIN_INTERVAL, math.nextafter(MIN_INTERVAL, 0), Decimal("0.001"), Fraction(1, 1000)]),
            # Other real numbers.
            st.decimals(0, Decimal(str(SHORT)), places=4),
            st.fractions(0, SHORT),
            st.integers(int(LONG), int(MAX_DELAY)).map(Decimal),
        ),
        st.one_of(
            st.sampled_from(EDGE_FLOATS + EDGE_INTS),
            st.floats(),
            st.integers(),
            st.decimals(),
            st.fractions(),
            st.integers().map(Decimal),
            st.sampled_from([Decimal("-1e-400"), Decimal("1e400"), Fraction(-1, 10**400), Fraction(10**400)]),
            values,
            st.just(MISSING),
        ),
    ),
    "reoccurring": (maybe(st.one_of(st.none(), st.booleans())), values),
    "run_now": (maybe(st.one_of(st.none(), st.booleans())), values),
    # The alias: keyword-only, and rarely given.
    "recurring": (st.sampled_from([MISSING, MISSING, MISSING, None, True, False]), values),
    "max_workers": (
        maybe(st.one_of(st.none(), st.integers(1, 8), st.sampled_from([MAX_WORKERS, Count(2)]))),
        st.one_of(st.sampled_from([0, -1, MAX_WORKERS + 1, 2**64, 10**400, -(10**400), 2.5, 3.0, True]), values),
    ),
}


@st.composite
def arguments(draw, names):
    """Values for the arguments ``names``, up to two of them bad."""
    bad = draw(st.sets(st.sampled_from(names), max_size=2))
    drawn = {}
    for name in names:
        good, anything = ARGUMENTS[name]
        drawn[name] = draw(anything if name in bad else good)
    return drawn


# --- the oracle -----------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One reason to refuse a call: the error expected, and a regex its
    message must match (by default, the argument's name as a word). An
    ``optional`` fault may be raised but need not be."""

    name: str
    error: type
    pattern: str = ""
    optional: bool = False

    def matches(self, exc):
        if not isinstance(exc, self.error):
            return False
        if self.error is Sabotage:  # the caller's own object raised
            return True
        return re.search(self.pattern or rf"\b{re.escape(self.name)}\b", str(exc)) is not None


def _items(seq):
    """The items of a list or tuple, read as the built-in type."""
    return list.__getitem__(seq, slice(None)) if isinstance(seq, list) else list(tuple.__getitem__(seq, slice(None)))


def _plain_kwargs(kwargs):
    if absent(kwargs):
        return {}
    # A dict's own items view reads it without its (maybe hostile) methods.
    return dict(dict.items(kwargs)) if isinstance(kwargs, dict) else dict(kwargs)


def _callbacks(callback):
    if absent(callback):
        return []
    return _items(callback) if isinstance(callback, (list, tuple)) else [callback]


def call_faults(method, args, kwargs, callback):
    """The rules for the parts every submission has."""
    faults = []
    if method is MISSING or not callable(method):
        faults.append(Fault("method", TypeError))
    if not absent(args) and not isinstance(args, (list, tuple)):
        faults.append(Fault("args", TypeError))
    if not absent(kwargs):
        if isinstance(kwargs, BrokenMap):
            faults.append(Fault("kwargs", Sabotage))
        elif not isinstance(kwargs, Mapping):
            faults.append(Fault("kwargs", TypeError))
        else:
            if isinstance(kwargs, HostileDict):
                faults.append(Fault("kwargs", Sabotage, optional=True))
            if not all(isinstance(k, str) for k in _plain_kwargs(kwargs)):
                faults.append(Fault("kwargs", TypeError))
    if not absent(callback):
        if isinstance(callback, (list, tuple)):
            if not all(callable(cb) for cb in _items(callback)):
                faults.append(Fault("callback", TypeError))
        elif not callable(callback):
            faults.append(Fault("callback", TypeError))
    return faults


def _as_float(delay):
    """A real number's float, as the binding reads it: an int, Decimal or
    Fraction beyond any bound is an infinity of its sign."""
    beyond = math.inf if delay > 0 else -math.inf
    if isinstance(delay, int):
        return float(delay) if abs(delay) <= 2 * MAX_DELAY else beyond
    try:
        return float(delay)
    except OverflowError:  # a huge Fraction
        return beyond


def delay_faults(delay, repeat=False):
    """A real number of seconds (int, float, Decimal or Fraction, but not
    bool), finite, at most about 500 years, and from 0 for a one-shot task
    or from MIN_INTERVAL for a reoccurring one (the interval between runs).
    A bad value's error says which rule it broke."""
    if delay is MISSING or isinstance(delay, bool) or not isinstance(delay, (int, float, Decimal, Fraction)):
        return [Fault("delay", TypeError)]
    if isinstance(delay, float) and not math.isfinite(delay) or isinstance(delay, Decimal) and not delay.is_finite():
        return [Fault("delay", ValueError, r"\bdelay\b.*\bfinite\b")]
    seconds = _as_float(delay)
    negative = seconds < 0 or delay < 0  # -0.0 is 0; Fraction(-1, 10**400) is not
    if repeat and (negative or seconds < MIN_INTERVAL):
        return [Fault("delay", ValueError, r"\bdelay\b.*at least 0\.001 seconds for a reoccurring task")]
    if negative:
        return [Fault("delay", ValueError, r"\bdelay\b.*>= 0")]
    if seconds > MAX_DELAY:
        return [Fault("delay", ValueError, r"\bdelay\b.*at most")]
    return []


def flag_faults(value, name):
    """A bool; None (or leaving it out) means the default."""
    return [] if absent(value) or isinstance(value, bool) else [Fault(name, TypeError)]


def schedule_faults(method, delay, args, kwargs, callback, reoccurring, run_now, recurring):
    """The faults of a schedule_task call, and whether it recurs."""
    faults = call_faults(method, args, kwargs, callback) + flag_faults(run_now, "run_now")
    recurs = flag_faults(reoccurring, "reoccurring") + flag_faults(recurring, "recurring")
    spec = reoccurring if isinstance(reoccurring, bool) else None
    alias = recurring if isinstance(recurring, bool) else None  # None or left out: not given
    if spec is not None and alias is not None and spec != alias:
        recurs.append(Fault("recurring", ValueError, rf"\breoccurring={spec} and recurring={alias} disagree"))
    if recurs:  # whether it recurs is unknown: the delay may break either rule
        return faults + recurs + delay_faults(delay, False) + delay_faults(delay, True), False
    repeat = spec if spec is not None else alias is True
    return faults + delay_faults(delay, repeat), repeat


ADD_KEYS = {"method", "args", "kwargs", "callback", "name"}
SCHEDULE_KEYS = ADD_KEYS | {"delay", "reoccurring", "run_now", "recurring"}


def _key_pattern(key):
    try:
        return re.escape(repr(str(key)))
    except Sabotage:
        return r"unknown key"


def task_faults(task, schedule):
    """The faults of TaskManager.add_task / schedule_task(task), and whether
    it recurs. A task dict is checked as a whole (a Mapping, no unknown keys,
    the required ones present) before its values."""
    if not isinstance(task, Mapping):
        return [Fault("task", TypeError)], False
    if isinstance(task, BrokenMap):
        return [Fault("task", Sabotage)], False
    extra = []
    if isinstance(task, HostileDict):
        extra.append(Fault("task", Sabotage, optional=True))
    task = _plain_kwargs(task)
    allowed = SCHEDULE_KEYS if schedule else ADD_KEYS
    faults = [Fault("key", ValueError, _key_pattern(k)) for k in task if k not in allowed]
    required = ["method", "delay"] if schedule else ["method"]
    faults += [Fault(k, ValueError) for k in required if k not in task]
    if faults:
        return faults + extra, False
    parts = (task["method"], task.get("args"), task.get("kwargs"), task.get("callback"))
    name = task.get("name")
    if name is not None and not isinstance(name, str):
        extra.append(Fault("name", TypeError))
    if not schedule:
        return call_faults(*parts) + extra, False
    flags_ = (task.get("reoccurring"), task.get("run_now"), task.get("recurring"))
    faults, repeat = schedule_faults(parts[0], task["delay"], *parts[1:], *flags_)
    return faults + extra, repeat


def max_workers_faults(value):
    """An int (not bool) from 1 to 2**31 - 1; None means the default."""
    if absent(value):
        return []
    if isinstance(value, bool) or not isinstance(value, int):
        return [Fault("max_workers", TypeError)]
    if value < 1:
        return [Fault("max_workers", ValueError, r"\bmax_workers\b.*>= 1")]
    if value > MAX_WORKERS:
        return [Fault("max_workers", ValueError, r"\bmax_workers\b.*at most")]
    return []


def module_faults(task_manager, max_workers):
    faults = max_workers_faults(max_workers)
    if not isinstance(task_manager, TaskManager):  # None and MISSING included
        faults.append(Fault("task_manager", TypeError))
    return faults


# --- running calls and comparing with the oracle ------------------------------------


def invoke(function, params, positional):
    """Calls ``function`` with ``params`` (name -> value, MISSING left out):
    the first ``positional`` of them by position, as far as none is left
    out before, the rest by keyword."""
    names = list(params)
    prefix = 0
    while prefix < min(positional, len(names)) and params[names[prefix]] is not MISSING:
        prefix += 1
    args = [params[n] for n in names[:prefix]]
    kwargs = {n: params[n] for n in names[prefix:] if params[n] is not MISSING}
    return function(*args, **kwargs)


def check_call(call, faults):
    """Runs ``call``; it must raise one of ``faults``, or succeed if none
    is required. Returns what it returned, or None if it raised."""
    try:
        result = call()
    except Exception as exc:
        error = exc
    else:
        required = [f for f in faults if not f.optional]
        assert not required, f"accepted a call the oracle refuses: {required}"
        event("accepted")
        return result
    event(f"refused: {type(error).__name__}: {str(error)[:30]}")
    if not any(f.matches(error) for f in faults):
        expected = f"one of {faults}" if faults else "success"
        raise AssertionError(f"raised {type(error).__name__}: {error}; expected {expected}") from error
    return None


def expected_outcome(method, args, kwargs, callback):
    """What the task's handle should hold: ("value", v) or ("raised", type),
    from running the task here, as the worker does."""
    args = () if absent(args) else _items(args)
    try:
        value = method(*args, **_plain_kwargs(kwargs))
    except Exception as exc:
        return "raised", type(exc)
    first = None
    for cb in _callbacks(callback):
        try:
            cb(value)
        except Exception as exc:
            first = first or type(exc)
    return ("raised", first) if first else ("value", value)


def same(a, b):
    """Whether two results of the same deterministic call agree: equal, or
    of one type with the same repr, or of one type that cannot say."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        if a == b:
            return True
    except Exception:
        pass
    try:
        return repr(a) == repr(b) or type(a).__repr__ is object.__repr__
    except Exception:
        return True


def check_outcome(handle, expected):
    kind, what = expected
    exc = handle.exception(timeout=SOON)
    if kind == "raised":
        assert type(exc) is what, f"task raised {exc!r:.200}, expected {what.__name__}"
    else:
        assert exc is None, f"task raised {type(exc).__name__}, expected a value"
        assert same(handle.result(0), what)


def check_accepted(handle, expected, *, recurring, due, cancel):
    """An accepted task: a recurring one is cancelled; a one-shot one due
    ``due`` seconds from now runs as it would here, or is cancelled."""
    if recurring:
        assert type(handle) is RecurringHandle
        assert handle.cancel() and handle.cancelled() and handle.done()
        return
    assert type(handle) is TaskHandle
    if cancel or due > SHORT:
        if handle.cancel():
            assert handle.cancelled() and handle.done()
            with pytest.raises(concurrent.futures.CancelledError):
                handle.result(0)
            return
        assert due < LONG, "a task due much later could not be cancelled"
    check_outcome(handle, expected())  # it had started, or is due now


def check_idle(manager):
    """Every task accepted has ended: none is still counted as outstanding."""
    assert wait_until(lambda: "outstanding=0" in repr(manager)), repr(manager)


# --- fixtures ----------------------------------------------------------------------


def _threads():
    with open("/proc/self/status") as status:
        os_threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    return threading.active_count(), os_threads


@pytest.fixture(scope="module")
def no_leaks():
    """No thread outlives the module's managers: Python's count and the
    OS's go back to what they were. Also turns a hang into a failure with
    every thread's traceback, and keeps failing tasks out of the log."""
    log = logging.getLogger("taskmanager")
    level = log.level
    log.setLevel(logging.CRITICAL)
    faulthandler.dump_traceback_later(300, exit=True)
    before = _threads()
    yield
    try:
        assert wait_until(lambda: all(n <= b for n, b in zip(_threads(), before)), timeout=30), (
            f"threads (python, os) {_threads()} after shutdown, {before} before"
        )
    finally:
        faulthandler.cancel_dump_traceback_later()
        log.setLevel(level)


@pytest.fixture(scope="module")
def fuzz_manager(no_leaks):
    m = TaskManager()
    m.start_thread()
    yield m
    m.shutdown(cancel_pending=True)


@pytest.fixture(scope="module")
def fuzz_module(fuzz_manager):
    return Module(task_manager=fuzz_manager, max_workers=4)


# --- properties ----------------------------------------------------------------------

ADD_ARGS = ["method", "args", "kwargs", "callback"]
SCHEDULE_ARGS = ["method", "delay", "args", "kwargs", "callback", "reoccurring", "run_now", "recurring"]


def expect(params):
    """The outcome of running the task of these (valid) arguments."""
    return lambda: expected_outcome(params["method"], params["args"], params["kwargs"], params["callback"])


@EXAMPLES
@given(params=arguments(ADD_ARGS), positional=st.integers(0, 4), cancel=st.booleans())
@armed
def test_module_add_task(fuzz_manager, fuzz_module, params, positional, cancel):
    faults = call_faults(*params.values())
    handle = check_call(lambda: invoke(fuzz_module.add_task, params, positional), faults)
    if handle is not None:
        check_accepted(handle, expect(params), recurring=False, due=0, cancel=cancel)
    check_idle(fuzz_manager)


@EXAMPLES
@given(params=arguments(SCHEDULE_ARGS), positional=st.integers(0, 7), cancel=st.booleans())
@armed
def test_module_schedule_task(fuzz_manager, fuzz_module, params, positional, cancel):
    # invoke never passes `recurring` (last, keyword-only) by position.
    faults, repeat = schedule_faults(*params.values())
    handle = check_call(lambda: invoke(fuzz_module.schedule_task, params, positional), faults)
    if handle is not None:
        due = 0 if params["run_now"] is True else float(params["delay"])
        check_accepted(handle, expect(params), recurring=repeat, due=due, cancel=cancel)
    check_idle(fuzz_manager)


rarely = st.sampled_from([False] * 9 + [True])


@st.composite
def task_dicts(draw, names):
    """A task dict: the known keys ``names`` with good or bad values, the
    optional ones often left out and the required ones sometimes, maybe
    unknown keys; in a dict or another Mapping, or not a mapping at all."""
    if draw(rarely):
        return draw(values)
    task = {}
    for name, value in draw(arguments(names)).items():
        required = name in ("method", "delay")
        if value is not MISSING and not (required and draw(rarely)):
            task[name] = value
    if draw(rarely):
        task.update(draw(st.dictionaries(dict_keys, values, min_size=1, max_size=2)))
    return draw(st.sampled_from([dict] * 6 + [FrozenMap] * 2 + [HostileDict]))(task)


def from_task(task):
    """A task dict's values, as the keyword form's arguments."""
    task = _plain_kwargs(task)
    return {name: task.get(name) for name in SCHEDULE_ARGS}


@EXAMPLES
@given(task=task_dicts(ADD_ARGS), cancel=st.booleans())
@armed
def test_manager_add_task(fuzz_manager, task, cancel):
    faults, _ = task_faults(task, schedule=False)
    handle = check_call(lambda: fuzz_manager.add_task(task), faults)
    if handle is not None:
        check_accepted(handle, expect(from_task(task)), recurring=False, due=0, cancel=cancel)
    check_idle(fuzz_manager)


@EXAMPLES
@given(task=task_dicts(SCHEDULE_ARGS), cancel=st.booleans())
@armed
def test_manager_schedule_task(fuzz_manager, task, cancel):
    faults, repeat = task_faults(task, schedule=True)
    handle = check_call(lambda: fuzz_manager.schedule_task(task), faults)
    if handle is not None:
        params = from_task(task)
        due = 0 if params["run_now"] is True else float(params["delay"])
        check_accepted(handle, expect(params), recurring=repeat, due=due, cancel=cancel)
    check_idle(fuzz_manager)


# Stand-ins for the manager the example itself makes, and for a Module.
FRESH = object()
MODULE = object()
worker_counts = arguments(["max_workers"]).map(lambda drawn: drawn["max_workers"])


@EXAMPLES
@given(
    manager_workers=worker_counts,
    task_manager=st.one_of(st.sampled_from([FRESH, FRESH, MISSING, MODULE]), values),
    module_workers=worker_counts,
)
@armed
def test_constructors(fuzz_manager, fuzz_module, manager_workers, task_manager, module_workers):
    params = {} if manager_workers is MISSING else {"max_workers": manager_workers}
    fresh = check_call(lambda: TaskManager(**params), max_workers_faults(manager_workers))
    try:
        if fresh is not None:
            assert type(fresh) is TaskManager
            if absent(manager_workers):
                assert 1 <= fresh.max_workers <= 32
            else:
                assert fresh.max_workers == manager_workers
            fresh.start_thread()
        if task_manager is FRESH:
            task_manager = fresh or fuzz_manager
        elif task_manager is MODULE:
            task_manager = fuzz_module  # a Module is not a TaskManager
        params = {"task_manager": task_manager, "max_workers": module_workers}
        module = check_call(lambda: invoke(Module, params, 0), module_faults(task_manager, module_workers))
        if module is not None:
            default = absent(module_workers)
            assert module.max_workers == (task_manager.max_workers if default else module_workers)
            if task_manager is fresh:  # its workers end with it, below
                assert module.add_task(const).result(SOON) == "const"
    finally:
        if fresh is not None:
            fresh.shutdown(cancel_pending=True)
