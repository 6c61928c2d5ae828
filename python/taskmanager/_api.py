"""The spec's API: ``TaskManager`` and ``Module``, with the argument checks
that stay in Python (constructors, flags, the dict form)."""

from __future__ import annotations

import datetime
import logging
import os
import weakref
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    SupportsFloat,
    SupportsIndex,
    Tuple,
    TypeVar,
    Union,
)

from . import _lifetime, _logging, _names, _tracing, _worker
from ._handle import TaskHandle
from ._dashboard import Dashboard
from ._metrics import MetricsServer
from ._taskmanager import ManagerCore, ModuleCore, Retry, SharedSchedule
from ._types import (
    _EVENTS,
    _TRACE,
    ClaimedTask,
    ClusterStats,
    DeadLetter,
    Event,
    ShutdownTimedOut,
    Stats,
    TaskInfo,
    _event_forwarder,
    _task_info,
)

F = TypeVar("F", bound=Callable[..., Any])
Callback = Callable[[Any], Any]
Callbacks = Union[None, Callback, Sequence[Callback]]

# Worker threads start on demand, so a large cap costs nothing; this bound
# only keeps the number within what the core's counters hold.
_MAX_WORKERS = 2**31 - 1


# ---------------------------------------------------------------------------
# Argument checks: each error names the argument and what was expected. The
# checks of each submission's arguments run in the native half, where they
# are cheap; these are for constructors and flags.


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _check_bool(value: object, name: str, default: Optional[bool] = None) -> bool:
    """A bool; None means ``default`` where there is one."""
    if value is None and default is not None:
        return default
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_type_name(value)}")
    return value


def _check_max_workers(max_workers: object, default: Optional[int] = None, name: str = "max_workers") -> int:
    if max_workers is None and default is not None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"{name} must be an int >= 1, got {_type_name(max_workers)}")
    if max_workers < 1:
        raise ValueError(f"{name} must be >= 1, got {max_workers}")
    if max_workers > _MAX_WORKERS:
        raise ValueError(f"{name} must be at most {_MAX_WORKERS}, got {max_workers}")
    return max_workers


