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
`pub(crate) use core::Core`.

    python3 scripts/check_layers.py
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
MAX_LINES = 400

# Lowest first. A file not listed here is an error: place it.
LAYERS = [
    # L0, pure: time arithmetic, the timer heap, errors, event values,
    # reports, primitives, a manager's phase, per-thread OS settings.
    {"sync", "unwind", "schedule", "clock", "timer", "timer/heap", "err", "event", "task", "batch", "report",
     "lifecycle", "threads", "cluster"},
    # L1, task cells and their state machine.
    {"job", "job/core", "job/oneshot", "job/recurring"},
    # L2, services: the runtime (life, clock, settings, events, threads),
    # and the timer, which hands due work to a `Target` (the pool).
    {"runtime", "timer/driver", "timer/state"},
    # L3, execution: a module's pool, its ready queue, workers and counts.
    {"pool", "pool/context", "pool/counts", "pool/ready", "pool/worker"},
    # L3b, the Redis flavour (feature `redis`): claims into pools through
    # `Target::dispatch`, schedules and results in Redis.
    {"broker", "broker/claimer", "broker/client", "broker/cluster", "broker/drain", "broker/firing", "broker/lease",
     "broker/listener", "broker/pace", "broker/remote", "broker/schedule", "broker/scripts", "broker/ticket"},
    # L4, the manager: module registry, start, shutdown, listings.
    {"manager", "manager/listing"},
    # L5, the public face: handles and Module (which know no manager).
    {"handle", "module"},
    # L5b, named tasks (feature `redis`): Module calls through the broker.
    {"named"},
    # L6, TaskManager, and its Builder (which makes one).
    {"manager/api"},
    {"manager/builder"},
    # L6b, a process's life as a worker (TaskManager::run_worker).
    {"worker"},
    # L7, ways to make a Module from a TaskManager.
    {"module_builder"},
    # L8, the crate root: docs and re-exports.
    {"lib"},
]
SKIP = {"loom_tests"}  # a test module: uses the public face

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*)\{([^}]*)\}")
REEXPORT = re.compile(r"pub(?:\([a-z]+\))?\s+use\s+(?:self::)?([a-z_][a-z0-9_]*)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def code_lines(text):
    for line in text.splitlines():
        if line.strip().startswith("//"):
            continue
        yield line.split("//", 1)[0] if "//" in line and '"' not in line else line


def unit_of(path):
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return "/".join(parts)


def file_of(unit):
    for candidate in (SRC / f"{unit}.rs", SRC / unit / "mod.rs"):
        if candidate.exists():
            return candidate
    return None


def reexports(unit):
    """Item name -> child unit, from a folder's `pub use child::Item` lines."""
    path = SRC / unit / "mod.rs"
    found = {}
    if path.exists():
        for line in code_lines(path.read_text()):
            for child, items in REEXPORT.findall(line):
                for item in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", items):
                    found[item] = f"{unit}/{child}"
    return found


def resolve(segments):
    """The unit a path of segments (after `crate`) names, or None."""
    unit = None
    for i, seg in enumerate(segments):
        deeper = f"{unit}/{seg}" if unit else seg
        if file_of(deeper):
            unit = deeper
            continue
        if unit and (SRC / unit / "mod.rs").exists():
            return reexports(unit).get(seg, unit)
        return unit
    return unit


def super_base(unit):
    """The segments `super::` stands for in `unit`'s file."""
    parts = unit.split("/")
    is_folder = (SRC / unit / "mod.rs").exists()
    return parts if not is_folder else parts[:-1]


def main():
    layer_of = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    modules, errors = {}, []
    for path in sorted(SRC.rglob("*.rs")):
        unit = unit_of(path)
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
                base = super_base(unit)
                if not base:
                    continue
                segments = base[:-1] + segments
            target = resolve(segments)
            if target and target != unit and target in {unit_of(p) for p in SRC.rglob("*.rs")}:
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
    print(f"layers: {len(modules)} files in {len(LAYERS)} layers, {len(edges)} imports, "
          f"{len(upward)} upward, {len(cyclic)} on cycles")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
