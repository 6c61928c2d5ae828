"""OpenTelemetry spans of submissions and runs (issue 28), if the
``opentelemetry`` API package is importable; otherwise nothing at all.

Whether it is importable is checked once, at the first submission (or the
first named task a worker runs): without it, a submission costs one call
of :func:`active` that returns None, and no span code runs. With the API
alone and no tracer provider set up (and no valid span current), the same:
every span would be a no-op one.

- A submission (``add_task``, ``schedule_task``, one-shot or recurring)
  is a PRODUCER span ``taskmanager submit <task name>``, current while the
  task is sent; its context is what the task carries.
- A run is a CONSUMER span ``taskmanager run <task name>``, current while
  the method and its callbacks run (their own spans are its children); a
  failure is recorded on it as an exception event, with ERROR status.
- In-process, the submission's context is kept with the task and parents
  its runs on the worker thread. With a broker it crosses as the W3C
  ``traceparent`` and ``tracestate`` fields of the task's Redis entry
  (``src/PROTOCOL.md``); the worker extracts them and parents its run span
  on them.
- A recurring task's ticks are not children of the submission, which may
  be days old: each tick's run span starts a new trace. In-process it is
  linked to the submit span; a shared schedule (broker) is registered by
  every replica at start-up and kept in Redis past any of them, so its
  ticks carry no context and their spans have no link.

The spans follow the OpenTelemetry messaging conventions:
``messaging.system`` = ``taskmanager``, ``messaging.destination.name`` =
the module's name, ``messaging.operation.type`` (``send``, ``process``),
``messaging.message.id`` = the task's id (with a broker, its
:attr:`TaskHandle.task_id`; in-process, its :attr:`TaskHandle.id`).
"""

import os
from typing import Any, Callable, Dict, Optional, Tuple

_UNCHECKED = object()
# The OpenTelemetry API's parts this module uses, once checked: None if it
# is not importable.
_otel: Any = _UNCHECKED


