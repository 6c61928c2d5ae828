"""shutdown(): what runs, what is cancelled, what is refused; the context
manager."""

import concurrent.futures
import threading
import time

import pytest

import taskmanager
from taskmanager import Module, TaskManager

from _util import SOON, Blocker, Recorder, wait_until


@pytest.fixture
def fresh():
    """A started manager that the test shuts down itself (teardown makes
    sure, for a failing test)."""
    managers = []

    def make(**kw):
        m = TaskManager(**kw)
        m.start_thread()
        managers.append(m)
        return m

    yield make
    for m in managers:
        m.shutdown(cancel_pending=True)


def test_shutdown_runs_queued_tasks_first(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=1)
    order = Recorder()

    def slow(i):
        time.sleep(0.03)
        return order(i)

    hs = [mod.add_task(slow, args=(i,)) for i in range(8)]
    hs.append(m.add_task({"method": order, "args": ("dict",)}))
    m.shutdown()
    # Everything queued ran, before shutdown returned.
    assert all(h.done() and not h.cancelled() for h in hs)
    assert [h.result(0) for h in hs] == list(range(8)) + ["dict"]
    assert sorted(order.snapshot(), key=str) == sorted(list(range(8)) + ["dict"], key=str)


def test_shutdown_runs_callbacks_of_queued_tasks(fresh):
    m = fresh()
    seen = Recorder()
    hs = [m.add_task({"method": lambda i=i: i, "callback": seen}) for i in range(5)]
    m.shutdown()
    assert sorted(seen.snapshot()) == [0, 1, 2, 3, 4]
    assert all(h.done() for h in hs)


def test_shutdown_cancels_scheduled_not_yet_due(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=2)
    ran = Recorder()
    later = mod.schedule_task(ran, 5, args=("later",))
    later_dict = m.schedule_task({"method": ran, "delay": 5})
    t0 = time.monotonic()
    m.shutdown()
    assert time.monotonic() - t0 < 4  # did not wait for them to be due
    for h in (later, later_dict):
        assert h.cancelled() and h.done()
        with pytest.raises(concurrent.futures.CancelledError):
            h.result(0)
    assert ran.snapshot() == []


def test_shutdown_cancels_recurring(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=2)
    ran = Recorder()
    rec = mod.schedule_task(ran, 0.02, reoccurring=True)
    rec_dict = m.schedule_task({"method": ran, "delay": 0.02, "recurring": True, "run_now": True})
    never = mod.schedule_task(ran, 30, reoccurring=True)
    assert wait_until(lambda: rec.runs >= 2 and rec_dict.runs >= 2)
    m.shutdown()
    for h in (rec, rec_dict, never):
        assert h.cancelled() and h.done()
        with pytest.raises(concurrent.futures.CancelledError):
            h.result(0)
    frozen = len(ran)
    time.sleep(0.1)
    assert len(ran) == frozen
    assert never.runs == 0


def test_submit_after_shutdown_raises_runtime_error(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=1)
    m.shutdown()
    ran = Recorder()
    calls = [
        lambda: mod.add_task(ran),
        lambda: mod.schedule_task(ran, 0.01),
        lambda: mod.schedule_task(ran, 0.01, reoccurring=True),
        lambda: m.add_task({"method": ran}),
        lambda: m.schedule_task({"method": ran, "delay": 0}),
        lambda: m.schedule_task({"method": ran, "delay": 1, "reoccurring": True}),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="shut down"):
            call()
    assert len(ran) == 0


def test_shutdown_is_idempotent(fresh):
    m = fresh()
    m.add_task({"method": lambda: 1})
    m.shutdown()
    m.shutdown()
    m.shutdown(cancel_pending=True)
    m.shutdown(wait=False)
    assert "shut down" in repr(m)


def test_shutdown_cancel_pending_cancels_queued(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=1)
    gate = threading.Event()
    blocker = Blocker(gate)
    running = mod.add_task(blocker)
    assert blocker.started.wait(SOON)
    ran = Recorder()
    queued = [mod.add_task(ran, args=(i,)) for i in range(5)]
    scheduled = mod.schedule_task(ran, 5)
    done = threading.Event()

    def do_shutdown():
        m.shutdown(cancel_pending=True)
        done.set()

    t = threading.Thread(target=do_shutdown)
    t.start()
    # shutdown waits for the running task...
    assert not done.wait(0.2)
    for h in queued + [scheduled]:
        assert wait_until(h.cancelled)
    gate.set()
    assert done.wait(SOON)
    t.join(SOON)
    # ...which completed normally, while the queued ones never ran.
    assert running.result(0) == "blocked"
    for h in queued:
        assert h.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            h.result(0)
    assert ran.snapshot() == []


def test_shutdown_cancel_pending_never_started_runs_nothing():
    """A manager that was never started has not run anything; shutdown with
    cancel_pending=True must cancel every queued task, and run none of
    them. Repeated, because starting workers for the queue before
    cancelling it is a race."""
    trials_that_ran = 0
    for _ in range(200):
        m = TaskManager()
        mods = [Module(task_manager=m, max_workers=1) for _ in range(10)]
        ran = Recorder()
        hs = [mod.add_task(ran, args=(i,)) for i, mod in enumerate(mods)]
        hs.append(m.add_task({"method": ran, "args": ("default",)}))
        m.shutdown(cancel_pending=True)
        assert all(h.done() for h in hs)
        if len(ran):
            trials_that_ran += 1
    assert trials_that_ran == 0, f"queued tasks ran in {trials_that_ran} of 200 shutdowns"


