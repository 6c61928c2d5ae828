"""Counts the Redis commands one taskmanager job costs, for the model in
BENCHMARKS.md ("Past one machine"): runs the cluster-throughput shape (one
enqueuer, 2 worker processes of 4 threads) against its own redis-server
and prints ``INFO commandstats`` per job: the requests taskmanager's
processes send, the commands its Lua scripts run inside them (their time
is part of ``evalsha``'s), and the bench's own reporting (INCRBY per job),
apart.

    python benches/cluster/commands.py [N]      # N jobs, default 20000
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import redis  # noqa: E402
import redis_harness  # noqa: E402

BENCH = {"incrby", "get", "sadd", "scard", "exists", "info", "ping", "hello", "client|setinfo", "client|setname"}
# Run by the scripts (ACK, FIRE, SEEN, ...), not sent: their time is inside evalsha's.
IN_SCRIPTS = {"xack", "xdel", "set", "publish", "zrem", "hset", "hget", "hincrby", "zadd", "zrange", "zrangebyscore",
              "time", "hmget", "zcard", "incr", "zremrangebyscore", "xrange"}


def stats(r):
    out = {}
    for name, row in r.info("commandstats").items():
        out[name.replace("cmdstat_", "")] = (row["calls"], row["usec"])
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    server = redis_harness.RedisServer()
    r = redis.Redis.from_url(server.url)
    env = dict(os.environ, PYTHONPATH=HERE, BENCH_REDIS_URL=server.url, BENCH_PREFIX="cmd", BENCH_CONCURRENCY="4",
               BENCH_SCENARIO="cluster-throughput")
    workers = [subprocess.Popen([sys.executable, "-m", "taskmanager", "worker", "app_taskmanager:manager",
                                 "--concurrency", "4"], env=dict(env, BENCH_WORKER_ID=str(i)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
               for i in range(2)]
    try:
        enq = subprocess.Popen([sys.executable, os.path.join(HERE, "enqueue.py"), "app_taskmanager",
                                "cluster-throughput", str(n), "0", "2"], env=env, stdout=subprocess.DEVNULL)
        while not r.exists("bench:enq_start"):
            time.sleep(0.005)
        before = stats(r)
        while not r.exists("bench:end"):
            time.sleep(0.01)
        time.sleep(0.3)
        after = stats(r)
        enq.wait(30)
    finally:
        for w in workers:
            w.kill()
            w.wait()
        server.stop()
    rows = []
    for name, (calls, usec) in after.items():
        c0, u0 = before.get(name, (0, 0))
        if calls - c0 > 0:
            rows.append((name, (calls - c0) / n, (usec - u0) / n))
    rows.sort(key=lambda row: -row[1])
    print(f"{n} jobs; per job: calls, and usec inside Redis (commandstats: without I/O or parsing)")
    for title, keep in (
        ("requests taskmanager sends", lambda name: name not in BENCH and name not in IN_SCRIPTS),
        ("run inside its scripts (time counted in evalsha)", lambda name: name in IN_SCRIPTS),
        ("the bench's own reporting", lambda name: name in BENCH),
    ):
        group = [row for row in rows if keep(row[0])]
        print(f"  {title}:")
        for name, calls, usec in group:
            print(f"    {name:20s} {calls:8.3f} {usec:8.2f}")
        print(f"    {'total':20s} {sum(c for _, c, _ in group):8.3f} {sum(u for _, _, u in group):8.2f}")


if __name__ == "__main__":
    main()
