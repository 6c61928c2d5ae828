"""``stats()``: what a module and a manager hold and have done.

The tests taking ``tm`` run in both modes (in-process and with a Redis
broker, conftest.py): their tasks are methods of the module-level Module
subclasses here (and ``@manager.task`` functions), with JSON arguments.
Per mode by design (README, "Seeing the cluster"): with a broker, tasks
wait in Redis, not in this process, so a module's local ``queued`` and
``pending_timers`` are 0 and ``stats().cluster`` has them (each module's
queued tasks, the delayed tasks, the shared schedules); runs are counted
in the ``stats()`` of the process that ran them (here, this one). A
recurring task is a ``SharedSchedule`` with a broker, listed in
``get_tasks()`` with id 0 and named by its key.
"""

from taskmanager import Module, RecurringHandle, RemoteError, Stats, TaskInfo

from _util import GATES, SOON, note, seen, wait_until


class Counted(Module):
    def hold(self, token):
        """Notes "started", then waits on the test's gate."""
        note(token, "started")
        GATES[token].wait(30)
        return "released"

    def value(self, i):
        return i

    def divide(self, a, b):
        return a / b

    def nothing(self):
        return None


def size(items):
    return len(items)


def report():
    return None


def assert_zero_division(mode, handle):
    """The handle's exception in each mode's documented form: the exception
    itself in-process, a RemoteError naming its type with a broker."""
    exc = handle.exception(SOON)
    if mode == "inprocess":
        assert isinstance(exc, ZeroDivisionError), repr(exc)
    else:
        assert isinstance(exc, RemoteError) and exc.kind == "ZeroDivisionError", repr(exc)


