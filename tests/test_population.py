"""The population weighting: a user's grid splits each released cell by where people live.

Grids are built in code: GeoTIFF rasters (EPSG:4326 and a projected CRS) and H3 tables
(CSV, Parquet, GeoPackage) of resolution-8 cells, as WorldPop, GHSL and Kontur ship them.
"""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from demo.accuracy import compare_with_truth, points_to_records
from demo.weighting import coastal_world, sample_people
from geo.cli import main
from geo.errors import InputError
from geo.io.population import read_population
from geo.pipeline import compute_exposure, write_release
from geo.release import Release, ReleasePolicy, protect

NORCIA = (42.8303, 13.1092)  # (lat, lng)
CELL = h3.latlng_to_cell(*NORCIA, 7)
OTHER = h3.latlng_to_cell(42.70, 13.40, 7)  # where the grid puts nobody


def storage_shape(cell: str) -> shapely.Geometry:
    return shapely.union_all(
        [
            shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
            for c in h3.cell_to_children(cell, 8)
        ]
    )


def release_of(cells: dict[str, int]) -> Release:
    groups = pd.DataFrame(
        [(c, h3.get_resolution(c), "ROU", 40, persons) for c, persons in cells.items()],
        columns=["h3_cell", "resolution", "nationality", "cases", "persons"],
    )
    return Release(groups=groups, breakdowns=pd.DataFrame(), metadata={})


def west_halves() -> gpd.GeoDataFrame:
    """The western half of both cells, split at each one's centre longitude."""
    halves = []
    for cell in (CELL, OTHER):
        shape = storage_shape(cell)
        _, lng = h3.cell_to_latlng(cell)
        halves.append(shape.intersection(shapely.box(-180, -90, lng, 90)))
    return gpd.GeoDataFrame(
        {"class_label": ["west"], "class_rank": [1]},
        geometry=[shapely.union_all(halves)],
        crs=4326,
    )


def west_raster(path, crs: str) -> None:
    """Persons only west of CELL's centre, on 100 m pixels in ``crs``, nobody near OTHER."""
    lat, lng = h3.cell_to_latlng(CELL)
    to_crs = Transformer.from_crs(4326, crs, always_xy=True)
    (x0, x1), (y0, y1) = to_crs.transform([lng - 0.05, lng + 0.05], [lat + 0.04, lat - 0.04])
    size = 100.0 if crs != "EPSG:4326" else 0.001
    width, height = int((x1 - x0) / size), int((y0 - y1) / size)
    xs = x0 + (np.arange(width) + 0.5) * size
    centre_x, _ = to_crs.transform(lng, lat)
    values = np.where(xs < centre_x, 10.0, 0.0)[None, :].repeat(height, axis=0)
    values[0, 0] = -1  # nodata
    with rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=1, dtype="float32",
        crs=crs, transform=from_origin(x0, y0, size, size), nodata=-1,
    ) as target:  # fmt: skip
        target.write(values.astype("float32"), 1)


def west_table() -> pd.DataFrame:
    """Kontur-style rows: resolution-8 children of CELL whose centre lies west of its centre."""
    _, lng = h3.cell_to_latlng(CELL)
    children = h3.cell_to_children(CELL, 8)
    population = [10.0 if h3.cell_to_latlng(c)[1] < lng else 0.0 for c in children]
    return pd.DataFrame({"h3": children, "population": population})


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_a_raster_grid_puts_a_cut_cell_where_its_people_live(tmp_path, crs):
    west_raster(tmp_path / "grid.tif", crs)
    release = release_of({CELL: 1000, OTHER: 1000})
    classes = west_halves()
    by_area = compute_exposure(release, classes, weighting="area").table.iloc[0]
    table = compute_exposure(
        release, classes, weighting="population", population=tmp_path / "grid.tif"
    ).table
    row = table.iloc[0]
    assert 900 < by_area["persons_estimate"] < 1100  # half of each cell by area
    # All of CELL (its people are all west), half of OTHER (no grid there: area share).
    assert 1450 < row["persons_estimate"] < 1550
    assert row["persons_low"] == 0 and row["persons_high"] == 2000


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".gpkg"])
def test_an_h3_table_gives_the_same_split_in_every_format(tmp_path, suffix):
    rows = west_table()
    path = tmp_path / f"kontur{suffix}"
    if suffix == ".csv":
        rows.to_csv(path, index=False)
    elif suffix == ".parquet":
        rows.to_parquet(path)
    else:
        geometry = [
            shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in rows["h3"]
        ]
        gpd.GeoDataFrame(rows, geometry=geometry, crs=4326).to_crs(3857).to_file(path)
    release = release_of({CELL: 1000})
    row = compute_exposure(
        release, west_halves(), weighting="population", population=path
    ).table.iloc[0]
    # Area share says about 500; the table, coarse at the split, most of the 1000.
    assert 850 < row["persons_estimate"] < 1000
    assert len(read_population(path, (13.0, 42.7, 13.2, 42.9))) == 7


