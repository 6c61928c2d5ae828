"""RQ app for benches/cluster.py (workers: ``rq worker bench``; jobs are
found by their import path ``app_rq.job``). Recurring: ``rq cron
rq_cron_config.py`` registers ``rec`` every 1 s for each schedule name."""

import common
from redis import Redis
from rq import Queue

QUEUE = "bench"


def job(kind, a=None, b=None):
    common.run(kind, a, b)


def rec(name):
    common.tick(name)


class Enqueuer:
    def __init__(self):
        self.queue = Queue(QUEUE, connection=Redis.from_url(common.URL))

    def submit(self, kind, a=None, b=None):
        self.queue.enqueue(job, kind, a, b)

    def close(self):
        pass
