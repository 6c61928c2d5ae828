"""Huey app for benches/cluster.py (workers: ``huey_consumer app_huey.huey
-w N -k thread``). ``RedisHuey`` with its defaults (blocking BRPOP reads).

Recurring: huey's ``periodic_task`` takes a ``crontab``, whose finest step is
one minute, so a 1 s schedule is written the way huey users do it: a task
that schedules its own next run (``rec`` re-schedules itself for
``due + 1`` s). Each replica starts the 50 chains (``register_recurring``),
as each replica registers its schedules; nothing in huey notices that
another replica started the same chain.

``poison`` (cluster-poison) kills its consumer process (``common.poison``).
A RedisHuey task is popped from its list and never acknowledged, so a
task whose consumer died is gone; huey keeps no record of it
(``poison_status`` checks the queue)."""

import time

import common
from huey import RedisHuey

huey = RedisHuey(f"{common.PREFIX}-huey", url=common.URL)


@huey.task()
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@huey.task()
def poison():
    common.poison()


@huey.task()
def rec(name, due):
    common.tick(name)
    nxt = due + 1.0
    rec.schedule((name, nxt), delay=max(0.0, nxt - time.time()))


class Enqueuer:
    def submit(self, kind, a=None, b=None):
        job(kind, a, b)

    def submit_poison(self):
        self.poison_id = poison().id

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        queued = any(t.id == self.poison_id for t in huey.pending())
        return False, False, "no (still queued)" if queued else "no (popped, never acknowledged: gone)"

    def close(self):
        pass


def register_recurring():
    due = time.time() + 1.0
    for name in common.SCHEDULE_NAMES:
        rec.schedule((name, due), delay=max(0.0, due - time.time()))
