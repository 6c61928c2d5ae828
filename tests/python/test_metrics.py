"""Prometheus metrics (``enable_metrics``, ``metrics_text``,
``serve_metrics``, ``MetricsCollector``, the worker's ``--metrics-port``):
scraped over HTTP and read with the official client's parser
(``prometheus_client.parser``), in both modes.

The registry is the process's (as Prometheus expects of a scrape target),
so the counters carry earlier tests' runs: each test reads its own
module's series (a module class of a name of its own), or the change
across its own work.
"""

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from taskmanager import DeadLettered, MetricsCollector, Module, RemoteError, Retry, TaskManager

from _util import GATES, SOON, note, seen, wait_until
from test_stats import Counted
from _util import HERE, Cluster


class Measured(Counted):
    """test_stats's tasks (hold, value, divide), and one that fails once."""

    def flaky(self, token):
        """Fails its first run, succeeds its second."""
        note(token, "ran")
        if len(seen(token)) == 1:
            raise RuntimeError("first run fails")
        return "second"


def scrape(url, token=None):
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=SOON) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return reply.read().decode()


def samples(text):
    """{(sample name, frozenset of labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


def module_name(module):
    """The ``module`` label of ``module``'s series: its stats' name."""
    return module._tm_name


def test_runs_are_counted_by_outcome_and_timed(tm, token, caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Measured(task_manager=manager, max_workers=1)
    server = manager.serve_metrics()
    try:
        m = module_name(module)
        before = samples(scrape(server.url))
        blocker = module.add_task(module.hold, args=(token,))
        assert wait_until(lambda: seen(token) == ["started"])
        ok = [module.add_task(module.value, args=(i,)) for i in range(3)]
        bad = module.add_task(module.divide, args=(1, 0))
        doomed = module.add_task(module.value, args=(99,))
        assert doomed.cancel()
        time.sleep(0.05)  # the queued tasks wait at least this long
        GATES[token].set()
        assert blocker.result(SOON) == "released"
        assert [h.result(SOON) for h in ok] == [0, 1, 2]
        with pytest.raises((ZeroDivisionError, RemoteError)):
            bad.result(SOON)
        # Counted before the handle says done: no wait needed.
        after = samples(scrape(server.url))
    finally:
        server.close()

    def delta(name, task):
        labels = {"module": m, "task": task}
        return value(after, name, **labels) - value(before, name, **labels)

    # The task label is the handle's name in both modes (the module label
    # is the module's name: module-qualified with a broker).
    names = {"hold": "Counted.hold", "value": "Counted.value", "divide": "Counted.divide"}
    assert delta("taskmanager_tasks_started_total", names["value"]) == 3
    assert delta("taskmanager_tasks_succeeded_total", names["value"]) == 3
    assert delta("taskmanager_tasks_failed_total", names["value"]) == 0
    assert delta("taskmanager_tasks_cancelled_total", names["value"]) == 1
    assert delta("taskmanager_tasks_started_total", names["divide"]) == 1
    assert delta("taskmanager_tasks_failed_total", names["divide"]) == 1
    assert delta("taskmanager_tasks_succeeded_total", names["divide"]) == 0
    assert delta("taskmanager_tasks_succeeded_total", names["hold"]) == 1
    # Durations: one observation a run; the held task ran >= 50 ms.
    assert delta("taskmanager_task_duration_seconds_count", names["value"]) == 3
    assert delta("taskmanager_task_duration_seconds_sum", names["hold"]) >= 0.05
    # Queue wait, by module: five runs; the three queued behind the held
    # task waited at least the 50 ms it was held.
    wait = lambda n: value(after, n, module=m) - value(before, n, module=m)  # noqa: E731
    assert wait("taskmanager_task_queue_wait_seconds_count") == 5
    assert wait("taskmanager_task_queue_wait_seconds_sum") >= 3 * 0.05
    # Buckets are cumulative and end in the count.
    inf = value(after, "taskmanager_task_queue_wait_seconds_bucket", module=m, le="+Inf")
    assert inf == value(after, "taskmanager_task_queue_wait_seconds_count", module=m)
    # Gauges: the module's, read at the scrape (idle now, one worker).
    assert value(after, "taskmanager_tasks_running", module=m) == 0
    assert value(after, "taskmanager_tasks_queued", module=m) == 0
    assert value(after, "taskmanager_workers", module=m) == 1


def test_a_retried_run_is_counted_retried_then_succeeded(tm, token, caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Measured(task_manager=manager, max_workers=1)
    m = module_name(module)
    task = "Measured.flaky"
    before = samples(manager.metrics_text())
    handle = module.add_task(module.flaky, args=(token,), retry=Retry(2, backoff=0.01))
    assert handle.result(SOON) == "second"
    after = samples(manager.metrics_text())
    for name, expected in [
        ("taskmanager_tasks_started_total", 2),
        ("taskmanager_tasks_retried_total", 1),
        ("taskmanager_tasks_succeeded_total", 1),
        ("taskmanager_tasks_failed_total", 0),
        ("taskmanager_task_duration_seconds_count", 2),
    ]:
        got = value(after, name, module=m, task=task) - value(before, name, module=m, task=task)
        assert got == expected, (name, got)


def test_a_recurring_tasks_ticks_have_a_lateness_and_skipped_ticks_are_counted(caplog):
    caplog.set_level("CRITICAL", logger="taskmanager")
    cls = type(f"Ticking{uuid.uuid4().hex[:8]}", (Module,), {"tick": lambda self: None})
    manager = TaskManager()
    manager.enable_metrics()
    manager.start_thread()
    try:
        module = cls(task_manager=manager, max_workers=1)
        handle = module.schedule_task(module.tick, 0.02, reoccurring=True, name="tick")
        assert wait_until(lambda: handle.runs >= 3)
        handle.pause()
        labels = {"module": cls.__name__, "task": "tick"}
        skipped = lambda: value(samples(manager.metrics_text()), "taskmanager_ticks_skipped_total", **labels)  # noqa: E731
        assert wait_until(lambda: skipped() >= 2), "paused ticks are counted skipped"
        handle.cancel()
        found = samples(manager.metrics_text())
    finally:
        manager.shutdown(cancel_pending=True)
    lateness = value(found, "taskmanager_schedule_lateness_seconds_count", **labels)
    assert lateness == value(found, "taskmanager_tasks_started_total", **labels) >= 3
    assert value(found, "taskmanager_schedule_last_lateness_seconds", **labels) >= 0
    assert ("taskmanager_schedule_last_lateness_seconds", frozenset(labels.items())) in found
    # One-shot tasks have no lateness series at all.
    assert not any(
        name == "taskmanager_schedule_lateness_seconds_count" and ("task", "Measured.value") in labels_
        for name, labels_ in found
    )


def test_a_shared_schedules_ticks_have_a_lateness_in_the_worker(tm, token, caplog):
    # With a broker a tick runs as a task from Redis whose id carries its
    # due time: the worker measures how late it started, as in-process.
    caplog.set_level("CRITICAL", logger="taskmanager")
    manager = tm()
    module = Measured(task_manager=manager, max_workers=1)
    manager.enable_metrics()
    schedule = module.schedule_task(module.value, 0.2, args=(1,), reoccurring=True, name="ticking")
    m = module_name(module)

    def lateness():
        """{task label: (ticks with a lateness, the last one)} of the module."""
        found = samples(manager.metrics_text())
        return {
            dict(labels)["task"]: (n, value(found, "taskmanager_schedule_last_lateness_seconds", **dict(labels)))
            for (name, labels), n in found.items()
            if name == "taskmanager_schedule_lateness_seconds_count" and dict(labels)["module"] == m
        }

    try:
        assert wait_until(lambda: any(n >= 2 for n, _ in lateness().values()), timeout=20), lateness()
        [(ticks, last)] = lateness().values()
        assert ticks >= 2 and 0 <= last < 10, (ticks, last)
    finally:
        schedule.cancel()


def test_task_names_past_the_cap_are_counted_as_other(caplog):
    caplog.set_level("ERROR", logger="taskmanager")
    cls = type(f"Named{uuid.uuid4().hex[:8]}", (Module,), {"run": lambda self: None})
    manager = TaskManager()
    manager.enable_metrics()
    manager.start_thread()
    try:
        module = cls(task_manager=manager, max_workers=2)
        handles = [module.add_task(module.run, name=f"user-{i}") for i in range(1005)]
        for h in handles:
            h.result(SOON)
        found = samples(manager.metrics_text())
    finally:
        manager.shutdown(cancel_pending=True)
    started = {
        dict(labels)["task"]: v
        for (name, labels), v in found.items()
        if name == "taskmanager_tasks_started_total" and dict(labels)["module"] == cls.__name__
    }
    assert len(started) == 1001, "1000 names, then _other"
    assert started["_other"] == 5
    assert sum(started.values()) == 1005


def test_metrics_collector_adds_them_to_a_prometheus_client_registry(manager):
    cls = type(f"Collected{uuid.uuid4().hex[:8]}", (Module,), {"run": lambda self: 7})
    module = cls(task_manager=manager, max_workers=1)
    registry = CollectorRegistry()
    registry.register(MetricsCollector(manager))
    assert module.add_task(module.run, name="run").result(SOON) == 7
    text = generate_latest(registry).decode()
    line = f'taskmanager_tasks_succeeded_total{{module="{cls.__name__}",task="run"}} 1.0'
    assert line in text, text


def test_serve_metrics_refuses_other_paths_and_a_missing_token(manager):
    with manager.serve_metrics(token="s3cret") as server:
        assert server.url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(server.url)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as wrong:
            scrape(server.url, token="guess")
        assert wrong.value.code == 401
        assert "taskmanager_workers" in scrape(server.url, token="s3cret")
        with pytest.raises(urllib.error.HTTPError) as missing:
            scrape(server.url.replace("/metrics", "/other"), token="s3cret")
        assert missing.value.code == 404


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"port": -1}, ValueError, "port must be"),
        ({"port": 70000}, ValueError, "port must be"),
        ({"port": "80"}, ValueError, "port must be"),
        ({"port": True}, ValueError, "port must be"),
        ({"host": 5}, TypeError, "host must be"),
        ({"host": ""}, TypeError, "host must be"),
        ({"token": ""}, TypeError, "token must be"),
        ({"token": 5}, TypeError, "token must be"),
    ],
)
def test_serve_metrics_bad_arguments_are_typed_errors_naming_them(manager, kwargs, error, words):
    with pytest.raises(error, match=words):
        manager.serve_metrics(**kwargs)


def test_the_worker_command_serves_its_metrics_and_the_clusters(redis_server, tmp_path):
    # The submitter has the task `newer`, the worker does not: the worker
    # dead-letters it after a second, and counts it.
    c = Cluster(redis_server.url, tmp_path, TM_UNRUNNABLE_AFTER=1, TM_NEWER=1)
    try:
        worker = c.worker("--metrics-port", "0", TM_NEWER="")
        app = c.submitter()
        handles = [app.jobs.add_task(app.jobs.slow, args=[0.0, f"m{i}"]) for i in range(4)]
        for h in handles:
            assert h.result(timeout=20)["pid"] == worker.pid
        unrunnable = app.manager.add_task({"method": app.newer, "args": ["x"]})
        with pytest.raises(DeadLettered):
            unrunnable.result(timeout=20)
        # The worker logs where it serves them (port 0: a free one).
        url = None
        deadline = time.monotonic() + 20
        lines = []
        while url is None:
            assert time.monotonic() < deadline, f"no 'metrics at' line: {lines}"
            line = worker.stdout.readline()
            lines.append(line)
            found = re.search(r"metrics at (http://\S+)", line)
            url = found and found.group(1)
        found = samples(scrape(url))
        m = "_worker_app:Jobs"
        assert value(found, "taskmanager_tasks_succeeded_total", module=m, task="Jobs.slow") == 4
        assert value(found, "taskmanager_cluster_readable") == 1
        assert value(found, "taskmanager_cluster_workers", state="alive") == 1
        assert value(found, "taskmanager_cluster_tasks_queued", module=m) == 0
        dead = value(found, "taskmanager_tasks_dead_lettered_total", module="default", task="_worker_app:newer")
        assert dead == 1
    finally:
        c.close()


def test_a_bad_metrics_port_is_refused_before_the_worker_starts(redis_server, tmp_path):
    c = Cluster(redis_server.url, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "taskmanager", "worker", "_worker_app:manager", "--metrics-port", "70000"],
        env=c.env, cwd=HERE, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "--metrics-port must be from 0 to 65535, got 70000" in done.stderr
