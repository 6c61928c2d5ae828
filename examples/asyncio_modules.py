"""An asyncio program driving taskmanager modules.

Blocking work (here: a fake fetch that sleeps) runs on a module's worker
threads, never on the event loop; the coroutine awaits each task's handle
directly. A recurring poller runs beside it, and the program watches the
manager with stats() and get_tasks() while it works.

    pip install . && python examples/asyncio_modules.py
"""

import asyncio
import time

from taskmanager import Module, TaskManager


class Fetcher(Module):
    """At most 4 fetches at once, whatever the event loop asks for."""

    def fetch(self, url):
        time.sleep(0.05)  # blocking I/O stands here
        return f"{url}: 200"


class Poller(Module):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.polls = 0

    def poll(self):
        self.polls += 1


async def main():
    with TaskManager() as manager:
        fetcher = Fetcher(task_manager=manager, max_workers=4)
        poller = Poller(task_manager=manager, max_workers=1)
        ticks = poller.schedule_task(poller.poll, 0.02, reoccurring=True, run_now=True)

        urls = [f"https://example.test/{i}" for i in range(12)]
        started = time.monotonic()
        # Each handle is awaitable: gather runs the 12 fetches 4 at a time.
        results = await asyncio.gather(*(fetcher.add_task(fetcher.fetch, args=(url,)) for url in urls))
        took = time.monotonic() - started
        print(f"{len(results)} fetches in {took:.2f} s with max_workers=4: {results[0]}, ...")

        for task in manager.get_tasks():
            print(f"listed: {task.name} in {task.module}, {task.state}, every {task.interval} s, runs={task.runs}")
        print(f"fetcher: {fetcher.stats()}")

        ticks.cancel()
        print(f"poller ran {poller.polls} times while the fetches ran")


if __name__ == "__main__":
    asyncio.run(main())
