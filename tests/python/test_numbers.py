"""Delays and intervals take any real number a program has: int, float,
Decimal, Fraction, numpy integer and float scalars, and any object with
``__index__`` or ``__float__``. bool is not a number of seconds; NaN,
infinities, negative and huge values are ValueErrors naming the argument."""

import math
import time
from decimal import Decimal
from fractions import Fraction

import pytest

from _util import SOON, Recorder, settle, wait_until

np = pytest.importorskip("numpy")


class Floaty:
    """A real number only through ``__float__``."""

    def __init__(self, value):
        self.value = value

    def __float__(self):
        return float(self.value)

    def __repr__(self):
        return f"Floaty({self.value})"


class Indexy:
    """An integer only through ``__index__``."""

    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value

    def __repr__(self):
        return f"Indexy({self.value})"


# 0.05 s in every type that can say it.
FRACTIONAL = [
    0.05,
    Decimal("0.05"),
    Fraction(1, 20),
    np.float64(0.05),
    np.float32(0.05),
    np.float16(0.05),
    np.longdouble("0.05"),
    Floaty(0.05),
]
# 1 s in every integer type.
INTEGRAL = [1, Decimal(1), Fraction(1), np.int64(1), np.int32(1), np.int8(1), np.uint64(1), np.uint8(1), Indexy(1)]

def ids(value):
    """A test id: the value's type and the start of its value."""
    text = str(value)
    return f"{type(value).__module__}.{type(value).__name__}({text[:12]}{'...' if len(text) > 12 else ''})"


@pytest.mark.parametrize("delay", FRACTIONAL, ids=ids)
def test_fractional_delays_run_at_that_delay(module, delay):
    runs = Recorder()
    start = time.monotonic()
    h = module.schedule_task(lambda: runs(time.monotonic()), delay)
    h.result(SOON)
    (ran,) = runs.snapshot()
    assert 0.04 <= ran - start < 1.0


@pytest.mark.parametrize("delay", FRACTIONAL, ids=ids)
def test_fractional_intervals(module, delay):
    runs = Recorder()
    start = time.monotonic()
    h = module.schedule_task(lambda: runs(time.monotonic()), delay, reoccurring=True)
    assert wait_until(lambda: len(runs) >= 3)
    h.cancel()
    first, _, third = runs.snapshot()[:3]
    # On the grid: about 0.05, 0.10, 0.15 s after the start.
    assert 0.04 <= first - start < 1.0
    assert third - start >= 0.14


@pytest.mark.parametrize("seconds", FRACTIONAL, ids=ids)
def test_fractional_set_interval(module, seconds):
    runs = Recorder()
    h = module.schedule_task(lambda: runs(time.monotonic()), 3600, reoccurring=True)
    changed = time.monotonic()
    h.set_interval(seconds)
    (info,) = [t for t in module.task_manager.get_tasks() if t.id == h.id]
    assert info.interval == pytest.approx(0.05, rel=1e-3)
    assert wait_until(lambda: len(runs) >= 3)
    h.cancel()
    assert runs.snapshot()[2] - changed >= 0.09  # at least two intervals after the first run


def test_integral_delays_and_intervals(module):
    """Every integer type, as a one-shot delay, a reoccurring delay and a new
    interval, all at once: each first runs about 1 s after it was asked to."""
    first_run = {}

    def note(key):
        return lambda: first_run.setdefault(key, time.monotonic())

    recurring = []
    start = time.monotonic()
    for value in INTEGRAL:
        module.schedule_task(note(("delay", ids(value))), value)
        recurring.append(module.schedule_task(note(("reoccurring", ids(value))), value, reoccurring=True))
        changed = module.schedule_task(note(("set_interval", ids(value))), 3600, reoccurring=True)
        changed.set_interval(value)
        recurring.append(changed)
    assert wait_until(lambda: len(first_run) == 3 * len(INTEGRAL))
    for h in recurring:
        h.cancel()
    for key, ran in first_run.items():
        assert 0.9 <= ran - start < 1.0 + SOON / 2, key


ZEROS = [0, np.int64(0), np.uint8(0), Decimal(0), Decimal("-0"), Fraction(0), Indexy(0), Floaty(0.0), Floaty(-0.0)]


