"""Poison tasks and the dead-letter set with real worker processes (the
worker command) against a real ``redis-server``: a task that kills every
worker it runs on (``os._exit``), under a supervisor that restarts each
worker that exits, runs at most ``broker_max_deliveries`` times and lands
in the dead-letter set, its handle settling with ``DeadLettered``, while
the normal tasks beside it all complete; the ``dead-letters`` CLI verbs
list, show and purge it. A task of a name no live worker can run (a newer
version's) lands there after ``broker_unrunnable_after``, while a task the
busy worker can run waits longer untouched; the CLI lists it, and requeued
once a worker with the name runs, it runs. (Unreadable entries:
tests/redis_dead.rs; tasks no worker can run, in detail:
tests/redis_unrunnable.rs.)
"""

import json
import math
import subprocess
import sys
import time

import pytest

from taskmanager import DeadLettered, TaskManager

from _util import HERE


def supervise(c, workers, until, timeout):
    """Keeps ``workers`` worker processes running (restarting each that
    exits, as systemd or Kubernetes would) until ``until()`` or
    ``timeout``; returns how many restarts it made."""
    procs = [c.worker("--drain-timeout", "1") for _ in range(workers)]
    restarts = 0
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"not done after {timeout} s ({restarts} restarts)"
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                procs[i] = c.worker("--drain-timeout", "1")
                restarts += 1
        time.sleep(0.05)
    return restarts


def cli(c, *args):
    return subprocess.run(
        [sys.executable, "-m", "taskmanager", "dead-letters", "_worker_app:manager", *args],
        env=c.env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_poison_task_runs_at_most_max_deliveries_times_then_is_dead_lettered(cluster):
    c = cluster(TM_LEASE=1, TM_MAX_DELIVERIES=3, TM_MAX_WORKERS=2)
    app = c.submitter()
    poison = app.jobs.add_task(app.jobs.die, args=("p",))
    normal = [app.jobs.add_task(app.jobs.slow, args=(0.05, f"n{i}")) for i in range(10)]
    restarts = supervise(c, 2, until=lambda: poison.done() and all(h.done() for h in normal), timeout=90)
    with pytest.raises(DeadLettered) as caught:
        poison.result(0)
    assert "poison task: delivered 3 times" in caught.value.reason
    assert len(c.lines("die")) == 3, "one run per delivery, none after"
    assert restarts >= 3
    assert sorted(h.result(0)["tag"] for h in normal) == sorted(f"n{i}" for i in range(10)), "no normal task lost"
    letters = app.manager.dead_letters()
    assert [(d.module.rsplit(":", 1)[-1], d.name, d.deliveries) for d in letters] == [("Jobs", "die", 3)]
    assert json.loads(letters[0].args)["args"] == ["p"]

    listed = cli(c, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json.loads(listed.stdout)] == [letters[0].id]
    shown = cli(c, "show", letters[0].id)
    assert shown.returncode == 0 and "reason: poison task" in shown.stdout, shown
    assert cli(c, "show", "no-such-id").returncode == 1
    purged = cli(c, "purge")
    assert purged.returncode == 0 and "purged 1 task(s)" in purged.stdout, purged
    assert app.manager.dead_letters() == []


def test_dead_letter_calls_need_a_broker_and_check_their_arguments(cluster):
    with pytest.raises(RuntimeError, match="needs a TaskManager with broker="):
        TaskManager().dead_letters()
    app = cluster().submitter()
    with pytest.raises(TypeError, match="ids must be a list"):
        app.manager.requeue_dead_letters("one-id")
    with pytest.raises(ValueError, match="not both"):
        app.manager.requeue_dead_letters(["x"], all=True)
    assert app.manager.requeue_dead_letters(["no-such-id"]) == 0
    assert app.manager.requeue_dead_letters(all=True) == 0
    with pytest.raises(ValueError, match="broker_max_deliveries"):
        TaskManager(broker_max_deliveries=2)


def test_a_task_no_live_worker_can_run_is_dead_lettered_listed_and_runs_once_requeued(cluster):
    # The submitter has the task `newer`; the first worker (max_workers 1)
    # does not, as during a deploy whose new workers are not up yet.
    c = cluster(TM_UNRUNNABLE_AFTER=1, TM_NEWER=1)
    old = c.worker(TM_NEWER="")
    app = c.submitter()
    assert app.manager.add_task({"method": app.pid}).result(timeout=20) == old.pid
    started = time.monotonic()
    busy = app.jobs.add_task(app.jobs.slow, args=(3, "busy"))
    waiting = app.jobs.add_task(app.jobs.slow, args=(0, "waiting"))
    newer = app.manager.add_task({"method": app.newer, "args": ("a",)})
    with pytest.raises(DeadLettered) as caught:
        newer.result(timeout=20)
    assert time.monotonic() - started >= 1, "dead-lettered before the wait"
    reason = caught.value.reason
    assert reason.startswith("no live worker can run task ") and "/_worker_app:newer: none has read it for " in reason
    assert not waiting.done(), "the task the busy worker can run is still waiting"
    assert waiting.result(timeout=20)["tag"] == "waiting" and busy.result(timeout=20)["tag"] == "busy"
    assert time.monotonic() - started >= 3, "it waited past the wait"
    letters = app.manager.dead_letters()
    assert [(d.id, d.name, d.reason, d.deliveries) for d in letters] == [
        (newer.task_id, "_worker_app:newer", reason, 0)
    ]
    assert app.manager.task_state(newer.task_id) == "dead"

    listed = cli(c, "list")
    assert listed.returncode == 0, listed.stderr
    assert newer.task_id in listed.stdout and "no live worker can run task" in listed.stdout, listed.stdout
    # A worker of the newer version comes; the requeued task runs there.
    new = c.worker()
    requeued = cli(c, "requeue", newer.task_id)
    assert requeued.returncode == 0 and "requeued 1 task(s)" in requeued.stdout, requeued
    c.wait_lines("newer", 1)
    assert c.lines("newer") == [new.pid]
    deadline = time.monotonic() + 20
    while app.manager.task_state(newer.task_id) != "finished":
        assert time.monotonic() < deadline, app.manager.task_state(newer.task_id)
        time.sleep(0.05)
    assert app.manager.result(newer.task_id, timeout=0) == "newer a"
    assert app.manager.dead_letters() == []


@pytest.mark.parametrize(
    "value, error",
    [("60", TypeError), (True, TypeError), (None, None), (0, ValueError), (-1, ValueError),
     (math.nan, ValueError), (math.inf, ValueError), (1e300, ValueError), (0.5, None), (86400, None)],
)
def test_broker_unrunnable_after_takes_seconds_above_zero(value, error):
    make = lambda: TaskManager(broker="redis://127.0.0.1:1/0", broker_unrunnable_after=value)  # noqa: E731
    if error is None:
        make().shutdown()  # never started: Redis is not reached
    else:
        with pytest.raises(error, match="^broker_unrunnable_after must be"):
            make()
    with pytest.raises(ValueError, match="broker_unrunnable_after need broker="):
        TaskManager(broker_unrunnable_after=60)


@pytest.mark.parametrize("name", ["broker_lease", "broker_timeout", "broker_result_ttl"])
@pytest.mark.parametrize("value, error", [("5", TypeError), (True, TypeError), (-1, ValueError), (math.inf, ValueError)])
def test_the_brokers_durations_name_the_argument_they_refuse(name, value, error):
    with pytest.raises(error, match=f"^{name} must be"):
        TaskManager(broker="redis://127.0.0.1:1/0", **{name: value})
