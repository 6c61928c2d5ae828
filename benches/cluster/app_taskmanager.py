"""taskmanager app for benches/cluster.py (workers import it as
``app_taskmanager:manager``).

``job`` is registered with ``@manager.task`` (named ``app_taskmanager:job``);
the 50 recurring functions ``rec_0`` .. ``rec_49`` too (one schedule per
name: a shared schedule is keyed by its task's name). The manager is
``submit_only`` except in a recurring replica (``BENCH_TM_REPLICA=1``), which
is a worker and a scheduler in one process. ``BENCH_TM_LEASE`` sets
``broker_lease`` (the kill and poison scenarios use 2 s).

``poison`` (cluster-poison) kills its worker process (``common.poison``);
``broker_max_deliveries`` is left at its default (3). ``poison_status``
reads ``manager.dead_letters()`` and the poison's handle (which should
raise ``taskmanager.DeadLettered``).
"""

import os

import common
from taskmanager import DeadLettered, TaskManager

REPLICA = os.environ.get("BENCH_TM_REPLICA") == "1"
_lease = os.environ.get("BENCH_TM_LEASE")

manager = TaskManager(
    broker=common.URL,
    broker_prefix=common.PREFIX,
    submit_only=not REPLICA,
    broker_lease=float(_lease) if _lease else None,
    max_workers=int(os.environ.get("BENCH_CONCURRENCY", "4")),
)


@manager.task
def job(kind, a=None, b=None):
    common.run(kind, a, b)


@manager.task
def poison():
    common.poison()


def _recurring(name):
    def fn():
        common.tick(name)

    fn.__name__ = fn.__qualname__ = name
    return fn


for _name in common.SCHEDULE_NAMES:
    globals()[_name] = manager.task(_recurring(_name))


class Enqueuer:
    def __init__(self):
        manager.start_thread()

    def submit(self, kind, a=None, b=None):
        manager.add_task({"method": job, "args": [kind, a, b]})

    def submit_poison(self):
        self.poison_handle = manager.add_task({"method": poison})

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        letters = [d for d in manager.dead_letters() if d.name.endswith("poison")]
        handle = self.poison_handle
        told = ""
        if handle.done():
            try:
                handle.result(0)
                told = "; handle: returned"
            except DeadLettered:
                told = "; handle: DeadLettered"
            except Exception as exc:  # noqa: BLE001
                told = f"; handle: {type(exc).__name__}"
        if letters:
            return True, True, f"dead_letters() ({letters[0].deliveries} deliveries){told}"
        return False, False, f"not dead-lettered{told}"

    def close(self):
        manager.shutdown(wait=False, cancel_pending=True)


def register_recurring():
    """A replica: this process runs tasks and registers the 50 schedules
    (``schedule_task(fn, 1, reoccurring=True)``); every replica registering
    the same names shares one schedule per name."""
    manager.start_thread()
    for name in common.SCHEDULE_NAMES:
        manager.schedule_task({"method": globals()[name], "delay": 1, "reoccurring": True})
