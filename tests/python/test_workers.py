"""max_workers caps a module's concurrency; modules are independent."""

import concurrent.futures
import threading
import time

import pytest

from taskmanager import Module, TaskManager

from _util import SOON, Blocker, wait_until


class Concurrency:
    """Counts how many calls run at once, and the peak."""

    def __init__(self, hold=0.03):
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.hold = hold
        self.threads = set()

    def __call__(self, i=None):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.threads.add(threading.get_ident())
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return i


@pytest.mark.parametrize("n", [1, 2, 3])
def test_max_workers_cap_reached_never_exceeded(manager, n):
    mod = Module(task_manager=manager, max_workers=n)
    c = Concurrency()
    hs = [mod.add_task(c, args=(i,)) for i in range(8 * n)]
    assert [h.result(SOON) for h in hs] == list(range(8 * n))
    assert c.peak == n
    assert len(c.threads) <= n


def test_manager_default_module_cap():
    m = TaskManager(max_workers=2)
    m.start_thread()
    try:
        c = Concurrency()
        hs = [m.add_task({"method": c, "args": (i,)}) for i in range(12)]
        concurrent.futures.wait(hs, timeout=SOON)
        assert all(h.done() for h in hs)
        assert c.peak == 2
    finally:
        m.shutdown()


def test_cap_holds_for_scheduled_and_recurring_tasks(manager):
    mod = Module(task_manager=manager, max_workers=2)
    c = Concurrency(hold=0.05)
    hs = [mod.schedule_task(c, 0.02, args=(i,)) for i in range(6)]
    recs = [mod.schedule_task(c, 0.02, reoccurring=True) for _ in range(3)]
    concurrent.futures.wait(hs, timeout=SOON)
    assert wait_until(lambda: all(r.runs >= 2 for r in recs))
    for r in recs:
        r.cancel()
    assert c.peak == 2


def test_task_in_other_module_not_delayed(manager, gate):
    busy = Module(task_manager=manager, max_workers=2)
    blocker = Blocker(gate)
    # Saturate module A: 2 running, 20 queued behind them.
    for _ in range(22):
        busy.add_task(blocker)
    assert blocker.started.wait(SOON)
    assert wait_until(lambda: "queued=20" in repr(busy))
    other = Module(task_manager=manager, max_workers=1)
    t0 = time.monotonic()
    assert other.add_task(lambda: "quick").result(timeout=SOON) == "quick"
    assert time.monotonic() - t0 < 1.0
    # The manager's own default module is independent too.
    t0 = time.monotonic()
    assert manager.add_task({"method": lambda: "default"}).result(timeout=SOON) == "default"
    assert time.monotonic() - t0 < 1.0
    # Scheduled work of module B is not held up by A either.
    t0 = time.monotonic()
    assert other.schedule_task(lambda: "later", 0.05).result(timeout=SOON) == "later"
    assert time.monotonic() - t0 < 1.0


def test_module_queue_order_is_kept_under_cap(manager):
    mod = Module(task_manager=manager, max_workers=1)
    order = []
    hs = [mod.add_task(order.append, args=(i,)) for i in range(50)]
    concurrent.futures.wait(hs, timeout=SOON)
    assert order == list(range(50))


def test_task_may_wait_on_other_module(manager):
    a = Module(task_manager=manager, max_workers=1)
    b = Module(task_manager=manager, max_workers=1)

    def outer():
        return b.add_task(lambda: "inner").result(SOON) + "+outer"

    assert a.add_task(outer).result(SOON) == "inner+outer"


def test_concurrent_submission_from_many_threads(manager):
    mod = Module(task_manager=manager, max_workers=3)
    lock = threading.Lock()
    handles = []

    def submitter(base):
        for i in range(150):
            h = mod.add_task(lambda v=base + i: v)
            with lock:
                handles.append((base + i, h))

    threads = [threading.Thread(target=submitter, args=(k * 1000,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SOON)
    assert len(handles) == 900
    for expected, h in handles:
        assert h.result(SOON) == expected
