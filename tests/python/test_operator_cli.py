"""The operator's ``status`` and ``tasks ... show`` verbs against a real
redis-server and real worker processes (``python -m taskmanager worker
_worker_app:manager``, the ``cluster`` fixture of conftest.py): the counts
an operator reads are exactly what ran, a SIGKILLed worker shows as dead, a
paused schedule as paused; a task's result, error, state and attempts; the
in-process case says what it cannot see; ``--help`` for every verb; bad
input names the argument.

Every process a test starts is killed in a ``finally`` (the fixture's, or
``subprocess.run``'s own on its timeout); every wait has a deadline.
"""

import datetime
import json
import subprocess
import sys
import time

import pytest

from taskmanager import DeadLettered, Retry
from taskmanager._cli import main

JOBS = "_worker_app:Jobs"


def run_json(c, *args):
    out = c.cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def module_row(status, name=JOBS):
    rows = [m for m in status["modules"] if m["name"] == name]
    assert len(rows) == 1, status["modules"]
    return rows[0]


def task_row(module, name):
    rows = [t for t in module["tasks"] if t["name"] == name]
    assert len(rows) == 1, module["tasks"]
    return rows[0]


def wait_for(predicate, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.05)


def test_status_shows_exactly_the_succeeded_failed_retried_and_cancelled_counts_per_task(cluster):
    c = cluster(TM_MAX_WORKERS=2)
    worker = c.worker()
    app = c.submitter()
    n, m = 5, 3
    ok = [app.jobs.add_task(app.jobs.slow, args=[0, f"ok{i}"]) for i in range(n)]
    bad = [app.jobs.add_task(app.jobs.fail, args=[f"bad{i}"]) for i in range(m)]
    # One more failure that retries once: 1 retried, then 1 failed.
    retried = app.jobs.add_task(app.jobs.fail, args=["again"], retry=Retry(1, backoff=0.05))
    # A delayed task cancelled before it is due: taken out of Redis.
    later = app.jobs.schedule_task(app.jobs.slow, 60, args=[0, "later"])
    assert later.cancel()
    assert all(h.result(timeout=20)["pid"] == worker.pid for h in ok)
    for h in [*bad, retried]:
        with pytest.raises(Exception, match="failed on purpose"):
            h.result(timeout=20)
    status = run_json(c, "status")
    jobs = module_row(status)
    slow, fail = task_row(jobs, "slow"), task_row(jobs, "fail")
    assert slow["total"] == {"succeeded": n, "failed": 0, "retried": 0, "dead_lettered": 0, "cancelled": 1}
    assert fail["total"] == {"succeeded": 0, "failed": m + 1, "retried": 1, "dead_lettered": 0, "cancelled": 0}
    assert jobs["total"] == {"succeeded": n, "failed": m + 1, "retried": 1, "dead_lettered": 0, "cancelled": 1}
    # All of it within the last minutes: rates per minute, over 1 and 5.
    assert 0 < slow["per_minute_1"]["succeeded"] <= n
    assert slow["per_minute_5"]["succeeded"] == pytest.approx(slow["per_minute_1"]["succeeded"] / 5, abs=n / 5)
    assert (jobs["queued"], jobs["running"], jobs["delayed"]) == (0, 0, 0)
    [seen] = status["workers"]
    assert (seen["pid"], seen["alive"], seen["running"]) == (worker.pid, True, 0)
    assert seen["modules"] == [JOBS, "default"] and seen["host"]
    # The text says the same.
    text = c.cli("status")
    assert text.returncode == 0, text.stderr
    assert "workers: 1 alive, 0 dead" in text.stdout
    assert f"  {JOBS}  queued 0  running 0  delayed 0" in text.stdout
    block = text.stdout.split(f"  {JOBS}  ", 1)[1].split("\n  default  ", 1)[0]
    rows = {line.split()[0]: line.split()[1] for line in block.splitlines() if line.startswith("    ")}
    assert (rows["succeeded"], rows["failed"], rows["retried"], rows["cancelled"]) == (str(n), str(m + 1), "1", "1")
    assert f"by task: fail (failed {m + 1}, retried 1); slow (succeeded {n}, cancelled 1)" in text.stdout


