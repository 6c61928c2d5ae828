#!/usr/bin/env bash
# Runs every test, Rust and Python:
#   1. the Rust crate's unit, integration, example and doc tests, and its
#      loom model checks (src/loom_tests.rs);
#   2. the Python package, built with maturin into a fresh virtual
#      environment (`pip install .`), then its pytest suite and a check of
#      its type stubs against the runtime (mypy.stubtest).
# Needs cargo and python3 (with venv and pip); fetches Python packages from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust tests"
# tests/examples.rs runs the example programs themselves: build them first.
# The `redis` feature is on: tests/redis_broker.rs runs the Redis mode
# against a real redis-server (the harness starts one; without it they fail).
cargo build -p taskmanager --examples --features redis
cargo test -p taskmanager --all-targets --features redis
cargo test -p taskmanager --doc --features redis

echo "== Rust model checks (loom): the core's hand-offs in every interleaving"
# Its own target directory: --cfg loom rebuilds everything.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p taskmanager --release --lib loom

echo "== Python: build and install into a fresh virtual environment"
venv="${TASKMANAGER_TEST_VENV:-target/test-venv}"
python3 -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet ".[test]"

echo "== Python: type stubs match the runtime"
(cd "$venv" && bin/python -m mypy.stubtest taskmanager)

echo "== Python tests"
"$venv/bin/python" -m pytest tests/python -q
