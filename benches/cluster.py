"""taskmanager's Redis mode against Python task queues on Redis: throughput,
latency, recurring schedules across replicas, jobs lost to SIGKILL, and a
poison job that kills its worker.

Install and run (from the repository root; peers pinned in
benches/requirements-cluster.txt)::

    python3.11 -m venv /work/venv-cluster
    CARGO_TARGET_DIR=/work/target-cluster /work/venv-cluster/bin/pip install .
    /work/venv-cluster/bin/pip install -r benches/requirements-cluster.txt
    /work/venv-cluster/bin/python benches/cluster.py --quick        # 1 repetition, small runs (< 10 min)
    /work/venv-cluster/bin/python benches/cluster.py --json out.json  # 3 repetitions (about an hour)
    ... --systems taskmanager,redis-floor --scenarios cluster-throughput --reps 2

The program starts its own ``redis-server`` on a free loopback port
(tests/python/redis_harness.py, no persistence) and runs every system
against it in turn, ``FLUSHALL`` before each run. Each run starts the
system's processes in new process groups (logs in a temporary folder) and
ends them with SIGKILL to the whole group, in ``finally``, whatever
happened. Every number is the median of the repetitions of this one run; the
systems of a scenario are interleaved per repetition (rep 1: every system,
rep 2: every system, ...). A system that fails prints an error row (the
first error; the stderr log has the tail of its process logs) and the others
go on.

Measurement is the same for every system: each job reports to Redis itself
with redis-py on a connection of its own (benches/cluster/common.py), and
this process only polls Redis. Times are ``time.time()`` taken in the
enqueuing and working processes (one machine, one clock). Jobs are
submitted by one enqueuing process (benches/cluster/enqueue.py), which
first warms up: it submits batches of warm-up jobs until every worker
process has run one, so worker start-up is never timed.

Systems (each in its recommended worker mode; details in
benches/cluster/sys_*.py and app_*.py). N = 4 everywhere a worker process
has a concurrency setting:

``taskmanager``  ``python -m taskmanager worker app_taskmanager:manager
    --concurrency 4``; the enqueuer's manager is ``submit_only``, jobs are a
    function registered with ``@manager.task``; every run has its own
    ``broker_prefix``. Kill and poison: ``broker_lease=2`` (the default is
    30 s); poison: ``broker_max_deliveries`` left at its default, 3.
``celery``  ``celery worker -P threads -c 4`` (4 threads, like the others;
    prefork would be 4 child processes per worker), results ignored, other
    settings default (prefetch multiplier 4). Kill and poison:
    ``task_acks_late`` and ``task_reject_on_worker_lost`` (the documented
    pair); the Redis transport's ``visibility_timeout`` stays 1 h. (With the
    thread pool a poison job takes the whole worker process down, so
    ``task_reject_on_worker_lost``, which acts when a prefork child dies,
    does not come into play.)
``rq``  ``rq worker bench`` per process: the default worker, one job at a
    time, forking a work horse per job (so 1 job at a time per process, not
    4). Separate ``rq worker`` processes rather than ``rq worker-pool`` so
    each can be killed and restarted like the others' workers. Defaults (no
    re-run of a job whose worker died; no ``Retry``). A poison job's
    ``os._exit`` ends the work horse, not the ``rq worker`` process.
``dramatiq``  ``dramatiq app_dramatiq --processes 1 --threads 4``; Redis
    broker defaults (a dead worker's messages are requeued after its 60 s
    heartbeat timeout, by the queue maintenance that 1 in 1,000 broker
    calls runs). When its worker process dies, the ``dramatiq`` main process
    stops and exits with that status.
``arq``  ``arq app_arq.WorkerSettings`` with ``max_jobs = 4``, defaults
    otherwise (``poll_delay`` 0.5 s; ``job_timeout`` 300 s, which is also how
    long a dead worker's job stays marked in progress, plus 10 s;
    ``max_tries`` 5).
``huey``  ``huey_consumer app_huey.huey -w 4 -k thread``, ``RedisHuey``
    defaults (blocking reads; no acknowledgement).
``redis-floor``  the bare round trips: the enqueuer ``LPUSH``es, each worker
    process runs 4 threads looping on ``BRPOP``; no acknowledgement. Not in
    cluster-recurring (it is not a scheduler).

Scenarios (``scenario`` / ``metric`` names as in the JSON):

``cluster-throughput``  (``enqueue_s``, ``total_s`` lower is better;
    ``jobs_per_s`` higher is better)
    20,000 no-op jobs (2,000 with --quick) submitted back to back by one
    process, run by 2 worker processes. ``enqueue_s`` = first submission to
    last submission returned; ``total_s`` = first submission to the end of
    the job that brought ``INCR bench:done`` to N (or to the last
    submission's return, if that is later); ``jobs_per_s`` = N /
    ``total_s``.

``cluster-latency``  (``p50_ms``, ``p99_ms``, lower is better)
    2,000 jobs (500 with --quick) at a steady 200 jobs/s (job i submitted at
    start + i / 200 s) by one process, 2 worker processes. Latency =
    the job's ``time.time()`` as it starts minus the enqueuer's
    ``time.time()`` just before the submission (passed as the argument).
    Nearest-rank percentiles over all jobs.

``cluster-recurring``  (``duplicate_runs``, ``missed_runs``, lower is better)
    3 replica processes (each a worker of the system, plus the process that
    registers or fires schedules where the system needs one) each register
    the same 50 recurring 1 s schedules; every run records its exact time.
    The window is D = 20 s (8 s with --quick) starting 8 s after the
    replicas were started (start-up grace). For each schedule, with R its
    runs in the window and T its ticks (runs grouped: a run less than 0.5 s
    after the first run of the current group joins that group):
    ``duplicate_runs`` = sum over schedules of max(0, R - T, R - (D + 1))
    (two runs of one tick, or more runs than a 1 s schedule can have in D
    seconds, whatever their phase); ``missed_runs`` = sum over schedules of
    max(0, (D - 1) - T) (a perfect 1 s schedule has D ticks in the window,
    one is allowed for the edges). How each system expresses it:
    ``taskmanager`` -- each replica is one non-``submit_only`` manager
    (worker and scheduler) calling ``schedule_task(fn, 1, reoccurring=True)``
    for 50 registered functions (deduplicated cluster-wide by name).
    ``celery-beat-each`` -- each replica is ``celery worker -B`` (an embedded
    beat in every replica, a common mistake); ``celery-one-beat`` -- 3
    workers and one ``celery beat`` process (the documented deployment);
    both with ``beat_schedule`` entries of ``schedule: 1.0``.
    ``rq`` -- each replica runs ``rq worker`` and ``rq cron`` (RQ's built-in
    cron, ``interval=1``; cron processes do not coordinate).
    ``dramatiq`` -- no scheduler built in; each replica runs its worker and
    an APScheduler process sending the messages (1 s interval jobs).
    ``arq`` -- ``cron(..., second=set(range(60)), unique=True)`` entries in
    each replica's worker settings (arq's own dedup by job id).
    ``huey`` -- ``periodic_task`` is crontab-based (1 minute at finest), so
    each replica starts self-rescheduling 1 s chains (a task that schedules
    its next run), as huey users do for sub-minute periods.

``cluster-kill``  (``lost``, ``ran_twice``, ``total_s`` lower is better)
    5,000 jobs (1,000 with --quick) that each sleep 5 ms, submitted at a
    steady 500 jobs/s (250 with --quick, so both runs enqueue for 10 s / 4 s),
    3 worker processes. From 1 s after the first submission and every 2 s
    while submissions go on (5 kills, 2 with --quick; one more if the
    enqueuer falls behind its rate), one worker process
    (round robin) gets SIGKILL to its whole process group and is started
    again at once. Then the run waits until every job has finished once or
    60 s (20 s with --quick) after the last submission, then 3 s more for
    late re-runs. ``lost`` = jobs that never finished a run (``HSETNX
    bench:fin``) within that bound, whatever the reason (a job a dead worker
    held, or a backlog too long for the bound); ``ran_twice`` = jobs whose body started more than once
    (``HINCRBY bench:ran`` at the start); ``total_s`` = first submission to
    the first finish of the last job, only when nothing was lost.

``cluster-poison``  (``poison_runs``, ``normal_lost``, ``normal_p50_ms``,
    ``normal_p99_ms``, ``normal_max_ms``, ``worker_restarts``,
    ``poison_inspectable``)
    One poison job among 200 normal jobs (400 without --quick). The poison
    job (a function of its own in each app_*.py, the same body everywhere:
    ``common.poison``) reports that it started (``INCR bench:poison_runs``,
    with its time) and calls ``os._exit(1)``: the process running it dies
    at once, with every job it was running, as after a segfault or the OOM
    killer. Normal jobs sleep 50 ms and are submitted at a steady 10 jobs/s
    (for 20 s, 40 s without --quick: a rate every system keeps up with
    here; at 20 jobs/s arq's backlog grew without the poison); the poison
    is submitted 2 s into the run (``BENCH_POISON_AT=1e9`` in the
    environment submits it after the last normal job instead: the normal
    jobs' latency without it, for comparison).
    2 worker processes, under a supervisor in this program: a worker
    process that exits has what is left of its process group killed and is
    started again 0.2 s later (``RESTART_DELAY``, the same for every
    system), as systemd (``Restart=always``) or Kubernetes would do.
    The run is bounded: watched until 60 s after the first submission
    (90 s without --quick), or earlier once every normal job has finished
    and the system has put the poison somewhere final (its
    ``poison_status``: taskmanager's ``dead_letters()``, rq's
    ``FailedJobRegistry``, arq's failed result, dramatiq's dead-letter
    queue), then 2 s more. So the systems that keep no record of the
    poison are always watched for the whole bound, whatever they would do
    after it.
    ``poison_runs`` = times the poison job started within the bound
    (taskmanager: ``broker_max_deliveries``, 3; a system that re-delivers
    a dead worker's job without a cap goes on until the bound; one that
    drops it says 1; this metric describes, lower is not better);
    ``normal_lost`` = normal jobs that had not finished by the end;
    ``normal_p50_ms`` / ``normal_p99_ms`` / ``normal_max_ms`` = normal
    jobs' submission (the enqueuer's ``time.time()`` just before it) to the
    end of their first finished run, over the finished ones (nearest
    rank), 50 ms of which is the job's own sleep; ``worker_restarts`` =
    worker processes the supervisor started again (a worker that survives
    the poison, like rq's, is never restarted); ``poison_inspectable`` = 1
    when, at the end, the poison is in the system's own record of failed
    jobs. The normal job submitted right after the poison is often taken
    by another thread of the same worker process and dies with it. The
    stderr log also shows, per run, when each poison run and
    worker exit happened (seconds after the poison's submission), how many
    normal jobs ran twice, and where the poison was at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLUSTER_DIR = os.path.join(HERE, "cluster")
sys.path.insert(0, CLUSTER_DIR)
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import redis  # noqa: E402
import redis_harness  # noqa: E402

import sys_arq  # noqa: E402
import sys_celery  # noqa: E402
import sys_dramatiq  # noqa: E402
import sys_floor  # noqa: E402
import sys_huey  # noqa: E402
import sys_rq  # noqa: E402
import sys_taskmanager  # noqa: E402
from base import System, Unsupported  # noqa: E402
from report import fmt_value, print_table, write_json  # noqa: E402  (benches/report.py)

TM = "taskmanager"
PY = sys.executable
CONCURRENCY = 4
RECURRING_GRACE = 8.0
RECURRING_REPLICAS = 3
GROUP_GAP = 0.5
STALL = 30.0  # a run whose progress counter stands still this long fails
POISON_WORKERS = 2
RESTART_DELAY = 0.2  # the supervisor's delay before it starts an exited worker again (every system)
POISON_GRACE = 2.0  # cluster-poison: watched this long more once the system has settled the poison

ALL = {s.name: s for mod in (sys_taskmanager, sys_celery, sys_rq, sys_dramatiq, sys_arq, sys_huey, sys_floor) for s in mod.SYSTEMS}
ORDER = [TM, "celery", "rq", "dramatiq", "arq", "huey", "redis-floor"]
# Throughput and latency also measure what metrics cost (issue 28).
WITH_METRICS = [TM, "taskmanager-metrics"] + ORDER[1:]
RECURRING_ORDER = [TM, "celery-beat-each", "celery-one-beat", "rq", "dramatiq", "arq", "huey"]

UNITS = {
    "enqueue_s": "s",
    "total_s": "s",
    "jobs_per_s": "jobs/s",
    "p50_ms": "ms",
    "p99_ms": "ms",
    "duplicate_runs": "runs",
    "missed_runs": "runs",
    "lost": "jobs",
    "ran_twice": "jobs",
    "poison_runs": "runs",
    "normal_lost": "jobs",
    "normal_p50_ms": "ms",
    "normal_p99_ms": "ms",
    "normal_max_ms": "ms",
    "worker_restarts": "restarts",
    "poison_inspectable": "1=yes",
    "cpu_us_per_job": "us",
    "redis_cpu_us_per_job": "us",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class RunError(RuntimeError):
    pass


# Every latency sample (ms) of every repetition, by system: for the
# distribution plot (written beside the JSON records).
LATENCY_SAMPLES: Dict[str, List[float]] = {}


def percentile(sorted_values: List[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


# ---------------------------------------------------------------------------
# Processes


def cpu_s(pgids: List[int] = (), pids: List[int] = ()) -> float:
    """CPU seconds (user + system, with reaped children) of every live
    process in the given process groups or with the given pids, from /proc."""
    total = 0
    wanted, wanted_pids = set(pgids), {str(p) for p in pids}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is state (field 3); pgrp is field 5, utime..cstime 14..17
        if int(fields[2]) in wanted or entry in wanted_pids:
            total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


class Proc:
    """A child in its own process group, output to a log file."""

    def __init__(self, argv: List[str], env: Dict[str, str], cwd: str, log: str) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL to the whole process group, then reap the leader."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def tail(self, lines: int = 15) -> str:
        try:
            with open(self.log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Run:
    """One system in one scenario repetition: a flushed Redis, a temporary
    folder for logs and files, and every process started, killed at exit."""

    counter = 0

    def __init__(self, server: "redis_harness.RedisServer", r: "redis.Redis", system: System, scenario: str) -> None:
        Run.counter += 1
        self.r = r
        self.system = system
        self.scenario = scenario
        self.dir = tempfile.mkdtemp(prefix=f"cluster-{system.name}-{scenario}-")
        self.procs: List[Proc] = []
        self.env = dict(os.environ)
        self.env.update(
            {
                "PYTHONPATH": os.pathsep.join([CLUSTER_DIR, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                "BENCH_REDIS_URL": server.url,
                "BENCH_PREFIX": f"bench{Run.counter}",
                "BENCH_SCENARIO": scenario,
                "BENCH_CONCURRENCY": str(CONCURRENCY),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(system.env(scenario))

    def __enter__(self) -> "Run":
        self.r.flushall()
        return self

    def spawn(self, argv: List[str], name: str, extra_env: Optional[Dict[str, str]] = None) -> Proc:
        env = dict(self.env)
        env.update(extra_env or {})
        proc = Proc(argv, env, self.dir, os.path.join(self.dir, f"{name}.log"))
        self.procs.append(proc)
        return proc

    def worker(self, index: int) -> Proc:
        argv = self.system.worker(PY, index, CONCURRENCY, self.scenario)
        return self.spawn(argv, f"worker{index}", {"BENCH_WORKER_ID": str(index), "BENCH_ROLE": "worker"})

    def enqueuer(self, n: int, rate: float, workers: int) -> Proc:
        argv = [PY, os.path.join(CLUSTER_DIR, "enqueue.py"), self.system.app, self.scenario, str(n), str(rate), str(workers)]
        return self.spawn(argv, "enqueue")

    def fail(self, msg: str) -> RunError:
        logs = "\n".join(f"--- {os.path.basename(p.log)} ({' '.join(p.argv[1:4])}) ---\n{p.tail()}" for p in self.procs)
        print(f"    {self.system.name}/{self.scenario}: {msg}\n{logs}", file=sys.stderr)
        return RunError(msg)

    def check(self, enq: Optional[Proc], workers: List[Proc]) -> None:
        """Raises if the enqueuer failed or a worker process exited."""
        if enq is not None:
            code = enq.popen.poll()
            if code not in (None, 0):
                raise self.fail(f"the enqueuer exited with status {code}")
        for w in workers:
            code = w.popen.poll()
            if code is not None:
                raise self.fail(f"worker {os.path.basename(w.log)} exited with status {code}")

    def get_float(self, key: str) -> Optional[float]:
        v = self.r.get(key)
        return None if v is None else float(v)

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_progress(run: Run, done: Callable[[], bool], progress: Callable[[], Any], enq: Optional[Proc], workers: List[Proc], limit: float, what: str) -> None:
    """Polls every 10 ms until ``done()``; fails when ``progress()`` stands
    still for STALL seconds (after the enqueuer has finished) or after
    ``limit`` seconds."""
    deadline = time.monotonic() + limit
    last, last_change = progress(), time.monotonic()
    while not done():
        run.check(enq, workers)
        now = time.monotonic()
        cur = progress()
        if cur != last or (enq is not None and enq.popen.poll() is None):
            last, last_change = cur, now
        elif now - last_change > STALL:
            raise run.fail(f"{what}: no progress for {STALL:.0f} s (at {cur})")
        if now > deadline:
            raise run.fail(f"{what}: not done after {limit:.0f} s (at {cur})")
        time.sleep(0.01)


class Supervisor:
    """Keeps ``n`` worker processes of a run alive, as systemd
    (``Restart=always``) or Kubernetes would: a worker whose process exits
    is ended as a group (SIGKILL to whatever is left of it) and started
    again ``RESTART_DELAY`` seconds later. Call ``poll()`` often."""

    def __init__(self, run: Run, n: int) -> None:
        self.run = run
        self.workers = [run.worker(i) for i in range(n)]
        self.due: Dict[int, float] = {}  # worker index -> when to start it again (monotonic)
        self.restarts = 0
        self.exits: List[Tuple[float, int, int]] = []  # (time.time(), index, status)

    def poll(self) -> None:
        now = time.monotonic()
        for i, w in enumerate(self.workers):
            if i in self.due:
                if now >= self.due[i]:
                    del self.due[i]
                    self.workers[i] = self.run.worker(i)
                    self.restarts += 1
                continue
            code = w.popen.poll()
            if code is not None:
                w.kill()
                self.exits.append((time.time(), i, code))
                self.due[i] = now + RESTART_DELAY


# ---------------------------------------------------------------------------
# Scenarios


def throughput(server, r, system: System, n: int) -> Dict[str, float]:
    """Also the CPU the work cost: the enqueuer's own (``bench:enq_cpu``,
    its process time over the submissions), plus the worker processes' and
    redis-server's between the first submission and the last completion
    (read from /proc; the bench's own reporting commands are in both)."""
    with Run(server, r, system, "cluster-throughput") as run:
        workers = [run.worker(i) for i in range(2)]
        enq = run.enqueuer(n, 0, 2)
        groups = [w.popen.pid for w in workers]
        wait_progress(run, lambda: r.exists("bench:enq_start") == 1, lambda: 0, enq, workers, 180, "throughput warm-up")
        cpu0, redis0 = cpu_s(pgids=groups), cpu_s(pids=[server.pid])
        wait_progress(run, lambda: r.exists("bench:end") == 1, lambda: r.get("bench:done"), enq, workers, 900, "throughput")
        cpu1, redis1 = cpu_s(pgids=groups), cpu_s(pids=[server.pid])
        enq.popen.wait(30)
        start, enq_end, end = run.get_float("bench:enq_start"), run.get_float("bench:enq_end"), run.get_float("bench:end")
        enq_cpu = run.get_float("bench:enq_cpu")
        if start is None or enq_end is None or end is None or enq_cpu is None:
            raise run.fail("missing timestamps")
        total = max(end, enq_end) - start
        redis_cpu = redis1 - redis0
        return {"enqueue_s": enq_end - start, "total_s": total, "jobs_per_s": n / total,
                "cpu_us_per_job": (enq_cpu + cpu1 - cpu0 + redis_cpu) / n * 1e6,
                "redis_cpu_us_per_job": redis_cpu / n * 1e6,
                # shown per repetition only:
                "enq_cpu_us_per_job": enq_cpu / n * 1e6, "worker_cpu_us_per_job": (cpu1 - cpu0) / n * 1e6}


def latency(server, r, system: System, n: int, rate: float) -> Dict[str, float]:
    with Run(server, r, system, "cluster-latency") as run:
        workers = [run.worker(i) for i in range(2)]
        enq = run.enqueuer(n, rate, 2)
        wait_progress(run, lambda: r.llen("bench:lat") >= n, lambda: r.llen("bench:lat"), enq, workers, 600, "latency")
        lat = []
        for item in r.lrange("bench:lat", 0, -1):
            a, b = item.decode().split(",")
            lat.append((float(b) - float(a)) * 1000.0)
        lat.sort()
        LATENCY_SAMPLES.setdefault(system.name, []).extend(lat)
        return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99)}


