"""taskmanager against its Python peers: throughput, timer lateness, scheduling cost, drift.

Install and run (from the repository root)::

    pip install . -r benches/requirements.txt
    python benches/peers.py            # full run, 5 repetitions (a few minutes)
    python benches/peers.py --quick    # 3 repetitions, smaller throughput run (< 2 min)
    python benches/peers.py --json results.json

Every number is the median of the repetitions made in this one run. The
systems of a scenario are interleaved per repetition (rep 1: every system,
rep 2: every system, ...) so machine noise hits them alike. All timing uses
``time.perf_counter()``. A peer that fails prints an error row; the others
go on, and every manager, scheduler and pool is shut down.

Scenarios (``scenario`` / ``system`` / ``metric`` names as in the JSON):

``py-throughput``  (metric ``tasks_per_s``, higher is better)
    200,000 no-op Python tasks (50,000 with --quick) submitted one by one to
    a 2-worker pool, timed from the first submission until every handle is
    done (``concurrent.futures.wait`` on all of them). Systems:
    ``taskmanager`` (``Module(max_workers=2).add_task``; also
    ``taskmanager-metrics``, the same with ``enable_metrics()``) and
    ``ThreadPoolExecutor`` (``max_workers=2``, ``submit``).

``py-lateness``  (metrics ``p50_us``, ``p99_us``, lower is better; ``tasks_run``)
    2,000 one-shot tasks with delays uniform in 1..200 ms (the same seeded
    delays for every system), submitted back to back. Each task records
    ``perf_counter()`` as it starts; lateness = start - (submission time +
    delay), submission time being ``perf_counter()`` just before the submit
    call, so the cost of submitting the later tasks counts too. Systems:
    ``taskmanager`` (``Module.schedule_task``), ``sched`` (``sched.scheduler``
    on ``perf_counter``; all tasks are ``enter()``-ed and then ``run()`` is
    started in its own thread, since a sleeping ``sched`` does not notice
    tasks entered from another thread), ``threading.Timer`` (one Timer thread
    per task) and ``APScheduler`` (3.x ``BackgroundScheduler``, date trigger,
    ``run_date=datetime.now() + delay``, defaults except
    ``misfire_grace_time=3600`` so no job is dropped and a 20-thread
    executor). ``tasks_run`` is the fewest tasks a system ran in any
    repetition (it must be 2,000; a warning row says otherwise).

``py-schedule-cost``  (metric ``us_per_job``, lower is better)
    Wall time to schedule 10,000 one-shot tasks due in an hour on a running
    manager / scheduler, divided by 10,000. Systems: ``taskmanager``
    (``Module.schedule_task``) and ``APScheduler``
    (``BackgroundScheduler.add_job`` with a date trigger). Everything is
    cancelled afterwards.

``py-drift``  (metric ``drift_us``, lower is better)
    A recurring task every 10 ms, 100 runs. With t0 = ``perf_counter()`` at
    submission, run k is due at t0 + k x 10 ms on a fixed-rate schedule;
    drift = |start of run 100 - (t0 + 100 x 10 ms)|. Systems:
    ``taskmanager`` (``schedule_task(fn, 0.01, reoccurring=True)``),
    ``APScheduler`` (interval trigger, ``seconds=0.01``, ``max_instances=1``,
    ``coalesce=True``), ``sched`` (the usual self-rescheduling pattern: each
    run calls ``enter(0.01, ...)`` relative to now, so per-run overhead
    accumulates) and ``sched-abs`` (each run ``enterabs(t0 + (k+1) x 10 ms)``).

``py-recurring-cpu``  (metrics ``cpu_us_per_run_10ms``, ``cpu_us_per_run_1ms``,
``cpu_us_per_run_1000x100ms``; lower is better)
    What recurring tasks cost in CPU: one no-op recurring task every 10 ms,
    one every 1 ms, and 1,000 every 100 ms (submitted back to back). Each
    measurement runs in a child process of its own (this file, with
    ``--cpu-child SYSTEM METRIC SECONDS``), so no other system's threads
    share it: it starts the system and its tasks, waits 300 ms, then reads
    ``time.process_time()`` (the whole process's CPU, every thread, user +
    system) and the run count, waits 4 s (2 s with --quick) and reads both
    again; value = CPU microseconds per run. Systems: ``taskmanager``
    (``Module(max_workers=2).schedule_task(fn, interval, reoccurring=True)``),
    ``thread-loop-floor`` (one Python thread sleeping to the next absolute
    due time of a heap of tasks and running each itself), ``APScheduler``
    (interval trigger, ``max_instances=1``, ``coalesce=True``, a 2-thread
    executor) and ``sched`` (``enterabs`` to each run's absolute due time).

``py-cancel-100k``  (metrics ``us_per_cancel``, ``rss_mb_delta``; lower is better)
    100,000 one-shot tasks scheduled an hour ahead on a running manager,
    then ``cancel()`` on each handle in a loop: wall time per cancel, and
    the resident memory of the process after the loop minus before it
    (``rss_mb_delta``; negative is memory given back). ``taskmanager``
    only: what it measures is the handles' cancel path, not a comparison.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import heapq
import math
import os
import subprocess
import random
import sched
import statistics
import sys
import threading
import time
import traceback
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from report import fmt_value, print_table, write_json  # benches/report.py, beside this file

perf = time.perf_counter

TM = "taskmanager"

# ---------------------------------------------------------------------------
# Helpers


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (p in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _new_manager(max_workers: int = 2) -> Tuple[Any, Any]:
    from taskmanager import Module, TaskManager

    manager = TaskManager()
    manager.start_thread()
    try:
        module = Module(task_manager=manager, max_workers=max_workers)
    except BaseException:
        manager.shutdown(cancel_pending=True)
        raise
    return manager, module


def _new_apscheduler(max_workers: int = 20, misfire_grace_time: Optional[int] = None) -> Any:
    from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPool
    from apscheduler.schedulers.background import BackgroundScheduler

    job_defaults: Dict[str, Any] = {}
    if misfire_grace_time is not None:
        job_defaults["misfire_grace_time"] = misfire_grace_time
    scheduler = BackgroundScheduler(
        executors={"default": APThreadPool(max_workers)},
        job_defaults=job_defaults,
    )
    scheduler.start()
    return scheduler


class Recorder:
    """Start times of n tasks, and an event set when all n have started."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.starts: List[Optional[float]] = [None] * n
        self.count = 0
        self.lock = threading.Lock()
        self.all_done = threading.Event()

    def hit(self, i: int) -> None:
        t = perf()
        self.starts[i] = t
        with self.lock:
            self.count += 1
            if self.count >= self.n:
                self.all_done.set()


