#!/usr/bin/env bash
# Runs every test: the Rust crate's unit, integration, example and doc tests.
# (The Python suite joins here when the Python package lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets
cargo test --workspace --doc