def test_the_coastal_strip_is_estimated_from_the_grid(tmp_path):
    """People crowd the coast, the footprint is a strip 400 m deep: area share is far off."""
    rng = np.random.default_rng(4)
    grid, strip = coastal_world(rng, pixel=0.002)
    people = sample_people(grid, 12_000, rng)
    path = grid.write(tmp_path / "coast.tif")
    comparison = compare_with_truth(
        people, strip, ReleasePolicy(), ("area", "population"), population=path
    )
    big = comparison[comparison["persons_true"] >= 100]
    error = big.groupby("weighting")["relative_error"].agg(lambda e: np.median(np.abs(e)))
    assert error["area"] > 0.4
    assert error["population"] < 0.2
    assert (comparison["persons_true"] <= comparison["persons_high"]).all()
    assert (comparison["persons_true"] >= comparison["persons_low"]).all()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("grid.csv", "cell,population\n881e80c0c1fffff,3\n", "population table has no column"),
        ("grid.csv", "h3,population\n871e80c0cffffff,3\n", "resolution 7"),
        ("grid.csv", "h3,population\nnot-a-cell,3\n", "'not-a-cell' is not an H3 cell"),
        (
            "grid.csv",
            "h3,population\n881e80c0c1fffff,-3\n",
            "population must be a number ≥ 0 (found -3)",
        ),
        ("grid.tif", "not a raster", "cannot read the population raster"),
        ("grid.txt", "h3,population\n", "unknown population grid format"),
    ],
)
def test_a_bad_grid_is_one_line_and_exit_2(tmp_path, capsys, name, content, message):
    release = protect(points_to_records(pd.DataFrame({
        "nationality": "ROU", "latitude": NORCIA[0] + np.linspace(0, 0.01, 30),
        "longitude": NORCIA[1], "persons": 2,
    })), ReleasePolicy(noise_scale=0))  # fmt: skip
    write_release(release, tmp_path / "r.release.parquet")
    (tmp_path / name).write_text(content)
    box = shapely.Point(NORCIA[::-1]).buffer(0.02)
    gpd.GeoDataFrame({"name": ["zone"]}, geometry=[box], crs=4326).to_file(tmp_path / "z.geojson")
    argv = ["exposure", "--release", tmp_path / "r.release.parquet", "--hazard"]
    argv += [tmp_path / "z.geojson", "--out", tmp_path / "out.csv"]
    code = main([str(a) for a in [*argv, "--population", tmp_path / name]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code = main([str(a) for a in [*argv, "--weighting", "population"]])
    err = capsys.readouterr().err
    assert code == 2 and "needs a population grid" in err


def test_a_raster_without_crs_is_refused(tmp_path):
    with rasterio.open(
        tmp_path / "plain.tif", "w", driver="GTiff", height=2, width=2, count=1, dtype="float32"
    ) as target:
        target.write(np.ones((1, 2, 2), dtype="float32"))
    with pytest.raises(InputError, match="plain.tif: population raster has no CRS"):
        read_population(tmp_path / "plain.tif", (0, 0, 1, 1))


@pytest.mark.parametrize("grid", ["far.csv", "nodata.tif"])
def test_a_grid_that_misses_the_footprint_is_said(tmp_path, capsys, grid):
    """Before: a grid with nobody under the footprint gave area-share figures, silently."""
    release = protect(points_to_records(pd.DataFrame({
        "nationality": "ROU", "latitude": NORCIA[0] + np.linspace(0, 0.05, 60),
        "longitude": NORCIA[1] + np.linspace(0, 0.05, 60), "persons": 2,
    })), ReleasePolicy(noise_scale=0))  # fmt: skip
    write_release(release, tmp_path / "r.release.parquet")
    if grid == "far.csv":  # one cell in Ankara
        (tmp_path / grid).write_text(f"h3,population\n{h3.latlng_to_cell(39.9, 32.8, 8)},500\n")
    else:
        with rasterio.open(
            tmp_path / grid, "w", driver="GTiff", height=40, width=40, count=1,
            dtype="float32", crs="EPSG:4326", nodata=np.nan,
            transform=from_origin(NORCIA[1] - 0.2, NORCIA[0] + 0.2, 0.01, 0.01),
        ) as target:  # fmt: skip
            target.write(np.full((1, 40, 40), np.nan, dtype="float32"))
    box = shapely.box(NORCIA[1] + 0.013, NORCIA[0] + 0.013, NORCIA[1] + 0.2, NORCIA[0] + 0.2)
    gpd.GeoDataFrame({"name": ["zone"]}, geometry=[box], crs=4326).to_file(tmp_path / "z.geojson")
    argv = ["exposure", "--release", tmp_path / "r.release.parquet", "--hazard"]
    argv += [tmp_path / "z.geojson", "--out", tmp_path / "out.csv", "--population", tmp_path / grid]
    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code == 0
    assert "note: the population grid puts nobody in any of the" in out
    assert "so the estimate equals area weighting" in out


def test_a_grid_that_covers_part_of_the_cut_cells_gives_the_share():
    from geo.tools.population import grid_coverage_note

    cells = np.array([0, 0, 1, 2, 3])
    shares = np.array([0.5, 0.2, np.nan, 0.1, np.nan])
    assert grid_coverage_note(cells, shares) == [
        "the population grid covers only 50 % (2 of 4) of the released cells the footprint "
        "cuts; the other 2 are split by area share."
    ]
    assert grid_coverage_note(cells, np.full(5, 0.3)) == []
