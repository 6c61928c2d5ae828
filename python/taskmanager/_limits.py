"""Time limits (``time_limit=``): the exception a task past its limit gets,
and the two CPython calls that deliver it into the task's thread. The
native half (``bindings/python/src/limits.rs``) decides when; this module
only wraps ``PyThreadState_SetAsyncExc`` through ctypes, so that no unsafe
Rust is needed for it.
"""

from __future__ import annotations

import ctypes


class TimeLimitExceeded(Exception):
    """Raised inside a task that ran past its ``time_limit=``, at the next
    Python instruction it runs: catch it to clean up (the run still counts
    as failed, and the handle raises it). An ``async def`` task is
    cancelled instead (its coroutine gets ``CancelledError``), and its
    handle raises this. Code that does not return to Python (a blocking C
    call) cannot be interrupted: a second past its limit it is given up
    (logged; its handle raises this at once, its worker's place goes to a
    new thread, and what it returns later is dropped)."""

    def __init__(self, message: str = "the task ran past its time_limit") -> None:
        super().__init__(message)


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_set_async_exc.restype = ctypes.c_int
# The same function with NULL (clears a pending exception): its own
# prototype, since py_object cannot be NULL.
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


def raise_in(ident: int) -> int:
    """Makes the thread ``ident`` raise :class:`TimeLimitExceeded` at its
    next Python instruction; the number of threads it reached (0 or 1)."""
    return _set_async_exc(ident, TimeLimitExceeded)


def clear(ident: int) -> int:
    """Withdraws an exception :func:`raise_in` left pending on ``ident``."""
    return _clear_async_exc(ident, None)
