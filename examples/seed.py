"""The spec's example, as written, with its two typos mended (the missing
colon after ``def __init__(self, **kwargs)``; ``schedule_task`` called on the
module). Prints ``hello``, ``hello``, then ``once`` at 1 s, ``every`` each
second from 1 s and ``every-now`` each second from now, until Ctrl-C.

    python examples/seed.py              # until Ctrl-C
    python examples/seed.py --seconds 3  # stop by itself
"""

import sys

from taskmanager import TaskManager, Module


class SomeModule(Module):
    def __init__(self, **kwargs):
        super(SomeModule, self).__init__(**kwargs)

    def some_event(self, some_string):
        print(some_string, flush=True)

    def some_other_event(self, some_string):
        return some_string

    def some_callback(self, data):
        print(data, flush=True)


manager = TaskManager()
manager.start_thread()

something = SomeModule(task_manager=manager, max_workers=5)


# will create a task to be run asap
# some_event prints "hello"
something.add_task(something.some_event, args=("hello",), kwargs=None, callback=None)

# will create a task to be run asap
# some_callback prints "hello"
something.add_task(something.some_other_event, args=("hello",), kwargs=None, callback=something.some_callback)

# will create a task to be run in one second
# some_event prints "once" after 1 second
something.schedule_task(something.some_event, 1, args=("once",), kwargs=None, callback=None, reoccurring=False, run_now=False)

# will create a task to be run every one second
# some_event prints "every" every 1 second, starting in 1 second
something.schedule_task(something.some_event, 1, args=("every",), kwargs=None, callback=None, reoccurring=True, run_now=False)

# will create a task to be run every one second
# some_event prints "every-now" every 1 second, runs it now too
something.schedule_task(something.some_event, 1, args=("every-now",), kwargs=None, callback=None, reoccurring=True, run_now=True)

# The started manager keeps the program alive (recurring work is pending)
# until Ctrl-C. With --seconds N, stop after N seconds instead.
if len(sys.argv) == 3 and sys.argv[1] == "--seconds":
    import time

    time.sleep(float(sys.argv[2]))
    manager.shutdown()
