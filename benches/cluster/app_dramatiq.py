"""Dramatiq app for benches/cluster.py (workers: ``dramatiq app_dramatiq
--processes 1 --threads N``). Redis broker with its defaults (messages a
dead worker held are requeued by the others once its heartbeat is older than
``heartbeat_timeout``, 60 s by default). Recurring: dramatiq has no
scheduler; its docs pair it with APScheduler, so each replica runs
``register_recurring`` (an APScheduler ``BlockingScheduler`` with one 1 s
interval job per schedule that sends ``rec``)."""

import common
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=common.URL, namespace=f"{common.PREFIX}-dramatiq")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@dramatiq.actor(queue_name="bench")
def rec(name):
    common.tick(name)


class Enqueuer:
    def submit(self, kind, a=None, b=None):
        job.send(kind, a, b)

    def close(self):
        broker.close()


def register_recurring():
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler()
    for name in common.SCHEDULE_NAMES:
        scheduler.add_job(rec.send, "interval", seconds=1, args=[name], id=name, max_instances=1, coalesce=True)
    scheduler.start()
