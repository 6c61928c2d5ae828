"""Celery app for benches/cluster.py (workers: ``celery -A app_celery worker``).

Results are ignored (``task_ignore_result``: no result backend, as the jobs
report to Redis themselves). In the kill and poison scenarios
(``BENCH_SCENARIO``) the documented reliability settings are on:
``task_acks_late=True`` and ``task_reject_on_worker_lost=True``.
``beat_schedule`` holds the 50 recurring 1 s entries (``schedule: 1.0``);
only a beat (``-B`` or ``celery beat``) reads it.

``poison`` (cluster-poison) kills its worker process (``common.poison``).
Celery keeps no record of a task whose worker process died (and results
are ignored here); ``poison_status`` looks for the message in kombu's
``unacked`` hash, where an acks-late message of a dead worker waits for
the transport's ``visibility_timeout`` (1 h) before it is delivered again.
"""

import os

import common
from celery import Celery

app = Celery("app_celery", broker=common.URL)
app.conf.update(
    task_ignore_result=True,
    task_default_queue=f"{common.PREFIX}-celery",
    broker_connection_retry_on_startup=True,
    beat_schedule={
        name: {"task": "app_celery.rec", "schedule": 1.0, "args": (name,)} for name in common.SCHEDULE_NAMES
    },
)
if os.environ.get("BENCH_SCENARIO") in ("cluster-kill", "cluster-poison"):
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True)


@app.task(name="app_celery.job")
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@app.task(name="app_celery.poison")
def poison():
    common.poison()


@app.task(name="app_celery.rec")
def rec(name):
    common.tick(name)


class Enqueuer:
    def submit(self, kind, a=None, b=None):
        job.apply_async((kind, a, b))

    def submit_poison(self):
        self.poison_id = poison.apply_async().id

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        r = common.client()
        tag = self.poison_id.encode()
        if any(tag in v for v in r.hvals("unacked")):
            return False, False, "no (message in kombu's unacked hash, back after visibility_timeout 1 h)"
        queued = any(tag in m for m in r.lrange(app.conf.task_default_queue, 0, -1))
        return False, False, "no (message back in the queue)" if queued else "no"

    def close(self):
        pass