# ---------------------------------------------------------------------------
# py-throughput


def _noop() -> None:
    pass


def _time_submissions(submit: Callable[[Callable[[], None]], Any], n: int) -> Dict[str, float]:
    """Submits n no-op tasks through ``submit`` and times until all are done."""
    handles = []
    append = handles.append
    gc.collect()
    t0 = perf()
    for _ in range(n):
        append(submit(_noop))
    done, not_done = concurrent.futures.wait(handles, timeout=600)
    elapsed = perf() - t0
    if not_done:
        raise RuntimeError(f"{len(not_done)} of {n} tasks not done after 600 s")
    return {"tasks_per_s": n / elapsed}


def throughput_taskmanager(n: int, metrics: bool = False) -> Dict[str, float]:
    manager, module = _new_manager(2)
    if metrics:
        manager.enable_metrics()
    try:
        return _time_submissions(module.add_task, n)
    finally:
        manager.shutdown(cancel_pending=True)


def throughput_threadpool(n: int) -> Dict[str, float]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    try:
        return _time_submissions(pool.submit, n)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------
# py-lateness

LATENESS_N = 2000
LATENESS_SEED = 20240611
LATENESS_WAIT = 30.0  # seconds to wait for the last task after submitting


def lateness_delays(n: int = LATENESS_N) -> List[float]:
    rng = random.Random(LATENESS_SEED)
    return [rng.uniform(0.001, 0.200) for _ in range(n)]


def _lateness_result(rec: Recorder, submits: Sequence[float], delays: Sequence[float]) -> Dict[str, float]:
    rec.all_done.wait(max(delays) + LATENESS_WAIT)
    late = sorted(
        (s - (sub + d)) * 1e6 for s, sub, d in zip(rec.starts, submits, delays) if s is not None
    )
    ran = len(late)
    if not late:
        raise RuntimeError("no task ran")
    return {"p50_us": percentile(late, 50), "p99_us": percentile(late, 99), "tasks_run": float(ran)}