class _Otel:
    """The OpenTelemetry API, imported once."""

    def __init__(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        from . import __version__

        # Modules, typed Any: stubtest takes a module-typed attribute for
        # a submodule of this class.
        self.context: Any = context
        self.trace: Any = trace
        self.tracer = trace.get_tracer("taskmanager", __version__)
        self.propagator = TraceContextTextMapPropagator()
        self.producer = trace.SpanKind.PRODUCER
        self.consumer = trace.SpanKind.CONSUMER
        self.Status = trace.Status
        self.StatusCode = trace.StatusCode
        self.Link = trace.Link
        self._no_sdk = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        # `get_tracer_provider()` reads os.environ at each call until one is
        # set (0.9 us): read the global it sets instead, when the API has it
        # and no provider is named by the environment (which that call
        # would load).
        self._global = hasattr(trace, "_TRACER_PROVIDER") and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ

    def recording(self) -> bool:
        """Whether a submission here has anything to do: a tracer provider
        is set up, or a valid span is current (a context to propagate
        without one). Without either, every span would be a no-op one: the
        submission skips them all."""
        trace = self.trace
        provider = trace._TRACER_PROVIDER if self._global else trace.get_tracer_provider()
        if provider is not None and not isinstance(provider, self._no_sdk):
            return True
        return bool(trace.get_current_span().get_span_context().is_valid)


def _load() -> Any:
    global _otel
    try:
        _otel = _Otel()
    except ImportError:
        _otel = None
    return _otel


def active() -> Any:
    """The OpenTelemetry API if it is importable and a submission has spans
    to record or a context to carry (``_Otel.recording``), else None (the
    import is checked once)."""
    otel = _otel
    if otel is _UNCHECKED:
        otel = _load()
    return otel if otel is not None and otel.recording() else None


def _attributes(module: str, operation: str) -> Dict[str, Any]:
    return {
        "messaging.system": "taskmanager",
        "messaging.destination.name": module,
        "messaging.operation.type": operation,
    }


def task_name(method: Callable[..., Any], name: Optional[str]) -> str:
    """The task's name, as the native half names it (``name=``, else the
    method's ``__qualname__``)."""
    if isinstance(name, str):
        return name
    for attribute in ("__qualname__", "__name__"):
        value = getattr(method, attribute, None)
        if isinstance(value, str):
            return value
    return type(method).__name__


class _Run:
    """A run's span, current on the worker thread until :meth:`end`."""

    __slots__ = ("_otel", "_span", "_token")

    def __init__(self, otel: Any, span: Any) -> None:
        self._otel = otel
        self._span = span
        self._token = otel.context.attach(otel.trace.set_span_in_context(span))

    def end(self, error: Optional[BaseException]) -> None:
        otel, span = self._otel, self._span
        try:
            if error is not None:
                span.record_exception(error)
                span.set_status(otel.Status(otel.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        finally:
            otel.context.detach(self._token)
            span.end()


class Submission:
    """One submission's span context, which the task carries: it parents
    each run's span (a recurring task's: links it), and crosses Redis as
    its W3C trace context (:meth:`carrier`)."""

    __slots__ = ("_otel", "_context", "_link", "name", "module", "task_id")

    def __init__(self, otel: Any, name: str, module: str, recurring: bool) -> None:
        self._otel = otel
        # The context with the submit span current: runs are its children.
        self._context = otel.context.get_current()
        span_context = otel.trace.get_current_span(self._context).get_span_context()
        self._link = otel.Link(span_context) if recurring and span_context.is_valid else None
        self.name = name
        self.module = module
        self.task_id: Optional[str] = None

    def carrier(self) -> Tuple[str, str]:
        """``(traceparent, tracestate)`` of the submission (W3C Trace
        Context; tracestate may be empty)."""
        carrier: Dict[str, str] = {}
        self._otel.propagator.inject(carrier, context=self._context)
        return carrier.get("traceparent", ""), carrier.get("tracestate", "")

    def begin(self) -> _Run:
        """Starts a run's span: the submit span's child, or, for a recurring
        task's tick, the root of a new trace linked to it."""
        otel = self._otel
        attributes = _attributes(self.module, "process")
        if self.task_id is not None:
            attributes["messaging.message.id"] = self.task_id
        if self._link is None:
            parent, links = self._context, None
        else:
            parent, links = otel.context.Context(), [self._link]
        span = otel.tracer.start_span(
            f"taskmanager run {self.name}", context=parent, kind=otel.consumer, attributes=attributes, links=links
        )
        return _Run(otel, span)


def submit(
    otel: Any,
    send: Callable[[Optional[Submission]], Any],
    method: Callable[..., Any],
    name: Optional[str],
    module: str,
    recurring: bool,
) -> Any:
    """Calls ``send(submission)`` (the native submission) within the submit
    span, and returns what it returns (the task's handle)."""
    task = task_name(method, name)
    attributes = _attributes(module, "send")
    with otel.tracer.start_as_current_span(
        f"taskmanager submit {task}", kind=otel.producer, attributes=attributes
    ) as span:
        # No valid span (no tracer provider set up): OpenTelemetry's no-op
        # spans all the way, so the task carries nothing and its runs
        # record nothing.
        submission = Submission(otel, task, module, recurring) if span.get_span_context().is_valid else None
        handle = send(submission)
        if submission is None:
            return handle
        task_id = getattr(handle, "task_id", None)
        if task_id is None:
            task_id = getattr(handle, "id", None)
        key = getattr(handle, "key", None)
        if task_id is not None:
            submission.task_id = str(task_id)
            span.set_attribute("messaging.message.id", str(task_id))
        if isinstance(key, str):
            span.set_attribute("taskmanager.schedule", key)
        return handle


class _Remote:
    """A named task's run in a worker: its span's parent is the context
    its submitter sent (none: a new trace)."""

    __slots__ = ("_otel", "_parent", "_name", "_attributes")

    def __init__(self, otel: Any, parent: Any, name: str, attributes: Dict[str, Any]) -> None:
        self._otel = otel
        self._parent = parent
        self._name = name
        self._attributes = attributes

    def begin(self) -> _Run:
        otel = self._otel
        span = otel.tracer.start_span(
            self._name, context=self._parent, kind=otel.consumer, attributes=self._attributes
        )
        return _Run(otel, span)


def remote(
    module: str,
    name: str,
    task_id: str,
    tick: bool,
    traceparent: Optional[str],
    tracestate: Optional[str],
) -> Optional[_Remote]:
    """The recorder of a named task's run span in this worker (the native
    runner calls it for each), or None without OpenTelemetry."""
    otel = _otel if _otel is not _UNCHECKED else _load()
    if otel is None or not (traceparent or otel.recording()):
        return None
    if traceparent:
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        parent = otel.propagator.extract(carrier, context=otel.context.Context())
    else:
        parent = otel.context.Context()
    attributes = _attributes(module, "process")
    attributes["messaging.message.id"] = task_id
    if tick:
        attributes["taskmanager.recurring"] = True
    return _Remote(otel, parent, f"taskmanager run {name}", attributes)