def recurring(server, r, system: System, duration: float) -> Dict[str, float]:
    with Run(server, r, system, "cluster-recurring") as run:
        replicas: List[Proc] = []
        t_spawn = time.time()
        for i in range(RECURRING_REPLICAS):
            for j, argv in enumerate(system.replica(PY, i, CONCURRENCY)):
                env = {"BENCH_WORKER_ID": str(i), "BENCH_ROLE": "worker"}
                env.update(system.replica_env())
                replicas.append(run.spawn(argv, f"replica{i}-{j}", env))
        for j, argv in enumerate(system.recurring_extra(PY)):
            replicas.append(run.spawn(argv, f"extra{j}"))
        ws = t_spawn + RECURRING_GRACE
        we = ws + duration
        while time.time() < we + 1.5:
            run.check(None, replicas)
            time.sleep(0.1)
        runs: Dict[str, List[float]] = {}
        for item in r.lrange("bench:rect", 0, -1):
            name, t = item.decode().split(",")
            runs.setdefault(name, []).append(float(t))
        from common import SCHEDULE_NAMES

        d = int(duration)
        dup = missed = 0
        for name in SCHEDULE_NAMES:
            times = sorted(t for t in runs.get(name, []) if ws <= t < we)
            groups = 0
            group_start = None
            for t in times:
                if group_start is None or t - group_start >= GROUP_GAP:
                    groups += 1
                    group_start = t
            dup += max(0, len(times) - groups, len(times) - (d + 1))
            missed += max(0, (d - 1) - groups)
        return {"duplicate_runs": float(dup), "missed_runs": float(missed)}


