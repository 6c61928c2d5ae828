#!/usr/bin/env bash
# Checks the minimum supported Rust version (MSRV) with the toolchain at
# hand: no older toolchain is installed (or fetched) for it.
#
#   1. README.md's "Rust toolchain (stable, X or newer)" is the
#      `rust-version` of every Cargo.toml in the workspace that declares one,
#      and the core crate declares one.
#   2. clippy, with `clippy::incompatible_msrv` denied, finds no use of a std
#      API stabilized after the crate's `rust-version`. (The lint sees std
#      functions, methods and types; not language features or trait impls,
#      which only building with that toolchain would catch.)
#   3. No package in Cargo.lock that building a crate with a `rust-version`
#      needs (normal and build dependencies, on every platform) declares a
#      newer `rust_version` (`cargo metadata`). Packages needed only by the
#      loom model checks (`cfg(loom)`), by dev-dependencies or by the
#      benchmark crate (which declares no rust-version) are listed, not failed:
#      they are the developers' tools, not what a user builds.
#
# Usage: bash scripts/check_msrv.sh   (CI: .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

metadata=$(mktemp)
trap 'rm -f "$metadata"' EXIT
cargo metadata --format-version 1 >"$metadata"

echo "== MSRV 1: README and every Cargo.toml agree"
readme=$(grep -oE 'Rust toolchain \(stable, [0-9]+\.[0-9]+(\.[0-9]+)? or newer\)' README.md | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' || true)
if [ "$(printf '%s\n' "$readme" | grep -c .)" -ne 1 ]; then
    echo "README.md must state the MSRV exactly once, as 'Rust toolchain (stable, X.Y or newer)'; found: '${readme}'" >&2
    exit 1
fi
python3 - "$metadata" "$readme" <<'EOF'
import json, sys

meta = json.load(open(sys.argv[1]))
readme = sys.argv[2]
members = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]]
bad = []
for p in members:
    declared = p.get("rust_version")
    where = f'{p["manifest_path"]} ({p["name"]})'
    if declared is None:
        if p["name"] == "taskmanager":
            bad.append(f"{where}: declares no rust-version")
        else:
            print(f"   {where}: no rust-version (not checked)")
    elif declared != readme:
        bad.append(f"{where}: rust-version = {declared!r}, README says {readme}")
    else:
        print(f"   {where}: rust-version = {declared}")
if bad:
    sys.exit("MSRV mismatch:\n  " + "\n  ".join(bad))
EOF

echo "== MSRV 2: clippy::incompatible_msrv (std APIs newer than rust-version)"
# Only this lint: the other lints are the main clippy step's.
cargo clippy --workspace --all-targets --quiet -- -A clippy::all -D clippy::incompatible_msrv

echo "== MSRV 3: dependencies in Cargo.lock need no newer Rust"
python3 - "$metadata" <<'EOF'
import json, sys

meta = json.load(open(sys.argv[1]))
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
members = set(meta["workspace_members"])


def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def label(pid):
    p = packages[pid]
    return f'{p["name"]} {p["version"]}'


def needed(dep):
    """Whether building the depending crate needs `dep`: a normal or build
    dependency, on any platform but the loom model checks' cfg."""
    return any(
        k["kind"] in (None, "build") and "loom" not in (k["target"] or "") for k in dep["dep_kinds"]
    )


failures, reached = [], set()
for root in sorted(members, key=label):
    declared = packages[root].get("rust_version")
    if declared is None:
        continue
    # Breadth first, keeping the path to each package for the report.
    paths = {root: [root]}
    queue = [root]
    while queue:
        pid = queue.pop(0)
        for dep in nodes[pid]["deps"]:
            if needed(dep) and dep["pkg"] not in paths:
                paths[dep["pkg"]] = paths[pid] + [dep["pkg"]]
                queue.append(dep["pkg"])
    reached |= set(paths)
    newer = [
        pid
        for pid in paths
        if packages[pid].get("rust_version") and version(packages[pid]["rust_version"]) > version(declared)
    ]
    for pid in newer:
        chain = " -> ".join(label(p) for p in paths[pid])
        failures.append(f'{chain} needs Rust {packages[pid]["rust_version"]}, above {label(root)}\'s {declared}')
    if not newer:
        print(f"   {label(root)} (rust-version {declared}): {len(paths) - 1} dependencies, none newer")

floor = min(
    (version(packages[m]["rust_version"]) for m in members if packages[m].get("rust_version")), default=None
)
tools = sorted(
    label(pid) + f' ({p["rust_version"]})'
    for pid, p in packages.items()
    if pid not in reached and p.get("rust_version") and floor and version(p["rust_version"]) > floor
)
if tools:
    print("   not checked, needed only by dev tools (loom model checks, dev-dependencies, benches): " + ", ".join(tools))
if failures:
    sys.exit("dependencies need a newer Rust than declared:\n  " + "\n  ".join(failures))
EOF
echo "MSRV $readme: ok"
