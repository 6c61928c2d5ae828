"""``python -m taskmanager status`` and ``tasks ... show``: what an
operator reads of a running cluster (``_cli.py`` parses the commands).

``status`` reads :meth:`TaskManager.cluster_stats` (workers, each module's
queued and running tasks and how its tasks ended, schedules, the
dead-letter count), each module's delayed tasks and the newest dead
letters, all from Redis. A manager
without a broker can see only its own process, which is the CLI's fresh
one: it says so and lists that manager's modules.

``tasks ... show ID`` reads what Redis holds under a task id: its state,
its result or error, and its attempts; for a task Redis has no result,
delay or dead letter for, it searches the streams (queued, or running and
on which worker).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._broker import DeadLettered, RemoteError
from ._types import ClusterStats, Outcomes, Stats, TaskOutcomes

if TYPE_CHECKING:
    from ._api import TaskManager

# The dead letters `status` shows (the count is of all of them).
NEWEST_DEAD = 5
# How long `tasks show` waits for a finished task's result to be read.
RESULT_WAIT = 1.0

_OUTCOMES = ("succeeded", "failed", "retried", "dead_lettered", "cancelled")

IN_PROCESS = (
    "{target} has no broker: this command sees only its own process, a fresh one where nothing runs "
    "(an in-process TaskManager keeps its tasks in the process that made them; give it broker= "
    "to see a cluster)"
)


def json_value(value: object) -> object:
    """What ``--json`` prints of a value JSON has no type for: a datetime
    as ISO 8601 text, with its offset."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _dump(value: object) -> None:
    print(json.dumps(value, indent=2, default=json_value))


def _summed(items: List[Outcomes]) -> Dict[str, float]:
    return {what: sum(getattr(o, what) for o in items) for what in _OUTCOMES}


def _module_rows(cluster: ClusterStats, delayed: Dict[str, int]) -> List[Dict[str, Any]]:
    """Per module: its load, its tasks' outcomes summed, and each task's."""
    names = sorted({m.name for m in cluster.modules} | {t.module for t in cluster.outcomes} | set(delayed))
    loads = {m.name: m for m in cluster.modules}
    rows = []
    for name in names:
        load = loads.get(name)
        tasks: List[TaskOutcomes] = [t for t in cluster.outcomes if t.module == name]
        rows.append(
            {
                "name": name,
                "queued": load.queued if load else 0,
                "running": load.running if load else 0,
                "delayed": delayed.get(name, 0),
                "total": _summed([t.total for t in tasks]),
                "per_minute_1": _summed([t.per_minute_1 for t in tasks]),
                "per_minute_5": _summed([t.per_minute_5 for t in tasks]),
                "tasks": [
                    {
                        "name": t.name,
                        "total": dataclasses.asdict(t.total),
                        "per_minute_1": dataclasses.asdict(t.per_minute_1),
                        "per_minute_5": dataclasses.asdict(t.per_minute_5),
                    }
                    for t in tasks
                ],
            }
        )
    return rows


def _outcome_table(m: Dict[str, Any]) -> List[str]:
    """A module's outcomes as lines: a row per outcome (total, and per
    minute over the last 1 and 5 minutes), then its tasks' totals."""
    if not any(m["total"].values()):
        return ["    no task of it has ended yet"]
    lines = [f"    {'outcome':<14}{'total':>8}{'/min 1m':>9}{'/min 5m':>9}"]
    for what in _OUTCOMES:
        one, five = m["per_minute_1"][what], m["per_minute_5"][what]
        lines.append(f"    {what.replace('_', '-'):<14}{int(m['total'][what]):>8}{one:>9.1f}{five:>9.1f}")
    tasks = []
    for t in m["tasks"]:
        counts = [f"{what.replace('_', '-')} {t['total'][what]}" for what in _OUTCOMES if t["total"][what]]
        tasks.append(f"{t['name']} ({', '.join(counts) or 'none yet'})")
    if tasks:
        lines.append(f"    by task: {'; '.join(tasks)}")
    return lines


