"""Shared fixtures: registration files built in code (builders in ``tests.factories``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import write_rows


@pytest.fixture
def write_csv(tmp_path):
    """Return a function that writes rows to a CSV in tmp_path."""

    def write(rows: list[dict], name: str = "records.csv", **kwargs) -> Path:
        return write_rows(tmp_path / name, rows, **kwargs)

    return write


@pytest.fixture(autouse=True)
def steward_key(monkeypatch):
    """A fixed steward key: record keys and noise are the same on every machine and run."""
    monkeypatch.setenv("CRISIS_EXPOSURE_STEWARD_KEY", "5e" * 32)


@pytest.fixture(autouse=True)
def signing_key(monkeypatch):
    """A fixed signing key, so that no test writes a key file into the home folder."""
    monkeypatch.setenv("CRISIS_EXPOSURE_SIGNING_KEY", "a7" * 32)
