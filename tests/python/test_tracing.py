"""OpenTelemetry spans of submissions and runs (issue 28): a submission is
a PRODUCER span, each run a CONSUMER span whose parent is the submit span
(in-process through the context kept with the task; with a broker through
the task's ``traceparent``/``tracestate`` entry fields); a recurring
task's ticks each start a new trace; a failed run is an ERROR span with an
exception event; without ``opentelemetry`` nothing of it runs.

Real parts only: the opentelemetry-sdk's ``InMemorySpanExporter`` in this
process, real redis-servers, real worker processes (``python -m
taskmanager worker``) that write their spans to a file (``_worker_app.py``,
``TM_SPANS``). Every process a test starts is killed in a ``finally``;
every wait has a deadline.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from taskmanager import Module, TaskManager

from _util import SOON, wait_until

HERE = Path(__file__).resolve().parent


class _Switch(SpanProcessor):
    """Exports to the in-memory exporter only while a test of this file
    runs: the global provider stays for the session (OpenTelemetry sets
    it once), and other tests' spans are not kept."""

    def __init__(self, exporter):
        self.on = False
        self.inner = SimpleSpanProcessor(exporter)

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        if self.on:
            self.inner.on_end(span)

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


_EXPORTER = InMemorySpanExporter()
_SWITCH = _Switch(_EXPORTER)
_INSTALLED = []


@pytest.fixture
def spans():
    """The in-memory exporter, empty, exporting while the test runs."""
    if not _INSTALLED:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(_SWITCH)
        _INSTALLED.append(provider)
    _EXPORTER.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        _EXPORTER.clear()


tracer = trace.get_tracer("test_tracing")


class Traced(Module):
    def echo(self, value):
        return value

    def fail(self, message):
        raise ValueError(message)

    def nested(self, value):
        """A span of its own inside the run: the run span's child."""
        with tracer.start_as_current_span("inside the task"):
            return value


