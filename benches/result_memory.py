"""Redis memory the Redis mode's results cost: 20,000 tasks whose handles
are waited on, then 20,000 fire-and-forget ones (handles dropped, results
kept their TTL for lookups by id), ``used_memory`` before and after each.

    python benches/result_memory.py     # with the package installed

Starts its own ``redis-server`` (tests/python/redis_harness.py) and stops it.
"""

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "python"))

from redis_harness import start_for_test  # noqa: E402

from taskmanager import Module, TaskManager  # noqa: E402

N = 20_000


class Jobs(Module):
    def echo(self, value):
        return value


def used(server) -> int:
    info = server.command("INFO", "memory")
    return int(next(line for line in info.splitlines() if line.startswith("used_memory:")).split(":")[1])


def main() -> None:
    server = start_for_test()
    try:
        manager = TaskManager(broker=server.url, broker_prefix="mem")
        jobs = Jobs(task_manager=manager, max_workers=4)
        manager.start_thread()
        jobs.add_task(jobs.echo, args=(0,)).result(10)
        for kind in ("waited on", "fire and forget"):
            before = used(server)
            handles = [jobs.add_task(jobs.echo, args=({"id": i},)) for i in range(N)]
            if kind == "waited on":
                for handle in handles:
                    handle.result(60)
            else:
                ids = [handle.task_id for handle in handles]
                del handles
                for task_id in ids:
                    manager.result(task_id, timeout=60)
            time.sleep(1)  # the listener deletes in batches
            grown = used(server) - before
            print(f"{N} tasks {kind}: used_memory {grown / 1e6:+.2f} MB ({grown / N:+.0f} B a task)")
        manager.shutdown()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
