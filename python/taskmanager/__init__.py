"""Background work inside one program: the PythonTaskManager spec's API on a Rust core.

    from taskmanager import TaskManager, Module

    manager = TaskManager()
    manager.start_thread()
    module = Module(task_manager=manager, max_workers=5)
    module.add_task(print, args=("hello",))
    module.schedule_task(print, 1, args=("every second",), reoccurring=True)

Every call returns a handle that is a :class:`concurrent.futures.Future`
(and can be awaited). Exceptions in tasks and callbacks are logged on the
``taskmanager`` logger, stored on the handle, and never stop a worker or a
recurring task.
"""

from importlib.metadata import version as _version

from ._api import Module, TaskManager
from ._broker import DeadLettered, RemoteError, ResultLost, SharedSchedule
from ._handle import RecurringHandle, TaskHandle
from ._limits import TimeLimitExceeded
from ._dashboard import Dashboard
from ._metrics import MetricsCollector, MetricsServer
from ._taskmanager import QueueFull, Retry
from ._types import (
    ClaimedTask,
    ClusterStats,
    DeadLetter,
    Event,
    ModuleLoad,
    Outcomes,
    ScheduleInfo,
    ShutdownTimedOut,
    Stats,
    TaskInfo,
    TaskOutcomes,
    WorkerInfo,
)

# The installed distribution's version: the crates' (Cargo.toml), through maturin.
__version__: str = _version("taskmanager")
del _version

__all__ = [
    "TaskManager",
    "Module",
    "TaskHandle",
    "RecurringHandle",
    "QueueFull",
    "Retry",
    "TimeLimitExceeded",
    "ShutdownTimedOut",
    "Stats",
    "TaskInfo",
    "Event",
    "RemoteError",
    "ResultLost",
    "DeadLettered",
    "DeadLetter",
    "SharedSchedule",
    "ClusterStats",
    "ModuleLoad",
    "ScheduleInfo",
    "WorkerInfo",
    "MetricsServer",
    "MetricsCollector",
    "Dashboard",
    "ClaimedTask",
    "TaskOutcomes",
    "Outcomes",
]

# The public names live here, whatever file defines them.
for _public in (
    TaskManager,
    Module,
    TaskHandle,
    RecurringHandle,
    ShutdownTimedOut,
    Stats,
    TaskInfo,
    Event,
    RemoteError,
    ResultLost,
    DeadLettered,
    DeadLetter,
    TimeLimitExceeded,
    ClusterStats,
    ModuleLoad,
    ScheduleInfo,
    WorkerInfo,
    MetricsServer,
    MetricsCollector,
    Dashboard,
    ClaimedTask,
    TaskOutcomes,
    Outcomes,
):
    _public.__module__ = __name__
del _public
