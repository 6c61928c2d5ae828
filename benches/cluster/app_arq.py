"""arq app for benches/cluster.py (workers: ``arq app_arq.WorkerSettings``).

``max_jobs`` is ``BENCH_CONCURRENCY`` (4, like the other systems' threads);
everything else is arq's default (``poll_delay`` 0.5 s, ``job_timeout``
300 s). The job is a coroutine: its 5 ms sleep is ``asyncio.sleep``; its
reports use the same blocking redis-py calls as every other system's. In the
recurring scenario the worker settings carry 50 ``cron`` jobs with
``second=set(range(60))`` (every second) and ``unique=True`` (arq's default:
one run per time across workers).

``poison`` (cluster-poison) kills its worker process (``common.poison``).
arq counts a job's tries (``arq:retry:<id>``) and after ``max_tries`` (5)
stores it as failed (``arq:result:<id>``, "max 5 retries exceeded"); a dead
worker's job is tried again only when its ``arq:in-progress:<id>`` marker
expires (``job_timeout`` + 10 s = 310 s). ``poison_status`` reads those
keys."""

import asyncio
import os

import common
from arq import create_pool, cron
from arq.connections import RedisSettings

SETTINGS = RedisSettings.from_dsn(common.URL)


async def job(ctx, kind, a=None, b=None):
    common.before(kind, a, b)
    pause = common.sleep_for(kind)
    if pause:
        await asyncio.sleep(pause)
    common.after(kind, a, b)


async def poison(ctx):
    common.poison()


def _recurring(name):
    async def fn(ctx):
        common.tick(name)

    fn.__name__ = fn.__qualname__ = name
    return fn


class WorkerSettings:
    functions = [job, poison]
    redis_settings = SETTINGS
    max_jobs = int(os.environ.get("BENCH_CONCURRENCY", "4"))
    cron_jobs = (
        [cron(_recurring(n), name=n, second=set(range(60)), unique=True) for n in common.SCHEDULE_NAMES]
        if os.environ.get("BENCH_SCENARIO") == "cluster-recurring"
        else []
    )


class Enqueuer:
    """Synchronous face for the shared enqueue loop: each submission runs
    ``enqueue_job`` to completion on this process's event loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(SETTINGS))

    def submit(self, kind, a=None, b=None):
        self.loop.run_until_complete(self.pool.enqueue_job("job", kind, a, b))

    def submit_poison(self):
        self.poison_id = self.loop.run_until_complete(self.pool.enqueue_job("poison")).job_id

    def poison_status(self):
        """(in the system's failure registry, final, where)."""
        from arq.constants import in_progress_key_prefix, result_key_prefix, retry_key_prefix

        r = common.client()
        jid = self.poison_id
        tries = int(r.get(retry_key_prefix + jid) or 0)
        if r.exists(result_key_prefix + jid):
            return True, True, f"failed result arq:result ({tries} tries)"
        if r.exists(in_progress_key_prefix + jid):
            ttl = r.pttl(in_progress_key_prefix + jid) / 1000.0
            return False, False, f"no (queued, marked in progress for {ttl:.0f} s more; {tries} tries)"
        return False, False, f"no ({tries} tries)"

    def close(self):
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()
