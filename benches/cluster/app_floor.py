"""redis-floor for benches/cluster.py: the bare Redis round trips the work
needs, with redis-py and nothing else. The enqueuer ``LPUSH``es a JSON
``[kind, a, b]`` onto ``bench:floor``; a worker process (``python
app_floor.py N``) runs N threads, each looping on ``BRPOP bench:floor 1``
and running the job body. No acknowledgement: a job popped by a killed
process is gone.

The poison job (cluster-poison) is ``["poison", null, null]``: the worker
thread that pops it calls ``common.poison()``, which kills the process. It
leaves no record anywhere (``poison_status``)."""

import json
import sys
import threading

import common
import redis

KEY = "bench:floor"


class Enqueuer:
    def __init__(self):
        self.r = redis.Redis.from_url(common.URL)

    def submit(self, kind, a=None, b=None):
        self.r.lpush(KEY, json.dumps([kind, a, b]))

    def submit_poison(self):
        self.submit("poison")

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        queued = any(json.loads(m)[0] == "poison" for m in self.r.lrange(KEY, 0, -1))
        return False, False, "no (still queued)" if queued else "no (popped, never acknowledged: gone)"

    def close(self):
        self.r.close()


def _loop():
    r = redis.Redis.from_url(common.URL)
    while True:
        item = r.brpop(KEY, timeout=1)
        if item is not None:
            kind, a, b = json.loads(item[1])
            if kind == "poison":
                common.poison()
            common.run(kind, a, b)


def main(threads):
    workers = [threading.Thread(target=_loop, daemon=True) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