def test_a_worker_killed_with_sigkill_shows_as_dead(cluster):
    c = cluster(TM_LEASE=1.0)
    doomed = c.worker()
    app = c.submitter()
    assert app.jobs.add_task(app.jobs.slow, args=[0, "probe"]).result(timeout=20)["pid"] == doomed.pid
    wait_for(lambda: app.manager.cluster_stats().workers, "the worker listed")
    doomed.kill()
    doomed.wait(timeout=10)

    def seen_dead():
        return [w for w in app.manager.cluster_stats().workers if w.pid == doomed.pid and not w.alive]

    wait_for(seen_dead, "the killed worker seen dead")
    status = run_json(c, "status")
    [gone] = [w for w in status["workers"] if w["pid"] == doomed.pid]
    assert gone["alive"] is False and gone["last_seen"] > 1.0, gone
    text = c.cli("status")
    assert "workers: 0 alive, 1 dead" in text.stdout, text.stdout
    assert f"DEAD  {gone['id']}  host {gone['host']} pid {doomed.pid}" in text.stdout, text.stdout


def test_a_paused_schedule_shows_as_paused_with_its_next_run(cluster):
    c = cluster()
    app = c.submitter()
    tick = app.jobs.schedule_task(app.jobs.slow, 60, args=[0, "tick"], reoccurring=True)
    [key] = [s.key for s in app.manager.cluster_stats().schedules]
    paused = c.cli("schedules", "pause", key)
    assert paused.returncode == 0, paused.stderr
    [schedule] = run_json(c, "status")["schedules"]
    assert (schedule["key"], schedule["paused"], schedule["interval"]) == (key, True, 60.0)
    next_run = datetime.datetime.fromisoformat(schedule["next_run"])
    assert next_run.tzinfo is not None
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now < next_run <= now + datetime.timedelta(seconds=61)
    text = c.cli("status").stdout
    assert f"  {key}  {JOBS}  " in text and "every 60s  paused" in text, text
    tick.cancel()


def test_tasks_show_gives_the_state_result_or_error_and_attempts_of_a_task_wherever_it_is(cluster):
    c = cluster()
    app = c.submitter()
    # Sent before any worker runs: queued, found in its stream.
    queued = app.jobs.add_task(app.jobs.slow, args=[0, "queued"])
    shown = run_json(c, "tasks", "show", queued.task_id)
    assert (shown["state"], shown["module"], shown["name"], shown["worker"]) == ("queued", JOBS, "slow", None)
    assert (shown["attempt"], shown["deliveries"]) == (1, 0)
    worker = c.worker()
    assert queued.result(timeout=20)["pid"] == worker.pid
    running = app.jobs.add_task(app.jobs.slow, args=[2.0, "running"])
    c.wait_lines("running", 1)
    shown = run_json(c, "tasks", "show", running.task_id)
    [held_by] = [w.id for w in app.manager.cluster_stats().workers if w.pid == worker.pid]
    assert (shown["state"], shown["worker"], shown["deliveries"]) == ("running", held_by, 1), shown
    done = app.jobs.add_task(app.jobs.slow, args=[0, "done"])
    failed = app.jobs.add_task(app.jobs.fail, args=["broken"], retry=Retry(1, backoff=0.05))
    delayed = app.jobs.schedule_task(app.jobs.slow, 60, args=[0, "delayed"])
    buried = app.jobs.add_task(app.jobs.fail, args=["buried"], retry=Retry(1, backoff=0.05, dead_letter=True))
    assert done.result(timeout=20)["tag"] == "done"
    with pytest.raises(Exception, match="failed on purpose"):
        failed.result(timeout=20)
    with pytest.raises(DeadLettered):
        buried.result(timeout=20)

    shown = run_json(c, "tasks", "show", done.task_id)
    assert shown["state"] == "finished"
    assert shown["result"] == {"pid": worker.pid, "tag": "done", "at_once": 1}
    assert (shown["attempt"], shown["deliveries"]) == (1, 1)

    shown = run_json(c, "tasks", "show", failed.task_id)
    assert shown["state"] == "failed"
    assert shown["error"] == {"type": "ValueError", "message": "failed on purpose: broken"}
    assert "raise ValueError" in shown["traceback"]
    # Its second attempt failed too (the retry), delivered once.
    assert (shown["attempt"], shown["deliveries"]) == (2, 1)

    shown = run_json(c, "tasks", "show", delayed.task_id)
    assert shown["state"] == "delayed" and "result" not in shown
    assert (shown["attempt"], shown["deliveries"]) == (1, None)

    shown = run_json(c, "tasks", "show", buried.task_id)
    assert shown["state"] == "dead" and shown["error"]["type"] == "DeadLettered"
    assert shown["dead_letter"]["reason"].startswith("retries used up: attempt 2 failed"), shown
    assert shown["attempt"] == 2
    # And status counts it, and shows it among the newest dead letters.
    status = run_json(c, "status")
    assert status["dead_letters"]["count"] == 1
    assert [d["id"] for d in status["dead_letters"]["newest"]] == [buried.task_id]
    assert task_row(module_row(status), "fail")["total"]["dead_lettered"] == 1
    assert module_row(status)["delayed"] == 1  # the delayed task, waiting

    text = c.cli("tasks", "show", failed.task_id)
    assert text.returncode == 0, text.stderr
    assert "state: failed" in text.stdout and "  type: ValueError" in text.stdout

    unknown = c.cli("tasks", "show", "no-such-task-1")
    assert unknown.returncode == 1
    assert "no task 'no-such-task-1'" in unknown.stderr, unknown.stderr
    delayed.cancel()


