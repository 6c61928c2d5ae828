"""What every job does, whatever system runs it: it reports to Redis itself
with redis-py on a connection of its own (a per-process client, never the
system's broker connection), so every system is measured the same way.

Jobs take ``(kind, a, b)`` (plain JSON-able values; each system's app module
wraps ``run``):

* ``"warm"``: ``INCR bench:warm`` and ``SADD bench:warmers
  <BENCH_WORKER_ID>`` (the worker command's number, inherited by its child
  processes), then sleeps 20 ms: the warm-up before a timed run goes on
  until every worker process has run one.
* ``"tp"``: ``INCR bench:done``; the job that brings it to ``a`` (the run's
  job count) also does ``SET bench:end <time.time()>``.
* ``"lat"``: ``RPUSH bench:lat "<a>,<time.time()>"``, ``a`` being the
  enqueuer's ``time.time()`` just before it enqueued the job.
* ``"kill"``: ``HINCRBY bench:ran <a> 1`` as it starts (``a`` is the job id),
  then sleeps 5 ms, then ``HSETNX bench:fin <a> <time.time()>``.
* ``"normal"`` (cluster-poison): ``HINCRBY bench:ran <a> 1`` as it starts
  (``a`` is the job id), then sleeps 50 ms, then ``HSETNX bench:fin <a>
  "<b>,<time.time()>"`` (``b`` is the enqueuer's ``time.time()`` just
  before the submission).

The poison job (cluster-poison) is a function of its own in each app, which
calls ``poison()``: ``INCR bench:poison_runs`` and ``RPUSH bench:poison_t
"<time.time()>,<BENCH_WORKER_ID>"``, then ``os._exit(1)``: the process
running it dies at once, with every job it was running beside it.

A recurring run calls ``tick(schedule)``: in one pipeline
``HINCRBY bench:rec <schedule>:<round(time.time())> 1`` and
``RPUSH bench:rect "<schedule>,<time.time()>"`` (the exact times are what
the coordinator counts ticks from; see benches/cluster.py).

"""

from __future__ import annotations

import os
import time

import redis

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = os.environ.get("BENCH_PREFIX", "bench")
KILL_SLEEP = 0.005
NORMAL_SLEEP = 0.05
WARM_SLEEP = 0.02
RECURRING_SCHEDULES = int(os.environ.get("BENCH_SCHEDULES", "50"))
SCHEDULE_NAMES = [f"rec_{i}" for i in range(RECURRING_SCHEDULES)]

_client = None
_client_pid = None


def client() -> "redis.Redis":
    """This process's reporting client (a new one after a fork)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(URL)
        _client_pid = os.getpid()
    return _client


def before(kind: str, a, b) -> None:
    r = client()
    if kind == "tp":
        if r.incr("bench:done") >= int(a):
            r.set("bench:end", repr(time.time()))
    elif kind == "lat":
        r.rpush("bench:lat", f"{a!r},{time.time()!r}")
    elif kind in ("kill", "normal"):
        r.hincrby("bench:ran", str(a), 1)
    elif kind == "warm":
        pipe = r.pipeline(transaction=False)
        pipe.sadd("bench:warmers", os.environ.get("BENCH_WORKER_ID", "?"))
        pipe.incr("bench:warm")
        pipe.execute()
    else:
        raise ValueError(f"unknown job kind {kind!r}")


def after(kind: str, a, b) -> None:
    if kind == "kill":
        client().hsetnx("bench:fin", str(a), repr(time.time()))
    elif kind == "normal":
        client().hsetnx("bench:fin", str(a), f"{b!r},{time.time()!r}")


def sleep_for(kind: str) -> float:
    """How long the job body sleeps between ``before`` and ``after``."""
    return {"kill": KILL_SLEEP, "normal": NORMAL_SLEEP, "warm": WARM_SLEEP}.get(kind, 0.0)


def run(kind: str, a=None, b=None) -> None:
    """The job body for thread- and process-based workers."""
    before(kind, a, b)
    pause = sleep_for(kind)
    if pause:
        time.sleep(pause)
    after(kind, a, b)


def poison() -> None:
    """The poison job's body: reports that it started, then kills the
    process running it (no exception, no clean-up: as a segfault or the
    OOM killer would)."""
    t = time.time()
    pipe = client().pipeline(transaction=False)
    pipe.incr("bench:poison_runs")
    pipe.rpush("bench:poison_t", f"{t!r},{os.environ.get('BENCH_WORKER_ID', '?')}")
    pipe.execute()
    os._exit(1)


def tick(schedule: str) -> None:
    t = time.time()
    pipe = client().pipeline(transaction=False)
    pipe.hincrby("bench:rec", f"{schedule}:{round(t)}", 1)
    pipe.rpush("bench:rect", f"{schedule},{t!r}")
    pipe.execute()

