#!/usr/bin/env bash
# Checks the source distribution as a user with a Rust toolchain meets it:
#   1. `maturin sdist` builds target/sdist/taskmanager-<version>.tar.gz;
#   2. `pip install taskmanager-<version>.tar.gz` in a fresh virtual
#      environment compiles and installs it (pip fetches maturin itself);
#   3. the Python suite that the sdist carries (tests/python), run from the
#      unpacked sdist, passes against that install, and the stubs match.
# Not part of .ci/run: it compiles everything from scratch (several minutes).
# Usage: bash scripts/check_sdist.sh [python]   (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
work=target/sdist-check
rm -rf "$work"
mkdir -p "$work"

echo "== maturin sdist"
"$python" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install --quiet --upgrade pip "maturin>=1.7,<2"
"$work/build-venv/bin/maturin" sdist --out "$work/dist"
sdist=$(echo "$work"/dist/taskmanager-*.tar.gz)
echo "built $(basename "$sdist")"
# What the build and the check need: the core crate, the binding, the lock
# file, the Python sources, the README (the package's description), the tests.
name=$(basename "$sdist" .tar.gz)
listing=$(tar tzf "$sdist")
for needed in Cargo.toml Cargo.lock README.md pyproject.toml src/lib.rs bindings/python/Cargo.toml \
    bindings/python/src/lib.rs python/taskmanager/__init__.py python/taskmanager/py.typed tests/python/conftest.py; do
    if ! grep -qx "$name/$needed" <<<"$listing"; then
        echo "the sdist lacks $needed" >&2
        exit 1
    fi
done

echo "== pip install $(basename "$sdist") (compiles the Rust code)"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
# Its own Cargo target directory: a build from scratch, as a user's would be.
CARGO_TARGET_DIR="$PWD/$work/cargo-target" "$work/venv/bin/python" -m pip install "$sdist"
"$work/venv/bin/python" -m pip install --quiet "pytest>=7" "mypy>=1.10" "hypothesis>=6" numpy
"$work/venv/bin/python" -c 'import taskmanager; print("installed taskmanager", taskmanager.__version__)'

echo "== the sdist's tests against the installed package"
tar xzf "$sdist" -C "$work"
if "$work/venv/bin/python" -c 'import mypy.version as v, sys; sys.exit(int(v.__version__.split(".")[0]) < 2)'; then
    (cd "$work/venv" && bin/python -m mypy.stubtest taskmanager)
fi
(cd "$work/$name" && "$OLDPWD/$work/venv/bin/python" -m pytest tests/python -q -p no:cacheprovider)
echo "== sdist check passed: $(basename "$sdist")"