def kill(server, r, system: System, n: int, rate: float, bound: float) -> Dict[str, float]:
    with Run(server, r, system, "cluster-kill") as run:
        workers = [run.worker(i) for i in range(3)]
        enq = run.enqueuer(n, rate, 3)
        deadline = time.monotonic() + 180
        while not r.exists("bench:enq_start"):
            run.check(enq, workers)
            if time.monotonic() > deadline:
                raise run.fail("the enqueuer did not start submitting within 180 s")
            time.sleep(0.01)
        start = run.get_float("bench:enq_start")
        next_kill, k = start + 1.0, 0
        while not r.exists("bench:enq_end"):
            run.check(enq, [])
            if time.time() >= next_kill:
                i = k % 3
                workers[i].kill()
                workers[i] = run.worker(i)
                k += 1
                next_kill += 2.0
            time.sleep(0.005)
        enq_end = run.get_float("bench:enq_end")
        while r.hlen("bench:fin") < n and time.time() < enq_end + bound:
            run.check(enq, workers)
            time.sleep(0.05)
        if r.hlen("bench:fin") >= n:
            time.sleep(3.0)
        fin = r.hgetall("bench:fin")
        ran = r.hgetall("bench:ran")
        lost = n - len(fin)
        out = {"lost": float(lost), "ran_twice": float(sum(1 for v in ran.values() if int(v) >= 2))}
        if lost == 0:
            out["total_s"] = max(float(v) for v in fin.values()) - start
        print(f"    {system.name}: {k} kills", file=sys.stderr)
        return out


