"""Huey: ``huey_consumer app_huey.huey -w N -k thread`` per worker process
(N worker threads). ``RedisHuey`` defaults: a task is popped from the list,
no acknowledgement, so a killed consumer's running and prefetched tasks are
gone. Recurring: ``periodic_task`` is crontab-based (minute resolution), so
each replica starts self-rescheduling 1 s chains (``register.py
app_huey``) beside its consumer."""

from base import System, script


class Huey(System):
    name = "huey"
    app = "app_huey"

    def worker(self, py, index, concurrency, scenario):
        return [py, "-m", "huey.bin.huey_consumer", "app_huey.huey", "-w", str(concurrency), "-k", "thread"]

    def replica(self, py, index, concurrency):
        return [self.worker(py, index, concurrency, "cluster-recurring"), [py, script("register.py"), "app_huey"]]


SYSTEMS = [Huey()]
