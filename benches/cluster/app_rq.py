"""RQ app for benches/cluster.py (workers: ``rq worker bench``; jobs are
found by their import path ``app_rq.job``). Recurring: ``rq cron
rq_cron_config.py`` registers ``rec`` every 1 s for each schedule name.

``poison`` (cluster-poison) kills the process running it
(``common.poison``): with the default worker that is the work horse forked
for the job, not the ``rq worker`` process, which records the job in the
queue's ``FailedJobRegistry`` ("Work-horse terminated unexpectedly") and
does not run it again (no ``Retry`` by default)."""

import common
from redis import Redis
from rq import Queue

QUEUE = "bench"


def job(kind, a=None, b=None):
    common.run(kind, a, b)


def poison():
    common.poison()


def rec(name):
    common.tick(name)


class Enqueuer:
    def __init__(self):
        self.queue = Queue(QUEUE, connection=Redis.from_url(common.URL))

    def submit(self, kind, a=None, b=None):
        self.queue.enqueue(job, kind, a, b)

    def submit_poison(self):
        self.poison_id = self.queue.enqueue(poison).id

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        if self.poison_id in self.queue.failed_job_registry.get_job_ids():
            return True, True, "FailedJobRegistry"
        return False, False, "no"

    def close(self):
        pass
