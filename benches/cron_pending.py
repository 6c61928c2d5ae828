"""10,000 cron schedules pending in Python (issue 27): taskmanager's Python
API against APScheduler 3.x, in one run. Memory, time to schedule them, and
CPU per idle second while none is due. The Rust side is benches/cron.rs's
``pending`` scenario (taskmanager's core against tokio-cron-scheduler).

Install and run (from the repository root)::

    pip install . -r benches/requirements.txt
    python benches/cron_pending.py                 # 5 repetitions, 10 s idle windows (about 3 minutes)
    python benches/cron_pending.py --quick         # 3 repetitions, 3 s idle windows
    python benches/cron_pending.py --json out.json

Systems:

``taskmanager``
    ``TaskManager()`` started, ``Module(task_manager=..., max_workers=2)``;
    each schedule ``module.schedule_task(fn, cron=expr, tz=zone)``.
``APScheduler``
    ``BackgroundScheduler(timezone=UTC)`` started, with its default
    ``MemoryJobStore`` and thread pool; each schedule
    ``scheduler.add_job(fn, CronTrigger.from_crontab(expr,
    timezone=ZoneInfo(zone)))``.

The schedules (the same as benches/cron.rs builds, for a start at the
moment the child starts): nine in ten ``M H * * *`` in UTC, at times of
day from 2.5 h to 23.5 h ahead; one in ten ``0 9 * * MON-FRI`` in one of
six zones (a zone whose next 09:00 is under 2 h away is left out). None is
due during the measurement; the child checks that nothing ran.

Each measurement is a fresh child process (this script with ``--child``),
so no other system's threads, objects or freed memory share it; each
repetition runs every system (the order rotates), twice:

1. Timed child, no tracemalloc: starts the system, loads each zone once
   (one schedule per zone added and removed), ``gc.collect()``, reads RSS
   (``/proc/self/statm``), schedules the 10,000 (parsing included) and
   times it, waits 300 ms, ``gc.collect()``, reads RSS again (the delta:
   everything the process holds more, Python objects and taskmanager's
   Rust memory alike), then reads ``resource.getrusage(RUSAGE_SELF)``
   (user + system CPU of every thread; voluntary context switches),
   sleeps the idle window, and reads it again.
2. tracemalloc child: the same set-up, then ``tracemalloc.start()``
   before scheduling and the traced size after (300 ms, ``gc.collect()``):
   the Python heap the schedules hold. It does not see taskmanager's Rust
   memory (the schedules themselves live there), only the Python objects
   our binding keeps per schedule (the callable's reference, handles);
   for APScheduler it is the whole of it.

The value is the median over the repetitions, with the min and max.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import zoneinfo
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from report import print_table, record_row, write_json  # benches/report.py, beside this file

# Zones from the tzdata package only, never the system's.
zoneinfo.reset_tzpath([])

PENDING = 10_000
# As benches/cron.rs's PENDING_ZONES.
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", "Asia/Kolkata"]
MARGIN = timedelta(hours=2)
SYSTEMS = ["taskmanager", "APScheduler"]


def next_weekday_nine(now: datetime, zone: str) -> datetime:
    """The next 09:00 Monday to Friday in ``zone`` after ``now``."""
    local = now.astimezone(ZoneInfo(zone))
    day = local.replace(hour=9, minute=0, second=0, microsecond=0)
    while day <= local or day.weekday() >= 5:
        day = (day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=ZoneInfo(zone))
    return day


def schedules(now: datetime) -> List[Tuple[str, str]]:
    """benches/cron.rs's pending_schedules, for a start at ``now``."""
    zones = [z for z in ZONES if next_weekday_nine(now, z) - now >= MARGIN]
    secs = int(now.timestamp())
    minute_of_day = (secs % 86_400) // 60
    out = []
    for i in range(PENDING):
        if i % 10 == 9:
            out.append(("0 9 * * MON-FRI", zones[(i // 10) % len(zones)]))
        else:
            m = (minute_of_day + 150 + (i * 37) % 1260) % 1440
            out.append((f"{m % 60} {m // 60} * * *", "UTC"))
    return out


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(system: str, seconds: float, traced: bool) -> Dict[str, Any]:
    runs = [0]

    def tick() -> None:
        runs[0] += 1

    plan = schedules(datetime.now(timezone.utc))
    if system == "taskmanager":
        from taskmanager import Module, TaskManager

        manager = TaskManager()
        manager.start_thread(daemon=True)
        module = Module(task_manager=manager, max_workers=2)

        def add(expr: str, zone: str) -> Any:
            return module.schedule_task(tick, cron=expr, tz=zone)

        def remove(handle: Any) -> None:
            handle.cancel()

    elif system == "APScheduler":
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.cron import CronTrigger

        scheduler = BackgroundScheduler(timezone=timezone.utc)
        scheduler.start()

        def add(expr: str, zone: str) -> Any:
            return scheduler.add_job(tick, CronTrigger.from_crontab(expr, timezone=ZoneInfo(zone)))

        def remove(handle: Any) -> None:
            handle.remove()

    else:
        raise SystemExit(f"unknown system {system!r}")
    # Each zone loaded once (and the code paths warmed), outside the count.
    for zone in ["UTC"] + ZONES:
        remove(add("0 9 * * MON-FRI", zone))
    time.sleep(0.1)
    gc.collect()
    rss0 = rss_bytes()
    if traced:
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    handles = [add(expr, zone) for expr, zone in plan]
    schedule_ms = (time.perf_counter() - t0) * 1e3
    time.sleep(0.3)
    gc.collect()
    out: Dict[str, Any] = {"schedule_ms": schedule_ms, "runs": runs[0]}
    if traced:
        out["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return out
    out["rss_delta_bytes"] = rss_bytes() - rss0
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(seconds)
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (u1.ru_utime + u1.ru_stime) - (u0.ru_utime + u0.ru_stime)
    out["cpu_ms_per_idle_s"] = cpu * 1e3 / seconds
    # The measuring thread's own sleep counts 1 over the whole window.
    out["wakeups_per_idle_s"] = max(u1.ru_nvcsw - u0.ru_nvcsw - 1, 0) / seconds
    out["runs"] = runs[0]
    assert len(handles) == PENDING
    return out


def run_child(system: str, seconds: float, traced: bool) -> Dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", system, "--seconds", str(seconds)]
    if traced:
        cmd.append("--traced")
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if result["runs"]:
        raise SystemExit(f"{system}: {result['runs']} schedules ran during the measurement")
    return result


METRICS = [
    # (metric, unit, from the child's key, divided by)
    ("schedule_ms", "ms", "schedule_ms", 1),
    ("traced_bytes_per_schedule", "B", "traced_bytes", PENDING),
    ("rss_delta_bytes_per_schedule", "B", "rss_delta_bytes", PENDING),
    ("cpu_ms_per_idle_s", "ms", "cpu_ms_per_idle_s", 1),
    ("wakeups_per_idle_s", "wakeups", "wakeups_per_idle_s", 1),
]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions, 3 s idle windows")
    ap.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    ap.add_argument("--child", metavar="SYSTEM", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    ap.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.seconds, args.traced)), flush=True)
        # Not a clean shutdown: the process's end is outside the measurement.
        os._exit(0)
    reps = 3 if args.quick else 5
    seconds = 3.0 if args.quick else 10.0
    started = time.perf_counter()
    samples: Dict[Tuple[str, str], List[float]] = {}
    for rep in range(reps):
        for k in range(len(SYSTEMS)):
            system = SYSTEMS[(k + rep) % len(SYSTEMS)]
            result = run_child(system, seconds, traced=False)
            result.update({k: v for k, v in run_child(system, seconds, traced=True).items() if k == "traced_bytes"})
            for metric, _, key, div in METRICS:
                samples.setdefault((system, metric), []).append(result[key] / div)
    records = []
    for (system, metric), values in samples.items():
        unit = next(u for m, u, _, _ in METRICS if m == metric)
        records.append(
            {
                "scenario": "cron-py-pending",
                "system": system,
                "metric": metric,
                "value": statistics.median(values),
                "unit": unit,
                "min": min(values),
                "max": max(values),
            }
        )
    records.sort(key=lambda r: ([m for m, _, _, _ in METRICS].index(r["metric"]), SYSTEMS.index(r["system"])))
    rows = []
    for r in records:
        ours = next(o for o in records if o["metric"] == r["metric"] and o["system"] == "taskmanager")
        ratio = f"{r['value'] / ours['value']:.2f}x" if r is not ours and abs(ours["value"]) > 1e-9 else ""
        rows.append(record_row(r, ratio))
    print_table(rows)
    print(
        f"\ncron_pending: {PENDING} schedules, {seconds:g} s idle windows, {reps} repetitions "
        f"in {time.perf_counter() - started:.1f} s (Python {sys.version.split()[0]})"
    )
    if args.json:
        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
