"""The community profile, focal points and official stocks (issue 13), with numbers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo import pipeline
from geo.cli import main
from geo.errors import InputError
from geo.pipeline import profile as who
from geo.release import Release

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "data" / "demo" / "central_italy.release.parquet"
NORCIA = ROOT / "data" / "footprints" / "italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
REGIONS = ROOT / "data" / "admin" / "italy_regions_limits_IT_regions.geojson"
PERUGIA = ROOT / "data" / "admin" / "italy_perugia_municipalities_limits_P_54.geojson"
SDMX = (
    ROOT
    / "data"
    / "istat"
    / "istat_2023_foreign_residents_by_citizenship_area_all_provinces_sdmx.csv"
)
SAMPLE = ROOT / "data" / "demo" / "focal_points_SAMPLE.csv"


@pytest.fixture(scope="module")
def demo():
    release = pipeline.read_release(RELEASE)
    run = pipeline.run_exposure(release, pipeline.read_footprints([NORCIA]), cumulative=True)
    return release, run


@pytest.fixture(scope="module")
def profile(demo):
    release, run = demo
    return who.community_profile(run, release, "MMI ≥ VI")


def test_top_nationalities_equal_the_cumulative_exposure_table(demo, profile):
    _, run = demo
    table = run.exposure.by_class[run.exposure.by_class["hazard_class"] == "MMI ≥ VI"]
    table = table.set_index("nationality")
    mine = profile.nationalities.set_index("nationality")
    assert profile.scope == "MMI ≥ VI"
    assert profile.nationalities["nationality"].iloc[0] == "ROU"
    for measure in ("persons_low", "persons_estimate", "persons_high"):
        assert (mine[measure] == table.loc[mine.index, measure]).all()
    totals = run.exposure.class_totals().set_index("hazard_class").loc["MMI ≥ VI"]
    assert profile.total["persons_estimate"] == totals["persons_estimate"]


def test_languages_of_the_top_nationalities_with_the_table_persons(profile):
    languages = profile.languages.set_index("language_name")
    persons = profile.nationalities.set_index("nationality")["persons_estimate"]
    expected = {"ROU": "Romanian", "ALB": "Albanian", "CHN": "Chinese", "UKR": "Ukrainian"}
    expected.update({"MAR": "Arabic", "BGD": "Bangla", "IND": "Hindi", "PAK": "Urdu"})
    for code, language in expected.items():
        assert code in languages.loc[language, "nationalities"].split(", "), language
    # Romanian is spoken by Romanians and Moldovans: exactly their persons in the table.
    assert languages.loc["Romanian", "persons_estimate"] == persons["ROU"] + persons["MDA"]
    assert languages.loc["Albanian", "persons_estimate"] == sum(
        persons.get(c, 0) for c in ("ALB", "MKD", "XKX")
    )
    assert profile.languages["persons_estimate"].is_monotonic_decreasing or (
        profile.languages["language_name"].iloc[-1] == "language not known"
    )


def test_breakdowns_are_sums_of_released_breakdown_rows():
    """A footprint covering two whole cells: each category is the sum of their rows."""
    import h3

    first = h3.latlng_to_cell(42.8, 13.1, 7)
    cells = [first, sorted(set(h3.grid_ring(first, 1)))[0]]
    far = h3.latlng_to_cell(43.5, 12.0, 7)
    groups = pd.DataFrame(
        {
            "h3_cell": [*cells, far],
            "resolution": 7,
            "nationality": ["ROU", "ALB", "ROU"],
            "cases": [12, 15, 40],
            "persons": [30, 33, 90],
        }
    )
    rows = []
    for cell, nationality, f, m in (
        (cells[0], "ROU", 18, 12),
        (cells[1], "ALB", 20, 13),
        (far, "ROU", 50, 40),
    ):
        rows += [
            (cell, 7, nationality, "sex", "F", 6, f),
            (cell, 7, nationality, "sex", "M", 6, m),
        ]
    breakdowns = pd.DataFrame(
        rows,
        columns=[
            "h3_cell",
            "resolution",
            "nationality",
            "dimension",
            "category",
            "cases",
            "persons",
        ],
    )
    release = Release(groups, breakdowns, {"policy": {"k": 10, "noise_scale": 0}})
    from geo.h3cells import cells_to_polygons

    polygons = list(cells_to_polygons(cells))
    area = gpd.GeoDataFrame(
        {"class_label": ["zone"], "class_rank": [1]},
        geometry=[shapely.union_all(polygons).buffer(1e-3)],
        crs="EPSG:4326",
    )
    from geo.tools.profile import community_profile

    profile = community_profile(release, area, weighting="area")
    sex = profile.structure["sex"].set_index("category")
    # High sums every released row of the cells touching the area, never the far cell's.
    assert sex.loc["F", "persons_high"] == 18 + 20
    assert sex.loc["M", "persons_high"] == 12 + 13
    assert profile.total["persons_high"] == 30 + 33
    assert (sex["persons_low"] <= sex["persons_estimate"]).all()
    assert (sex["persons_estimate"] <= sex["persons_high"]).all()
    assert profile.structure["age_band"] is None
    assert profile.structure["vulnerability"] is None
    lines = "\n".join(who.profile_lines(profile))
    assert "Age: not available in this release" in lines
    assert "Vulnerabilities: not available in this release" in lines
    assert "distribution of family sizes not available in this release" in lines
    assert profile.persons_per_case == pytest.approx(63 / 27)


def _points(tmp_path, text: str) -> Path:
    path = tmp_path / "points.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_focal_points_are_filtered_by_distance_and_matched(demo, profile):
    _, run = demo
    points = who.read_focal_points(SAMPLE)
    near = who.focal_points_for(profile, run, points, 10.0)
    names = near["organisation"].tolist()
    assert not any("Milan" in n for n in names)  # 400 km away
    matched = near[near["matches"].astype(bool)]
    assert any("Icelandic" in n for n in near["organisation"]) or len(near) == len(matched)
    assert all("Icelandic" not in n for n in matched["organisation"])
    romanian = near[near["organisation"].str.contains("Romanian")].iloc[0]
    assert romanian["inside"] and "Romania" in romanian["matches"]
    assert (near["distance_km"] <= 10).all()


def test_focal_point_distance_on_a_square(tmp_path):
    square = gpd.GeoDataFrame(
        {"class_label": ["A"], "class_rank": [1]},
        geometry=[shapely.box(12.0, 42.0, 12.1, 42.1)],
        crs="EPSG:4326",
    )
    path = _points(
        tmp_path,
        "organisation,serves,lat,lon,contact\n"
        "In,ro,42.05,12.05,a@example.org\n"
        "Near,Romania,42.05,12.2,b@example.org\n"  # about 8.2 km east of the edge
        "Far,ROU,42.05,12.5,c@example.org\n",
    )
    from geo.tools.focal_points import focal_points_near

    points = who.read_focal_points(path)
    near = focal_points_near(points, square, ["ROU"], ["ro"], 10.0).set_index("organisation")
    assert list(near.index) == ["In", "Near"]
    assert near.loc["In", "distance_km"] == 0 and near.loc["In", "matches"] == "Romanian"
    assert 8.0 < near.loc["Near", "distance_km"] < 8.4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("organisation,lat,lon\nX,1,2\n", "missing column(s) serves, contact"),
        ("organisation,serves,contact\nX,ROU,c\n", "missing column(s) lat and lon (or place)"),
        (
            "organisation,serves,lat,lon,contact\nX,ROU,abc,12,c\n",
            "row 2: lat 'abc' is not a number",
        ),
        (
            "organisation,serves,lat,lon,contact\nX,ROU,95,12,c\n",
            "row 2: lat 95 is outside -90..90",
        ),
        ("organisation,serves,lat,lon,contact\nX,Xyzzy,42,12,c\n", "row 2: 'Xyzzy' in serves"),
    ],
)
def test_bad_focal_point_files_exit_2_in_one_line(tmp_path, capsys, text, message):
    path = _points(tmp_path, text)
    code = main(
        [
            "exposure",
            "--release",
            str(RELEASE),
            "--hazard",
            str(NORCIA),
            "--out",
            str(tmp_path / "x.csv"),
            "--focal-points",
            str(path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()  # refused before anything is written


def test_stocks_joined_on_a_small_table(demo, tmp_path):
    release, run = demo
    regions = pipeline.read_boundaries(REGIONS)
    path = tmp_path / "stocks.csv"
    path.write_text(
        "area,nationality,persons\nUmbria,ROU,25000\numbria,Albania,9000\nLazio,ROU,1\n"
    )
    stocks = who.read_stocks(path)
    table, _ = who.stock_comparison(run, release, stocks, regions, "reg_name")
    umbria = table[table["area"] == "Umbria"].set_index("key")
    assert umbria.loc["ROU", "official"] == 25000
    assert umbria.loc["ALB", "official"] == 9000
    assert umbria.loc["ROU", "ratio"] == pytest.approx(
        round(umbria.loc["ROU", "registered_estimate"] / 25000, 3)
    )
    assert umbria.loc["all", "official"] == 34000
    assert umbria.loc["all", "registered_estimate"] == (
        umbria.loc["ROU", "registered_estimate"] + umbria.loc["ALB", "registered_estimate"]
    )
    assert pd.isna(umbria.loc["CHN", "official"])
    # The registered persons are the release's exposure over the whole of Umbria.
    whole = regions[regions["reg_name"] == "Umbria"].assign(class_label="Umbria", class_rank=1)
    exposure = pipeline.compute_exposure(release, whole[["class_label", "class_rank", "geometry"]])
    rou = exposure.by_class.set_index("nationality").loc["ROU", "persons_estimate"]
    assert umbria.loc["ROU", "registered_estimate"] == rou


def test_a_stock_area_is_every_feature_of_its_name_not_only_those_the_footprint_meets(
    demo, tmp_path
):
    release, _ = demo
    municipalities = pipeline.read_boundaries(PERUGIA)  # 59 features, prov_name "Perugia"
    spot = municipalities.geometry.iloc[0].representative_point().buffer(0.01)
    small = tmp_path / "spot.geojson"
    gpd.GeoDataFrame({"zone": ["spot"]}, geometry=[spot], crs=4326).to_file(small)
    run = pipeline.run_exposure(release, pipeline.read_footprints([small]))
    assert municipalities.intersects(spot).sum() < len(municipalities)
    path = tmp_path / "stocks.csv"
    path.write_text("area,nationality,persons\nPerugia,ROU,1000\n")
    stocks = who.read_stocks(path)
    table, _ = who.stock_comparison(run, release, stocks, municipalities, "prov_name")
    row = table[(table["area"] == "Perugia") & (table["key"] == "ROU")].iloc[0]
    whole = municipalities.dissolve("prov_name", as_index=False).rename(
        columns={"prov_name": "class_label"}
    )
    exposure = pipeline.compute_exposure(
        release, whole.assign(class_rank=1)[["class_label", "class_rank", "geometry"]]
    )
    assert (
        row["registered_estimate"]
        == (exposure.by_class.set_index("nationality").loc["ROU", "persons_estimate"])
    )


def test_the_stocks_area_field_is_the_one_naming_their_areas(tmp_path):
    municipalities = pipeline.read_boundaries(PERUGIA)
    by_region = who.read_stocks(SDMX)  # ISTAT's table by region: "Umbria"
    assert who.stock_name_field(municipalities, by_region) == "reg_name"
    path = tmp_path / "stocks.csv"
    path.write_text("area,nationality,persons\nnorcia,ROU,10\nCascia,ROU,5\n")
    assert who.stock_name_field(municipalities, who.read_stocks(path)) == "name"


def test_stocks_on_the_real_istat_file_compare_by_citizenship_area(demo):
    release, run = demo
    stocks = who.read_stocks(SDMX)
    assert stocks.level == "citizenship area"
    umbria = stocks.table[stocks.table["area"] == "Umbria"].set_index("key")["persons"]
    assert umbria["EU28"] == 28737 and umbria.sum() == 88571  # ISTAT, 1 Jan 2023, ITE2
    regions = pipeline.read_boundaries(REGIONS)
    table, notes = who.stock_comparison(run, release, stocks, regions, "reg_name")
    row = table[(table["area"] == "Umbria") & (table["key"] == "EU28")].iloc[0]
    assert row["official"] == 28737 and row["label"] == "European Union (28)"
    assert 0 < row["ratio"] < 1
    assert "citizenship area" in notes[0]


def test_bad_stock_files_are_one_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("region,people\nUmbria,3\n")
    with pytest.raises(InputError, match="missing column"):
        who.read_stocks(path)
    path.write_text("area,nationality,persons\nUmbria,ROU,many\n")
    with pytest.raises(InputError, match="row 2: persons 'many' is not a number"):
        who.read_stocks(path)


def test_cli_prints_the_profile_focal_points_and_stocks(tmp_path, capsys):
    code = main(
        [
            "exposure",
            "--release",
            str(RELEASE),
            "--hazard",
            str(NORCIA),
            "--out",
            str(tmp_path / "x.csv"),
            "--show",
            "0",
            "--profile",
            "--focal-points",
            str(SAMPLE),
            "--stocks",
            str(SDMX),
            "--admin",
            str(REGIONS),
            "--admin-field",
            "reg_name",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "community profile (anywhere in the footprint)" in out
    assert "Romania (ROU):" in out and "  Romanian: " in out
    assert "SAMPLE Romanian Community Association Norcia" in out
    assert "registered (release) beside official stocks" in out and "Umbria" in out


def test_the_un_desa_matrix_is_compared_with_the_country(demo):
    release, run = demo
    path = Path(
        "/work/shared/data/public/migration/UN_MigrantStockByOriginAndDestination_2019_clean.csv"
    )
    if not path.exists():
        pytest.skip("the shared UN DESA file is not on this machine")
    stocks = who.read_stocks(path, country="Italy")
    rou = stocks.table.set_index("key").loc["ROU", "persons"]
    assert rou == 1074382  # UN DESA 2019, Romanians in Italy
    with pytest.raises(InputError, match="needs the country of destination"):
        who.read_stocks(path)
    table, notes = who.stock_comparison(run, release, stocks)  # Natural Earth outlines
    row = table[(table["area"] == "Italy") & (table["key"] == "ROU")].iloc[0]
    assert row["official"] == 1074382 and 0 < row["ratio"] < 0.1
    assert "2019" in notes[0]


def test_the_focal_point_layer_sends_only_what_it_shows():
    from geo.viz.focal_points import focal_points_layer

    points = pd.DataFrame(
        {
            "organisation": ["A <b>"],
            "serves_text": ["Romania"],
            "contact": ["a@example.org"],
            "lon": [13.1],
            "lat": [42.8],
            "distance_km": [0.0],
            "inside": [True],
            "matches": ["Romania"],
        }
    )
    layer = focal_points_layer(points)
    assert layer.type == "ScatterplotLayer" and layer.pickable
    (record,) = layer.data  # pydeck holds the frame as records
    assert sorted(record) == ["colour", "lat", "lon", "tooltip"]
    assert record["tooltip"] == (
        "A <b>\nserves: Romania\nfor the exposed: Romania\ninside the footprint\n"
        "contact: a@example.org"
    )


def test_the_structure_sums_only_the_rows_that_touch_the_area(demo, profile, monkeypatch):
    # The rows of cells outside the area add nothing, so they are left out before the
    # sums (a national dimension's million rows); the tables are those of every row.
    from geo.tools import profile as tool

    kept = []
    touching = tool._touching
    monkeypatch.setattr(tool, "_touching", lambda rows, area: kept.append(len(rows)) or rows)
    release, run = demo
    everything = who.community_profile(run, release, "MMI ≥ VI")
    assert set(profile.structure) == set(everything.structure)
    for dimension, table in profile.structure.items():
        if table is None:
            assert everything.structure[dimension] is None
            continue
        pd.testing.assert_frame_equal(table, everything.structure[dimension])
    assert kept  # every dimension went through it
    area = tool.profile_area(run.classes, "MMI ≥ VI", cumulative=True)
    rows = release.breakdowns[release.breakdowns["dimension"] == "sex"]
    assert 0 < len(touching(rows, area)) < len(rows)
