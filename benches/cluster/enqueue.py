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
``cluster-kill`` -> ``("kill", i)``.
"""

import importlib
import sys
import time

import common


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
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        r.set("bench:enq_end", repr(now()))
        r.set("bench:enq_cpu", repr(time.process_time() - cpu0))
    finally:
        enq.close()


if __name__ == "__main__":
    main()
