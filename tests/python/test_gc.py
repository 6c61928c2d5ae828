"""Classes that hold Python objects are safe for the garbage collector: a
reference cycle through a handle's stored exception is collected."""

import gc
import logging
import time
import weakref

from taskmanager import Module, TaskManager


def _until(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


class Poller(Module):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The module keeps its own handle: handle -> last exception ->
        # traceback -> poll's frame -> self -> handle.
        self.handle = self.schedule_task(self.poll, 0.01, reoccurring=True, run_now=True)

    def poll(self):
        raise RuntimeError("source down")


def test_a_cycle_through_a_recurring_handles_last_exception_is_collected():
    # Log records keep the exception (and its traceback) alive on purpose;
    # keep them out of this test, which is about our own references.
    log = logging.getLogger("taskmanager")
    log.disabled = True
    manager = TaskManager()
    manager.start_thread()
    try:
        poller = Poller(task_manager=manager, max_workers=1)
        assert _until(lambda: poller.handle.failures >= 2)
        assert isinstance(poller.handle.last_exception, RuntimeError)
        assert poller.handle.cancel()
        assert _until(lambda: poller.handle._core.done)
        ref = weakref.ref(poller)
        del poller
        gc.collect()
        assert ref() is None, "the poller was kept alive by an uncollectable cycle"
    finally:
        log.disabled = False
        manager.shutdown(cancel_pending=True)
