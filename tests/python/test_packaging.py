"""The package's metadata: ``taskmanager.__version__`` is the crates' version."""

import re
from importlib.metadata import version
from pathlib import Path

import taskmanager

CARGO_TOML = Path(__file__).resolve().parents[2] / "Cargo.toml"


def workspace_version() -> str:
    """The version in the root Cargo.toml's ``[workspace.package]``."""
    text = CARGO_TOML.read_text(encoding="utf-8")
    section = re.search(r"^\[workspace\.package\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert section, "Cargo.toml has no [workspace.package]"
    found = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
    assert found, "[workspace.package] has no version"
    return found.group(1)


def test_version_is_the_crates():
    assert isinstance(taskmanager.__version__, str)
    assert taskmanager.__version__ == version("taskmanager")
    assert taskmanager.__version__ == workspace_version()