def test_shutdown_never_started_runs_queued():
    """shutdown() of a manager never started still runs what was queued."""
    m = TaskManager()
    mod = Module(task_manager=m, max_workers=2)
    hs = [mod.add_task(lambda i=i: i) for i in range(5)]
    later = mod.schedule_task(lambda: 1, 5)
    m.shutdown()
    assert [h.result(0) for h in hs] == list(range(5))
    assert later.cancelled()


def test_shutdown_wait_false_returns_at_once(fresh):
    m = fresh()
    gate = threading.Event()
    blocker = Blocker(gate)
    h = m.add_task({"method": blocker})
    assert blocker.started.wait(SOON)
    t0 = time.monotonic()
    m.shutdown(wait=False)
    assert time.monotonic() - t0 < 1.0
    assert not h.done()  # still running: shutdown did not wait for it
    with pytest.raises(RuntimeError):
        m.add_task({"method": print})
    gate.set()
    assert h.result(SOON) == "blocked"
    m.shutdown()  # now waits for the end


def test_shutdown_inside_task_returns(fresh):
    m = fresh()
    mod = Module(task_manager=m, max_workers=1)
    other = mod.add_task  # bound before shutdown

    def stopper():
        m.shutdown()
        try:
            other(print)
        except RuntimeError:
            return "refused after shutdown"
        return "accepted"

    h = mod.add_task(stopper)
    assert h.result(timeout=SOON) == "refused after shutdown"
    m.shutdown()  # and the outer one finishes


def test_shutdown_inside_callback_returns(fresh):
    m = fresh()
    h = m.add_task({"method": lambda: 1, "callback": lambda v: m.shutdown(cancel_pending=True)})
    assert h.result(timeout=SOON) == 1
    m.shutdown()


def test_context_manager_runs_and_shuts_down():
    ran = Recorder()
    with TaskManager(max_workers=2) as m:
        assert "running" in repr(m)
        mod = Module(task_manager=m, max_workers=1)
        first = mod.add_task(ran, args=("first",))
        assert first.result(timeout=SOON) == "first"  # runs inside the block
        queued = [mod.add_task(lambda i=i: time.sleep(0.02) or ran(i)) for i in range(4)]
        later = mod.schedule_task(ran, 5)
        rec = m.schedule_task({"method": ran, "delay": 0.02, "reoccurring": True})
    assert "shut down" in repr(m)
    assert [h.result(0) for h in queued] == [0, 1, 2, 3]
    assert later.cancelled() and rec.cancelled()
    with pytest.raises(RuntimeError):
        mod.add_task(print)


def test_context_manager_shuts_down_on_exception():
    with pytest.raises(KeyError):
        with TaskManager() as m:
            h = m.add_task({"method": lambda: "x"})
            raise KeyError("in block")
    assert h.result(0) == "x"
    assert "shut down" in repr(m)


def test_shutdown_timeout_names_the_tasks_still_running(fresh):
    """A task that would block forever: a bounded shutdown returns in time,
    cancels what waited, and names what still runs."""
    manager = fresh()
    release = threading.Event()
    entered = threading.Event()
    module = Module(task_manager=manager, max_workers=1)

    def stuck_forever():
        entered.set()
        release.wait()
        return "finished late"

    stuck = module.add_task(stuck_forever)
    named = manager.add_task({"method": lambda: release.wait(), "name": "poller"})
    assert entered.wait(SOON)
    assert wait_until(lambda: named.running())
    behind = [module.add_task(print) for _ in range(3)]
    start = time.monotonic()
    with pytest.raises(taskmanager.ShutdownTimedOut) as info:
        manager.shutdown(timeout=0.2)
    took = time.monotonic() - start
    assert 0.2 <= took < 3, took
    err = info.value
    assert isinstance(err, TimeoutError)
    stuck_name = "test_shutdown_timeout_names_the_tasks_still_running.<locals>.stuck_forever"
    assert sorted(err.running) == sorted([(stuck.id, stuck_name), (named.id, "poller")])
    assert err.cancelled == 3 and "poller" in str(err) and "stuck_forever" in str(err)
    assert str(err).startswith("shutdown timed out: 2 task(s) still running ("), str(err)
    assert str(err).endswith("); 3 queued task(s) not started were cancelled"), str(err)
    assert all(h.cancelled() for h in behind)
    release.set()
    assert stuck.result(SOON) == "finished late"


@pytest.mark.parametrize(
    "running, cancelled, message",
    [
        (
            [(1, "a"), (2, "b")],
            0,
            "shutdown timed out: 2 task(s) still running (a, b); no queued task was cancelled",
        ),
        ([(1, "a")], 4, "shutdown timed out: 1 task(s) still running (a); 4 queued task(s) not started were cancelled"),
        # A queued backlog alone: no misleading "0 task(s) still running".
        ([], 3, "shutdown timed out: 3 queued task(s) not started were cancelled; none was running"),
        ([], 0, "shutdown timed out: no task was running or queued; the manager's threads had not all exited"),
    ],
)
def test_shutdown_timed_out_says_what_was_left(running, cancelled, message):
    err = taskmanager.ShutdownTimedOut(running, cancelled)
    assert str(err) == message
    assert "0 task(s)" not in str(err)
    assert (err.running, err.cancelled) == (running, cancelled)
    assert isinstance(err, TimeoutError)


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)])
def test_shutdown_timeout_is_checked(fresh, bad, exc):
    with pytest.raises(exc, match="timeout"):
        fresh().shutdown(timeout=bad)