@pytest.mark.parametrize("delay", ZEROS, ids=ids)
def test_zero_in_any_type_is_a_one_shot_delay(module, delay):
    assert module.schedule_task(lambda: "now", delay).result(SOON) == "now"


# --- refused ----------------------------------------------------------------------------------------


@pytest.fixture
def submitters(module, manager):
    """Each way to give a number of seconds, and the argument's name."""
    recurring = module.schedule_task(print, 3600, reoccurring=True)
    return {
        "one-shot": (lambda v: module.schedule_task(print, v), "delay"),
        "dict": (lambda v: manager.schedule_task({"method": print, "delay": v}), "delay"),
        "reoccurring": (lambda v: module.schedule_task(print, v, reoccurring=True), "delay"),
        "set_interval": (recurring.set_interval, "seconds"),
    }


BOOLS = [True, False, np.bool_(True), np.bool_(False)]
NOT_NUMBERS = ["1", b"1", None, [1], (1,), {"s": 1}, 1j, np.complex128(1), object()]


@pytest.mark.parametrize("value", BOOLS + NOT_NUMBERS, ids=ids)
@pytest.mark.parametrize("form", ["one-shot", "dict", "reoccurring", "set_interval"])
def test_not_a_number_is_a_type_error(submitters, form, value):
    submit, name = submitters[form]
    # schedule_task's delay=None is delay not given: then cron or at must be.
    text = "needs one of delay" if value is None and name == "delay" else rf"^{name} must be a number of seconds"
    with pytest.raises(TypeError, match=text):
        submit(value)


HUGE = [10**400, Decimal("1e400"), Decimal(10**400), Fraction(10**400), Fraction(10**400, 3), np.float64(1e300)]


@pytest.mark.parametrize("value", HUGE, ids=ids)
@pytest.mark.parametrize("form", ["one-shot", "dict", "reoccurring", "set_interval"])
def test_huge_is_a_value_error_not_an_overflow(submitters, form, value):
    submit, name = submitters[form]
    with pytest.raises(ValueError, match=rf"^{name} must be at most") as info:
        submit(value)
    assert not isinstance(info.value, OverflowError)


NEGATIVE = [
    -1,
    Decimal("-1"),
    Decimal("-1e400"),
    Fraction(-1, 2),
    Fraction(-1, 10**400),  # a float says -0.0: still negative
    np.int64(-1),
    np.float32(-0.5),
    Indexy(-1),
]


@pytest.mark.parametrize("value", NEGATIVE, ids=ids)
def test_negative_one_shot_delay(submitters, value):
    for form in ("one-shot", "dict"):
        submit, _ = submitters[form]
        with pytest.raises(ValueError, match=r"^delay must be >= 0"):
            submit(value)


SHORT_INTERVALS = NEGATIVE + [0, Decimal("0.0009"), Fraction(1, 1001), np.float32(0.0005), Floaty(1e-12)]


@pytest.mark.parametrize("value", SHORT_INTERVALS, ids=ids)
@pytest.mark.parametrize("form", ["reoccurring", "set_interval"])
def test_below_the_least_interval(submitters, form, value):
    submit, name = submitters[form]
    with pytest.raises(ValueError, match=rf"^{name} must be at least 0\.001 seconds"):
        submit(value)


NOT_FINITE = [
    math.nan,
    math.inf,
    -math.inf,
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    np.float64("nan"),
    np.float32("inf"),
    Floaty(math.nan),
]


@pytest.mark.parametrize("value", NOT_FINITE, ids=ids)
@pytest.mark.parametrize("form", ["one-shot", "dict", "reoccurring", "set_interval"])
def test_not_finite_is_a_value_error(submitters, form, value):
    submit, name = submitters[form]
    with pytest.raises(ValueError, match=rf"^{name} must be finite"):
        submit(value)


def test_refused_numbers_leave_the_task_running(module):
    runs = Recorder()
    h = module.schedule_task(runs, 0.02, reoccurring=True)
    for bad in (True, Decimal("NaN"), Fraction(-1), Decimal("1e400"), "1"):
        with pytest.raises((TypeError, ValueError)):
            h.set_interval(bad)
    assert wait_until(lambda: len(runs) >= 2)
    h.cancel()
    settle(lambda: len(runs))
