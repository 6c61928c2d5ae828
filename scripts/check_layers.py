#!/usr/bin/env python3
"""Checks that the core's files import only downward (issue 11).

Each file of src/ sits in a layer (LAYERS below), named by its path without
`.rs` (`timer/heap`; a folder's `mod.rs` is the folder's name, `timer`). A
file may use items of files in its own or lower layers, and no import may
close a cycle; any other use is a violation, and so is a file longer than
MAX_LINES (one concept per file).

Imports are read from code, comments skipped: every `crate::a::b::...` and
`super::...` path. A path resolves to the deepest file it names; a path that
stops at a folder resolves through that folder's `pub use` re-exports, so
`crate::job::Core` counts as a use of `job/core` when `job/mod.rs` says
`pub(crate) use core::Core`. A path through the crate root resolves through
`lib.rs`'s `pub use` lines the same way: `crate::Recurrence` is a use of
`schedule`, and `crate::Builder` (`pub use manager::{Builder, ...}`) one of
`manager/builder`.

    python3 scripts/check_layers.py              # check src/
    python3 scripts/check_layers.py --self-test  # show that it catches a bad import
"""

import pathlib
import re
import shutil
import sys
import tempfile

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
MAX_LINES = 400

# Lowest first, numbered as errors cite them and as PROTOCOL.md's "Layers"
# diagram shows them. A file not listed here is an error: place it.
LAYERS = [
    # 0, pure: time arithmetic, the timer heap, errors, event values,
    # reports, primitives, a manager's phase, per-thread OS settings.
    {"sync", "unwind", "schedule", "recurrence", "misfire", "clock", "remote_error", "timer", "timer/heap", "err", "event", "task", "batch", "report",
     "lifecycle", "threads", "cluster", "retry", "limit", "limited",
     # metrics through the `metrics` facade (feature `metrics`, issue 28).
     "metrics", "metrics/batch", "metrics/off", "metrics/on",
     # W3C trace context carried by named tasks (feature `redis`, issue 28).
     "trace_context",
     # calendar schedules: cron expressions in time zones (issue 27).
     "calendar", "calendar/cron", "calendar/error", "calendar/parse", "calendar/policy", "calendar/search"},
    # 1, task cells and their state machine.
    {"job", "job/core", "job/oneshot", "job/plan", "job/recurring"},
    # 2, services: the runtime (life, clock, settings, events, threads),
    # and the timer, which hands due work to a `Target` (the pool).
    {"runtime", "timer/driver", "timer/listing", "timer/retries", "timer/state", "timer/wall"},
    # 3, execution: a module's pool, its ready queue, workers and counts.
    {"pool", "pool/context", "pool/counts", "pool/metered", "pool/ready", "pool/worker"},
    # 4, the Redis flavour (feature `redis`): claims into pools through
    # `Target::dispatch`, schedules and results in Redis.
    {"broker", "broker/calendar", "broker/calendar_tick", "broker/claimer", "broker/client", "broker/cluster", "broker/drain", "broker/firing", "broker/keys", "broker/lease",
     "broker/listener", "broker/listing", "broker/pace", "broker/remote", "broker/schedule", "broker/scripts", "broker/ticket",
     "broker/in_flight", "broker/retrying", "broker/dead", "broker/entries", "broker/epoch", "broker/lookup", "broker/result",
     "broker/unrunnable", "broker/outcomes", "broker/locate"},
    # 5, the manager: module registry, start, drain, shutdown, listings.
    {"manager", "manager/listing"},
    # 6, the public face: handles and Module (which know no manager).
    {"handle", "module"},
    # 7, named tasks (feature `redis`): Module calls through the broker.
    {"named"},
    # 8, TaskManager; 9, its Builder (which makes one).
    {"manager/api", "manager/broker_api"},
    {"manager/builder"},
    # 10, a process's life as a worker (TaskManager::run_worker).
    {"worker"},
    # 11, ways to make a Module from a TaskManager.
    {"module_builder"},
    # 12, the crate root: docs and re-exports.
    {"lib"},
]
SKIP = {"loom_tests"}  # a test module: uses the public face

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}")
REEXPORT = re.compile(r"pub(?:\([a-z]+\))?\s+use\s+(?:self::)?([a-z_][a-z0-9_]*)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
# lib.rs's re-exports, possibly nested (`pub use a::b::{C, D as E};`).
ROOT_USE = re.compile(r"\bpub\s+use\s+((?:[a-z_][a-z0-9_]*::)+)(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*(?:\s+as\s+[A-Za-z_][A-Za-z0-9_]*)?)\s*;")
ITEM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\s+as\s+([A-Za-z_][A-Za-z0-9_]*))?")


def code_lines(text):
    for line in text.splitlines():
        if line.strip().startswith("//"):
            continue
        yield line.split("//", 1)[0] if "//" in line and '"' not in line else line


def unit_of(src, path):
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "/".join(parts)


def file_of(src, unit):
    for candidate in (src / f"{unit}.rs", src / unit / "mod.rs"):
        if candidate.exists():
            return candidate
    return None


