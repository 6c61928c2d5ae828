"""RQ: ``rq worker bench`` per worker process, the default worker class
(one job at a time; it forks a work horse per job). ``rq worker-pool`` exists
but runs several workers under one supervisor; separate ``rq worker``
processes are used so that each can be killed and restarted like every
other system's. Defaults otherwise: a worker killed mid-job leaves the job
in the started registry, later moved to the failed registry, not re-run.
Recurring: RQ's built-in cron (``rq cron rq_cron_config.py``, rq >= 2.5,
``interval=1``) run in each replica beside its worker; cron processes do not
coordinate."""

import os

from base import System, script


def _url():
    return os.environ["BENCH_REDIS_URL"]


class RQ(System):
    name = "rq"
    app = "app_rq"

    def worker(self, py, index, concurrency, scenario):
        return [py, "-m", "rq.cli", "worker", "--url", _url(), "bench"]

    def replica(self, py, index, concurrency):
        return [self.worker(py, index, concurrency, "cluster-recurring"), [py, "-m", "rq.cli", "cron", "--url", _url(), script("rq_cron_config.py")]]


SYSTEMS = [RQ()]
