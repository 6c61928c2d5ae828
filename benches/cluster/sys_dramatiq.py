"""Dramatiq: ``dramatiq app_dramatiq --processes 1 --threads N`` per worker
process (a supervisor and one worker process with N threads). Redis broker
defaults (a dead worker's messages are requeued once its heartbeat is 60 s
old). Recurring: dramatiq has no scheduler; each replica runs its worker and
an APScheduler process (``register.py app_dramatiq``) with 1 s interval jobs
that send the message, the pairing dramatiq's docs suggest."""

from base import System, script


class Dramatiq(System):
    name = "dramatiq"
    app = "app_dramatiq"

    def worker(self, py, index, concurrency, scenario):
        return [py, "-m", "dramatiq", "app_dramatiq", "--processes", "1", "--threads", str(concurrency)]

    def replica(self, py, index, concurrency):
        return [self.worker(py, index, concurrency, "cluster-recurring"), [py, script("register.py"), "app_dramatiq"]]


SYSTEMS = [Dramatiq()]
