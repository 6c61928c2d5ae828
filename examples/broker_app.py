"""The broker mode in two terminals, with a redis-server on the default port
(or REDIS_URL). From this directory:

    python -m taskmanager worker broker_app:manager   # a worker; Ctrl-C drains it
    python broker_app.py                              # submits, prints who ran each

Every process imports this same file, so the names are the same everywhere:
the task ``send`` of the module ``broker_app:Mailer`` (a public method of a
Module subclass) and ``broker_app:shout`` (a function registered with
``@manager.task``). The manager is ``submit_only``:
a process that runs this file only submits; the worker command makes its
process a worker.
"""

import os
import time

from taskmanager import Module, TaskManager

manager = TaskManager(broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), submit_only=True)


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
    handles = [mailer.add_task(mailer.send, args=[f"user{i}@example.com"]) for i in range(5)]
    for handle in handles:
        print(handle.result(timeout=30))
    print(manager.add_task({"method": shout, "args": ["done"]}).result(timeout=30))
    manager.shutdown()