def named(exporter, prefix, n=1, timeout=SOON):
    """The finished spans whose name starts with ``prefix``, once there
    are ``n`` (a run span ends on the worker thread, maybe just after the
    handle settles)."""
    wait_until(lambda: len([s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]) >= n, timeout)
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def check_parented(request, submit, run, module):
    """``run`` is the child of ``submit``, itself the child of ``request``,
    all in one trace, with the kinds and messaging attributes."""
    assert submit.context.trace_id == request.context.trace_id
    assert submit.parent.span_id == request.context.span_id
    assert run.context.trace_id == request.context.trace_id
    assert run.parent.span_id == submit.context.span_id
    assert (submit.kind, run.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    for span, operation in ((submit, "send"), (run, "process")):
        assert span.attributes["messaging.system"] == "taskmanager"
        assert span.attributes["messaging.destination.name"] == module
        assert span.attributes["messaging.operation.type"] == operation
    assert submit.attributes["messaging.message.id"] == run.attributes["messaging.message.id"]


def test_in_process_the_run_span_is_the_submit_spans_child_on_the_worker_thread(manager, spans):
    jobs = Traced(task_manager=manager, max_workers=2)
    with tracer.start_as_current_span("request") as request:
        handle = jobs.add_task(jobs.nested, args=[1], name="nested work")
        later = jobs.schedule_task(jobs.echo, 0.01, args=[2])
    assert (handle.result(SOON), later.result(SOON)) == (1, 2)
    request = next(s for s in spans.get_finished_spans() if s.name == "request")
    submit = named(spans, "taskmanager submit nested work")[0]
    run = named(spans, "taskmanager run nested work")[0]
    check_parented(request, submit, run, jobs._tm_name)
    assert submit.attributes["messaging.message.id"] == str(handle.id)
    inside = named(spans, "inside the task")[0]
    assert inside.parent.span_id == run.context.span_id, "the task's own spans are the run's children"
    delayed_submit = named(spans, "taskmanager submit Traced.echo")[0]
    delayed_run = named(spans, "taskmanager run Traced.echo")[0]
    check_parented(request, delayed_submit, delayed_run, jobs._tm_name)
    assert run.status.status_code == StatusCode.UNSET


def test_the_run_span_continues_the_submitters_trace_in_both_modes(tm, spans):
    manager = tm()
    jobs = Traced(task_manager=manager, max_workers=2)
    with tracer.start_as_current_span("request"):
        now = jobs.add_task(jobs.echo, args=["now"])
        later = jobs.schedule_task(jobs.echo, 0.05, args=["later"], name="later")
    assert (now.result(SOON), later.result(SOON)) == ("now", "later")
    request = next(s for s in spans.get_finished_spans() if s.name == "request")
    for task in ("Traced.echo", "later"):
        submit = named(spans, f"taskmanager submit {task}")[0]
        run = named(spans, f"taskmanager run {task}")[0]
        check_parented(request, submit, run, jobs._tm_name)
    if tm.mode == "redis":
        assert named(spans, "taskmanager submit Traced.echo")[0].attributes["messaging.message.id"] == now.task_id


def test_a_failed_run_is_an_error_span_with_an_exception_event_and_each_retry_is_a_child(tm, spans):
    manager = tm()
    jobs = Traced(task_manager=manager, max_workers=1)
    from taskmanager import Retry

    with tracer.start_as_current_span("request"):
        handle = jobs.add_task(jobs.fail, args=["boom"], retry=Retry(1, backoff=0.01))
    handle.exception(SOON)
    submit = named(spans, "taskmanager submit Traced.fail")[0]
    runs = named(spans, "taskmanager run Traced.fail", n=2)
    assert len(runs) == 2, "one span per attempt"
    for run in runs:
        assert run.parent.span_id == submit.context.span_id
        assert run.status.status_code == StatusCode.ERROR
        assert "ValueError: boom" in run.status.description
        (event,) = [e for e in run.events if e.name == "exception"]
        assert event.attributes["exception.type"] == "ValueError"
        assert event.attributes["exception.message"] == "boom"


def test_a_submission_refused_is_an_error_submit_span_and_no_run(tm, spans):
    manager = tm()
    jobs = Traced(task_manager=manager)
    with pytest.raises(TypeError):
        jobs.add_task(jobs.echo, args=5)
    (submit,) = named(spans, "taskmanager submit Traced.echo")
    assert submit.status.status_code == StatusCode.ERROR
    time.sleep(0.1)
    assert not [s for s in spans.get_finished_spans() if s.name.startswith("taskmanager run")]


def test_each_recurring_tick_starts_a_new_trace(tm, spans):
    """In-process each tick's trace is linked to the submit span; a shared
    schedule (broker) carries no context: its ticks are new traces, not
    linked."""
    manager = tm()
    jobs = Traced(task_manager=manager)
    with tracer.start_as_current_span("request"):
        handle = jobs.schedule_task(jobs.echo, 0.05, args=["tick"], reoccurring=True)
    try:
        ticks = named(spans, "taskmanager run Traced.echo", n=2, timeout=20)
    finally:
        handle.cancel()
    submit = named(spans, "taskmanager submit Traced.echo")[0]
    assert len({t.context.trace_id for t in ticks}) == len(ticks), "a trace per tick"
    for tick in ticks:
        assert tick.parent is None
        assert tick.context.trace_id != submit.context.trace_id
        assert tick.kind == SpanKind.CONSUMER
        if tm.mode == "inprocess":
            (link,) = tick.links
            assert link.context.span_id == submit.context.span_id
        else:
            assert not tick.links
            assert tick.attributes["taskmanager.recurring"] is True
    if tm.mode == "redis":
        assert submit.attributes["taskmanager.schedule"] == handle.key


def read_spans(path, prefix, n, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            spans = [json.loads(line) for line in Path(path).read_text().splitlines()]
        except FileNotFoundError:
            spans = []
        found = [s for s in spans if s["name"].startswith(prefix)]
        if len(found) >= n:
            return found
        assert time.monotonic() < deadline, f"never {n} x {prefix!r} in the worker's spans: {spans}"
        time.sleep(0.02)


def test_a_worker_process_continues_the_submitters_trace_through_redis(cluster, spans, tmp_path):
    """The decisive test: the trace crosses Redis into another process."""
    c = cluster()
    worker_spans = tmp_path / "worker-spans.jsonl"
    worker = c.worker(TM_SPANS=worker_spans)
    app = c.submitter()
    from taskmanager import Retry

    with tracer.start_as_current_span("web request") as request:
        now = app.jobs.add_task(app.jobs.slow, args=[0.0, "now"])
        later = app.jobs.schedule_task(app.jobs.slow, 0.05, args=[0.0, "later"], name="later")
        failing = app.jobs.add_task(app.jobs.fail, args=["bad"], retry=Retry(1, backoff=0.01))
    assert now.result(timeout=20)["pid"] == worker.pid
    assert later.result(timeout=20)["pid"] == worker.pid
    failing.exception(timeout=20)
    request_id = f"{request.get_span_context().trace_id:032x}"
    for task, n in (("Jobs.slow", 1), ("later", 1), ("Jobs.fail", 2)):
        submit = named(spans, f"taskmanager submit {task}")[0]
        runs = read_spans(worker_spans, f"taskmanager run {task}", n)
        assert len(runs) == n
        for run in runs:
            assert run["trace_id"] == request_id, "the worker's run span is in the submitter's trace"
            assert run["parent_id"] == f"{submit.context.span_id:016x}", "its parent is the submit span"
            assert run["kind"] == "CONSUMER"
            assert run["attributes"]["messaging.destination.name"] == app.jobs._tm_name
            assert run["attributes"]["messaging.message.id"] == submit.attributes["messaging.message.id"]
    for run in read_spans(worker_spans, "taskmanager run Jobs.fail", 2):
        assert run["status"] == "ERROR" and "exception" in run["events"]
    assert read_spans(worker_spans, "taskmanager run Jobs.slow", 1)[0]["status"] == "UNSET"


# Without opentelemetry: a fresh interpreter where importing it fails, and
# taskmanager's span code replaced by code that fails the test if it runs.
NO_OTEL = textwrap.dedent(
    """
    import sys
    sys.modules["opentelemetry"] = None
    import taskmanager._tracing as tracing

    class Ran(BaseException):
        pass

    def refuse(*args, **kwargs):
        raise Ran("span code ran without opentelemetry")

    for name in ("Submission", "_Run", "_Remote", "submit"):
        setattr(tracing, name, refuse)
    """
)

NO_OTEL_WORKER = NO_OTEL + textwrap.dedent(
    """
    import runpy
    sys.argv = ["taskmanager", "worker", "_worker_app:manager"]
    runpy.run_module("taskmanager", run_name="__main__", alter_sys=True)
    """
)


def run_script(script, env, timeout=60.0):
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def tasks_in_both_modes(url, prefix, then):
    """A script that runs a task now, a delayed one and three recurring
    ticks in-process and against ``url``, then the lines ``then``, then
    prints ok."""
    return textwrap.dedent(
        f"""
        import time
        from taskmanager import Module, TaskManager
        import taskmanager._tracing as tracing

        class Jobs(Module):
            def echo(self, value):
                return value

        for broker in (None, {url!r}):
            options = {{"broker": broker, "broker_prefix": {prefix!r}}} if broker else {{}}
            manager = TaskManager(**options)
            jobs = Jobs(task_manager=manager)
            manager.start_thread()
            assert jobs.add_task(jobs.echo, args=[1]).result(10) == 1
            assert jobs.schedule_task(jobs.echo, 0.01, args=[2]).result(10) == 2
            ticks = jobs.schedule_task(jobs.echo, 0.05, args=[3], reoccurring=True)
            deadline = time.monotonic() + 10
            while jobs.stats().completed < 3:
                assert time.monotonic() < deadline, jobs.stats()
                time.sleep(0.01)
            ticks.cancel()
            manager.shutdown(cancel_pending=True, timeout=10)
        """
    ) + textwrap.dedent(then) + "print('ok')\n"


def test_without_opentelemetry_tasks_run_and_no_span_code_runs(redis_server):
    then = """
        assert tracing._otel is None, tracing._otel
        assert not any(m == "opentelemetry" or m.startswith("opentelemetry.") for m in sys.modules if sys.modules[m])
        """
    code, out = run_script(NO_OTEL + tasks_in_both_modes(redis_server.url, "no-otel", then), dict(os.environ))
    assert (code, out.strip().splitlines()[-1:]) == (0, ["ok"]), out


def test_with_the_api_alone_and_no_tracer_provider_tasks_run_in_both_modes(redis_server):
    """No provider set up: the spans are OpenTelemetry's no-op ones, whose
    context is invalid; nothing crosses Redis, and every task runs."""
    then = """
        assert tracing._otel is not None
        """
    code, out = run_script(tasks_in_both_modes(redis_server.url, "api-only", then), dict(os.environ))
    assert (code, out.strip().splitlines()[-1:]) == (0, ["ok"]), out


def test_a_worker_without_opentelemetry_runs_a_traced_task(cluster, spans):
    c = cluster()
    worker = subprocess.Popen(
        [sys.executable, "-c", NO_OTEL_WORKER],
        env=c.env,
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    c.procs.append(worker)
    app = c.submitter()
    with tracer.start_as_current_span("web request"):
        handle = app.jobs.add_task(app.jobs.slow, args=[0.0, "traced"])
    assert handle.result(timeout=20)["pid"] == worker.pid
    assert named(spans, "taskmanager submit Jobs.slow")
    worker.terminate()
    assert worker.wait(timeout=20) == 0
    assert "span code ran" not in worker.stdout.read()