def poison(server, r, system: System, n: int, rate: float, bound: float) -> Dict[str, float]:
    with Run(server, r, system, "cluster-poison") as run:
        sup = Supervisor(run, POISON_WORKERS)
        enq = run.enqueuer(n, rate, POISON_WORKERS)
        deadline = time.monotonic() + 180
        while not r.exists("bench:enq_start"):
            run.check(enq, [])
            sup.poll()
            if time.monotonic() > deadline:
                raise run.fail("the enqueuer did not start submitting within 180 s")
            time.sleep(0.01)
        start = run.get_float("bench:enq_start")
        settled_at: Optional[float] = None
        while True:
            now = time.time()
            if now >= start + bound or (settled_at is not None and now >= settled_at + POISON_GRACE):
                break
            run.check(enq, [])
            sup.poll()
            if settled_at is None and r.exists("bench:enq_end") and r.hlen("bench:fin") >= n:
                status = r.get("bench:poison_status")
                if status is not None and json.loads(status)[1]:
                    settled_at = now
            time.sleep(0.02)
        end = time.time()
        fin = r.hgetall("bench:fin")
        ran = r.hgetall("bench:ran")
        runs = [item.decode().split(",") for item in r.lrange("bench:poison_t", 0, -1)]
        r.set("bench:stop", "1")
        try:
            code = enq.popen.wait(30)
        except subprocess.TimeoutExpired:
            raise run.fail("the enqueuer did not stop within 30 s of bench:stop") from None
        if code != 0:
            raise run.fail(f"the enqueuer exited with status {code}")
        status = r.get("bench:poison_status")
        if status is None:
            raise run.fail("no poison status from the enqueuer")
        registered, final, where = json.loads(status)
        sub = run.get_float("bench:poison_sub")
        lat = sorted((float(e) - float(b)) * 1000.0 for b, e in (v.decode().split(",") for v in fin.values()))
        out = {
            "poison_runs": float(len(runs)),
            "normal_lost": float(n - len(fin)),
            "worker_restarts": float(sup.restarts),
            "poison_inspectable": 1.0 if registered else 0.0,
        }
        if lat:
            out.update(normal_p50_ms=percentile(lat, 50), normal_p99_ms=percentile(lat, 99), normal_max_ms=lat[-1])
        at = ", ".join(f"+{float(t) - sub:.1f} s (worker {w})" for t, w in runs) if sub is not None else "?"
        exits = ", ".join(f"+{t - sub:.1f} s (worker {i}, status {c})" for t, i, c in sup.exits) if sub is not None else "?"
        twice = sum(1 for v in ran.values() if int(v) >= 2)
        how = "settled" if settled_at is not None else "bound"
        print(f"    {system.name}: poison runs after its submission: {at or 'none'}; worker exits: {exits or 'none'}; "
              f"normal jobs run twice: {twice}; poison: {where}; watched {end - start:.1f} s ({how})", file=sys.stderr)
        return out


