"""Dramatiq app for benches/cluster.py (workers: ``dramatiq app_dramatiq
--processes 1 --threads N``). Redis broker with its defaults (messages a
dead worker held are requeued by the others once its heartbeat is older than
``heartbeat_timeout``, 60 s by default). Recurring: dramatiq has no
scheduler; its docs pair it with APScheduler, so each replica runs
``register_recurring`` (an APScheduler ``BlockingScheduler`` with one 1 s
interval job per schedule that sends ``rec``).

``poison`` (cluster-poison) kills its worker process (``common.poison``).
Dramatiq's dead-letter queue (``<queue>.XQ``) takes messages whose retries
ran out after exceptions, not ones whose worker died; ``poison_status``
looks in it, in the dead workers' ack sets (requeued by the queue
maintenance once the worker's heartbeat is ``heartbeat_timeout`` old) and
in the queue."""

import common
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=common.URL, namespace=f"{common.PREFIX}-dramatiq")
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@dramatiq.actor(queue_name="bench")
def poison():
    common.poison()


@dramatiq.actor(queue_name="bench")
def rec(name):
    common.tick(name)


class Enqueuer:
    def submit(self, kind, a=None, b=None):
        job.send(kind, a, b)

    def submit_poison(self):
        # The Redis broker keys a message by its own id (``redis_message_id``).
        message = poison.send()
        self.poison_id = message.options.get("redis_message_id", message.message_id)

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        r = common.client()
        ns = broker.namespace
        mid = self.poison_id
        if r.zscore(f"{ns}:bench.XQ", mid) is not None:
            return True, True, "dead-letter queue bench.XQ"
        for key in r.scan_iter(f"{ns}:__acks__.*"):
            if r.sismember(key, mid):
                return False, False, "no (message in a worker's ack set, requeued after heartbeat_timeout 60 s)"
        if mid.encode() in r.lrange(f"{ns}:bench", 0, -1):
            return False, False, "no (message back in the queue)"
        return False, False, "no"

    def close(self):
        broker.close()


def register_recurring():
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler()
    for name in common.SCHEDULE_NAMES:
        scheduler.add_job(rec.send, "interval", seconds=1, args=[name], id=name, max_instances=1, coalesce=True)
    scheduler.start()