def reexports(src, unit):
    """Item name -> child unit, from a folder's `pub use child::Item` lines."""
    path = src / unit / "mod.rs"
    found = {}
    if path.exists():
        for line in code_lines(path.read_text()):
            for child, items in REEXPORT.findall(line):
                for item in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", items):
                    found[item] = f"{unit}/{child}"
    return found


def root_reexports(src):
    """Item name -> the path (segments) it stands for, from lib.rs's `pub use`
    lines: `pub use schedule::{Pacing, Recurrence};` gives
    `Recurrence -> ["schedule", "Recurrence"]`."""
    text = "\n".join(code_lines((src / "lib.rs").read_text()))
    found = {}
    for prefix, items in ROOT_USE.findall(text):
        head = prefix.rstrip(":").split("::")
        for name, alias in ITEM.findall(items.strip("{}")):
            if name != "as":
                found[alias or name] = head + [name]
    return found


def resolve(src, segments, root):
    """The unit a path of segments (after `crate`) names, or None. `root` is
    lib.rs's re-exports: a first segment that is no file is looked up there."""
    if segments and not file_of(src, segments[0]) and segments[0] in root:
        segments = root[segments[0]] + segments[1:]
    unit = None
    for seg in segments:
        deeper = f"{unit}/{seg}" if unit else seg
        if file_of(src, deeper):
            unit = deeper
            continue
        if unit and (src / unit / "mod.rs").exists():
            return reexports(src, unit).get(seg, unit)
        return unit
    return unit


def super_base(src, unit):
    """The segments `super::` stands for in `unit`'s file."""
    parts = unit.split("/")
    is_folder = (src / unit / "mod.rs").exists()
    return parts if not is_folder else parts[:-1]


def check(src):
    """The violations in the crate at `src`, and a one-line summary."""
    layer_of = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    through_root = root_reexports(src)
    units = {unit_of(src, p) for p in src.rglob("*.rs")}
    modules, errors = {}, []
    for path in sorted(src.rglob("*.rs")):
        unit = unit_of(src, path)
        if unit in SKIP:
            continue
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_LINES:
            errors.append(f"{unit}: {lines} lines, over {MAX_LINES}: split it by concept")
        targets = set()
        for line in code_lines(text):
            for root, prefix, items in GROUP.findall(line):
                head = prefix.rstrip(":").split("::") if prefix else []
                for item in re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*", items):
                    targets.add((root, tuple(head + item.split("::"))))
            for root, rest in PATH.findall(line):
                targets.add((root, tuple(rest.strip(":").split("::"))))
        resolved = set()
        for root, segments in targets:
            segments = list(segments)
            if root == "super":
                # `super::super::x`: each `super` goes one folder up.
                base = super_base(src, unit)[:-1]
                while segments and segments[0] == "super":
                    segments.pop(0)
                    base = base[:-1]
                segments = base + segments
            target = resolve(src, segments, through_root)
            if target and target != unit and target in units:
                resolved.add(target)
        modules[unit] = resolved
        if unit not in layer_of:
            errors.append(f"{unit} is in no layer: add it to LAYERS in {__file__}")
    edges = {(a, b) for a, targets in modules.items() for b in targets if b not in SKIP}
    upward = {(a, b) for a, b in edges if a in layer_of and b in layer_of and layer_of[b] > layer_of[a]}

    def reaches(start, goal):
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(modules.get(node, ()))
        return False

    cyclic = {(a, b) for a, b in edges if reaches(b, a)}
    for a, b in sorted(upward):
        errors.append(f"{a} uses {b}, a higher layer ({layer_of[b]} > {layer_of[a]})")
    for a, b in sorted(cyclic - upward):
        errors.append(f"{a} uses {b}, closing an import cycle")
    summary = (f"layers: {len(modules)} files in {len(LAYERS)} layers, {len(edges)} imports, "
               f"{len(upward)} upward, {len(cyclic)} on cycles")
    return errors, summary


# Bad imports the check must catch, each into a copy of src/: (file, line
# added, what the error must say). The first two go through the crate root.
PLANTED = [
    ("timer/heap.rs", "use crate::Module;", "timer/heap uses module, a higher layer"),
    ("job/core.rs", "use crate::{Builder, Stats};", "job/core uses manager/builder, a higher layer"),
    ("schedule.rs", "use crate::SubmitError;", "schedule uses err, closing an import cycle"),
    ("pool/ready.rs", "use super::super::Module;", "pool/ready uses module, a higher layer"),
]


def self_test():
    """Each planted import, in a copy of src/, must fail the check with its
    message; the unchanged copy must pass. Nothing in src/ is touched."""
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for file, line, expected in [(None, None, None)] + PLANTED:
            copy = pathlib.Path(tmp) / "src"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(SRC, copy)
            if file:
                target = copy / file
                target.write_text(f"{line}\n{target.read_text()}")
            errors, _ = check(copy)
            if file is None:
                ok = not errors
                what = "unchanged copy passes"
            else:
                ok = any(expected in e for e in errors)
                what = f"{line!r} in {file}: {expected}"
            print(f"{'ok  ' if ok else 'FAIL'} {what}")
            if not ok:
                failed += 1
                print("  got: " + ("; ".join(errors) or "no error"))
    return 1 if failed else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    errors, summary = check(SRC)
    print(summary)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
