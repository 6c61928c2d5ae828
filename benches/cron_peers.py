"""The cost of computing a cron schedule's next fire time in Python (issue 27):
APScheduler 3.x's CronTrigger against croniter, in one run.

Install and run (from the repository root)::

    pip install -r benches/requirements.txt
    python benches/cron_peers.py                 # full run, 5 repetitions (about a minute)
    python benches/cron_peers.py --quick         # 3 repetitions, fewer start instants
    python benches/cron_peers.py --json out.json
    # Compare every answer with taskmanager's (the Rust core's), and put its
    # cost beside the peers' (from the same machine's Rust run):
    cargo bench --bench cron -- --json cron.json --answers ours.tsv
    python benches/cron_peers.py --ours ours.tsv --rust-json cron.json

No Python row of ours is timed here: the Python package schedules cron
tasks (``schedule_task(cron=...)``) but exposes no next-fire call of its
own, so ``--rust-json`` adds the Rust core's figure from
``benches/cron.rs`` as ``taskmanager-rust-core``, the computation every
Python cron task runs at each tick.

Systems (the same expressions, zones and start instants as benches/cron.rs:
the same seeded generator, its first N instants):

``APScheduler``
    ``CronTrigger.from_crontab(expr, timezone=ZoneInfo(zone))``, built once;
    timed: ``trigger.get_next_fire_time(None, start)``. Its answer is the
    first fire time *at or after* ``start``, so it is given ``start`` + 1 s
    (start instants are whole seconds: the first at or after start + 1 s is
    the first after start). It has no ``L``: ``0 0 L * *`` is not timed for
    it and is left out of every system's overall figure.
``croniter``
    ``croniter(expr, start)`` built once; timed: ``set_current(start,
    force=True)`` then ``get_next(datetime)`` (the first after ``start``).

Start instants are aware datetimes in the zone, made before the clock
starts. Zones come from the ``tzdata`` package (``zoneinfo.reset_tzpath([])``:
never the system's), as in tests/calendar_reference.py.

Each repetition times, for each expression, every system in turn (the order
rotates per repetition) on all zones and start instants; the value is
microseconds per next-fire computation, the median over repetitions with
the min and max.

Before timing, the two peers' answers are compared with each other and,
with ``--ours``, with taskmanager's. A disagreement within 3 hours of a DST
transition (of the start or of either answer) is counted as a DST one; any
other is printed in full.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import zoneinfo
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from report import print_table, record_row, write_json  # benches/report.py, beside this file

# Zones from the tzdata package only, never the system's.
zoneinfo.reset_tzpath([])

perf = time.perf_counter

# As benches/cron.rs: (expression, whether every peer reads it).
EXPRESSIONS: List[Tuple[str, bool]] = [
    ("*/5 * * * *", True),
    ("0 9 * * MON-FRI", True),
    ("30 2 * * *", True),
    ("0 0 1 * *", True),
    ("15,45 */2 * * *", True),
    ("0 0 L * *", False),
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
FROM = 1_735_689_600  # 2025-01-01T00:00:00Z
UNTIL = 1_830_297_600  # 2028-01-01T00:00:00Z
SYSTEMS = ["APScheduler", "croniter"]
NEAR_TRANSITION = timedelta(hours=3)
MASK = (1 << 64) - 1


class Lcg:
    """benches/lib.rs's Lcg, step for step: the same start instants."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def next_u64(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state >> 33

    def between(self, lo: int, hi: int) -> int:
        return lo + self.next_u64() % (hi - lo + 1)


