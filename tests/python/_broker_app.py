"""A program run as several processes in the broker tests: the same names in
every process (a Module subclass and a registered function), so any process
runs what any other submits.

    python _broker_app.py URL PREFIX LOG [--recur SECONDS] [--lease SECONDS]

runs as a worker until its standard input closes; each task appends a line
``<pid> <what>`` to LOG. ``--lease`` sets ``broker_lease`` (how long a
claimed task may go without a heartbeat before another process takes it).
"""

import os
import sys
import time

from taskmanager import Module, TaskManager


def append(path: str, line: str) -> None:
    # One write per line: lines of concurrent runs never interleave.
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {line}\n")


class Mailer(Module):
    log = ""

    def send(self, to: str) -> dict:
        append(self.log, f"send {to}")
        return {"to": to, "pid": os.getpid()}

    def tick(self) -> None:
        append(self.log, "tick")

    def slow(self, seconds: float, tag: str) -> dict:
        # Fault tests: a run killed mid-task leaves a "start" without an "end".
        append(self.log, f"start {tag}")
        time.sleep(seconds)
        append(self.log, f"end {tag}")
        return {"tag": tag, "pid": os.getpid()}

    def fail(self, message: str) -> None:
        append(self.log, f"fail {message}")
        raise ValueError(message)


def add(a: int, b: int) -> int:
    return a + b


def make(url: str, prefix: str, log: str, lease=None, timeout: float = 2):
    manager = TaskManager(broker=url, broker_prefix=prefix, broker_timeout=timeout, broker_lease=lease)
    manager.task(add)
    Mailer.log = log
    return manager, Mailer(task_manager=manager, max_workers=2), add


if __name__ == "__main__":
    url, prefix, log = sys.argv[1:4]
    lease = float(sys.argv[sys.argv.index("--lease") + 1]) if "--lease" in sys.argv else None
    manager, mailer, _ = make(url, prefix, log, lease=lease)
    if "--recur" in sys.argv:
        every = float(sys.argv[sys.argv.index("--recur") + 1])
        mailer.schedule_task(mailer.tick, every, reoccurring=True)
    manager.start_thread()
    print("ready", flush=True)
    sys.stdin.read()
    manager.shutdown()
