"""A program for the worker-command tests: a module-level ``manager`` that
``python -m taskmanager worker _worker_app:manager`` runs, configured from
the environment (every process of a test gets the same):

- ``TM_URL``, ``TM_PREFIX``: the broker and key prefix;
- ``TM_LOG``: a file each task appends ``<pid> <what>`` lines to;
- ``TM_LEASE`` (seconds, default 30), ``TM_MAX_WORKERS`` (default 1),
  ``TM_GLOBAL_CAP`` (``global_max_workers``, default none),
  ``TM_MAX_DELIVERIES`` (``broker_max_deliveries``, default the package's),
  ``TM_UNRUNNABLE_AFTER`` (``broker_unrunnable_after``, seconds, default
  the package's);
- ``TM_NEWER``: if set (non-empty), the app also has the task ``newer``,
  as a newer version of it would (a process without it cannot run it).
- ``TM_SPANS``: if set, a file: the app installs an OpenTelemetry SDK
  tracer provider that appends each finished span there as a JSON line
  (``name``, ``kind``, ``trace_id``, ``span_id``, ``parent_id`` as hex,
  ``status``, ``events``, ``attributes``).

The manager is ``submit_only``: the test process imports it to submit, and
only the worker command's processes run tasks.
"""

import os
import threading
import time

from taskmanager import Module, TaskManager

LOG = os.environ.get("TM_LOG", os.devnull)


def _export_spans_to(path: str) -> None:
    """Installs an SDK tracer provider writing finished spans to ``path``."""
    import json

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class FileExporter(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            with open(path, "a") as f:
                for span in spans:
                    parent = span.parent
                    f.write(
                        json.dumps(
                            {
                                "name": span.name,
                                "kind": span.kind.name,
                                "trace_id": f"{span.context.trace_id:032x}",
                                "span_id": f"{span.context.span_id:016x}",
                                "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
                                "status": span.status.status_code.name,
                                "events": [event.name for event in span.events],
                                "attributes": dict(span.attributes or {}),
                            }
                        )
                        + "\n"
                    )
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
    trace.set_tracer_provider(provider)


if os.environ.get("TM_SPANS"):
    _export_spans_to(os.environ["TM_SPANS"])


def note(what: str) -> None:
    # One write per line: lines of concurrent runs never interleave.
    with open(LOG, "a") as f:
        f.write(f"{os.getpid()} {what}\n")


manager = TaskManager(
    broker=os.environ.get("TM_URL", "redis://127.0.0.1:6379/0"),
    broker_prefix=os.environ.get("TM_PREFIX", "taskmanager"),
    broker_lease=float(os.environ.get("TM_LEASE", "30")),
    broker_timeout=2,
    submit_only=True,
    broker_max_deliveries=int(os.environ["TM_MAX_DELIVERIES"]) if "TM_MAX_DELIVERIES" in os.environ else None,
    broker_unrunnable_after=(
        float(os.environ["TM_UNRUNNABLE_AFTER"]) if "TM_UNRUNNABLE_AFTER" in os.environ else None
    ),
)

_lock = threading.Lock()
_running = 0


class Jobs(Module):
    def slow(self, seconds: float, tag: str) -> dict:
        """Logs start and end around a sleep; returns who ran it and how
        many of this process's tasks ran at once at its start."""
        global _running
        with _lock:
            _running += 1
            at_once = _running
        note(f"start {tag}")
        try:
            time.sleep(seconds)
        finally:
            with _lock:
                _running -= 1
        note(f"end {tag}")
        return {"pid": os.getpid(), "tag": tag, "at_once": at_once}

    def fail(self, tag: str) -> None:
        """Fails, every time."""
        note(f"fail {tag}")
        raise ValueError(f"failed on purpose: {tag}")

    def die(self, tag: str) -> None:
        """A poison task: kills the worker running it, every time."""
        note(f"die {tag}")
        os._exit(1)


_cap = os.environ.get("TM_GLOBAL_CAP")
jobs = Jobs(
    task_manager=manager,
    max_workers=int(os.environ.get("TM_MAX_WORKERS", "1")),
    global_max_workers=int(_cap) if _cap else None,
)


@manager.task
def pid() -> int:
    """A registered function: the default module runs it."""
    return os.getpid()


if os.environ.get("TM_NEWER"):

    @manager.task
    def newer(tag: str) -> str:
        """A task only a newer version of the app has."""
        note(f"newer {tag}")
        return f"newer {tag}"