def _submit_all(delays: Sequence[float], submit: Callable[[int, float], Any]) -> List[float]:
    """Calls ``submit(i, delay)`` for each task, noting ``perf()`` just before
    each call: the time the task's delay counts from."""
    submits = [0.0] * len(delays)
    gc.collect()
    for i, d in enumerate(delays):
        submits[i] = perf()
        submit(i, d)
    return submits


def lateness_taskmanager(delays: Sequence[float]) -> Dict[str, float]:
    n = len(delays)
    rec = Recorder(n)
    manager, module = _new_manager(2)
    try:
        schedule = module.schedule_task
        hit = rec.hit
        submits = _submit_all(delays, lambda i, d: schedule(hit, d, args=(i,)))
        return _lateness_result(rec, submits, delays)
    finally:
        manager.shutdown(cancel_pending=True)


def _stop_sched(scheduler: sched.scheduler, thread: threading.Thread) -> None:
    """Cancels what a sched scheduler still holds and joins its thread."""
    for event in list(scheduler.queue):
        try:
            scheduler.cancel(event)
        except ValueError:
            pass
    if thread.is_alive():
        thread.join(5)


def lateness_sched(delays: Sequence[float]) -> Dict[str, float]:
    n = len(delays)
    rec = Recorder(n)
    scheduler = sched.scheduler(perf, time.sleep)
    thread = threading.Thread(target=scheduler.run, name="sched-run", daemon=True)
    try:
        enter = scheduler.enter
        hit = rec.hit
        submits = _submit_all(delays, lambda i, d: enter(d, 1, hit, (i,)))
        thread.start()
        return _lateness_result(rec, submits, delays)
    finally:
        _stop_sched(scheduler, thread)


def lateness_timer(delays: Sequence[float]) -> Dict[str, float]:
    n = len(delays)
    rec = Recorder(n)
    timers: List[threading.Timer] = []

    def start_timer(i: int, d: float) -> None:
        t = threading.Timer(d, rec.hit, args=(i,))
        t.daemon = True
        t.start()
        timers.append(t)

    try:
        submits = _submit_all(delays, start_timer)
        return _lateness_result(rec, submits, delays)
    finally:
        for t in timers:
            t.cancel()
        for t in timers:
            t.join(1)


def lateness_apscheduler(delays: Sequence[float]) -> Dict[str, float]:
    n = len(delays)
    rec = Recorder(n)
    scheduler = _new_apscheduler(max_workers=20, misfire_grace_time=3600)
    try:
        add_job = scheduler.add_job
        hit = rec.hit
        now = datetime.now
        submits = _submit_all(
            delays, lambda i, d: add_job(hit, "date", run_date=now() + timedelta(seconds=d), args=(i,))
        )
        return _lateness_result(rec, submits, delays)
    finally:
        scheduler.shutdown(wait=False)


# ---------------------------------------------------------------------------
# py-schedule-cost

SCHEDULE_N = 10_000
FAR = 3600.0


def schedule_cost_taskmanager(n: int = SCHEDULE_N) -> Dict[str, float]:
    manager, module = _new_manager(2)
    try:
        schedule = module.schedule_task
        handles = []
        append = handles.append
        gc.collect()
        t0 = perf()
        for _ in range(n):
            append(schedule(_noop, FAR))
        elapsed = perf() - t0
        return {"us_per_job": elapsed / n * 1e6}
    finally:
        manager.shutdown(cancel_pending=True)


def schedule_cost_apscheduler(n: int = SCHEDULE_N) -> Dict[str, float]:
    scheduler = _new_apscheduler()
    try:
        add_job = scheduler.add_job
        now = datetime.now
        far = timedelta(seconds=FAR)
        jobs = []
        append = jobs.append
        gc.collect()
        t0 = perf()
        for _ in range(n):
            append(add_job(_noop, "date", run_date=now() + far))
        elapsed = perf() - t0
        return {"us_per_job": elapsed / n * 1e6}
    finally:
        scheduler.shutdown(wait=False)


# ---------------------------------------------------------------------------
# py-drift

DRIFT_RUNS = 100
DRIFT_INTERVAL = 0.010
DRIFT_WAIT = 30.0


class DriftRecorder:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.starts: List[float] = []
        self.done = threading.Event()

    def hit(self) -> bool:
        """Records a start; returns True while more runs are wanted."""
        t = perf()
        if len(self.starts) < self.runs:
            self.starts.append(t)
            if len(self.starts) >= self.runs:
                self.done.set()
                return False
            return True
        return False

    def drift_us(self, t0: float) -> Dict[str, float]:
        if not self.done.wait(self.runs * DRIFT_INTERVAL + DRIFT_WAIT):
            raise RuntimeError(f"only {len(self.starts)} of {self.runs} runs after the wait")
        due = t0 + self.runs * DRIFT_INTERVAL
        return {"drift_us": abs(self.starts[self.runs - 1] - due) * 1e6}


