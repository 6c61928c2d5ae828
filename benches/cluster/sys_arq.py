"""arq: ``arq app_arq.WorkerSettings`` per worker process (one asyncio
loop, ``max_jobs`` = N). Defaults otherwise: ``poll_delay`` 0.5 s (arq polls
its queue), ``job_timeout`` 300 s (a dead worker's job stays marked in
progress until then). Recurring: 50 ``cron(..., second=set(range(60)),
unique=True)`` entries in every replica's worker settings."""

from base import System


class Arq(System):
    name = "arq"
    app = "app_arq"

    def worker(self, py, index, concurrency, scenario):
        return [py, "-m", "arq", "app_arq.WorkerSettings"]

    def replica(self, py, index, concurrency):
        return [self.worker(py, index, concurrency, "cluster-recurring")]


SYSTEMS = [Arq()]
