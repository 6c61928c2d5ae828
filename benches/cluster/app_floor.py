"""redis-floor for benches/cluster.py: the bare Redis round trips the work
needs, with redis-py and nothing else. The enqueuer ``LPUSH``es a JSON
``[kind, a, b]`` onto ``bench:floor``; a worker process (``python
app_floor.py N``) runs N threads, each looping on ``BRPOP bench:floor 1``
and running the job body. No acknowledgement: a job popped by a killed
process is gone."""

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

    def close(self):
        self.r.close()


def _loop():
    r = redis.Redis.from_url(common.URL)
    while True:
        item = r.brpop(KEY, timeout=1)
        if item is not None:
            common.run(*json.loads(item[1]))


def main(threads):
    workers = [threading.Thread(target=_loop, daemon=True) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
