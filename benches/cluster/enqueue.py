"""The one enqueuing process of a timed run (started by benches/cluster.py):

    python enqueue.py APP_MODULE SCENARIO N RATE WORKERS

Imports ``APP_MODULE`` (an ``app_*`` module), builds its ``Enqueuer``, warms
up, then submits N jobs and exits.

Warm-up: batches of ``8 x WORKERS`` ``"warm"`` jobs (each sleeps 20 ms),
each batch waited for, until every one of the WORKERS worker processes has
run one (``SCARD bench:warmers``); 120 s at most (exit status 3). Then
0.5 s of quiet.

Timed part: ``SET bench:enq_start <time.time()>`` just before the first
submission and ``SET bench:enq_end`` just after the last, then
``SET bench:enq_cpu`` to this process's CPU seconds in between. RATE 0 submits
back to back; RATE r > 0 submits job i at ``start + i / r`` (sleeping until
then). Jobs: ``cluster-throughput`` -> ``("tp", N)``; ``cluster-latency`` ->
``("lat", time.time())`` taken just before the submission;
``cluster-kill`` -> ``("kill", i)``; ``cluster-poison`` -> ``("normal", i,
time.time())`` at RATE, and the app's poison job (``submit_poison()``) just
before normal job ``round(POISON_AT * RATE)``, i.e. POISON_AT = 2 s into
the run (``SET bench:poison_sub <time.time()>`` just before it;
``BENCH_POISON_AT`` changes it, see below).

cluster-poison, after the timed part: every 0.5 s, ``SET
bench:poison_status`` to the JSON of the app's ``poison_status()``
(``[in its failure registry, final, where]``), until ``bench:stop``
exists; then once more, and exit.
"""

import importlib
import json
import sys
import time

import os

import common

# Seconds into the timed part when the poison job is submitted; a value past
# the end of the run (e.g. BENCH_POISON_AT=1e9) submits it after the last
# normal job: the normal jobs' latency without the poison, for comparison.
POISON_AT = float(os.environ.get("BENCH_POISON_AT", "2"))


def warm_up(enq, workers: int) -> None:
    r = common.client()
    sent = 0
    deadline = time.monotonic() + 120
    while True:
        for _ in range(8 * workers):
            enq.submit("warm", None, None)
        sent += 8 * workers
        while int(r.get("bench:warm") or 0) < sent:
            if time.monotonic() > deadline:
                print(f"warm-up: {r.get('bench:warm')} of {sent} warm jobs ran, "
                      f"{r.scard('bench:warmers')} of {workers} workers seen", file=sys.stderr)
                sys.exit(3)
            time.sleep(0.02)
        if r.scard("bench:warmers") >= workers:
            break
    time.sleep(0.5)


def main() -> None:
    app_name, scenario, n, rate, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    app = importlib.import_module(app_name)
    enq = app.Enqueuer()
    try:
        warm_up(enq, workers)
        r = common.client()
        submit = enq.submit
        now = time.time
        cpu0 = time.process_time()
        t0 = now()
        r.set("bench:enq_start", repr(t0))
        if scenario == "cluster-throughput":
            for _ in range(n):
                submit("tp", n, None)
        elif scenario == "cluster-latency":
            for i in range(n):
                due = t0 + i / rate
                wait = due - now()
                if wait > 0:
                    time.sleep(wait)
                submit("lat", now(), None)
        elif scenario == "cluster-kill":
            for i in range(n):
                if rate > 0:
                    wait = t0 + i / rate - now()
                    if wait > 0:
                        time.sleep(wait)
                submit("kill", i, None)
        elif scenario == "cluster-poison":
            poison_index = round(POISON_AT * rate)
            for i in range(n):
                wait = t0 + i / rate - now()
                if wait > 0:
                    time.sleep(wait)
                if i == poison_index:
                    r.set("bench:poison_sub", repr(now()))
                    enq.submit_poison()
                submit("normal", i, now())
            if poison_index >= n:
                r.set("bench:poison_sub", repr(now()))
                enq.submit_poison()
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        r.set("bench:enq_end", repr(now()))
        r.set("bench:enq_cpu", repr(time.process_time() - cpu0))
        if scenario == "cluster-poison":
            while True:
                stop = r.exists("bench:stop")
                r.set("bench:poison_status", json.dumps(list(enq.poison_status())))
                if stop:
                    break
                time.sleep(0.5)
    finally:
        enq.close()


if __name__ == "__main__":
    main()