def test_status_of_a_manager_without_a_broker_says_it_sees_only_its_own_fresh_process(tmp_path):
    (tmp_path / "plain_app.py").write_text(
        "from taskmanager import Module, TaskManager\n"
        "manager = TaskManager()\n"
        "class Mail(Module):\n"
        "    def send(self, to):\n"
        "        return to\n"
        "mail = Mail(task_manager=manager, max_workers=2)\n"
    )

    def run(*args):
        out = subprocess.run(
            [sys.executable, "-m", "taskmanager", "status", "plain_app:manager", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    text = run()
    assert "plain_app:manager has no broker: this command sees only its own process" in text, text
    assert "  Mail  queued 0  running 0  completed 0" in text, text
    shown = json.loads(run("--json"))
    assert shown["broker"] is False and "sees only its own process" in shown["note"]
    assert [m["name"] for m in shown["modules"]] == ["default", "Mail"]
    assert all(m["running"] == 0 and m["completed"] == 0 for m in shown["modules"])


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--help"],
        ["tasks", "--help"],
        ["tasks", "app:manager", "show", "--help"],
        ["worker", "--help"],
        ["dead-letters", "--help"],
        ["schedules", "--help"],
    ],
)
def test_every_verb_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m taskmanager " + argv[0]), out
    if argv[0] in ("status", "tasks"):
        assert "--json" in out or "show" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tasks", "app:manager", "show", " "], "ID must not be empty"),
        (["tasks", "app:manager"], "the following arguments are required: verb"),
        (["status"], "the following arguments are required: MODULE:ATTRIBUTE"),
        (["status", "nocolon"], "expected module:attribute"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_argument(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code not in (0, None) or message in str(exited.value.code)
    assert message in capsys.readouterr().err + str(exited.value.code)


def test_status_and_tasks_show_say_when_redis_cannot_be_read(cluster, redis_server):
    c = cluster()
    redis_server.kill()
    for verb in (["status"], ["tasks", "show", "some-id"]):
        out = c.cli(*verb)
        assert out.returncode == 1, out.stderr
        assert out.stderr.startswith(f"taskmanager {verb[0]}: "), out.stderr
        assert "Traceback" not in out.stderr, out.stderr
