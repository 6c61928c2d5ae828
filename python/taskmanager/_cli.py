"""``python -m taskmanager VERB ...``: the operator's commands.

- ``worker MODULE:ATTRIBUTE``: run a broker program's worker (``_worker.py``),
  with ``--metrics-port`` serving its Prometheus metrics;
- ``dead-letters MODULE:ATTRIBUTE list|show ID|requeue ID...|--all|purge``:
  the broker's dead-letter set (``--json`` on the read verbs);
- ``schedules MODULE:ATTRIBUTE list|pause KEY|resume KEY|remove KEY``: the
  shared recurring schedules in Redis, also those no program registers any
  more (``--json`` on ``list``);
- ``status MODULE:ATTRIBUTE``: workers alive and dead, each module's
  queued, running and delayed tasks with how its tasks ended (totals and
  rates), schedules, dead letters (``_status.py``; ``--json``);
- ``tasks MODULE:ATTRIBUTE show ID``: a task's state, result or error, and
  attempts (``--json``);
- ``dashboard MODULE:ATTRIBUTE``: a live web page of it (``_dashboard.py``).

Each loads the program's ``TaskManager`` as the worker does (its module is
imported, so its Module subclasses and broker settings are the program's
own) and talks to its Redis; it needs no worker running. (``status``
also takes a manager without a broker, and says what little it can see.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, List, Optional

from ._status import json_value, show_task, status
from ._worker import DRAINED, load, run_worker


if TYPE_CHECKING:
    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def _command(commands: _Commands, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """The parser of verb ``name``, whose first argument is MODULE:ATTRIBUTE."""
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("target", metavar="MODULE:ATTRIBUTE", help="where the TaskManager is, like app.tasks:manager")
    return parser


def _worker_parser(commands: _Commands) -> None:
    worker = _command(
        commands,
        "worker",
        help="run a TaskManager(broker=...) as a worker until SIGTERM or Ctrl-C",
        description="Imports MODULE, takes its TaskManager ATTRIBUTE, and runs the tasks other processes send "
        "it until SIGTERM or Ctrl-C, which drain it (a second one stops it at once).",
    )
    worker.add_argument(
        "-c",
        "--concurrency",
        type=int,
        metavar="N",
        help="max_workers of every module of this process (default: as the program sets them)",
    )
    worker.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long running tasks may finish after SIGTERM before they are handed back (default 30)",
    )
    worker.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (0: a free port, logged)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address --metrics-port listens on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )


def _dead_parser(commands: _Commands) -> None:
    dead = _command(
        commands,
        "dead-letters",
        help="list, show, requeue or purge the broker's dead-letter set",
        description="The tasks the broker set apart instead of running: entries it could not read, and poison "
        "tasks whose workers died running them.",
    )
    verbs = dead.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="the dead-lettered tasks, newest first")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    show = verbs.add_parser("show", help="one dead-lettered task, every field")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    requeue = verbs.add_parser("requeue", help="put tasks back in their queues, as first sent")
    requeue.add_argument("ids", nargs="*", metavar="ID")
    requeue.add_argument("--all", action="store_true", help="every dead-lettered task")
    verbs.add_parser("purge", help="empty the dead-letter set")


def _schedules_parser(commands: _Commands) -> None:
    schedules = _command(
        commands,
        "schedules",
        help="list, pause, resume or remove the shared recurring schedules",
        description="The recurring schedules kept in Redis, which fire once per tick across every worker.",
    )
    verbs = schedules.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="every schedule, with its next tick")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    for verb, what in (("pause", "ticks pass without running"), ("resume", "runs again, on its grid"),
                       ("remove", "removed everywhere (a run in progress finishes)")):
        verbs.add_parser(verb, help=f"{verb} the schedule KEY: {what}").add_argument("key")


def _status_parsers(commands: _Commands) -> None:
    status = _command(
        commands,
        "status",
        help="the cluster at a glance: workers, modules, task outcomes, schedules, dead letters",
        description="Reads the cluster from Redis: workers alive and dead (host, pid, modules, what each holds, "
        "when last seen); per module queued, running and delayed tasks, and how its tasks ended (succeeded, "
        "failed, retried, dead-lettered, cancelled: totals, and per minute over the last 1 and 5 minutes); "
        "schedules with their next run; the dead-letter count and the newest few.",
    )
    status.add_argument("--json", action="store_true", help="one JSON object")
    tasks = _command(
        commands,
        "tasks",
        help="look up one task by id",
        description="What Redis holds of a task sent through the broker, by its id (a handle's task_id).",
    )
    verbs = tasks.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser(
        "show",
        help="a task's state, result or error, and attempts",
        description="State (finished, failed, dead, delayed; else, found in its stream, queued or running and "
        "where), its result or its error, and its attempts (the attempt that ran last, and how many times it "
        "was delivered). Exits 1 if Redis holds nothing under ID.",
    )
    show.add_argument("id", metavar="ID", help="the task's id (a handle's task_id)")
    show.add_argument("--json", action="store_true", help="one JSON object")


def _dashboard_parser(commands: _Commands) -> None:
    dashboard = _command(
        commands,
        "dashboard",
        help="serve a live web page of the cluster (workers, queues, schedules, dead letters)",
        description="Serves a page that updates every second: workers, modules and their queues over time, "
        "schedules (pause, resume), dead letters (requeue, purge), a task by id. Loopback unless --host "
        "says otherwise, which then needs a token.",
    )
    dashboard.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0: a free one)")
    dashboard.add_argument("--host", default="127.0.0.1", help="the address (default 127.0.0.1)")
    dashboard.add_argument(
        "--token",
        default=os.environ.get("TASKMANAGER_DASHBOARD_TOKEN"),
        help="require this bearer token (open the page at URL#token=TOKEN); needed off loopback "
        "(default: $TASKMANAGER_DASHBOARD_TOKEN)",
    )


def _dashboard(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ._dashboard import Dashboard

    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be from 0 to 65535, got {args.port}")
    manager = load(args.target, "dashboard", need_broker=False)
    try:
        server = Dashboard(manager, args.host, args.port, args.token)
    except ValueError as e:
        parser.error(str(e))
    except OSError as e:
        parser.error(f"cannot listen on {args.host}:{args.port}: {e}")
    where = "the whole cluster (Redis)" if manager._broker is not None else "this process only (no broker)"
    print(f"dashboard of {args.target}, {where}, at {server.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.close()
    return 0


def _schedules(args: argparse.Namespace) -> int:
    manager = load(args.target, "schedules")
    if args.verb == "list":
        schedules = manager.cluster_stats().schedules
        if args.json:
            print(json.dumps([dataclasses.asdict(s) for s in schedules], indent=2, default=json_value))
            return 0
        if not schedules:
            print("no shared schedules")
        for s in schedules:
            state = "paused" if s.paused else f"next in {s.next_due:.1f}s"
            every = f"cron {s.cron!r} in {s.zone}" if s.cron is not None else f"every {s.interval:g}s"
            counts = f"ticks={s.ticks} skipped={s.skipped} coalesced={s.coalesced} failures={s.failures}"
            print(f"{s.key}  {every}  {state}  {counts}")
        return 0
    schedule = manager.shared_schedule(args.key)
    done = {"pause": schedule.pause, "resume": schedule.resume, "remove": schedule.cancel}[args.verb]()
    if not done:
        if args.verb != "remove" and any(s.key == args.key for s in manager.cluster_stats().schedules):
            print(f"{args.key} was {args.verb}d already")
            return 0
        print(f"no schedule {args.key!r}", file=sys.stderr)
        return 1
    print(f"{args.verb}d {args.key}" if args.verb != "remove" else f"removed {args.key}")
    return 0


def _dead_letters(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    manager = load(args.target, "dead-letters")
    if args.verb == "list":
        if args.limit < 1:
            parser.error(f"--limit must be at least 1, got {args.limit}")
        letters = manager.dead_letters(args.limit)
        if args.json:
            print(json.dumps([dataclasses.asdict(letter) for letter in letters], indent=2))
            return 0
        if not letters:
            print("the dead-letter set is empty")
        for letter in letters:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.dead_at))
            print(f"{letter.id}  {when}  {letter.module}.{letter.name}  {letter.reason}")
        return 0
    if args.verb == "show":
        found = [letter for letter in manager.dead_letters(10_000) if letter.id == args.id]
        if not found:
            print(f"no task {args.id!r} in the dead-letter set", file=sys.stderr)
            return 1
        fields = dataclasses.asdict(found[0])
        if args.json:
            print(json.dumps(fields, indent=2))
        else:
            for key, value in fields.items():
                print(f"{key}: {value}")
        return 0
    if args.verb == "requeue":
        if args.all == bool(args.ids):
            parser.error("requeue takes IDs or --all (one of them)")
        n = manager.requeue_dead_letters(all=True) if args.all else manager.requeue_dead_letters(args.ids)
        print(f"requeued {n} task(s)")
        return 0 if args.all or n == len(args.ids) else 1
    n = manager.purge_dead_letters()
    print(f"purged {n} task(s)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taskmanager", description="Operate a taskmanager program.")
    commands = parser.add_subparsers(dest="command", required=True)
    _worker_parser(commands)
    _dead_parser(commands)
    _schedules_parser(commands)
    _status_parsers(commands)
    _dashboard_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "dashboard":
        logging.basicConfig(level="WARNING")
        return _dashboard(args, parser)
    if args.command in ("status", "tasks"):
        logging.basicConfig(level="WARNING")
        if args.command == "tasks" and not args.id.strip():
            parser.error("tasks show: ID must not be empty")
        try:
            if args.command == "status":
                return status(load(args.target, "status", need_broker=False), args.target, args.json)
            return show_task(load(args.target, "tasks"), args.id, args.json)
        except ConnectionError as e:
            print(f"taskmanager {args.command}: {e}", file=sys.stderr)
            return 1
    if args.command in ("dead-letters", "schedules"):
        logging.basicConfig(level="WARNING")
        return _dead_letters(args, parser) if args.command == "dead-letters" else _schedules(args)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.drain_timeout < 0:
        parser.error(f"--drain-timeout must be at least 0, got {args.drain_timeout}")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        parser.error(f"--metrics-port must be from 0 to 65535, got {args.metrics_port}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    manager = load(args.target)
    if args.metrics_port is not None:
        try:
            server = manager.serve_metrics(args.metrics_port, args.metrics_host)
        except OSError as e:
            parser.error(f"--metrics-port: cannot listen on {args.metrics_host}:{args.metrics_port}: {e}")
        logging.getLogger("taskmanager").info("metrics at %s", server.url)
    code = run_worker(manager, args.drain_timeout, args.concurrency)
    if code != DRAINED:
        # Tasks handed back may still be running here: end the process now,
        # not after them (other workers run them).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
