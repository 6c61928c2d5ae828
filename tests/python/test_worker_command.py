"""``python -m taskmanager worker module:manager`` against a real
redis-server: it runs what other processes submit; SIGTERM drains (running
tasks finish there and are never re-run, nothing more is claimed); a drain
that times out hands the unfinished task back at once (not after the
lease); a second SIGINT hands back at once; ``--concurrency`` sets
``max_workers``; ``global_max_workers`` holds across worker processes; a
``submit_only`` manager never runs a task; bad targets are clear errors.

Every process a test starts is killed and reaped in a ``finally``; every
wait has a deadline. Figures are printed as ``figure: ...`` (``pytest -s``).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from taskmanager import TaskManager

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def exit_of(proc, timeout=20.0):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker {proc.pid} did not exit within {timeout} s")


def mid_task(c, drain_timeout, seconds):
    """A worker-command process running a `slow` task of `seconds`, the
    submitting app, and the task's handle."""
    worker = c.worker("--drain-timeout", str(drain_timeout))
    app = c.submitter()
    slow = app.jobs.add_task(app.jobs.slow, args=[seconds, "slow"])
    c.wait_lines("start", 1)
    return worker, app, slow


def test_sigterm_drains_the_running_task_finishes_there_once_and_nothing_more_is_claimed(cluster):
    # A lease far shorter than the task: only the drain's heartbeat keeps
    # the other worker from taking it over.
    c = cluster(TM_LEASE=0.6)
    draining, app, slow = mid_task(c, 20, 2.0)
    other = c.worker()
    # The other worker is up once it ran something.
    probe = app.jobs.add_task(app.jobs.slow, args=[0.0, "probe"])
    assert probe.result(timeout=20)["pid"] == other.pid
    draining.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    time.sleep(0.3)  # the drain begins within milliseconds of the signal
    later = app.jobs.add_task(app.jobs.slow, args=[0.0, "later"])
    assert exit_of(draining) == 0, draining.stdout.read()
    took = time.monotonic() - signalled
    assert slow.result(timeout=20)["pid"] == draining.pid, "finished where it started"
    assert later.result(timeout=20)["pid"] == other.pid, "claimed by the live worker only"
    slow_starts = [line for line in c.log.read_text().splitlines() if "start slow" in line]
    assert len(slow_starts) == 1, f"re-run during the drain: {slow_starts}"
    assert "draining" in draining.stdout.read()
    print(f"figure: python worker SIGTERM drain: exited {took:.2f} s after the signal (task had ~2 s left)")


def test_a_drain_that_times_out_hands_the_task_back_at_once_not_after_the_lease(cluster):
    c = cluster(TM_LEASE=30)
    draining, app, slow = mid_task(c, 0.3, 1.5)
    other = c.worker()
    draining.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    assert exit_of(draining) == 1, "the drain timed out"
    assert slow.result(timeout=20)["pid"] == other.pid, "re-run by the live worker"
    took = time.monotonic() - signalled
    assert took < 10, f"{took:.1f} s: waited for the 30 s lease"
    assert "handed back" in draining.stdout.read()
    print(f"figure: python drain 0.3 s timed out: result {took:.2f} s after SIGTERM (run 1.5 s, lease 30 s)")


def test_a_second_sigint_hands_back_at_once(cluster):
    c = cluster(TM_LEASE=30)
    stopping, app, slow = mid_task(c, 60, 1.0)
    stopping.send_signal(signal.SIGINT)
    time.sleep(0.2)
    stopping.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    assert exit_of(stopping) == 130
    took = time.monotonic() - signalled
    assert took < 3, f"{took:.2f} s"
    other = c.worker()
    assert slow.result(timeout=20)["pid"] == other.pid
    print(f"figure: python second SIGINT: exited {took:.2f} s after it")


def ready_worker(c, *options):
    """A worker started with ``options`` and the test's submitter, once the
    worker has run a probe task (it is past its start-up)."""
    worker = c.worker(*options)
    app = c.submitter()
    assert app.jobs.add_task(app.jobs.slow, args=[0.0, "probe"]).result(timeout=20)["pid"] == worker.pid
    return worker, app


