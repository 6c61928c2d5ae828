"""Named tasks through a broker (Redis): what crosses processes is a name and
JSON, never pickled code.

A task's name says where every process finds the same callable:

* a method of a ``Module`` subclass is ``"<module name>.<method>"``: the
  worker runs that method of its own module of that name (module names are
  class names, so every process of the same program has it);
* a plain function is ``"<python module>:<qualname>"``, and must be
  registered with ``@manager.task`` in every process (the decorator runs when
  the program imports it). Only registered functions and the public methods
  of your ``Module`` subclasses can run: nothing written into Redis makes a
  worker import or call anything else.

Arguments and results are JSON (``json.dumps``): ``None``, bools, numbers,
strings, lists, tuples (they arrive as lists) and dicts with string keys.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["RemoteError", "ResultLost", "SharedSchedule"]


class RemoteError(Exception):
    """A task failed in the worker process that ran it: ``kind`` is the
    exception's type name there, ``message`` its text and ``remote_traceback``
    the worker's traceback text."""

    def __init__(self, kind: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.remote_traceback = remote_traceback


class ResultLost(Exception):
    """The task went to the broker but its result cannot reach this handle
    (the manager shut down first, or the result expired); the task itself
    ran, or runs, elsewhere."""


class SharedSchedule:
    """The handle of a recurring task kept in Redis: it fires once per tick
    across every process, and ``cancel``/``pause``/``resume`` act
    cluster-wide."""

    def __init__(self, core: Any) -> None:
        self._core = core

    @property
    def key(self) -> str:
        """The schedule's key in Redis (the task's name)."""
        return str(self._core.key)

    @property
    def created(self) -> bool:
        """Whether this call created it (False: another process had)."""
        return bool(self._core.created)

    def cancel(self) -> bool:
        """Removes the schedule everywhere; True if it existed."""
        return bool(self._core.cancel())

    def pause(self) -> bool:
        """Ticks pass without running until :meth:`resume`."""
        return bool(self._core.pause())

    def resume(self) -> bool:
        return bool(self._core.resume())

    def counts(self) -> Optional[Tuple[int, int]]:
        """(ticks run, ticks skipped while a run was still going), cluster-wide;
        None once cancelled."""
        counts = self._core.counts()
        return None if counts is None else (int(counts[0]), int(counts[1]))

    def __repr__(self) -> str:
        return f"<SharedSchedule {self.key!r}>"


def _describe(value: object) -> str:
    return type(value).__qualname__


def _function_name(function: Callable[..., Any], what: str) -> str:
    qualname = getattr(function, "__qualname__", None)
    module = getattr(function, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise TypeError(f"{what}: {function!r} has no stable name (no __module__ and __qualname__)")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TypeError(
            f"{what}: {module}:{qualname} is a lambda or a local function, which another process cannot find; "
            "use a module-level function registered with @manager.task, or a method of your Module subclass"
        )
    if module == "__main__":
        module = _main_name()
    return f"{module}:{qualname}"


def _main_name() -> str:
    """The name ``__main__`` is imported by elsewhere: its module name under
    ``python -m``, else its file's stem (``python app.py`` and a worker
    importing ``app`` agree)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return str(spec.name)
    path = getattr(main, "__file__", None)
    if isinstance(path, str):
        return os.path.splitext(os.path.basename(path))[0]
    return "__main__"


def task_name(function: Callable[..., Any], functions: Mapping[str, Callable[..., Any]], what: str) -> str:
    """The name another process finds ``function`` by, or a TypeError naming
    ``what`` (the argument) that says why it has none."""
    from ._api import Module

    owner = getattr(function, "__self__", None)
    if isinstance(owner, Module):
        method = getattr(function, "__name__", "")
        if _own_method(type(owner), method) is None:
            raise TypeError(
                f"{what}: {method!r} is not a public method defined on {type(owner).__name__}, "
                "so a worker may not run it by name"
            )
        return f"{owner._tm_name}.{method}"
    if not callable(function):
        raise TypeError(f"{what} must be callable, got {_describe(function)}")
    name = _function_name(function, what)
    if functions.get(name) is not function:
        raise TypeError(
            f"{what}: {name} is not registered for the broker: decorate it with @manager.task "
            "(in the module every process imports), so workers can find it by name"
        )
    return name


def _own_method(cls: type, name: str) -> Optional[Callable[..., Any]]:
    """The public method ``name`` of a ``Module`` subclass ``cls``, defined by
    the subclass (not by ``Module`` or ``object``), or None."""
    from ._api import Module

    if not name or name.startswith("_"):
        return None
    for klass in cls.__mro__:
        if klass is Module or klass is object:
            return None
        found = klass.__dict__.get(name)
        if found is not None:
            return found if callable(found) else None
    return None


def _check_json(value: object, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} cannot cross processes as JSON ({_describe(value)}): {e}") from None


def encode(
    args: Optional[Sequence[Any]],
    kwargs: Optional[Mapping[str, Any]],
    callbacks: List[str],
) -> str:
    """The JSON text of a call: each argument checked on its own, so the error
    names it."""
    args = [] if args is None else args
    kwargs = {} if kwargs is None else kwargs
    # Exact lists, tuples and dicts (the usual case) skip the abc checks.
    if type(args) not in (list, tuple) and (isinstance(args, (str, bytes)) or not isinstance(args, Sequence)):
        raise TypeError(f"args must be a list or tuple, got {_describe(args)}")
    if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs must be a dict, got {_describe(kwargs)}")
    call = {"args": list(args), "kwargs": dict(kwargs), "callbacks": callbacks}
    if all(isinstance(key, str) for key in call["kwargs"]):
        try:
            # The usual case, in one pass; on failure, find the culprit.
            return json.dumps(call, allow_nan=False)
        except (TypeError, ValueError):
            pass
    for i, arg in enumerate(args):
        _check_json(arg, f"args[{i}]")
    for key, arg in kwargs.items():
        if not isinstance(key, str):
            raise TypeError(f"kwargs keys must be str, got {_describe(key)}")
        _check_json(arg, f"kwargs[{key!r}]")
    return json.dumps(call, allow_nan=False)


def callback_names(
    callback: Any, functions: Mapping[str, Callable[..., Any]]
) -> List[str]:
    if callback is None:
        return []
    callbacks = list(callback) if isinstance(callback, (list, tuple)) else [callback]
    return [task_name(c, functions, f"callback[{i}]" if len(callbacks) > 1 else "callback") for i, c in enumerate(callbacks)]


def decode(text: str) -> Any:
    return json.loads(text)


def error_parts(error: BaseException) -> Tuple[str, str, str]:
    """What a submitter learns of an exception raised in a worker."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return (type(error).__name__, str(error), text)


class Dispatcher:
    """Runs a module's named tasks in the worker that claimed them: resolves
    the name (see the module docs), calls it, then each callback with its
    value, and returns the value as JSON text."""

    def __init__(self, module: Any, functions: Dict[str, Callable[..., Any]]) -> None:
        self._module = module
        self._functions = functions

    def resolve(self, name: str) -> Callable[..., Any]:
        if ":" in name:
            function = self._functions.get(name)
            if function is None:
                raise LookupError(f"no function {name} is registered with @manager.task in this worker")
            return function
        owner, _, method = name.rpartition(".")
        module = self._module
        if module is None or owner != module._tm_name or _own_method(type(module), method) is None:
            raise LookupError(f"no method {name} on this worker's module {getattr(module, '_tm_name', None)!r}")
        bound: Callable[..., Any] = getattr(module, method)
        return bound

    def __call__(self, name: str, payload: str) -> str:
        call = json.loads(payload)
        value = self.resolve(name)(*call["args"], **call["kwargs"])
        for callback in call.get("callbacks", []):
            self.resolve(callback)(value)
        return json.dumps(value, allow_nan=False)
