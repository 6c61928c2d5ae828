"""The broker mode (``TaskManager(broker=...)``) against a real redis-server
(the ``redis_server`` fixture starts one on a free port): named tasks
cross processes, errors come back typed, bad input is refused at the call,
and a recurring task registered by every replica fires once per tick."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from taskmanager import Module, RemoteError, SharedSchedule, TaskManager

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _broker_app  # noqa: E402


def double(x):
    return 2 * x


def test_named_tasks_run_and_their_results_and_errors_come_back(redis_server, tmp_path):
    manager, mailer, add = _broker_app.make(redis_server.url, uuid.uuid4().hex, str(tmp_path / "log"))
    manager.start_thread()
    try:
        assert manager.add_task({"method": add, "args": (2, 3)}).result(timeout=10) == 5
        sent = mailer.add_task(mailer.send, args=["a@b"]).result(timeout=10)
        assert sent == {"to": "a@b", "pid": os.getpid()}
        failed = mailer.add_task(mailer.send, kwargs={"to": None, "extra": 1})
        with pytest.raises(RemoteError) as info:
            failed.result(timeout=10)
        assert info.value.kind == "TypeError" and "extra" in info.value.message
        # An exception raised in the method comes with the worker's traceback.
        with pytest.raises(RemoteError) as info:
            mailer.add_task(mailer.fail, args=["no"]).result(timeout=10)
        assert (info.value.kind, info.value.message) == ("ValueError", "no")
        assert "Traceback" in info.value.remote_traceback and "raise ValueError" in info.value.remote_traceback
        delayed = mailer.schedule_task(mailer.send, 0.3, args=["later"])
        started = time.monotonic()
        assert delayed.result(timeout=10)["to"] == "later"
        assert time.monotonic() - started >= 0.25
    finally:
        manager.shutdown()


def test_a_settled_handle_nobody_holds_is_freed(redis_server, tmp_path):
    """A broker handle settled and dropped by its user is freed: the native
    half lets go of it once settled (the two referred to each other, a cycle
    the collector cannot see, and every handle of a web process lived for
    good)."""
    import gc
    import weakref

    manager, _mailer, add = _broker_app.make(redis_server.url, uuid.uuid4().hex, str(tmp_path / "log"))
    manager.start_thread()
    try:
        refs = []
        for i in range(200):
            handle = manager.add_task({"method": add, "args": (i, 1)})
            refs.append(weakref.ref(handle))
        assert handle.result(timeout=10) == 200
        del handle
        deadline = time.monotonic() + 10
        while True:
            gc.collect()
            alive = sum(1 for ref in refs if ref() is not None)
            if alive == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert alive == 0, f"{alive} of 200 settled handles still alive"
    finally:
        manager.shutdown()


def test_a_dropped_handle_is_freed_at_once_and_its_task_still_runs(redis_server, tmp_path):
    """Fire and forget: a handle its user drops before the result is freed
    at once (nothing waits for its result), and the task runs all the same;
    a dropped handle with a done-callback is kept until the callback ran."""
    import gc
    import threading
    import weakref

    log = tmp_path / "log"
    manager, mailer, _add = _broker_app.make(redis_server.url, uuid.uuid4().hex, str(log))
    manager.start_thread()
    try:
        handle = mailer.add_task(mailer.slow, args=[0.3, "forgotten"])
        ref = weakref.ref(handle)
        del handle
        gc.collect()
        assert ref() is None, "a dropped, unwatched handle outlived its user"
        called = threading.Event()
        seen = []
        watched = mailer.add_task(mailer.slow, args=[0.3, "watched"])
        watched.add_done_callback(lambda h: (seen.append(h.result()["tag"]), called.set()))
        del watched
        gc.collect()
        assert called.wait(10), "the done-callback of a dropped handle never ran"
        assert seen == ["watched"]
        deadline = time.monotonic() + 10
        while "end forgotten" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the forgotten task never ran"
            time.sleep(0.02)
    finally:
        manager.shutdown()


def test_bad_input_is_refused_at_the_call_with_a_type_error_naming_it(redis_server, tmp_path):
    manager, mailer, add = _broker_app.make(redis_server.url, uuid.uuid4().hex, str(tmp_path / "log"))
    try:
        with pytest.raises(TypeError, match="lambda"):
            mailer.add_task(lambda: 1)

        def local():
            return 1

        with pytest.raises(TypeError, match="local function"):
            mailer.add_task(local)
        with pytest.raises(TypeError, match="not registered"):
            mailer.add_task(double, args=[1])
        with pytest.raises(TypeError, match=r"args\[1\]"):
            manager.add_task({"method": add, "args": (1, object())})
        with pytest.raises(TypeError, match=r"kwargs\['b'\]"):
            manager.add_task({"method": add, "args": (1,), "kwargs": {"b": {1, 2}}})
        with pytest.raises(TypeError, match="callback"):
            mailer.add_task(mailer.send, args=["x"], callback=print)
        with pytest.raises(TypeError, match="public method"):
            mailer.add_task(mailer.stats)
        with pytest.raises(TypeError, match="broker must be a str"):
            TaskManager(broker=6379)
        with pytest.raises(ValueError, match="need broker"):
            TaskManager(broker_prefix="x")
    finally:
        manager.shutdown()


def test_an_unreachable_broker_is_a_connection_error_within_the_timeout(redis_server):
    url = redis_server.url
    redis_server.kill()
    manager = TaskManager(broker=url, broker_timeout=0.5)
    manager.task(double)
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        manager.add_task({"method": double, "args": [1]})
    assert time.monotonic() - started < 5
    manager.shutdown()


class _Workers:
    """Worker processes of _broker_app.py, killed at the end."""

    def __init__(self, n, url, prefix, log, *extra):
        self.procs = []
        for _ in range(n):
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_broker_app.py"), url, prefix, log, *extra],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            assert proc.stdout.readline().strip() == "ready"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)


def test_two_worker_processes_share_the_work_and_each_handle_gets_its_own_result(redis_server, tmp_path):
    prefix, log = uuid.uuid4().hex, str(tmp_path / "log")
    with _Workers(2, redis_server.url, prefix, log) as workers:
        manager, mailer, _ = _broker_app.make(redis_server.url, prefix, log)
        # This process claims too (it has the module): every process is a
        # worker once started.
        manager.start_thread()
        try:
            handles = [mailer.add_task(mailer.send, args=[f"user{i}"]) for i in range(300)]
            results = [h.result(timeout=30) for h in handles]
        finally:
            manager.shutdown()
        assert [r["to"] for r in results] == [f"user{i}" for i in range(300)]
        pids = {r["pid"] for r in results}
        worker_pids = {p.pid for p in workers.procs}
        assert pids & worker_pids, f"no task ran in a worker process: {pids}"
        assert pids <= worker_pids | {os.getpid()}


def test_a_recurring_task_every_replica_registers_fires_once_per_tick(redis_server, tmp_path):
    prefix, log = uuid.uuid4().hex, tmp_path / "log"
    # The schedule ticks from the first worker's start (it registers it
    # before saying ready), not from this process's: the later workers'
    # start-up (a second or more on a loaded machine) counts too.
    started = time.monotonic()
    with _Workers(3, redis_server.url, prefix, str(log), "--recur", "0.2"):
        manager, mailer, _ = _broker_app.make(redis_server.url, prefix, str(log))
        schedule = mailer.schedule_task(mailer.tick, 0.2, reoccurring=True)
        assert isinstance(schedule, SharedSchedule) and not schedule.created
        time.sleep(2.5)
        assert schedule.pause()
        window = time.monotonic() - started
        time.sleep(0.5)
        ticks, skipped = schedule.counts()
        runs = sum(1 for line in log.read_text().splitlines() if line.endswith(" tick"))
        assert runs == ticks, f"{runs} runs for {ticks} ticks ({skipped} skipped)"
        most = int(window / 0.2) + 2
        assert 8 <= runs <= most, f"{runs} runs of a 0.2 s task in {window:.1f} s (at most {most})"
        assert schedule.cancel() and schedule.counts() is None
        manager.shutdown()


def test_a_module_of_a_non_broker_manager_is_unchanged():
    manager = TaskManager()
    mod = Module(task_manager=manager, max_workers=1)
    manager.start_thread()
    assert mod.add_task(lambda: 7).result(timeout=10) == 7
    manager.shutdown()
