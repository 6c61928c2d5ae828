"""Celery app for benches/cluster.py (workers: ``celery -A app_celery worker``).

Results are ignored (``task_ignore_result``: no result backend, as the jobs
report to Redis themselves). In the kill scenario (``BENCH_SCENARIO``) the
documented reliability settings are on: ``task_acks_late=True`` and
``task_reject_on_worker_lost=True``. ``beat_schedule`` holds the 50
recurring 1 s entries (``schedule: 1.0``); only a beat (``-B`` or ``celery
beat``) reads it.
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
if os.environ.get("BENCH_SCENARIO") == "cluster-kill":
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True)


@app.task(name="app_celery.job")
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@app.task(name="app_celery.rec")
def rec(name):
    common.tick(name)


class Enqueuer:
    def submit(self, kind, a=None, b=None):
        job.apply_async((kind, a, b))

    def close(self):
        pass