def test_the_ready_line_names_the_default_module_beside_the_program_modules(cluster):
    worker, app = ready_worker(cluster())
    assert app.manager.add_task({"method": app.pid}).result(timeout=20) == worker.pid
    worker.send_signal(signal.SIGTERM)
    assert exit_of(worker) == 0
    ready = [line for line in worker.stdout.read().splitlines() if " ready: " in line]
    # Each module with the tasks it runs; the default one runs the
    # @manager.task functions.
    assert len(ready) == 1, ready
    assert ready[0].endswith(f"worker {worker.pid} ready: default [_worker_app:pid]; _worker_app:Jobs [die, fail, slow]"), ready


def test_an_idle_worker_stopped_while_redis_is_down_exits_at_once_with_0(cluster, redis_server):
    worker, app = ready_worker(cluster(), "--drain-timeout", "30")
    redis_server.kill()
    time.sleep(0.5)  # its threads notice: the claimer is reconnecting
    worker.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    code = exit_of(worker, timeout=40)
    took = time.monotonic() - signalled
    out = worker.stdout.read()
    # Holding nothing, it has nothing to wait for (it waited the whole
    # 30 s drain timeout, then exited 1 with "0 task(s) handed back").
    assert code == 0, out
    assert took < 10, f"{took:.1f} s: {out}"
    print(f"figure: python idle worker, Redis down, SIGTERM: exited {took:.2f} s after it")


def test_a_long_idle_worker_fires_a_delayed_task_from_a_submit_only_process_on_time(cluster):
    # The program is submit_only; the worker command makes it a worker,
    # which fires schedules (a submit_only process fires none). Idle, it
    # sleeps; the submission wakes it.
    worker, app = ready_worker(cluster())
    time.sleep(3)
    sent = time.monotonic()
    delayed = app.jobs.schedule_task(app.jobs.slow, 0.2, args=[0.0, "delayed"])
    assert delayed.result(timeout=20)["pid"] == worker.pid
    took = time.monotonic() - sent
    assert 0.2 <= took < 1.5, f"{took:.2f} s"
    print(f"figure: python 0.2 s delayed task to a worker idle for 3 s: result after {took:.2f} s")


def test_concurrency_sets_max_workers_of_the_program_modules(cluster):
    c = cluster(TM_MAX_WORKERS=1)
    app = c.submitter()
    handles = [app.jobs.add_task(app.jobs.slow, args=[0.4, f"t{i}"]) for i in range(6)]
    c.worker("--concurrency", "3")
    results = [h.result(timeout=20) for h in handles]
    assert max(r["at_once"] for r in results) == 3, results


def test_global_max_workers_holds_across_worker_processes(cluster):
    c = cluster(TM_MAX_WORKERS=3, TM_GLOBAL_CAP=2)
    workers = [c.worker() for _ in range(3)]
    app = c.submitter()
    handles = [app.jobs.add_task(app.jobs.slow, args=[0.1, f"t{i}"]) for i in range(24)]
    results = [h.result(timeout=30) for h in handles]
    assert {r["pid"] for r in results} <= {w.pid for w in workers}
    # Replay the log: never more than 2 running across the cluster.
    running = peak = 0
    for line in c.log.read_text().splitlines():
        running += 1 if " start " in f"{line} " else -1
        peak = max(peak, running)
    assert peak <= 2, c.log.read_text()
    assert peak == 2, "the cap is reached"


def test_global_max_workers_is_checked_at_the_call():
    plain = TaskManager()
    with pytest.raises(ValueError, match="global_max_workers needs a TaskManager with broker="):
        from taskmanager import Module

        Module(task_manager=plain, max_workers=2, global_max_workers=2)
    with pytest.raises(ValueError, match="submit_only=True needs broker="):
        TaskManager(submit_only=True)
    with pytest.raises(TypeError, match="submit_only"):
        TaskManager(broker="redis://127.0.0.1:1/0", submit_only="yes")
    broker = TaskManager(broker="redis://127.0.0.1:1/0")
    from taskmanager import Module

    with pytest.raises(TypeError, match="global_max_workers"):
        Module(task_manager=broker, global_max_workers=1.5)
    with pytest.raises(ValueError, match="global_max_workers"):
        Module(task_manager=broker, global_max_workers=0)
    plain.shutdown()
    broker.shutdown()