def drift_taskmanager() -> Dict[str, float]:
    rec = DriftRecorder(DRIFT_RUNS)
    manager, module = _new_manager(2)
    handle = None
    try:
        gc.collect()
        t0 = perf()
        handle = module.schedule_task(rec.hit, DRIFT_INTERVAL, reoccurring=True)
        return rec.drift_us(t0)
    finally:
        if handle is not None:
            handle.cancel()
        manager.shutdown(cancel_pending=True)


def drift_apscheduler() -> Dict[str, float]:
    rec = DriftRecorder(DRIFT_RUNS)
    scheduler = _new_apscheduler()
    try:
        gc.collect()
        t0 = perf()
        scheduler.add_job(rec.hit, "interval", seconds=DRIFT_INTERVAL, max_instances=1, coalesce=True)
        return rec.drift_us(t0)
    finally:
        scheduler.shutdown(wait=False)


def _drift_sched(absolute: bool) -> Dict[str, float]:
    rec = DriftRecorder(DRIFT_RUNS)
    scheduler = sched.scheduler(perf, time.sleep)
    k = [1]

    def run() -> None:
        if rec.hit():
            k[0] += 1
            if absolute:
                scheduler.enterabs(t0 + k[0] * DRIFT_INTERVAL, 1, run)
            else:
                scheduler.enter(DRIFT_INTERVAL, 1, run)

    thread = threading.Thread(target=scheduler.run, name="sched-run", daemon=True)
    try:
        gc.collect()
        t0 = perf()
        if absolute:
            scheduler.enterabs(t0 + DRIFT_INTERVAL, 1, run)
        else:
            scheduler.enter(DRIFT_INTERVAL, 1, run)
        thread.start()
        return rec.drift_us(t0)
    finally:
        _stop_sched(scheduler, thread)


def drift_sched() -> Dict[str, float]:
    return _drift_sched(absolute=False)


def drift_sched_abs() -> Dict[str, float]:
    return _drift_sched(absolute=True)


# ---------------------------------------------------------------------------
# py-recurring-cpu: each measurement in a child process (see the docstring).

CPU_CASES: Dict[str, Tuple[int, float]] = {
    "cpu_us_per_run_10ms": (1, 0.010),
    "cpu_us_per_run_1ms": (1, 0.001),
    "cpu_us_per_run_1000x100ms": (1000, 0.100),
}
CPU_SETTLE = 0.3


class RunCounter:
    def __init__(self) -> None:
        self.runs = 0

    def tick(self) -> None:
        self.runs += 1  # one Python-level counter, as cheap as a task gets


def _cpu_window(counter: RunCounter, seconds: float) -> float:
    time.sleep(CPU_SETTLE)
    cpu0, runs0 = time.process_time(), counter.runs
    time.sleep(seconds)
    cpu1, runs1 = time.process_time(), counter.runs
    if runs1 == runs0:
        raise RuntimeError(f"nothing ran in {seconds} s")
    return (cpu1 - cpu0) * 1e6 / (runs1 - runs0)


def cpu_child(system: str, metric: str, seconds: float) -> float:
    tasks, interval = CPU_CASES[metric]
    counter = RunCounter()
    tick = counter.tick
    if system == TM:
        manager, module = _new_manager(2)
        try:
            for _ in range(tasks):
                module.schedule_task(tick, interval, reoccurring=True)
            return _cpu_window(counter, seconds)
        finally:
            manager.shutdown(cancel_pending=True)
    if system == "thread-loop-floor":
        stop = threading.Event()
        t0 = perf()
        heap = [(t0 + interval, i) for i in range(tasks)]

        def loop() -> None:
            while not stop.is_set():
                due, i = heapq.heappop(heap)
                wait = due - perf()
                if wait > 0:
                    time.sleep(wait)
                tick()
                heapq.heappush(heap, (due + interval, i))

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            return _cpu_window(counter, seconds)
        finally:
            stop.set()
            thread.join(5)
    if system == "APScheduler":
        scheduler = _new_apscheduler(max_workers=2)
        try:
            for _ in range(tasks):
                scheduler.add_job(tick, "interval", seconds=interval, max_instances=1, coalesce=True)
            return _cpu_window(counter, seconds)
        finally:
            scheduler.shutdown(wait=False)
    if system == "sched":
        scheduler = sched.scheduler(perf, time.sleep)
        running = [True]

        def run(due: float) -> None:
            tick()
            if running[0]:
                scheduler.enterabs(due + interval, 1, run, (due + interval,))

        t0 = perf()
        for _ in range(tasks):
            scheduler.enterabs(t0 + interval, 1, run, (t0 + interval,))
        thread = threading.Thread(target=scheduler.run, name="sched-run", daemon=True)
        thread.start()
        try:
            return _cpu_window(counter, seconds)
        finally:
            running[0] = False
            _stop_sched(scheduler, thread)
    raise ValueError(f"unknown system {system!r}")


