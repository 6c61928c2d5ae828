"""Celery: ``celery -A app_celery worker -P threads -c N`` per worker process
(the thread pool, N threads, like the other systems' N threads; prefork would
put N child processes under each worker). Defaults otherwise (prefetch
multiplier 4, mingle and gossip on, log level WARNING). Kill:
``task_acks_late`` + ``task_reject_on_worker_lost`` (the documented pair;
with the Redis transport an unacknowledged message comes back after
``visibility_timeout``, 1 h by default, which is left as is).

Recurring, twice: ``celery-beat-each`` runs each replica's worker with an
embedded beat (``-B``, its own schedule file), as users deploy by mistake;
``celery-one-beat`` runs the 3 workers without beat plus one ``celery
beat`` process (the documented deployment). Both use ``beat_schedule``
entries with ``schedule: 1.0``."""

from base import System


def _worker(py, concurrency, extra=()):
    return [py, "-m", "celery", "-A", "app_celery", "worker", "-P", "threads", "-c", str(concurrency), *extra]


class Celery(System):
    name = "celery"
    app = "app_celery"

    def worker(self, py, index, concurrency, scenario):
        return _worker(py, concurrency, ["-n", f"w{index}@%h"])


class CeleryBeatEach(Celery):
    name = "celery-beat-each"

    def replica(self, py, index, concurrency):
        return [_worker(py, concurrency, ["-n", f"r{index}@%h", "-B", "-s", f"beat-{index}.db"])]


class CeleryOneBeat(Celery):
    name = "celery-one-beat"

    def replica(self, py, index, concurrency):
        return [_worker(py, concurrency, ["-n", f"r{index}@%h"])]

    def recurring_extra(self, py):
        return [[py, "-m", "celery", "-A", "app_celery", "beat", "-s", "beat-one.db"]]


SYSTEMS = [Celery(), CeleryBeatEach(), CeleryOneBeat()]