def test_module_stats_count_each_outcome(tm, token, caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Counted(task_manager=manager, max_workers=1)
    assert module.stats() == Stats(0, 0, 0, 0, 0, 0, 0, 0)
    blocker = module.add_task(module.hold, args=(token,))
    assert wait_until(lambda: seen(token) == ["started"])
    ok = [module.add_task(module.value, args=(i,)) for i in range(3)]
    bad = module.add_task(module.divide, args=(1, 0))
    doomed = module.add_task(module.nothing)
    assert doomed.cancel()
    far = module.schedule_task(module.nothing, 3600)
    s = module.stats()
    if tm.mode == "inprocess":
        assert (s.running, s.queued, s.workers, s.pending_timers, s.peak_concurrency) == (1, 5, 1, 1, 1), s
    else:
        # The queue and the timer are in Redis: the cluster's view has them
        # (the cancelled task was taken out of Redis).
        assert (s.running, s.queued, s.workers, s.pending_timers, s.peak_concurrency) == (1, 0, 1, 0, 1), s
        cluster = manager.stats().cluster
        assert [(m.queued, m.running) for m in cluster.modules if m.name.endswith(":Counted")] == [(4, 1)], cluster
        assert cluster.delayed == 1, cluster
    GATES[token].set()
    assert blocker.result(SOON) == "released"
    assert [h.result(SOON) for h in ok] == [0, 1, 2]
    assert_zero_division(tm.mode, bad)
    assert far.cancel()
    # A worker counts a run just after its handle is settled, and a
    # cancelled task when it passes it in the queue: wait for the counts.
    expected = (0, 4, 1, 2, 0, 0)
    counts = lambda: (lambda s: (s.queued, s.completed, s.failed, s.cancelled, s.pending_timers, s.running))(module.stats())
    assert wait_until(lambda: counts() == expected), module.stats()


def test_manager_stats_sum_the_modules(tm):
    manager = tm()
    manager.task(size)
    a = Counted(task_manager=manager, max_workers=2)
    assert a.add_task(a.value, args=(1,)).result(SOON) == 1
    assert manager.add_task({"method": size, "args": ([],)}).result(SOON) == 0
    rec = a.schedule_task(a.nothing, 3600, reoccurring=True)
    # A run is counted just after its handle is settled.
    assert wait_until(lambda: manager.stats().completed == 2), manager.stats()
    if tm.mode == "inprocess":
        assert manager.stats().pending_timers == 1
    else:  # a SharedSchedule lives in Redis, not in this process's timers
        assert manager.stats().pending_timers == 0
        assert [s.name for s in manager.stats().cluster.schedules] == ["nothing"]
    assert rec.cancel()
    if tm.mode == "inprocess":
        assert wait_until(lambda: manager.stats().cancelled == 1)
    else:  # removed from Redis, no local task to count cancelled
        assert manager.stats().cluster.schedules == []
    assert "completed=2" in repr(manager.stats())


class Poller(Module):
    def poll(self):
        return "polled"


def test_get_tasks_lists_scheduled_and_recurring(tm):
    manager = tm()
    manager.task(report)
    manager.task(size)
    poller = Poller(task_manager=manager, max_workers=1)
    report_handle = manager.schedule_task({"method": report, "delay": 30, "name": "nightly-report"})
    poll = poller.schedule_task(poller.poll, 10, reoccurring=True)
    assert manager.add_task({"method": size, "args": ([],)}).result(SOON) == 0  # not listed: done
    tasks = manager.get_tasks()
    if tm.mode == "inprocess":
        poll_id, poll_name, poll_module = poll.id, "Poller.poll", "Poller"
    else:  # a shared schedule: id 0, named by its key, its module by its full name
        poll_id, poll_name, poll_module = 0, poll.key, "test_stats:Poller"
        assert poll.key == "test_stats:Poller.poll"
    assert [t.name for t in tasks] == [poll_name, "nightly-report"]
    p, r = tasks
    assert isinstance(p, TaskInfo)
    assert (p.id, p.module, p.state, p.interval, p.runs, p.failures) == (poll_id, poll_module, "scheduled", 10.0, 0, 0)
    assert 9.0 < p.next_due <= 10.0
    assert (r.id, r.module, r.state, r.interval) == (report_handle.id, "default", "scheduled", None)
    assert 29.0 < r.next_due <= 30.0
    assert poll.pause()
    assert [t.state for t in manager.get_tasks() if t.name == poll_name] == ["paused"]
    assert report_handle.cancel()
    assert poll.cancel()
    assert wait_until(lambda: manager.get_tasks() == [])


def test_a_run_is_counted_before_its_handle_is_done(tm, caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Counted(task_manager=manager, max_workers=2)
    for n in range(1, 101):
        h = module.add_task(module.divide, args=(1, 0)) if n % 10 == 0 else module.add_task(module.nothing)
        if n % 10 == 0:
            assert_zero_division(tm.mode, h)
        else:
            assert h.result(SOON) is None
        s = module.stats()
        assert s.completed + s.failed == n, s
    assert module.stats().failed == 10


def test_a_raising_task_is_counted_failed_before_its_handle_says_so(tm, caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Counted(task_manager=manager, max_workers=1)
    for n in range(1, 6):
        failed = module.add_task(module.divide, args=(1, 0))
        assert_zero_division(tm.mode, failed)
        assert module.stats().failed == n, module.stats()


def test_a_raising_recurring_task_is_counted_failed_once_everywhere(manager, caplog):
    # In-process only: a RecurringHandle's counters (runs, failures,
    # last_exception), which a SharedSchedule documents not having.
    # The core counts a run from what it returned: a Python exception is a
    # failed run in stats(), in the recurring handle and in get_tasks()
    # alike (issue 25: the listing said 0 failures), and it is counted
    # before the handle is settled.
    caplog.set_level("CRITICAL", logger="taskmanager")
    module = Module(task_manager=manager, max_workers=1)
    for n in range(1, 6):
        failed = module.add_task(lambda: 1 / 0)
        assert isinstance(failed.exception(SOON), ZeroDivisionError)
        assert module.stats().failed == n, module.stats()
    runs = []

    def flaky():
        runs.append(1)
        if len(runs) % 2:
            raise ValueError(f"run {len(runs)}")

    every = module.schedule_task(flaky, 0.002, reoccurring=True, run_now=True)
    assert isinstance(every, RecurringHandle)
    assert wait_until(lambda: every.runs >= 10)
    assert every.pause()
    assert wait_until(lambda: module.stats().running == 0)
    listed = [t for t in manager.get_tasks() if t.id == every.id]
    assert len(listed) == 1
    assert listed[0].failures == every.failures == (every.runs + 1) // 2, (listed, every.runs)
    assert module.stats().failed == 5 + every.failures
    assert str(every.last_exception).startswith("run ")
    every.cancel()
