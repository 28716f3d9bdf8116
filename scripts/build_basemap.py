"""Build ``geo/data/naturalearth_countries.parquet``: the offline base map's country outlines.

Source: Natural Earth 1:110m admin-0 countries (public domain), the copy pyogrio ships
among its test fixtures (``naturalearth_lowres``; 177 countries). Kept: ``name``,
``iso_a3`` and the geometry (WGS 84). Natural Earth writes ``-99`` as the ISO code of a
few countries; France, Norway and Kosovo get theirs back (``XKX`` is the user-assigned
code the rest of the project uses for Kosovo); N. Cyprus and Somaliland have none and
keep an empty code. Run once from a checkout::

    .venv/bin/python scripts/build_basemap.py ../shared/data/public/basemap/naturalearth_lowres.shp
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd

OUT = Path(__file__).resolve().parents[1] / "geo" / "data" / "naturalearth_countries.parquet"
MISSING_CODES = {"France": "FRA", "Norway": "NOR", "Kosovo": "XKX"}


def main(source: str) -> None:
    """Read the Natural Earth shapefile and write the trimmed GeoParquet."""
    countries = gpd.read_file(source)[["name", "iso_a3", "geometry"]].to_crs("EPSG:4326")
    fixed = countries["name"].map(MISSING_CODES)
    countries["iso_a3"] = fixed.fillna(countries["iso_a3"]).replace("-99", "")
    countries.to_parquet(OUT, index=False, compression="zstd")
    print(f"{len(countries)} countries -> {OUT} ({OUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