def _check_timeout(timeout: object, name: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds (or None), got {_type_name(timeout)}")
    if not timeout >= 0 or timeout == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {timeout!r}")
    return float(timeout)

def _check_wait(wait: object, name: str) -> float:
    if isinstance(wait, bool) or not isinstance(wait, (int, float)):
        raise TypeError(f"{name} must be a number of seconds > 0 (or None), got {_type_name(wait)}")
    # Up to ~500 years: what the core's durations hold, with room.
    if not 0 < wait <= 1.6e10:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {wait!r}")
    return float(wait)


_ADD_KEYS = frozenset(
    {"method", "args", "kwargs", "callback", "name", "retry", "result_ttl", "ignore_result", "time_limit"}
)
_CALENDAR_KEYS = ("cron", "tz", "dst_gap", "dst_fold", "at", "misfire", "max_catch_up", "grace", "jitter")
_SCHEDULE_KEYS = _ADD_KEYS | {"delay", "reoccurring", "run_now", "recurring"} | set(_CALENDAR_KEYS)


def _all_str(items: object) -> bool:
    """Whether ``items`` is an iterable of str."""
    try:
        return all(isinstance(item, str) for item in items)  # type: ignore[attr-defined]
    except TypeError:
        return False


def _key_name(key: object) -> str:
    """An unknown key as an error names it: its str, quoted; a key that
    cannot be printed by its type, so the error is still a ValueError."""
    try:
        return repr(str(key))
    except Exception:
        return f"<unprintable {_type_name(key)} key>"


def _check_listen(port: object, host: object, token: object) -> None:
    """The address and token of a server this package starts."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise TypeError(f"host must be a non-empty str, got {host!r}")
    if token is not None and (not isinstance(token, str) or not token):
        raise TypeError("token must be a non-empty str (or None)")


def _check_task_dict(task: object, allowed: FrozenSet[str], call: str) -> Mapping[str, Any]:
    # A plain dict is the usual case: its check is a set difference (the
    # abc check and the sorting are for the rest, and for the error).
    if type(task) is not dict and not isinstance(task, Mapping):
        raise TypeError(f"{call}() takes a dict of the task's keys, got {_type_name(task)}")
    if type(task) is dict and task.keys() <= allowed:
        unknown = []
    else:
        unknown = sorted(_key_name(k) for k in task if k not in allowed)
    if unknown:
        raise ValueError(f"{call}() got unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if "method" not in task:
        raise ValueError(f"{call}() task is missing the required key 'method'")
    return task


class Module:
    """A group of tasks that never runs more than ``max_workers`` of them at
    once: the spec's ``Module(task_manager=..., max_workers=...)``.

    Subclass it as the spec does (``super().__init__(**kwargs)``) and submit
    the subclass's methods as tasks and callbacks. Each module has its own
    worker threads, so a busy module never delays another.

    With ``max_queued=N`` the module's queue is bounded: once N tasks wait,
    ``add_task`` (and a zero-delay or ``run_now`` submission) raises
    :class:`QueueFull` instead of letting the queue grow. Scheduled tasks
    that come due and recurring runs are never refused (they were accepted
    when scheduled), so the queue may briefly hold more than N.

    With a broker, ``global_max_workers=N`` caps how many of the module's
    tasks run at once across every process (each process should give the
    same N); ``max_workers`` stays this process's own cap.

    ``retry`` (an int, the number of retries, or a :class:`Retry`) is the
    default of the module's one-shot tasks: a task that raises runs again
    after a backoff, as ``add_task(..., retry=...)`` says. ``time_limit``
    (seconds) is the default limit of each of its tasks' runs (none
    unless set).
    """

    def __init__(
        self,
        task_manager: Optional["TaskManager"] = None,
        max_workers: Optional[int] = None,
        max_queued: Optional[int] = None,
        global_max_workers: Optional[int] = None,
        retry: Union[None, int, Retry] = None,
        time_limit: Optional[float] = None,
    ) -> None:
        if task_manager is None:
            raise TypeError("Module() needs task_manager=, the TaskManager that runs its tasks")
        if not isinstance(task_manager, TaskManager):
            raise TypeError(f"task_manager must be a TaskManager, got {_type_name(task_manager)}")
        self.task_manager = task_manager
        self.max_workers = _check_max_workers(max_workers, default=task_manager.max_workers)
        self.max_queued = None if max_queued is None else _check_max_workers(max_queued, name="max_queued")
        if global_max_workers is not None:
            global_max_workers = _check_max_workers(global_max_workers, name="global_max_workers")
            if task_manager._broker is None:
                raise ValueError("global_max_workers needs a TaskManager with broker=")
        self.global_max_workers = global_max_workers
        broker = task_manager._broker is not None
        # With a broker the name identifies the code (see _names); the
        # native half refuses a second module of one name.
        self._tm_name = _names.module_name(type(self)) if broker else type(self).__name__
        self._tm_core = ModuleCore(
            task_manager._core, self.max_workers, self.max_queued, self._tm_name, global_max_workers, retry, time_limit
        )
        task_manager._modules.append(weakref.ref(self))
        if broker:
            task_manager._by_class[type(self)] = self
            for name, method in _names.registrations(self).items():
                self._tm_core.register(name, method)

    def add_task(
        self,
        method: Callable[..., Any],
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
        *,
        name: Optional[str] = None,
        retry: Union[None, int, Retry] = None,
        result_ttl: Optional[float] = None,
        ignore_result: bool = False,
        time_limit: Optional[float] = None,
    ) -> TaskHandle:
        """Runs ``method(*args, **kwargs)`` as soon as a worker is free; each
        callback then receives its return value. ``name`` names the task in
        reports (default: the method's ``__qualname__``).

        ``retry`` runs the task again when it raises: an int is that many
        retries with the default backoff, a :class:`Retry` says how many,
        how long to wait (doubling, capped, with jitter) and for which
        exception classes (``on=``). The handle settles after the last
        attempt; between attempts it is pending again (and may be
        cancelled), and the task waits in the timer, holding no worker.
        Callbacks run after the successful attempt only. Default: the
        module's ``retry``, else none.

        With a broker, the result is kept in Redis ``result_ttl`` seconds
        (default: the workers' ``broker_result_ttl``, 10 min; at least 60 s)
        for :meth:`TaskManager.result` by :attr:`~TaskHandle.task_id` from
        any process; ``ignore_result=True`` keeps it only 60 s (for the
        submitter's own handle). In-process, results live in their handles
        and these two change nothing.

        ``time_limit`` (seconds; default: the module's, else none) bounds
        the method's run: past it, :class:`TimeLimitExceeded` is raised in
        the task's thread at its next Python instruction (catch it to clean
        up; the run fails with it), an ``async def`` method's coroutine is
        cancelled, and code that does not return to Python (a blocking C
        call) is given up a second later: its handle fails at once, its
        worker's place goes to a new thread, and what it returns later is
        dropped (``stats().abandoned``). The same in a broker's worker.

        ``method`` (and each callback) may be an ``async def`` function: the
        coroutine it returns is run to completion on the worker, on an
        asyncio event loop the worker thread keeps for its tasks, and its
        value is the task's result. Pass the function, not a coroutine
        object (``add_task(f)``, not ``add_task(f())``): that is a
        TypeError.

        With a broker (``TaskManager(broker=...)``), the task goes through
        Redis to whichever process claims it: ``method`` and callbacks must
        have names every process finds (see ``taskmanager._broker``), and
        arguments and the result must be JSON; otherwise TypeError.

        With OpenTelemetry installed, the submission and each run are spans
        of the caller's trace (see README, "Tracing")."""
        core = self._tm_core
        otel = _tracing.active()
        if otel is None:
            return core.add_task(method, args, kwargs, callback, name, retry, result_ttl, ignore_result, time_limit)
        return _tracing.submit(  # type: ignore[no-any-return]
            otel,
            lambda trace: core.add_task(
                method, args, kwargs, callback, name, retry, result_ttl, ignore_result, time_limit, trace
            ),
            method,
            name,
            self._tm_name,
            False,
        )

    def schedule_task(
        self,
        method: Callable[..., Any],
        delay: Union[None, SupportsFloat, SupportsIndex] = None,
        args: Optional[Sequence[Any]] = None,
        kwargs: Optional[Mapping[str, Any]] = None,
        callback: Callbacks = None,
        reoccurring: Optional[bool] = None,
        run_now: Optional[bool] = None,
        *,
        recurring: Optional[bool] = None,
        name: Optional[str] = None,
        retry: Union[None, int, Retry] = None,
        result_ttl: Optional[float] = None,
        ignore_result: bool = False,
        time_limit: Optional[float] = None,
        cron: Optional[str] = None,
        tz: Union[None, str, datetime.tzinfo] = None,
        dst_gap: Optional[str] = None,
        dst_fold: Optional[str] = None,
        at: Optional[datetime.datetime] = None,
        misfire: Optional[str] = None,
        max_catch_up: Optional[int] = None,
        grace: Optional[float] = None,
        jitter: Optional[float] = None,
    ) -> TaskHandle:
        """Runs ``method`` ``delay`` seconds from now; with ``reoccurring``,
        every ``delay`` seconds (fixed rate: runs never overlap, missed ticks
        are skipped, never bursted); with ``run_now``, also at once.

        Instead of ``delay``, ``cron="0 9 * * MON-FRI"`` runs it at a cron
        expression's times (five fields, or six with seconds first; names,
        ranges, steps, lists, ``L``/``W``/``#``, ``@daily`` and the other
        macros), on the wall clock, in the IANA zone ``tz`` (a name or a
        ``zoneinfo.ZoneInfo``; UTC by default, never the machine's). A time
        the clocks skip at a DST change runs at the first instant after the
        gap (``dst_gap="shift"``, the default) or not at all (``"skip"``);
        one they repeat runs once, at the first pass (``dst_fold="first"``,
        the default), the second (``"second"``) or both (``"both"``).
        ``at=datetime(...)`` runs it once at that time; it must be
        timezone-aware. Calendar times follow the wall clock: a changed
        system time or a suspend and resume moves them (noticed within a
        second).

        A recurring task's ticks that could not run on time (the process
        slept, the module was busy, a run overran) follow ``misfire``:
        ``"skip"`` (an interval's default; with no ``grace``, the latest
        missed tick still runs), ``"coalesce"`` (a cron task's default: one
        late run for them all) or ``"catch_up"`` (each runs, one after
        another, up to ``max_catch_up``, default 10). A tick more than
        ``grace`` seconds late is skipped with ``"skip"`` and
        ``"catch_up"``. ``jitter`` delays each run by a random time up to
        that many seconds. Skipped and coalesced ticks are counted
        (:attr:`RecurringHandle.skipped_ticks`, ``coalesced_ticks``) and
        told as events.

        ``delay`` is a real number of seconds (int, float, ``Decimal``,
        ``Fraction``, numpy scalars; not bool): from 0 for a one-shot task,
        at least 0.001 (1 ms) for a reoccurring one. ``recurring`` is an
        alias of ``reoccurring``; given both, they must agree (None, the
        default, means not given). A one-shot task with ``run_now=True``
        runs once, now (the spec's "only execute once"). Returns a
        :class:`RecurringHandle` for recurring tasks.

        ``retry``, ``result_ttl`` and ``ignore_result`` are as for
        :meth:`add_task`, for one-shot tasks only (ValueError with
        ``reoccurring``: a reoccurring task's next run is its retry);
        ``time_limit`` as for :meth:`add_task`, for each run.

        ``method`` and callbacks may be ``async def`` functions, as in
        :meth:`add_task`; each run of a recurring one runs its coroutine.

        With a broker, a delayed task waits in Redis; a reoccurring one is
        kept in Redis under its name and fires once per tick across every
        process (registering it again, from any process, keeps the first
        schedule), and the call returns a :class:`SharedSchedule`.

        With OpenTelemetry installed, the submission and each run are spans
        (a recurring task's runs each start a new trace: see README,
        "Tracing").
        """
        fields = (
            method,
            delay,
            args,
            kwargs,
            callback,
            reoccurring,
            run_now,
            recurring,
            name,
            retry,
            result_ttl,
            ignore_result,
            time_limit,
            cron,
            tz,
            dst_gap,
            dst_fold,
            at,
            misfire,
            max_catch_up,
            grace,
            jitter,
        )
        core = self._tm_core
        otel = _tracing.active()
        if otel is None:
            return core.schedule_task(*fields)
        recurs = bool(reoccurring or recurring or cron is not None)
        return _tracing.submit(  # type: ignore[no-any-return]
            otel, lambda trace: core.schedule_task(*fields, trace), method, name, self._tm_name, recurs
        )

    def stats(self) -> Stats:
        """This module's :class:`Stats`."""
        return Stats(*self._tm_core.stats())

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<{type(self).__name__} max_workers={self.max_workers} workers={s.workers} "
            f"running={s.running} queued={s.queued} timers={s.pending_timers} "
            f"completed={s.completed} failed={s.failed} cancelled={s.cancelled}>"
        )


class TaskManager:
    """Queues tasks and runs them when due: the spec's ``TaskManager``.

    ``start_thread()`` starts running in the background. Tasks given to the
    manager itself run on its default module (``max_workers`` wide; by
    default ``min(32, CPUs + 4)``, as ThreadPoolExecutor, counting the CPUs
    this process may use; the core's rule, the same in Rust).

    A started manager keeps the interpreter alive while it has work (like a
    non-daemon thread) until :meth:`shutdown`; Ctrl-C then stops it, and the
    process ends with SIGINT's status. ``start_thread(daemon=True)`` opts
    out: at exit, its queued tasks are cancelled and its running ones get
    ``taskmanager._lifetime.EXIT_TIMEOUT`` (1 s) before they are abandoned.
    After ``os.fork()``, a manager started in the parent refuses work in the
    child (``RuntimeError``); create one in the child.

    With ``broker="redis://host:6379/0"``, tasks cross processes through
    Redis (see the README, "More than one process"): every process that
    starts the manager also runs tasks, unless ``submit_only=True`` (a web
    process beside ``python -m taskmanager worker module:manager``).
    ``broker_prefix`` (default ``"taskmanager"``) lets several apps share
    one Redis; ``broker_lease`` (30 s) is how long a dead worker's task
    waits before another takes it over; ``broker_timeout`` (5 s) bounds
    every call to Redis; ``broker_result_ttl`` (10 min) is how long a result
    is kept in Redis, for its submitter and for :meth:`result` by id; ``broker_max_deliveries`` (3) is how
    many times a task may be delivered to workers that each die running it
    before it is moved to the dead-letter set (:meth:`dead_letters`);
    ``broker_unrunnable_after`` (3600 s) is how long a task whose name no
    live worker can run waits (counted while some worker is alive) before
    it is moved there, far longer than a restart or a rolling deploy.

    The URL carries AUTH and TLS:
    ``redis://:password@host:6379/0`` (``requirepass``),
    ``redis://user:password@host:6379/0`` (an ACL user; percent-encode
    reserved characters), ``rediss://...`` for TLS, which trusts the
    system's root certificates, or only the CA certificate(s) in the PEM file
    ``broker_ca_file`` (for a Redis whose certificate a private CA signed;
    an unreadable file or one without a certificate raises ``ValueError``).
    A refused password or certificate makes each submission raise
    ``ConnectionError``, saying which.
    """

    def __init__(
        self,
        max_workers: Optional[int] = None,
        listener: Optional[Callable[[Event], Any]] = None,
        *,
        broker: Optional[str] = None,
        broker_prefix: Optional[str] = None,
        broker_lease: Optional[float] = None,
        broker_timeout: Optional[float] = None,
        broker_ca_file: Union[str, "os.PathLike[str]", None] = None,
        submit_only: bool = False,
        broker_result_ttl: Optional[float] = None,
        broker_max_deliveries: Optional[int] = None,
        broker_unrunnable_after: Optional[float] = None,
    ) -> None:
        for value, what in ((broker, "broker"), (broker_prefix, "broker_prefix")):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{what} must be a str (or None), got {_type_name(value)}")
        if broker_ca_file is not None and not isinstance(broker_ca_file, (str, os.PathLike)):
            raise TypeError(f"broker_ca_file must be a path (str or os.PathLike), got {_type_name(broker_ca_file)}")
        ca_file = None if broker_ca_file is None else os.fspath(broker_ca_file)
        if not isinstance(ca_file, (str, type(None))):
            raise TypeError(f"broker_ca_file must be a str path, got {_type_name(ca_file)}")
        broker_options = (
            broker_prefix,
            broker_lease,
            broker_timeout,
            ca_file,
            broker_result_ttl,
            broker_max_deliveries,
            broker_unrunnable_after,
        )
        if broker is None and broker_options != (None,) * 7:
            raise ValueError(
                "broker_prefix, broker_lease, broker_timeout, broker_ca_file, broker_result_ttl, "
                "broker_max_deliveries and broker_unrunnable_after need broker="
            )
        if broker_max_deliveries is not None:
            broker_max_deliveries = _check_max_workers(broker_max_deliveries, name="broker_max_deliveries")
        unrunnable_after = (
            None if broker_unrunnable_after is None else _check_wait(broker_unrunnable_after, "broker_unrunnable_after")
        )
        result_ttl = None if broker_result_ttl is None else _check_timeout(broker_result_ttl, "broker_result_ttl")
        submit_only = _check_bool(submit_only, "submit_only")
        if submit_only and broker is None:
            raise ValueError("submit_only=True needs broker=")
        lease = None if broker_lease is None else _check_timeout(broker_lease, "broker_lease")
        timeout = None if broker_timeout is None else _check_timeout(broker_timeout, "broker_timeout")
        given = None if max_workers is None else _check_max_workers(max_workers)
        if listener is not None and not callable(listener):
            raise TypeError(f"listener must be callable (or None), got {_type_name(listener)}")
        # Events go to the listener, and to the taskmanager.events logger at
        # the level it has now (read once: configure logging first). By
        # default (WARNING) none are forwarded: failures are logged, with
        # their traceback, on the taskmanager logger already.
        # The core's other records reach the taskmanager loggers by the same
        # rule (see _logging.py).
        _logging.sync_level()
        level = _TRACE if listener is not None else _EVENTS.getEffectiveLevel()
        forward = _event_forwarder(listener) if listener is not None or level <= logging.INFO else None
        self._broker = broker
        # Functions registered with @task, by name, for the broker.
        self._functions: Dict[str, Callable[..., Any]] = {}
        # With a broker, its module of each Module subclass (one each).
        self._by_class: Dict[type, "Module"] = {}
        namer = None if broker is None else _names.Namer(self)
        self._core = ManagerCore(
            given,
            forward,
            level,
            broker,
            broker_prefix,
            lease,
            timeout,
            ca_file,
            submit_only,
            result_ttl,
            namer,
            broker_max_deliveries,
            unrunnable_after,
        )
        # The core's default when not given: min(32, CPUs + 4).
        self.max_workers: int = self._core.max_workers
        # Its modules (for the worker command's --concurrency).
        self._modules: List["weakref.ReferenceType[Module]"] = []
        self._default = self._core.default_module()
        self._started = False
        self._daemon = False
        self._pid: Optional[int] = None  # the process that started it
        _lifetime.register(self)

    def task(self, function: F) -> F:
        """Registers a module-level function for the broker, by its
        ``module:qualname``: decorate it where every process imports it, and
        any process can submit it and any worker run it. Returns it unchanged.
        (Without a broker it only records the function.)"""
        name = _names.function_name(function, "task")
        if self._broker is not None:
            # Refuses a name registered already, with a ValueError.
            self._default.register(name, function)
        self._functions[name] = function
        return function

    def start_thread(self, daemon: bool = False) -> None:
        """Starts running tasks in the background. Tasks added before wait
        until now. Calling it again is harmless."""
        daemon = _check_bool(daemon, "daemon")
        if self._started:
            if _lifetime.inherited(self):
                raise RuntimeError(
                    f"this TaskManager was started in process {self._pid}, the parent of this forked "
                    "process, and its threads do not exist here; create a new TaskManager in the child"
                )
            return
        self._core.start()
        self._daemon = daemon
        self._started = True
        self._pid = os.getpid()

    def add_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Queues a task given as a dict with the spec's keys: ``method``
        (required), ``args``, ``kwargs``, ``callback``; as
        :meth:`Module.add_task` (``async def`` methods included)."""
        t = _check_task_dict(task, _ADD_KEYS, "add_task")
        return self._default.add_task(
            t["method"],
            t.get("args"),
            t.get("kwargs"),
            t.get("callback"),
            name=t.get("name"),
            retry=t.get("retry"),
            result_ttl=t.get("result_ttl"),
            ignore_result=t.get("ignore_result"),
            time_limit=t.get("time_limit"),
        )

    def schedule_task(self, task: Mapping[str, Any]) -> TaskHandle:
        """Schedules a task given as a dict with the spec's keys: ``method``
        and ``delay`` (required), ``args``, ``kwargs``, ``callback``,
        ``reoccurring``, ``run_now``; as :meth:`Module.schedule_task`."""
        t = _check_task_dict(task, _SCHEDULE_KEYS, "schedule_task")
        if not {"delay", "cron", "at"} & t.keys():
            raise ValueError("schedule_task() task needs the key 'delay' (or 'cron', or 'at')")
        fields = (
            t["method"],
            t.get("delay"),
            t.get("args"),
            t.get("kwargs"),
            t.get("callback"),
            t.get("reoccurring"),
            t.get("run_now"),
            t.get("recurring"),
        )
        return self._default.schedule_task(
            *fields,
            name=t.get("name"),
            retry=t.get("retry"),
            result_ttl=t.get("result_ttl"),
            ignore_result=t.get("ignore_result"),
            time_limit=t.get("time_limit"),
            **{key: t[key] for key in _CALENDAR_KEYS if key in t},
        )

    def shutdown(self, wait: bool = True, cancel_pending: bool = False, timeout: Optional[float] = None) -> None:
        """Stops accepting tasks (later ones raise RuntimeError), runs every
        task already due, cancels scheduled and recurring tasks not yet due.

        With ``cancel_pending=True``, tasks queued but not started are
        cancelled too. With ``wait=True``, returns once every running task
        has finished (Ctrl-C interrupts the wait); inside a task it cannot
        wait for itself and returns at once.

        With ``timeout`` (seconds), waits at most that long: if tasks are
        still running then, the queued ones are cancelled and
        :class:`ShutdownTimedOut` is raised, naming the running ones (which
        finish in the background and report through their handles).
        """
        wait = _check_bool(wait, "wait")
        cancel_pending = _check_bool(cancel_pending, "cancel_pending")
        limit = None if timeout is None else _check_timeout(timeout)
        self._core.begin_shutdown(cancel_pending)
        if not wait or self._core.is_manager_thread():
            return
        # The core's one drain loop: at the deadline it cancels what is
        # queued and, with a broker, hands back what this process claimed.
        self._core.drain(limit, ShutdownTimedOut)

    def run_worker(self, drain_timeout: float = 30.0, concurrency: Optional[int] = None) -> int:
        """Runs this process as a worker until SIGTERM or SIGINT (Ctrl-C);
        call it from the main thread, as ``python -m taskmanager worker``
        does. Starts the manager (with ``concurrency``, every module's
        ``max_workers`` is set to it first). The first signal drains: nothing
        more is claimed or started, and running tasks get ``drain_timeout``
        seconds to finish (with a broker their leases are kept alive, so no
        other process re-runs them); then what is unfinished is handed back
        to the cluster. A second signal hands it back at once. Returns the
        exit status: 0 drained, 1 the drain timed out, 130 a second signal;
        after 1 or 130, end the process (``os._exit``): handed-back tasks
        may still be running here."""
        drain_timeout = _check_timeout(drain_timeout, "drain_timeout")
        if concurrency is not None:
            concurrency = _check_max_workers(concurrency, name="concurrency")
        return _worker.run_worker(self, drain_timeout, concurrency)

    def _runs(self) -> List[str]:
        """What this process runs by name, a module each: ``name [task,
        ...]``; the default module runs the ``@manager.task`` functions."""
        runs = [f"default [{', '.join(sorted(self._functions))}]"] if self._functions else []
        for module in self._live_modules():
            names = _names.runnable_names(type(module))
            if names:
                runs.append(f"{module._tm_name} [{', '.join(names)}]")
        return runs

    def _module_of(self, cls: type) -> Optional["Module"]:
        """With a broker: this manager's module of the Module subclass ``cls``."""
        return self._by_class.get(cls)

    def _live_modules(self) -> List["Module"]:
        modules = [ref() for ref in self._modules]
        return [m for m in modules if m is not None]

    def stats(self) -> Stats:
        """The :class:`Stats` of all this manager's modules, summed (its
        default module included). With a broker, ``cluster`` also holds the
        whole cluster's :class:`ClusterStats`, read from Redis
        (``ConnectionError`` if it cannot be read within
        ``broker_timeout``)."""
        local = self._core.stats()
        if self._broker is None:
            return Stats(*local)
        return Stats(*local, cluster=self.cluster_stats())

    def enable_metrics(self) -> None:
        """Turns on this manager's Prometheus metrics (off until then: a
        task costs nothing more): counters of runs started, succeeded,
        failed, retried, cancelled and dead-lettered, histograms of run
        duration, queue wait and schedule lateness, by ``module`` and
        ``task`` name, and gauges of each module's queued and running
        tasks, workers and timers (README, "Metrics"). One registry per
        process. :meth:`metrics_text` and :meth:`serve_metrics` turn them
        on too."""
        self._core.enable_metrics()

    def metrics_text(self) -> str:
        """The process's metrics in Prometheus's text format (turned on
        first if they were not), this manager's gauges read now. With a
        broker, also the whole cluster's gauges from Redis
        (``taskmanager_cluster_*``; ``taskmanager_cluster_readable`` is 0
        if Redis could not be read, logged)."""
        return self._core.metrics_text()

    def serve_metrics(self, port: int = 0, host: str = "127.0.0.1", *, token: Optional[str] = None) -> MetricsServer:
        """Serves :meth:`metrics_text` at ``http://host:port/metrics`` from
        a daemon thread, for Prometheus to scrape; returns the
        :class:`MetricsServer` (its ``port``, ``url``, ``close()``).
        ``port=0`` picks a free port. Loopback by default: give ``host``
        (``"0.0.0.0"``) to be scraped from elsewhere, and ``token`` to
        require ``Authorization: Bearer <token>``."""
        _check_listen(port, host, token)
        self.enable_metrics()
        return MetricsServer(self, host, port, token)

    def serve_dashboard(self, port: int = 0, host: str = "127.0.0.1", *, token: Optional[str] = None) -> Dashboard:
        """Serves the live dashboard (as ``python -m taskmanager dashboard``)
        of this manager from a daemon thread: with a broker, the whole
        cluster's; without, this process's modules and tasks. Returns the
        :class:`Dashboard` (its ``url``, ``close()``). Loopback by default;
        another ``host`` needs a ``token`` (``ValueError`` without one),
        then asked of every API call (open the page at ``url#token=...``)."""
        _check_listen(port, host, token)
        return Dashboard(self, host, port, token)

    def cluster_stats(self) -> ClusterStats:
        """With a broker: the whole cluster sharing its Redis and key prefix,
        read from Redis: each module's queued and running tasks, delayed
        tasks, shared schedules, every worker process seen (alive or dead, what it
        holds, what was taken over from it), how the tasks of each name
        ended (:class:`TaskOutcomes`: totals and rates per minute) and the
        dead-letter count. Raises
        ``RuntimeError`` without a broker, ``ConnectionError`` if Redis
        cannot be read within ``broker_timeout``."""
        if self._broker is None:
            raise RuntimeError("cluster_stats() needs a TaskManager with broker=")
        return ClusterStats._from_core(self._core.cluster_stats())

    def dead_letters(self, limit: int = 100) -> List[DeadLetter]:
        """With a broker: the dead-letter set, newest first (at most
        ``limit``): tasks that could not be read, poison tasks whose
        workers died running them ``broker_max_deliveries`` times, tasks
        whose retries were used up (``Retry(dead_letter=True)``), and tasks
        of a name no live worker could run for ``broker_unrunnable_after``
        (requeue them once a worker has the name). It keeps
        at most 10,000 tasks, each at most 7 days. Raises ``RuntimeError``
        without a broker, ``ConnectionError`` if Redis cannot be read."""
        limit = _check_max_workers(limit, name="limit")
        return [DeadLetter(*fields) for fields in self._broker_core("dead_letters").dead_letters(limit)]

    def requeue_dead_letters(self, ids: Optional[Sequence[str]] = None, *, all: bool = False) -> int:
        """With a broker: puts the dead-lettered tasks ``ids`` (or, with
        ``all=True``, every one) back in their queues as they were first
        sent; returns how many were in the set."""
        core = self._broker_core("requeue_dead_letters")
        if _check_bool(all, "all"):
            if ids is not None:
                raise ValueError("give ids or all=True, not both")
            ids = [letter[0] for letter in core.dead_letters(10_000)]
        elif ids is None or isinstance(ids, str) or not _all_str(ids):
            raise TypeError("ids must be a list of dead-letter ids (str), or give all=True")
        return core.requeue_dead_letters(list(ids))

    def purge_dead_letters(self) -> int:
        """With a broker: empties the dead-letter set; returns how many
        tasks it held."""
        return self._broker_core("purge_dead_letters").purge_dead_letters()

    def result(self, task_id: str, timeout: Optional[float] = None) -> Any:
        """With a broker: the result of the task ``task_id`` (a handle's
        :attr:`~TaskHandle.task_id`, from any process), waiting up to
        ``timeout`` seconds (None: as long as it takes); raises its
        exception as its handle would (``RemoteError``, ``DeadLettered``),
        or ``TimeoutError`` if none came (not finished, no such task, or its
        result expired: results are kept ``broker_result_ttl``, 1 h by
        default, or the task's ``result_ttl``)."""
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a str, got {_type_name(task_id)}")
        limit = None if timeout is None else _check_timeout(timeout)
        return self._broker_core("result").result(task_id, limit)

    def task_state(self, task_id: str) -> str:
        """With a broker: what Redis says of the task ``task_id``:
        ``"finished"``, ``"failed"``, ``"dead"`` (dead-lettered),
        ``"delayed"`` (scheduled, or waiting to retry) or ``"unknown"``
        (queued or running, which Redis does not index by task id; or its
        result expired; or no such task)."""
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a str, got {_type_name(task_id)}")
        return self._broker_core("task_state").task_state(task_id)

    def claimed_tasks(self, limit: int = 100) -> List[ClaimedTask]:
        """With a broker: the tasks workers hold, cluster-wide (claimed and
        not yet acknowledged: running, or about to), longest held first, at
        most ``limit``. One Redis script call per task stream: an
        operator's question, not one to ask per task."""
        limit = _check_max_workers(limit, name="limit")
        return [ClaimedTask(*t) for t in self._broker_core("claimed_tasks").claimed_tasks(limit)]

    def attempts(self, task_id: str) -> Optional[Tuple[int, Optional[int]]]:
        """With a broker: how many times the task ``task_id`` ran, as
        ``(attempt, deliveries)``: the attempt that ran last (1: the first
        run; each retry adds one; for a task waiting to retry, the attempt
        it waits to run) and how many times that attempt was delivered to a
        worker (more than 1: taken over from workers that died running it;
        None where not recorded). Read from its stored result, its retry
        waiting, or its dead letter; None if Redis holds none of them
        (queued, running, its result expired, or no such task)."""
        if not isinstance(task_id, str):
            raise TypeError(f"task_id must be a str, got {_type_name(task_id)}")
        return self._broker_core("attempts").attempts(task_id)

    def shared_schedule(self, key: str) -> SharedSchedule:
        """With a broker: the :class:`SharedSchedule` of ``key`` (as
        ``cluster_stats().schedules`` lists them), to pause, resume or
        cancel it from any process, also one no program registers any more.
        Each of its calls asks Redis whether it exists."""
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, got {_type_name(key)}")
        return self._broker_core("shared_schedule").shared_schedule(key)

    def _broker_core(self, call: str) -> ManagerCore:
        if self._broker is None:
            raise RuntimeError(f"{call}() needs a TaskManager with broker=")
        return self._core

    def get_tasks(self) -> List[TaskInfo]:
        """The scheduled one-shot tasks not yet due and every recurring task
        that has not ended, soonest first, as :class:`TaskInfo`. With a
        broker, the delayed one-shot tasks this manager sent are listed
        while they wait in Redis (due by Redis's clock), and the shared
        recurring schedules in Redis too (id 0, named by their key;
        ``runs`` counts ticks cluster-wide)."""
        tasks = [_task_info(t) for t in self._core.tasks()]
        if self._broker is None:
            return tasks
        for s in self.cluster_stats().schedules:
            state = "paused" if s.paused else "running" if s.running else "scheduled"
            # A calendar schedule has no interval: its next run is next_due.
            interval = None if s.cron is not None else s.interval
            tasks.append(
                TaskInfo(0, s.key, s.module, state, s.next_due, interval, s.ticks, s.failures, s.next_run, s.cron, s.zone)
            )
        tasks.sort(key=lambda t: float("inf") if t.next_due is None else t.next_due)
        return tasks

    def __enter__(self) -> "TaskManager":
        self.start_thread()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        state = "shut down" if self._core.is_shut_down() else "running" if self._started else "not started"
        s = Stats(*self._core.stats())  # local: a repr never calls Redis
        return (
            f"<TaskManager {state} max_workers={self.max_workers} outstanding={self._core.outstanding()} "
            f"running={s.running} queued={s.queued} timers={s.pending_timers} completed={s.completed} "
            f"failed={s.failed}>"
        )