def test_the_readme_two_terminal_example_runs(redis_server):
    env = dict(os.environ, REDIS_URL=redis_server.url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "taskmanager", "worker", "broker_app:manager"],
        cwd=EXAMPLES,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = subprocess.run(
            [sys.executable, "broker_app.py"], cwd=EXAMPLES, env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[:5] == [f"sent to user{i}@example.com by process {worker.pid}" for i in range(5)], lines
        assert lines[5] == "DONE"
        worker.send_signal(signal.SIGTERM)
        assert exit_of(worker) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
        worker.stdout.close()


@pytest.mark.parametrize(
    "target, message",
    [
        ("nocolon", "expected module:attribute"),
        ("os:path", "not a TaskManager"),
        ("_no_such_module_here:manager", "No module named"),
        ("os:nothing_here", "has no attribute"),
    ],
)
def test_a_bad_target_is_a_clear_error(target, message):
    out = subprocess.run(
        [sys.executable, "-m", "taskmanager", "worker", target], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert message in out.stderr, out.stderr


def test_a_manager_without_a_broker_is_refused(tmp_path):
    (tmp_path / "plain_app.py").write_text("from taskmanager import TaskManager\nmanager = TaskManager()\n")
    out = subprocess.run(
        [sys.executable, "-m", "taskmanager", "worker", "plain_app:manager"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "has no broker" in out.stderr, out.stderr


def test_stats_and_get_tasks_cover_the_cluster_and_name_what_was_taken_from_a_dead_worker(cluster):
    c = cluster(TM_LEASE=1.0)
    workers = [c.worker(), c.worker()]
    app = c.submitter()
    schedule = app.jobs.schedule_task(app.jobs.slow, 60, args=[0, "tick"], reoccurring=True)
    slow = app.jobs.add_task(app.jobs.slow, args=[1.5, "slow"])
    c.wait_lines("start", 1)
    busy = c.lines("start")[0]
    deadline = time.monotonic() + 20
    while len(app.manager.cluster_stats().workers) < 2:  # the other one may still be importing
        assert time.monotonic() < deadline, app.manager.cluster_stats()
        time.sleep(0.05)
    stats = app.manager.stats()
    cluster = stats.cluster
    assert {w.pid for w in cluster.workers} == {w.pid for w in workers}, cluster
    assert all(w.alive and w.modules == ["_worker_app:Jobs", "default"] for w in cluster.workers), cluster
    assert [w.running for w in cluster.workers if w.pid == busy] == [1], cluster
    assert (cluster.queued, cluster.running) == (0, 1), cluster
    listed = [t for t in app.manager.get_tasks() if t.id == 0]
    # Keyed by module, method and a digest of its arguments (no name= given).
    assert [(t.name.partition("#")[0], t.module, t.state, t.interval) for t in listed] == [
        ("_worker_app:Jobs.slow", "_worker_app:Jobs", "scheduled", 60.0)
    ]
    assert 55 < listed[0].next_due <= 60
    # The worker running `slow` dies: the other takes it over after the
    # lease, and the stats say from whom.
    dead = next(w for w in workers if w.pid == busy)
    dead.kill()
    dead.wait(timeout=10)
    assert slow.result(timeout=20)["pid"] != busy
    deadline = time.monotonic() + 10
    while True:
        cluster = app.manager.cluster_stats()
        gone = [w for w in cluster.workers if w.pid == busy]
        if gone and not gone[0].alive:
            break
        assert time.monotonic() < deadline, f"the killed worker is never seen dead: {cluster}"
        time.sleep(0.05)
    assert cluster.reclaimed == 1 and gone[0].reclaimed_from == 1, cluster
    schedule.cancel()
    assert [t for t in app.manager.get_tasks() if t.id == 0] == []


def test_cluster_stats_needs_a_broker_and_a_reachable_redis(redis_server):
    with pytest.raises(RuntimeError, match="needs a TaskManager with broker="):
        TaskManager().cluster_stats()
    url = redis_server.url
    redis_server.kill()
    manager = TaskManager(broker=url, broker_timeout=0.5)
    try:
        with pytest.raises(ConnectionError, match="cluster's stats"):
            manager.stats()
        assert "TaskManager" in repr(manager)  # a repr never calls Redis
    finally:
        manager.shutdown()