def recurring_cpu(system: str, metric: str, seconds: float) -> Dict[str, float]:
    """One measurement, in a child process."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--cpu-child", system, metric, str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({out.returncode}): {out.stderr.strip()[-300:]}")
    return {metric: float(out.stdout.strip().splitlines()[-1])}


# ---------------------------------------------------------------------------
# py-cancel-100k

CANCEL_N = 100_000


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cancel_taskmanager(n: int = CANCEL_N) -> Dict[str, float]:
    manager, module = _new_manager(2)
    try:
        schedule = module.schedule_task
        handles = [schedule(_noop, FAR) for _ in range(n)]
        gc.collect()
        rss0 = _rss_mb()
        t0 = perf()
        for h in handles:
            h.cancel()
        elapsed = perf() - t0
        rss1 = _rss_mb()
        if not all(h.cancelled() for h in handles):
            raise RuntimeError("a cancelled handle does not say so")
        return {"us_per_cancel": elapsed / n * 1e6, "rss_mb_delta": rss1 - rss0}
    finally:
        manager.shutdown(cancel_pending=True)


# ---------------------------------------------------------------------------
# Driver

UNITS = {
    "tasks_per_s": "tasks/s",
    "p50_us": "us",
    "p99_us": "us",
    "tasks_run": "tasks",
    "us_per_job": "us",
    "drift_us": "us",
    **{m: "us" for m in CPU_CASES},
    "us_per_cancel": "us",
    "rss_mb_delta": "MB",
}
HIGHER_IS_BETTER = {"tasks_per_s"}
# Summary over repetitions: median, except tasks_run (the fewest in any repetition).
SUMMARY: Dict[str, Callable[[List[float]], float]] = {"tasks_run": min}


class Scenario:
    def __init__(self, name: str, metrics: List[str], systems: List[Tuple[str, Callable[[], Dict[str, float]]]]) -> None:
        self.name = name
        self.metrics = metrics
        self.systems = systems


def run_scenario(sc: Scenario, reps: int) -> Tuple[Dict[str, Dict[str, List[float]]], Dict[str, List[str]]]:
    values: Dict[str, Dict[str, List[float]]] = {s: {m: [] for m in sc.metrics} for s, _ in sc.systems}
    errors: Dict[str, List[str]] = {s: [] for s, _ in sc.systems}
    t_start = perf()
    for rep in range(reps):
        for system, fn in sc.systems:
            try:
                result = fn()
            except Exception as exc:  # one failing peer must not stop the others
                msg = f"{type(exc).__name__}: {exc}"
                errors[system].append(msg)
                print(f"  [{sc.name}] {system} rep {rep + 1}: ERROR {msg}", file=sys.stderr)
                if len(errors[system]) == 1:
                    traceback.print_exc(file=sys.stderr)
                continue
            for m in sc.metrics:
                if m in result:
                    values[system][m].append(float(result[m]))
        print(f"  [{sc.name}] rep {rep + 1}/{reps} done ({perf() - t_start:.1f} s)", file=sys.stderr, flush=True)
    return values, errors



def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions and 50,000 throughput tasks (< 2 min)")
    ap.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    ap.add_argument("--only", metavar="NAME", help="run only the scenarios whose name contains NAME")
    ap.add_argument("--cpu-child", nargs=3, metavar=("SYSTEM", "METRIC", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cpu_child:
        system, metric, seconds = args.cpu_child
        print(cpu_child(system, metric, float(seconds)))
        return 0

    reps = 3 if args.quick else 5
    cpu_seconds = 2.0 if args.quick else 4.0
    n_tp = 50_000 if args.quick else 200_000
    delays = lateness_delays()

    scenarios = [
        Scenario(
            "py-throughput",
            ["tasks_per_s"],
            [
                (TM, lambda: throughput_taskmanager(n_tp)),
                (f"{TM}-metrics", lambda: throughput_taskmanager(n_tp, metrics=True)),
                ("ThreadPoolExecutor", lambda: throughput_threadpool(n_tp)),
            ],
        ),
        Scenario(
            "py-lateness",
            ["p50_us", "p99_us", "tasks_run"],
            [
                (TM, lambda: lateness_taskmanager(delays)),
                ("sched", lambda: lateness_sched(delays)),
                ("threading.Timer", lambda: lateness_timer(delays)),
                ("APScheduler", lambda: lateness_apscheduler(delays)),
            ],
        ),
        Scenario(
            "py-schedule-cost",
            ["us_per_job"],
            [
                (TM, schedule_cost_taskmanager),
                ("APScheduler", schedule_cost_apscheduler),
            ],
        ),
        Scenario(
            "py-drift",
            ["drift_us"],
            [
                (TM, drift_taskmanager),
                ("APScheduler", drift_apscheduler),
                ("sched", drift_sched),
                ("sched-abs", drift_sched_abs),
            ],
        ),
        Scenario(
            "py-recurring-cpu",
            list(CPU_CASES),
            [
                (system, lambda system=system: {
                    k: v for m in CPU_CASES for k, v in recurring_cpu(system, m, cpu_seconds).items()
                })
                for system in (TM, "thread-loop-floor", "APScheduler", "sched")
            ],
        ),
        Scenario("py-cancel-100k", ["us_per_cancel", "rss_mb_delta"], [(TM, cancel_taskmanager)]),
    ]

    if args.only:
        scenarios = [sc for sc in scenarios if args.only in sc.name]
        if not scenarios:
            ap.error(f"no scenario matches --only {args.only!r}")

    try:
        import apscheduler

        ap_version = getattr(apscheduler, "__version__", "?")
    except Exception:  # noqa: BLE001
        ap_version = "not installed"
    print(
        f"peers.py: {'quick' if args.quick else 'full'} run, {reps} repetitions, "
        f"Python {sys.version.split()[0]}, APScheduler {ap_version}",
        file=sys.stderr,
    )

    wall0 = perf()
    records: List[Dict[str, Any]] = []
    rows: List[Tuple[str, str, str, str, str, str, str]] = []
    warnings: List[str] = []
    for sc in scenarios:
        values, errors = run_scenario(sc, reps)
        summary: Dict[str, Dict[str, float]] = {}
        for system, _ in sc.systems:
            for m in sc.metrics:
                vs = values[system][m]
                if vs:
                    summary.setdefault(system, {})[m] = SUMMARY.get(m, statistics.median)(vs)
        for system, _ in sc.systems:
            if system not in summary:
                msg = errors[system][0] if errors[system] else "no result"
                rows.append((sc.name, system, "ERROR", msg[:60], "", "", ""))
                continue
            for m in sc.metrics:
                if m not in summary[system]:
                    continue
                v = summary[system][m]
                ratio = ""
                base = summary.get(TM, {}).get(m)
                if system != TM and m != "tasks_run" and base is not None:
                    ratio = f"{v / base:.2f}x" if base > 0 and v >= 0 else "n/a"
                vs = values[system][m]
                span = f"[{fmt_value(min(vs))} - {fmt_value(max(vs))}]"
                rows.append((sc.name, system, m, fmt_value(v), span, UNITS[m], ratio))
                records.append(
                    {"scenario": sc.name, "system": system, "metric": m, "value": v, "unit": UNITS[m], "min": min(vs), "max": max(vs)}
                )
                if m == "tasks_run" and v < LATENESS_N:
                    warnings.append(f"{sc.name}: {system} ran only {v:.0f} of {LATENESS_N} tasks in some repetition")
            if errors[system]:
                rows.append((sc.name, system, "ERROR", f"{len(errors[system])}/{reps} reps failed: {errors[system][0][:40]}", "", "", ""))
    wall = perf() - wall0

    print_table(rows)
    print(
        f"Medians of {reps} repetitions (tasks_run: fewest in any repetition). 'vs taskmanager' = peer / taskmanager;\n"
        f"for tasks_per_s higher is better, for every *_us metric lower is better. Wall time {wall:.1f} s."
    )
    for w in warnings:
        print(f"WARNING: {w}")

    if args.json:
        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
