"""scripts/setup.sh installs only when needed, and the editable install prints no warning.

Run on a copy of the script in a temporary tree whose ``.venv/bin/python`` refuses pip
(and records the call), so nothing is ever installed here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAKE_PYTHON = """#!/usr/bin/env bash
# records every pip call and refuses it; runs anything else with the real interpreter
if [[ " $* " == *" -m pip "* ]]; then echo "$*" >> "{calls}"; exit 1; fi
exec "{python}" "$@"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tree with scripts/setup.sh, pyproject.toml and a venv whose python refuses pip."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON.format(calls=tmp_path / "pip-calls", python=sys.executable))
    python.chmod(0o755)
    return tmp_path


def stamp(checkout: Path, extras: str = "") -> None:
    """Write the stamp an install of ``extras`` leaves for the current pyproject.toml."""
    digest = hashlib.sha256((checkout / "pyproject.toml").read_bytes()).hexdigest()
    suffix = f"-{extras}" if extras else ""
    (checkout / ".venv" / f".crisis-exposure-installed{suffix}").write_text(digest + "\n")


def setup(checkout: Path, extras: str = "") -> subprocess.CompletedProcess:
    """Run the copied setup.sh; ``geo`` importable as if installed (PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["bash", "scripts/setup.sh", *([extras] if extras else [])]
    return subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)


def test_demo_after_the_tests_installs_nothing(checkout):
    """test.sh installed the test extra (the dashboard's packages with it): demo.sh skips pip."""
    stamp(checkout, "test")
    result = setup(checkout)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (checkout / "pip-calls").exists()
    assert setup(checkout, "test").returncode == 0  # and the tests' own stamp holds too


def test_a_changed_pyproject_installs_again(checkout):
    stamp(checkout, "test")
    with open(checkout / "pyproject.toml", "a") as pyproject:
        pyproject.write("\n# a new dependency\n")
    result = setup(checkout)
    assert result.returncode == 1
    assert "setup: installing crisis-exposure failed" in result.stderr
    assert "-m pip install" in (checkout / "pip-calls").read_text()


def test_the_tests_extra_is_not_taken_for_granted(checkout):
    """A dashboard-only install does not stand for the test extra: test.sh installs it."""
    stamp(checkout)
    assert setup(checkout, "test").returncode == 1
    assert "-m pip install" in (checkout / "pip-calls").read_text()


def test_the_editable_install_is_a_plain_path_entry():
    """setuptools warns (a 10-line box) for a flat layout's editable import hook.

    With the checkout named as the package folder it writes a .pth entry instead and
    says nothing; this is what made both README commands print the box.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"": "."}
    assert config["packages"]["find"]["include"] == ["geo*"]
