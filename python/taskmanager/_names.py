"""Names that identify a task's code across processes, and the one rule of
what a name may run (with a broker).

What crosses processes is a name and JSON, never pickled code. A worker runs
only what its own ``TaskManager`` registered, and only this:

* a **public method defined on a ``Module`` subclass**: a function (or a
  ``classmethod`` or ``staticmethod``) written in the body of the class, or
  of a ``Module`` subclass it inherits from, whose name does not start with
  ``_``. Not a method of ``Module`` itself or of a mixin that is not a
  ``Module`` subclass, not a nested class, a property or any other callable
  attribute, and not a function defined elsewhere and assigned to the class
  (``run = subprocess.getoutput`` runs nothing);
* a **function registered with ``@manager.task``**.

A module's name is its class's ``module:qualname`` (``app.mail:Mailer``;
``__main__`` is named as a worker imports it), so two ``Mailer`` classes in
two Python modules are two modules; a method's task is named by the method
(``send``), a function's by its ``module:qualname``.
"""

from __future__ import annotations

import inspect
import os
import sys
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from ._api import Module, TaskManager


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


def _python_module(module: str) -> str:
    return _main_name() if module == "__main__" else module


def module_name(cls: type) -> str:
    """A ``Module`` subclass's name with a broker: ``module:qualname``."""
    return f"{_python_module(cls.__module__)}:{cls.__qualname__}"


def function_name(function: Callable[..., Any], what: str) -> str:
    """A function's task name, ``module:qualname``, or a TypeError naming
    ``what`` that says why another process cannot find it."""
    qualname = getattr(function, "__qualname__", None)
    module = getattr(function, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise TypeError(f"{what}: {function!r} has no stable name (no __module__ and __qualname__)")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise TypeError(
            f"{what}: {module}:{qualname} is a lambda or a local function, which another process cannot find; "
            "use a module-level function registered with @manager.task, or a method of your Module subclass"
        )
    return f"{_python_module(module)}:{qualname}"


_MISSING = object()


def runnable(cls: type, attribute: str) -> bool:
    """The rule (see the module docs): whether ``attribute`` of the
    ``Module`` subclass ``cls`` may run as a task."""
    from ._api import Module

    if not attribute or attribute.startswith("_"):
        return False
    for klass in cls.__mro__:
        raw = vars(klass).get(attribute, _MISSING)
        if raw is _MISSING:
            continue
        if klass is Module or not issubclass(klass, Module):
            # Module's own, object's, or a mixin's: not the user's module.
            return False
        function = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        return inspect.isfunction(function) and function.__qualname__ == f"{klass.__qualname__}.{attribute}"
    return False


def runnable_names(cls: type) -> List[str]:
    """Every attribute of ``cls`` the rule lets run, sorted."""
    names = {name for klass in cls.__mro__ for name in vars(klass)}
    return sorted(name for name in names if runnable(cls, name))


class Namer:
    """Names a manager's callables for its native half (one per manager
    with a broker): ``namer(callable, what) -> (ModuleCore, name)``, the
    module that owns the callable and its task's name there, or a TypeError
    naming ``what`` (the argument) that says why it cannot run by name."""

    def __init__(self, manager: "TaskManager") -> None:
        # Weak: the manager holds its native half, which holds this.
        self._manager = weakref.ref(manager)

    def __call__(self, function: Any, what: str) -> Tuple[Any, str]:
        from ._api import Module

        manager = self._manager()
        if manager is None:
            raise RuntimeError("the TaskManager is gone")
        owner = getattr(function, "__self__", None)
        if isinstance(owner, Module) or (isinstance(owner, type) and issubclass(owner, Module)):
            cls = owner if isinstance(owner, type) else type(owner)
            return self._method(manager, cls, getattr(function, "__name__", ""), what, owner)
        if not callable(function):
            raise TypeError(f"{what} must be callable, got {type(function).__qualname__}")
        name = function_name(function, what)
        if manager._functions.get(name) is function:
            return manager._default, name
        # A staticmethod read from a Module subclass is a plain function.
        qualname = getattr(function, "__qualname__", "")
        owner_name, _, attribute = qualname.rpartition(".")
        for module in manager._live_modules():
            cls = type(module)
            if cls.__qualname__ == owner_name and cls.__module__ == getattr(function, "__module__", None):
                return self._method(manager, cls, attribute, what, module)
        raise TypeError(
            f"{what}: {name} is not registered for the broker: decorate it with @manager.task "
            "(in the module every process imports), so workers can find it by name"
        )

    @staticmethod
    def _method(manager: "TaskManager", cls: type, attribute: str, what: str, owner: Any) -> Tuple[Any, str]:
        if not runnable(cls, attribute):
            raise TypeError(
                f"{what}: {attribute!r} is not a public method defined on the Module subclass {cls.__qualname__}, "
                "so a worker may not run it by name (see taskmanager._names)"
            )
        module: Optional["Module"] = owner if not isinstance(owner, type) else manager._module_of(cls)
        if module is None or module.task_manager is not manager:
            raise TypeError(
                f"{what}: {cls.__qualname__}.{attribute} belongs to no module of this TaskManager; "
                f"create the {cls.__qualname__} module with task_manager= this manager"
            )
        return module._tm_core, attribute


def registrations(module: "Module") -> Dict[str, Callable[..., Any]]:
    """What a module of a broker's manager runs by name: each runnable
    attribute, bound to it."""
    return {name: getattr(module, name) for name in runnable_names(type(module))}
