"""Delays, recurrence and run_now, with generous bounds: these prove the
semantics, never the speed."""

import concurrent.futures
import threading
import time

import pytest

from taskmanager import RecurringHandle, TaskHandle

from _util import SOON, Recorder, settle, wait_until

# Slack for "soon after it is due" on a loaded two-core machine.
LATE = 1.0


class Runs:
    """Records (start, end) of each call and checks calls never overlap."""

    def __init__(self, hold=0.0):
        self.lock = threading.Lock()
        self.spans = []
        self.active = 0
        self.overlapped = False
        self.hold = hold

    def __call__(self):
        start = time.monotonic()
        with self.lock:
            self.active += 1
            if self.active > 1:
                self.overlapped = True
        if self.hold:
            time.sleep(self.hold)
        with self.lock:
            self.active -= 1
            self.spans.append((start, time.monotonic()))

    def starts(self):
        with self.lock:
            return [s for s, _ in self.spans]

    def __len__(self):
        with self.lock:
            return len(self.spans)


@pytest.mark.parametrize("delay", [0.2, 0.35])
def test_delay_honoured(module, delay):
    ran_at = []
    t0 = time.monotonic()
    h = module.schedule_task(lambda: ran_at.append(time.monotonic()), delay)
    h.result(timeout=delay + SOON)
    elapsed = ran_at[0] - t0
    assert elapsed >= delay - 0.005  # never before the delay
    assert elapsed <= delay + LATE


def test_delay_in_dict_form_honoured(manager):
    ran_at = []
    t0 = time.monotonic()
    manager.schedule_task({"method": lambda: ran_at.append(time.monotonic()), "delay": 0.2}).result(SOON)
    assert 0.2 - 0.005 <= ran_at[0] - t0 <= 0.2 + LATE


def test_int_delay_and_zero_delay(module):
    t0 = time.monotonic()
    ran_at = []
    module.schedule_task(lambda: ran_at.append(time.monotonic()), 0).result(SOON)
    assert ran_at[0] - t0 <= LATE
    h = module.schedule_task(lambda: "int", 1)
    with pytest.raises(concurrent.futures.TimeoutError):
        h.result(timeout=0.5)  # an int delay of 1 s is not due yet
    assert h.result(timeout=1 + SOON) == "int"


def test_scheduled_tasks_run_in_due_order(single):
    order = Recorder()
    hs = [single.schedule_task(order, d, args=(d,)) for d in (0.3, 0.1, 0.2, 0.15)]
    for h in hs:
        h.result(SOON)
    assert order.snapshot() == [0.1, 0.15, 0.2, 0.3]


def test_recurring_runs_about_every_delay_without_overlap(module):
    interval = 0.05
    runs = Runs()
    t0 = time.monotonic()
    h = module.schedule_task(runs, interval, reoccurring=True)
    time.sleep(0.5)
    h.cancel()
    elapsed = time.monotonic() - t0
    starts = runs.starts()
    n = len(starts)
    # ~10 expected; a loaded machine skips ticks, never adds them: at most
    # one run per grid point passed (the sleep itself may overrun).
    assert 3 <= n <= elapsed / interval + 1, (n, elapsed)
    assert starts[0] - t0 >= interval - 0.005  # not run now
    # Fixed rate, no catch-up burst: never more runs than grid points passed.
    span = starts[-1] - starts[0]
    assert n - 1 <= span / interval + 1
    assert not runs.overlapped
    assert h.runs >= n - 1  # the handle counts the runs (one may be finishing)


def test_recurring_overrunning_task_never_overlaps_and_skips_ticks(module):
    runs = Runs(hold=0.12)
    h = module.schedule_task(runs, 0.05, reoccurring=True)
    assert wait_until(lambda: len(runs) >= 3)
    h.cancel()
    assert wait_until(lambda: runs.active == 0)
    assert not runs.overlapped
    spans = sorted(runs.spans)
    for (s1, e1), (s2, _) in zip(spans, spans[1:]):
        assert s2 >= e1  # the next run starts after the previous ends
    assert h.skipped_ticks >= 1


def test_run_now_runs_immediately_then_every_delay(module):
    interval = 0.6
    plain_runs = Runs()
    now_runs = Runs()
    plain_at_first_now_run = []

    def now_task():
        if not len(now_runs):
            plain_at_first_now_run.append(len(plain_runs))
        now_runs()

    t0 = time.monotonic()
    now_h = module.schedule_task(now_task, interval, reoccurring=True, run_now=True)
    plain_h = module.schedule_task(plain_runs, interval, reoccurring=True)
    try:
        assert wait_until(lambda: len(now_runs) >= 2 and len(plain_runs) >= 1, interval + SOON)
    finally:
        now_h.cancel()
        plain_h.cancel()
    first, second = now_runs.starts()[:2]
    # The first run came before the first tick (the plain task had not run).
    assert plain_at_first_now_run == [0]
    assert first - t0 < interval
    # The next one waited for the interval.
    assert second - t0 >= interval - 0.005
    assert second - t0 <= interval + LATE


def test_one_shot_with_run_now_runs_once_now(module):
    """Documented decision: a one-shot with run_now=True runs once, now, and
    not again after the delay."""
    runs = Recorder()
    t0 = time.monotonic()
    h = module.schedule_task(runs, 1.2, args=("x",), run_now=True)
    assert type(h) is TaskHandle and not isinstance(h, RecurringHandle)
    assert h.result(timeout=1.0) == "x"  # well before the 1.2 s delay
    ran_by = time.monotonic() - t0
    assert ran_by < 1.2
    time.sleep(max(0.0, 1.5 - ran_by))  # past the delay: no second run
    assert runs.snapshot() == ["x"]


def test_one_shot_run_now_in_dict_form(manager):
    runs = Recorder()
    h = manager.schedule_task({"method": runs, "args": (1,), "delay": 30, "run_now": True})
    assert h.result(timeout=SOON) == 1
    assert runs.snapshot() == [1]


def test_recurring_cancel_stops_future_runs(module):
    runs = Runs()
    h = module.schedule_task(runs, 0.03, reoccurring=True)
    assert wait_until(lambda: len(runs) >= 3)
    assert h.cancel() is True
    frozen = settle(lambda: (len(runs), h.runs))[0]  # a run in progress may finish
    time.sleep(0.3)
    assert len(runs) == frozen
    assert h.cancelled() and h.done()
    assert h.runs == frozen


def test_recurring_handle_stays_pending_while_recurring(module):
    h = module.schedule_task(lambda: 1, 0.02, reoccurring=True)
    assert wait_until(lambda: h.runs >= 3)
    assert not h.done() and not h.cancelled()
    h.cancel()
