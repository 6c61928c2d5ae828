import os
from taskmanager import TaskManager
manager = TaskManager(broker=os.environ["URL"], broker_prefix="cs", submit_only=True)
@manager.task
def job(i):
    return i
def _mk(n):
    def fn():
        return n
    fn.__name__ = fn.__qualname__ = n
    return fn
for _n in [f"rec_{i}" for i in range(50)]:
    globals()[_n] = manager.task(_mk(_n))
