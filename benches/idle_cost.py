"""What idle taskmanager processes cost Redis: commands per second, counted
by Redis itself (``INFO commandstats``), with nothing submitted.

Run (from the repository root, with the package installed)::

    python benches/idle_cost.py                 # every scenario, 10 s each
    python benches/idle_cost.py --seconds 20 --json idle.json

Each scenario starts its own ``redis-server`` on a free loopback port (the
test harness, tests/python/redis_harness.py), starts its processes of a
small app (written to a temporary directory: the default module and one
``Module`` subclass, so two claimers per worker), waits ``--warmup``
seconds, resets the server's stats (``CONFIG RESETSTAT``), waits
``--seconds`` and reads ``INFO commandstats``. Commands run inside Lua
scripts count (Redis counts them), the benchmark's own ``INFO`` and
``CONFIG`` do not. Columns: every command, the claimers' blocking
``XREADGROUP`` (one per claimer per block of 200 ms), and the rest (the
scheduler's ``FIRE`` script and what it calls, heartbeats, ...).

Scenarios: ``1 idle worker`` (``python -m taskmanager worker app:manager``),
``1 submit_only process`` (the same app with ``submit_only=True``, started,
idle), ``8 idle workers``, and ``8 mixed`` (4 workers, 4 submit_only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
from redis_harness import RedisServer  # noqa: E402

APP = '''
import os, sys, threading
from taskmanager import Module, TaskManager

manager = TaskManager(
    broker=os.environ["IDLE_URL"],
    broker_prefix="idle",
    submit_only=os.environ.get("IDLE_SUBMIT_ONLY") == "1",
)


class Jobs(Module):
    def noop(self) -> None:
        pass


jobs = Jobs(task_manager=manager, max_workers=2)

if __name__ == "__main__":
    # A submit_only process (a web process between requests): started, idle.
    manager.start_thread()
    print("ready", flush=True)
    sys.stdin.read()
    manager.shutdown()
'''

SCENARIOS = [
    ("1 idle worker", 1, 0),
    ("1 submit_only process", 0, 1),
    ("8 idle workers", 8, 0),
    ("8 mixed (4 workers, 4 submit_only)", 4, 4),
]

# The benchmark's own commands, not counted.
OWN = {"info", "config"}


def command_stats(server: RedisServer) -> Dict[str, int]:
    """Calls by command name, from ``INFO commandstats``."""
    calls: Dict[str, int] = {}
    for line in server.command("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line[len("cmdstat_") :].partition(":")
            stats = dict(field.split("=", 1) for field in fields.split(","))
            calls[name] = int(stats["calls"])
    return calls


def run_scenario(workers: int, submitters: int, warmup: float, seconds: float, app_dir: str) -> Dict[str, object]:
    server = RedisServer()
    procs: List[subprocess.Popen] = []
    try:
        env = dict(os.environ, IDLE_URL=server.url, PYTHONPATH=os.pathsep.join([app_dir, os.environ.get("PYTHONPATH", "")]))
        for _ in range(workers):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "taskmanager", "worker", "idle_app:manager", "--log-level", "WARNING"],
                    env=env,
                    cwd=app_dir,
                    stdin=subprocess.DEVNULL,
                )
            )
        for _ in range(submitters):
            procs.append(
                subprocess.Popen(
                    [sys.executable, os.path.join(app_dir, "idle_app.py")],
                    env=dict(env, IDLE_SUBMIT_ONLY="1"),
                    cwd=app_dir,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                )
            )
        time.sleep(warmup)
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} during the warm-up")
        server.command("CONFIG", "RESETSTAT")
        started = time.monotonic()
        time.sleep(seconds)
        calls = command_stats(server)
        took = time.monotonic() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdin is not None:
                proc.stdin.close()
        server.stop()
    counted = {name: n for name, n in calls.items() if name.split("|")[0] not in OWN}
    total = sum(counted.values())
    xread = counted.get("xreadgroup", 0)
    return {
        "processes": workers + submitters,
        "workers": workers,
        "submit_only": submitters,
        "seconds": round(took, 2),
        "commands_per_s": round(total / took, 1),
        "xreadgroup_per_s": round(xread / took, 1),
        "other_per_s": round((total - xread) / took, 1),
        "by_command_per_s": {name: round(n / took, 2) for name, n in sorted(counted.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="time before measuring (default 3)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="taskmanager-idle-") as app_dir:
        Path(app_dir, "idle_app.py").write_text(APP)
        print(f"{'scenario':<38} {'commands/s':>11} {'xreadgroup/s':>13} {'other/s':>9}")
        for name, workers, submitters in SCENARIOS:
            row = run_scenario(workers, submitters, args.warmup, args.seconds, app_dir)
            results[name] = row
            print(f"{name:<38} {row['commands_per_s']:>11} {row['xreadgroup_per_s']:>13} {row['other_per_s']:>9}")
            print(f"    by command: {row['by_command_per_s']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