def status(manager: "TaskManager", target: str, as_json: bool) -> int:
    if manager._broker is None:
        return _in_process(manager, target, as_json)
    cluster = manager.cluster_stats()
    newest = manager.dead_letters(NEWEST_DEAD) if cluster.dead_letters else []
    delayed = dict(manager._broker_core("status").delayed_by_module()) if cluster.delayed else {}
    modules = _module_rows(cluster, delayed)
    if as_json:
        _dump(
            {
                "broker": True,
                "workers": [dataclasses.asdict(w) for w in cluster.workers],
                "modules": modules,
                "schedules": [dataclasses.asdict(s) for s in cluster.schedules],
                "dead_letters": {"count": cluster.dead_letters, "newest": [dataclasses.asdict(d) for d in newest]},
                "reclaimed": cluster.reclaimed,
            }
        )
        return 0
    alive = sum(w.alive for w in cluster.workers)
    print(f"workers: {alive} alive, {len(cluster.workers) - alive} dead")
    for w in cluster.workers:
        state = "alive" if w.alive else "DEAD "
        taken = f"  {w.reclaimed_from} taken over from it" if w.reclaimed_from else ""
        print(
            f"  {state} {w.id}  host {w.host} pid {w.pid}  modules {', '.join(w.modules) or '-'}  "
            f"holds {w.running}  last seen {w.last_seen:.1f} s ago{taken}"
        )
    print(f"modules: {len(modules)}")
    for m in modules:
        print(f"  {m['name']}  queued {m['queued']}  running {m['running']}  delayed {m['delayed']}")
        for line in _outcome_table(m):
            print(line)
    print(f"schedules: {len(cluster.schedules)}")
    for s in cluster.schedules:
        every = f"cron {s.cron!r} in {s.zone}" if s.cron is not None else f"every {s.interval:g}s"
        when = s.next_run.isoformat() if s.next_run is not None else "-"
        state = "paused" if s.paused else f"next run {when} (in {s.next_due:.1f} s)"
        print(f"  {s.key}  {s.module}  {s.name}  {every}  {state}  ticks {s.ticks}  failures {s.failures}")
    print(f"dead letters: {cluster.dead_letters}")
    for d in newest:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.dead_at))
        print(f"  {d.id}  {when}  {d.module}.{d.name}  {d.reason}")
    return 0


def _in_process(manager: "TaskManager", target: str, as_json: bool) -> int:
    note = IN_PROCESS.format(target=target)
    modules = [("default", Stats(*manager._default.stats()))]
    modules += [(m._tm_name, m.stats()) for m in manager._live_modules()]
    if as_json:
        _dump({"broker": False, "note": note, "modules": [dict(name=n, **_local(s)) for n, s in modules]})
        return 0
    print(note)
    for name, s in modules:
        print(f"  {name}  queued {s.queued}  running {s.running}  completed {s.completed}  failed {s.failed}  "
              f"timers {s.pending_timers}")
    return 0


def _local(stats: Stats) -> Dict[str, Any]:
    fields = dataclasses.asdict(stats)
    fields.pop("cluster", None)
    return fields


def task_fields(manager: "TaskManager", task_id: str) -> Optional[Dict[str, Any]]:
    """What Redis holds of the task ``task_id`` (state, result or error,
    attempts; where it waits or runs), or None if nothing."""
    state = manager.task_state(task_id)
    fields: Dict[str, Any] = {"id": task_id, "state": state}
    if state == "unknown":
        found = manager._broker_core("tasks show").locate(task_id)
        if found is None:
            return None
        module, name, worker, deliveries, attempt = found
        fields.update(state="running" if worker else "queued", module=module, name=name, worker=worker)
        fields.update(attempt=attempt, deliveries=deliveries)
        return fields
    if state in ("finished", "failed", "dead"):
        fields.update(_outcome(manager, task_id))
    if state == "dead":
        letters = [d for d in manager.dead_letters(10_000) if d.id == task_id]
        if letters:
            fields["dead_letter"] = dataclasses.asdict(letters[0])
    attempts = manager.attempts(task_id)
    fields["attempt"], fields["deliveries"] = attempts if attempts is not None else (None, None)
    return fields


def show_task(manager: "TaskManager", task_id: str, as_json: bool) -> int:
    fields = task_fields(manager, task_id)
    if fields is None:
        print(
            f"no task {task_id!r}: Redis holds no result, delayed entry, dead letter or queued or running "
            "task under that id (a result is kept for the result TTL, then forgotten)",
            file=sys.stderr,
        )
        return 1
    return _print_task(fields, as_json)


def _print_task(fields: Dict[str, Any], as_json: bool) -> int:
    if as_json:
        _dump(fields)
        return 0
    for key, value in fields.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif key == "traceback":
            print(f"{key}:\n{value}")
        else:
            print(f"{key}: {'-' if value is None else value}")
    return 0


def _outcome(manager: "TaskManager", task_id: str) -> Dict[str, Any]:
    """A finished task's result, or its error."""
    try:
        return {"result": manager.result(task_id, timeout=RESULT_WAIT)}
    except RemoteError as e:
        return {"error": {"type": e.kind, "message": e.message}, "traceback": e.remote_traceback}
    except DeadLettered as e:
        return {"error": {"type": "DeadLettered", "message": e.reason}}
    except TimeoutError:
        # Expired between the state and the read.
        return {"result": None, "note": "its result expired just now"}
