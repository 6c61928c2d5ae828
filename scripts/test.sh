#!/usr/bin/env bash
# Runs every test, Rust and Python:
#   1. the Rust crate's unit, integration, example and doc tests (with the
#      calendar schedules' reference cases, regenerated from croniter and
#      Python's zoneinfo by tests/calendar_reference.py), and its loom model
#      checks (src/loom_tests.rs);
#   2. the Python package: its one wheel (abi3: CPython 3.9 and newer) built
#      with maturin (`pip wheel .`), installed into a fresh virtual
#      environment, then its pytest suite and a check of its type stubs
#      against the runtime (mypy.stubtest);
#   3. the same wheel on the oldest and the newest other CPython (3.9+) found
#      (pyenv's versions, else python3.9 ... python3.14 on PATH), the two
#      side by side, each into target/test-python-<version>.log: the suite
#      without the argument fuzzing (tests/python/test_fuzz.py, which checks
#      the native argument parsing, the same code on every version) and the
#      dashboard's browser tests (tests/python/test_dashboard.py: the page
#      and its server are the same on every version; Chromium is slow), and
#      with the parity tests in-process only (TASKMANAGER_MODES=inprocess;
#      the broker's own test files still run on every version).
#      TASKMANAGER_ALL_PYTHONS=1 runs the whole suite on every version found.
# Needs cargo and python3 (with venv and pip); fetches Python packages from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust tests"
# tests/examples.rs runs the example programs themselves: build them first.
# The `redis` feature is on: tests/redis_broker.rs runs the Redis mode
# against a real redis-server (the harness starts one; without it they fail).
# The `metrics` feature too: tests/metrics.rs reads what the core records.
cargo build -p taskmanager --examples --features redis
cargo test -p taskmanager --all-targets --features redis,metrics
cargo test -p taskmanager --doc --features redis,metrics

echo "== Calendar reference: tests/data/calendar_reference.tsv is what croniter and Python's zoneinfo give"
# tests/calendar_reference.rs (above) checked src/calendar/ against that file;
# this regenerates it from the pinned reference (its own venv, about 10 s)
# and fails if it differs, so the expected answers cannot drift by hand.
python3 tests/calendar_reference.py --no-cargo

echo "== Rust model checks (loom): the core's hand-offs in every interleaving"
# Its own target directory: --cfg loom rebuilds everything.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p taskmanager --release --lib loom

echo "== Python: build the wheel"
venv="${TASKMANAGER_TEST_VENV:-target/test-venv}"
python3 -m venv --clear "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
wheel_dir=target/test-wheel
rm -rf "$wheel_dir"
"$venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$wheel_dir" .
wheel=$(echo "$wheel_dir"/taskmanager-*.whl)
echo "built $(basename "$wheel")"
# One wheel for every CPython from 3.9 (PyO3's abi3-py39 feature).
case "$(basename "$wheel")" in
*-cp39-abi3-*) ;;
*)
    echo "expected a cp39-abi3 wheel (bindings/python/Cargo.toml: pyo3 feature abi3-py39)" >&2
    exit 1
    ;;
esac

# Installs the wheel into a fresh virtual environment of interpreter $1 (its
# path, at $2), checks its stubs, then runs the suite with pytest options $3...
python_suite() {
    local python=$1 env=$2
    shift 2
    "$python" -m venv --clear "$env"
    "$env/bin/python" -m pip install --quiet --upgrade pip
    "$env/bin/python" -m pip install --quiet "$wheel[test]"
    echo "-- $("$env/bin/python" -c 'import sys, taskmanager; print("CPython", sys.version.split()[0], "taskmanager", taskmanager.__version__)')"
    # mypy 1.x's stubtest (the last mypy for Python 3.9 is 1.19) misreads
    # names an inline-typed module imports from typing; mypy 2 does not.
    if "$env/bin/python" -c 'import mypy.version as v, sys; sys.exit(int(v.__version__.split(".")[0]) < 2)'; then
        echo "-- type stubs match the runtime"
        (cd "$env" && bin/python -m mypy.stubtest taskmanager)
    else
        echo "-- type stubs: skipped (stubtest needs mypy 2, which needs Python 3.10+)"
    fi
    echo "-- pytest $*"
    "$env/bin/python" -m pytest tests/python -q "$@"
}

echo "== Python: the default interpreter ($(python3 --version))"
python_suite python3 "$venv"

echo "== Python: other CPython versions"
# Every CPython 3.9+ at hand (not free-threaded builds: the abi3 wheel does
# not install there), one per version, as "version path" lines.
found=$(
    {
        if command -v pyenv >/dev/null; then
            root=$(pyenv root)
            for v in $(pyenv versions --bare --skip-aliases 2>/dev/null); do
                [ -x "$root/versions/$v/bin/python" ] && echo "$root/versions/$v/bin/python"
            done
        fi
        for minor in 9 10 11 12 13 14; do
            command -v "python3.$minor" || true
        done
    } | while read -r python; do
        "$python" -c '
import sys, sysconfig
if sys.implementation.name == "cpython" and sys.version_info >= (3, 9) and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    print("%d.%d.%d" % sys.version_info[:3], sys.executable)' 2>/dev/null || true
    done | sort -t. -k1,1n -k2,2n -k3,3n -u | awk '!seen[$1]++'
)
default_version=$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
if [ -z "$found" ]; then
    echo "no other CPython 3.9+ found (no pyenv; no python3.9 ... python3.14 on PATH): tested on $default_version only"
else
    echo "found: $(echo "$found" | awk '{print $1}' | tr '\n' ' ')(default: $default_version)"
    if [ "${TASKMANAGER_ALL_PYTHONS:-0}" = 1 ]; then
        chosen=$found
        options=()
        echo "TASKMANAGER_ALL_PYTHONS=1: the whole suite on every version"
    else
        chosen=$(printf '%s\n' "$(echo "$found" | head -n1)" "$(echo "$found" | tail -n1)" | awk '!seen[$1]++')
        options=(--ignore=tests/python/test_fuzz.py --ignore=tests/python/test_dashboard.py)
        # The parity tests' Redis half too runs on the default interpreter
        # only (the same native code; CI's time budget): see conftest.py.
        export TASKMANAGER_MODES=inprocess
        echo "the oldest and the newest, without tests/python/test_fuzz.py and test_dashboard.py"
    fi
    # The other versions' suites run side by side (CI's time budget: each
    # mostly waits on its tasks' sleeps and its own redis-server), each
    # into its own log, printed whole once it ends.
    ran=""
    pids=()
    versions=()
    mapfile -t lines <<<"$chosen"
    for line in "${lines[@]}"; do
        version=${line%% *}
        python=${line#* }
        if [ "$version" = "$default_version" ]; then
            echo "-- $version: the default interpreter, tested above"
            continue
        fi
        echo "== Python $version ($python): started, its log follows when it ends"
        python_suite "$python" "target/test-venv-$version" ${options[@]+"${options[@]}"} \
            >"target/test-python-$version.log" 2>&1 &
        pids+=($!)
        versions+=("$version")
    done
    failed=""
    for i in "${!pids[@]}"; do
        version=${versions[$i]}
        if wait "${pids[$i]}"; then
            ran="$ran $version"
        else
            failed="$failed $version"
        fi
        echo "== Python $version"
        cat "target/test-python-$version.log"
    done
    if [ -n "$failed" ]; then
        echo "== Python: the suite FAILED on$failed" >&2
        exit 1
    fi
    echo "== Python: the suite passed on $default_version (default)${ran:+ and$ran}"
fi