class Case:
    def __init__(self, expr: int, zone: int, starts: List[int]) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from croniter import croniter

        self.expr, self.zone = expr, zone
        expression, every_peer = EXPRESSIONS[expr]
        self.tz = ZoneInfo(ZONES[zone])
        self.starts = starts
        self.local = [datetime.fromtimestamp(s, self.tz) for s in starts]
        self.aps_starts = [datetime.fromtimestamp(s + 1, self.tz) for s in starts]
        self.trigger = CronTrigger.from_crontab(expression, timezone=self.tz) if every_peer else None
        self.croniter = croniter(expression, self.local[0])

    def reads(self, system: str) -> bool:
        return system != "APScheduler" or self.trigger is not None

    def answer(self, system: str, i: int) -> Optional[int]:
        if system == "APScheduler":
            t = self.trigger.get_next_fire_time(None, self.aps_starts[i])
            return None if t is None else int(t.timestamp())
        self.croniter.set_current(self.local[i], force=True)
        return int(self.croniter.get_next(datetime).timestamp())

    def time(self, system: str) -> Tuple[float, int]:
        """Seconds for all start instants, and the number of calls."""
        if system == "APScheduler":
            get = self.trigger.get_next_fire_time
            starts = self.aps_starts
            gc.collect()
            t0 = perf()
            for s in starts:
                get(None, s)
            return perf() - t0, len(starts)
        c = self.croniter
        set_current, get_next = c.set_current, c.get_next
        gc.collect()
        t0 = perf()
        for s in self.local:
            set_current(s, force=True)
            get_next(datetime)
        return perf() - t0, len(self.local)


def near_transition(tz: ZoneInfo, instants: List[int]) -> bool:
    for t in instants:
        at = datetime.fromtimestamp(t, timezone.utc)
        if (at - NEAR_TRANSITION).astimezone(tz).utcoffset() != (at + NEAR_TRANSITION).astimezone(tz).utcoffset():
            return True
    return False


def show(tz: ZoneInfo, t: Optional[int]) -> str:
    if t is None:
        return "none"
    utc = datetime.fromtimestamp(t, timezone.utc)
    return f"{utc:%Y-%m-%dT%H:%M:%SZ} ({utc.astimezone(tz):%Y-%m-%d %H:%M:%S %Z})"


