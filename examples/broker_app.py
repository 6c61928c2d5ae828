"""The broker mode in two terminals, with a redis-server on the default port
(or REDIS_URL):

    python examples/broker_app.py worker     # runs tasks until Ctrl-C
    python examples/broker_app.py            # submits five, prints who ran each

Every process runs this same file, so the names are the same everywhere:
``Mailer.send`` (a method of a Module subclass) and ``__main__:shout`` (a
function registered with ``@manager.task``).
"""

import os
import sys
import time

from taskmanager import Module, TaskManager

manager = TaskManager(broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@manager.task
def shout(text):
    return text.upper()


class Mailer(Module):
    def send(self, to):
        time.sleep(0.1)
        return f"sent to {to} by process {os.getpid()}"


mailer = Mailer(task_manager=manager, max_workers=4)

if __name__ == "__main__":
    manager.start_thread()
    if sys.argv[1:] == ["worker"]:
        print(f"worker {os.getpid()} ready; Ctrl-C stops it", flush=True)
        while True:
            time.sleep(3600)
    handles = [mailer.add_task(mailer.send, args=[f"user{i}@example.com"]) for i in range(5)]
    for handle in handles:
        print(handle.result(timeout=30))
    print(manager.add_task({"method": shout, "args": ["done"]}).result(timeout=30))
    manager.shutdown()
