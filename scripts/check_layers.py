#!/usr/bin/env python3
"""Checks that the core's files import only downward (issue 11).

Each file of src/ sits in a layer (LAYERS below). A file may use items of
files in lower layers; using a file in a higher layer, or any import cycle,
is a violation. Imports are read from code (comments and doc links are
skipped): every `crate::<file>` path. Violations not yet removed are listed
in KNOWN, each with what it is waiting for; the check fails on any new one,
and also on a KNOWN entry that is gone (so the list can only shrink).

    python3 scripts/check_layers.py
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

# Lowest first. A file not listed here is an error: place it.
LAYERS = [
    # L0, pure: time arithmetic, the heap, errors, event values, reports,
    # primitives and per-thread OS settings. Import nothing above.
    {"sync", "unwind", "schedule", "timer", "err", "event", "task", "batch", "report", "threads", "lifecycle"},
    # L1, task cells.
    {"job"},
    # L2, services over cells: the manual clock, handles.
    {"clock", "handle"},
    # L3, execution: module queues and workers.
    {"module"},
    # L4, the manager's lifecycle, timer thread and Builder; the module
    # builder, which needs a manager.
    {"manager", "module_builder"},
    # L5, the public face.
    {"lib"},
]
SKIP = {"loom_tests"}  # a test module: uses the public face

# (from, to): why it is still there. Remove an entry when its edge is gone.
KNOWN = {
    ("handle", "manager"): "handles hold Arc<Shared> to remove cancelled timers: a small timer context",
    ("module", "manager"): "ModuleShared holds Arc<Shared> (phase, timer, threads): split Shared into services",
}

CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def code_lines(text):
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            continue
        yield line.split("//", 1)[0] if "//" in line and '"' not in line else line


def module_of(path):
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts[0]


def main():
    layer_of = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    modules = {}
    for path in sorted(SRC.rglob("*.rs")):
        name = module_of(path)
        if name in SKIP:
            continue
        modules.setdefault(name, set())
        for line in code_lines(path.read_text()):
            for target in CRATE_PATH.findall(line):
                is_file = (SRC / f"{target}.rs").exists() or (SRC / target / "mod.rs").exists()
                if target != name and is_file:
                    modules[name].add(target)
    errors = []
    for name in modules:
        if name not in layer_of:
            errors.append(f"{name}.rs is in no layer: add it to LAYERS in {__file__}")
    edges = {(a, b) for a, targets in modules.items() for b in targets}
    upward = {(a, b) for a, b in edges if a in layer_of and b in layer_of and layer_of[b] > layer_of[a]}
    # Cycles: any edge whose target reaches back to its source.
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
    # An edge on a cycle is a violation only if it is the upward one, or the
    # cycle stays within one layer.
    same_layer = {(a, b) for a, b in cyclic if layer_of.get(a) == layer_of.get(b)}
    violations = upward | same_layer
    for a, b in sorted(violations - KNOWN.keys()):
        errors.append(f"{a}.rs uses crate::{b} (layer {layer_of.get(b)} > {layer_of.get(a)} or a cycle): not allowed")
    for a, b in sorted(KNOWN.keys() - violations):
        errors.append(f"{a}.rs no longer uses crate::{b}: remove it from KNOWN")
    remaining_cycles = cyclic - violations
    if remaining_cycles and not (cyclic & KNOWN.keys()):
        errors.append(f"import cycle through {sorted(remaining_cycles)}")
    print(f"layers: {len(modules)} files, {len(edges)} imports, {len(violations & KNOWN.keys())} known upward imports left:")
    for (a, b), why in sorted(KNOWN.items()):
        if (a, b) in violations:
            print(f"  {a} -> {b}: {why}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