def load_ours(path: str) -> Dict[Tuple[str, str, int], Optional[int]]:
    """benches/cron.rs --answers: expression, zone, start, ours (Unix s)."""
    ours: Dict[Tuple[str, str, int], Optional[int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            expression, zone, start, answer = line.rstrip("\n").split("\t")
            ours[(expression, zone, int(start))] = None if answer == "none" else int(answer)
    return ours


def agreement(cases: List[Case], ours: Optional[Dict[Tuple[str, str, int], Optional[int]]]) -> List[Dict[str, Any]]:
    """Compares each pair of systems' answers; prints and returns the counts."""
    answers: Dict[str, Callable[[Case, int], Optional[int]]] = {s: (lambda c, i, s=s: c.answer(s, i)) for s in SYSTEMS}
    pairs = [("croniter", "APScheduler")]
    if ours is not None:
        answers["taskmanager"] = lambda c, i: ours[(EXPRESSIONS[c.expr][0], ZONES[c.zone], c.starts[i])]
        pairs = [("taskmanager", "APScheduler"), ("taskmanager", "croniter")] + pairs
    records = []
    print("\ncron-py-agree (each pair's answers, on every case both read)")
    for a, b in pairs:
        compared = dst = other = not_after = 0
        # (kind, expression, zone) -> [count, first example]
        by: Dict[Tuple[str, str, str], List[Any]] = {}
        first_not_after = None
        for case in cases:
            if not (case.reads(a) if a != "taskmanager" else True) or not case.reads(b):
                continue
            for i, start in enumerate(case.starts):
                compared += 1
                x, y = answers[a](case, i), answers[b](case, i)
                if x == y:
                    continue
                expression, zone = EXPRESSIONS[case.expr][0], ZONES[case.zone]
                detail = (
                    f"{expression} in {zone}, after {show(case.tz, start)}: "
                    f"{a} {show(case.tz, x)}, {b} {show(case.tz, y)}"
                )
                # Wrong by any DST rule: a next fire time not after the start.
                if y is not None and y <= start:
                    not_after += 1
                    first_not_after = first_not_after or detail
                if near_transition(case.tz, [t for t in (start, x, y) if t is not None]):
                    dst += 1
                    kind = "near DST"
                else:
                    other += 1
                    kind = "NOT DST"
                by.setdefault((kind, expression, zone), [0, detail])[0] += 1
        print(
            f"  {b} against {a}: {compared} cases, {dst} disagree near a DST transition, {other} elsewhere; "
            f"{not_after} of the disagreements answer a time not after the start"
        )
        for (kind, expression, zone), (n, example) in sorted(by.items()):
            print(f"    {kind}: {expression:<18} {zone:<22} {n:>5}   first: {example}")
        if first_not_after:
            print(f"    first answer not after its start: {first_not_after}")
        for metric, v in (("cases", compared), ("disagree_dst", dst), ("disagree_other", other), ("not_after_start", not_after)):
            records.append(
                {"scenario": "cron-py-agree", "system": f"{b} vs {a}", "metric": metric, "value": v, "unit": "count", "min": v, "max": v}
            )
    return records


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions and 500 start instants")
    ap.add_argument("--json", metavar="PATH", help="write the records as a JSON list to PATH")
    ap.add_argument("--ours", metavar="TSV", help="taskmanager's answers (cargo bench --bench cron -- --answers TSV)")
    ap.add_argument("--rust-json", metavar="PATH", help="benches/cron.rs's --json records: the Rust core's cost, beside")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 5
    n_starts = 500 if args.quick else 2_000
    started = perf()

    lcg = Lcg(27)
    starts = [lcg.between(FROM, UNTIL - 1) for _ in range(n_starts)]
    cases = [Case(e, z, starts) for e in range(len(EXPRESSIONS)) for z in range(len(ZONES))]
    ours = load_ours(args.ours) if args.ours else None

    # The comparison is also every system's warm-up.
    records = agreement(cases, ours)

    samples: Dict[Tuple[str, str, str], List[float]] = {}
    for rep in range(reps):
        total = {s: [0.0, 0] for s in SYSTEMS}
        for e, (expression, every_peer) in enumerate(EXPRESSIONS):
            for k in range(len(SYSTEMS)):
                system = SYSTEMS[(k + rep) % len(SYSTEMS)]
                secs, calls = 0.0, 0
                for case in cases:
                    if case.expr == e and case.reads(system):
                        t, c = case.time(system)
                        secs, calls = secs + t, calls + c
                if not calls:
                    continue
                samples.setdefault(("cron-py-next-by-expr", system, expression), []).append(secs / calls * 1e6)
                if every_peer:
                    total[system][0] += secs
                    total[system][1] += calls
        for system, (secs, calls) in total.items():
            samples.setdefault(("cron-py-next", system, "us_per_next"), []).append(secs / calls * 1e6)

    timed = []
    for (scenario, system, metric), values in samples.items():
        timed.append(
            {
                "scenario": scenario,
                "system": system,
                "metric": metric,
                "value": statistics.median(values),
                "unit": "us",
                "min": min(values),
                "max": max(values),
            }
        )
    if args.rust_json:
        # The Rust core's figure, in us, for the same rows (not timed here).
        with open(args.rust_json, encoding="utf-8") as f:
            rust = json.load(f)
        names = {"cron-next": ("cron-py-next", "us_per_next"), "cron-next-by-expr": ("cron-py-next-by-expr", None)}
        for r in rust:
            if r["system"] == "taskmanager" and r["scenario"] in names:
                scenario, metric = names[r["scenario"]]
                timed.append(
                    {
                        "scenario": scenario,
                        "system": "taskmanager-rust-core",
                        "metric": metric or r["metric"],
                        "value": r["value"] / 1000,
                        "unit": "us",
                        "min": r["min"] / 1000,
                        "max": r["max"] / 1000,
                    }
                )
    timed.sort(key=lambda r: (r["scenario"], [e for e, _ in EXPRESSIONS].index(r["metric"]) if r["metric"] in dict(EXPRESSIONS) else -1, r["system"]))

    rows = []
    for r in timed:
        ours_row = next(
            (o for o in timed if o["scenario"] == r["scenario"] and o["metric"] == r["metric"] and o["system"] == "taskmanager-rust-core"),
            None,
        )
        ratio = f"{r['value'] / ours_row['value']:.1f}x" if ours_row and r is not ours_row else ""
        rows.append(record_row(r, ratio))
    print_table(rows)
    records.extend(timed)
    print(
        f"\ncron_peers: {len(EXPRESSIONS)} expressions x {len(ZONES)} zones x {n_starts} start instants; "
        f"{len(records)} records in {perf() - started:.1f} s ({reps} repetitions)"
    )
    if args.json:
        write_json(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