# ---------------------------------------------------------------------------
# Driver


class Scenario:
    def __init__(self, name: str, metrics: List[str], systems: List[str], fn: Callable[[Any, Any, System], Dict[str, float]]) -> None:
        self.name = name
        self.metrics = metrics
        self.systems = systems
        self.fn = fn



def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 repetition and smaller runs (< 10 min)")
    ap.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    ap.add_argument("--systems", metavar="A,B", help=f"systems to run (default all: {','.join(ORDER)}; "
                    "celery also selects celery-beat-each and celery-one-beat)")
    ap.add_argument("--scenarios", metavar="X,Y", help="scenarios to run (default all)")
    ap.add_argument("--reps", type=int, metavar="N", help="repetitions (default 3, 1 with --quick)")
    args = ap.parse_args(argv)

    quick = args.quick
    reps = args.reps if args.reps is not None else (1 if quick else 3)
    n_tp = 2_000 if quick else 20_000
    n_lat = 500 if quick else 2_000
    duration = 8.0 if quick else 20.0
    n_kill = 1_000 if quick else 5_000
    kill_rate = 250.0 if quick else 500.0
    kill_bound = 20.0 if quick else 60.0
    n_poison = 200 if quick else 400
    poison_rate = 10.0
    poison_bound = 60.0 if quick else 90.0

    scenarios = [
        Scenario("cluster-throughput", ["enqueue_s", "total_s", "jobs_per_s", "cpu_us_per_job", "redis_cpu_us_per_job"],
                 WITH_METRICS, lambda s, r, sy: throughput(s, r, sy, n_tp)),
        Scenario("cluster-latency", ["p50_ms", "p99_ms"], WITH_METRICS, lambda s, r, sy: latency(s, r, sy, n_lat, 200.0)),
        Scenario("cluster-recurring", ["duplicate_runs", "missed_runs"], RECURRING_ORDER,
                 lambda s, r, sy: recurring(s, r, sy, duration)),
        Scenario("cluster-kill", ["lost", "ran_twice", "total_s"], ORDER,
                 lambda s, r, sy: kill(s, r, sy, n_kill, kill_rate, kill_bound)),
        Scenario("cluster-poison", ["poison_runs", "normal_lost", "normal_p50_ms", "normal_p99_ms", "normal_max_ms",
                                    "worker_restarts", "poison_inspectable"], ORDER,
                 lambda s, r, sy: poison(s, r, sy, n_poison, poison_rate, poison_bound)),
    ]
    if args.scenarios:
        wanted = [x.strip() for x in args.scenarios.split(",") if x.strip()]
        unknown = [x for x in wanted if x not in {sc.name for sc in scenarios}]
        if unknown:
            ap.error(f"unknown scenarios {unknown}; known: {[sc.name for sc in scenarios]}")
        scenarios = [sc for sc in scenarios if sc.name in wanted]
    if args.systems:
        wanted = {x.strip() for x in args.systems.split(",") if x.strip()}
        if "celery" in wanted:
            wanted |= {"celery-beat-each", "celery-one-beat"}
        unknown = wanted - set(ALL)
        if unknown:
            ap.error(f"unknown systems {sorted(unknown)}; known: {WITH_METRICS}")
        for sc in scenarios:
            sc.systems = [s for s in sc.systems if s in wanted]

    versions = []
    for mod in ("taskmanager", "celery", "rq", "dramatiq", "arq", "huey", "redis", "apscheduler"):
        try:
            from importlib.metadata import version

            versions.append(f"{mod} {version(mod)}")
        except Exception:  # noqa: BLE001
            versions.append(f"{mod} missing")
    print(f"cluster.py: {'quick' if quick else 'full'} run, {reps} repetitions, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; {', '.join(versions)}", file=sys.stderr)

    server = redis_harness.RedisServer()
    os.environ["BENCH_REDIS_URL"] = server.url  # adapters that put the URL on a command line read it here
    r = redis.Redis.from_url(server.url)
    print(f"redis-server on {server.url}", file=sys.stderr)
    wall0 = time.perf_counter()
    records: List[Dict[str, Any]] = []
    rows: List[Tuple[str, str, str, str, str, str]] = []
    try:
        for sc in scenarios:
            values: Dict[str, Dict[str, List[float]]] = {s: {m: [] for m in sc.metrics} for s in sc.systems}
            errors: Dict[str, List[str]] = {s: [] for s in sc.systems}
            t0 = time.perf_counter()
            for rep in range(reps):
                for name in sc.systems:
                    ts = time.perf_counter()
                    try:
                        result = sc.fn(server, r, ALL[name])
                    except Unsupported as exc:
                        errors[name].append(f"unsupported: {exc}")
                        continue
                    except Exception as exc:  # one failing peer must not stop the others
                        msg = f"{type(exc).__name__}: {exc}"
                        errors[name].append(msg)
                        print(f"  [{sc.name}] {name} rep {rep + 1}: ERROR {msg}", file=sys.stderr)
                        if not isinstance(exc, RunError) and len(errors[name]) == 1:
                            traceback.print_exc(file=sys.stderr)
                        continue
                    shown = ", ".join(f"{k}={fmt_value(v)}" for k, v in result.items())
                    print(f"  [{sc.name}] {name} rep {rep + 1}: {shown} ({time.perf_counter() - ts:.1f} s)", file=sys.stderr, flush=True)
                    for m in sc.metrics:
                        if m in result:
                            values[name][m].append(float(result[m]))
                print(f"  [{sc.name}] rep {rep + 1}/{reps} done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
            summary = {s: {m: statistics.median(v) for m, v in values[s].items() if v} for s in sc.systems}
            for s in sc.systems:
                if not summary[s]:
                    msg = errors[s][0] if errors[s] else "no result"
                    rows.append((sc.name, s, "ERROR", msg[:90], "", ""))
                    continue
                for m in sc.metrics:
                    if m not in summary[s]:
                        continue
                    v = summary[s][m]
                    ratio = ""
                    base = summary.get(TM, {}).get(m)
                    if s != TM and base is not None and base > 0:
                        ratio = f"{v / base:.2f}x"
                    lo, hi = min(values[s][m]), max(values[s][m])
                    shown = fmt_value(v) if len(values[s][m]) < 2 else f"{fmt_value(v)} [{fmt_value(lo)}-{fmt_value(hi)}]"
                    rows.append((sc.name, s, m, shown, UNITS[m], ratio))
                    records.append({"scenario": sc.name, "system": s, "metric": m, "value": v, "unit": UNITS[m],
                                    "min": lo, "max": hi, "reps": len(values[s][m])})
                if errors[s]:
                    rows.append((sc.name, s, "ERROR", f"{len(errors[s])}/{reps} reps failed: {errors[s][0][:70]}", "", ""))
    finally:
        r.close()
        server.stop()
    wall = time.perf_counter() - wall0

    print_table(rows)
    print(f"Medians of {reps} repetition(s) [min-max]. 'vs taskmanager' = system / taskmanager (blank when taskmanager's "
          f"value is 0 or missing);\njobs_per_s and poison_inspectable: higher is better; poison_runs: see the docstring; "
          f"every other metric: lower is better. "
          f"Wall time {wall:.1f} s.")
    if args.json:
        write_json(args.json, records)
        if LATENCY_SAMPLES:
            side = os.path.splitext(args.json)[0] + ".latency.json"
            with open(side, "w", encoding="utf-8") as f:
                json.dump({k: [round(x, 4) for x in v] for k, v in LATENCY_SAMPLES.items()}, f)
            print(f"wrote the latency samples to {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
