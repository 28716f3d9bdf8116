"""The true cases of the SYNTHETIC demo registry, before any source writes them down.

Per province and citizenship area, persons = round(ISTAT residents × scale) exactly;
cases get a nationality, sex, age, source, vulnerabilities, consent scopes, a date and
a place (around a GeoNames settlement or scattered over the province), all coherent
with each other. :mod:`demo.registry` then renders these cases the way each source
writes them and adds the bad rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.istat import STATELESS_AREA, central_italy_residents, read_citizenship_table
from demo.places import central_italy_provinces, read_settlements, to_laea, to_wgs84
from geo import codes

# The three registries, in the order their rows and files come.
SOURCES = ("consular_registration", "host_state_arrivals", "recruitment_agency")
# Persons per case (1 registrant + accompanying family) for sizes 1..9, by profile.
_CASE_SIZE_PROFILES = {
    "single_workers": (0.62, 0.12, 0.09, 0.09, 0.05, 0.02, 0.006, 0.003, 0.001),
    "mixed": (0.47, 0.17, 0.14, 0.12, 0.06, 0.025, 0.01, 0.004, 0.001),
    "families": (0.36, 0.18, 0.17, 0.16, 0.08, 0.03, 0.012, 0.006, 0.002),
}
_AREA_PROFILE = {
    "EU28": "mixed",
    "XEUR_NEU28_OTH": "mixed",
    "AFR_N": "families",
    "AFR_W": "single_workers",
    "AFR_E": "single_workers",
    "AFR_C_S": "mixed",
    "ASI_W": "mixed",
    "ASI_E": "families",
    "XASI_C_S": "single_workers",
    "AME_N": "mixed",
    "AME_C_S": "mixed",
    "OCE": "mixed",
    STATELESS_AREA: "single_workers",
}
# Source weights (consular, host state, recruitment agency) by citizenship area.
_AREA_SOURCE_WEIGHTS = {
    "EU28": (0.60, 0.15, 0.25),
    "XEUR_NEU28_OTH": (0.45, 0.30, 0.25),
    "AFR_N": (0.40, 0.45, 0.15),
    "AFR_W": (0.25, 0.55, 0.20),
    "AFR_E": (0.30, 0.55, 0.15),
    "AFR_C_S": (0.30, 0.55, 0.15),
    "ASI_W": (0.35, 0.50, 0.15),
    "ASI_E": (0.50, 0.20, 0.30),
    "XASI_C_S": (0.35, 0.35, 0.30),
    "AME_N": (0.80, 0.10, 0.10),
    "AME_C_S": (0.50, 0.30, 0.20),
    "OCE": (0.80, 0.10, 0.10),
    STATELESS_AREA: (0.0, 1.0, 0.0),
}
_MINOR_AREAS = (
    "XEUR_NEU28_OTH",
    "AFR_N",
    "AFR_W",
    "AFR_E",
    "AFR_C_S",
    "ASI_W",
    "XASI_C_S",
    STATELESS_AREA,
)
_SETTLEMENT_SHARE = 2 / 3
# ``updated_at`` runs over these days (demo.registry dates stale copies from FIRST_DAY).
FIRST_DAY = np.datetime64("2023-01-01")
_LAST_DAY = np.datetime64("2026-10-31")
_MAX_REJECTION_ROUNDS = 200


def draw_true_cases(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    """Return one row per case, with its true values, drawn from the ISTAT inputs.

    Parameters
    ----------
    rng
        The registry's random generator (the draws follow a fixed order, so a seed
        gives the same cases).
    scale
        Registered persons per foreign resident.

    Returns
    -------
    pandas.DataFrame
        ``province_code``, ``area``, ``family_members``, ``nationality_iso3``, ``sex``,
        ``age``, ``minor``, ``source``, ``vulnerabilities``, ``consent``, ``updated_at``,
        ``placement``, ``place_name``, ``latitude``, ``longitude``.
    """
    citizenship = read_citizenship_table()
    residents = central_italy_residents()
    cases = _draw_cases(rng, residents, scale)
    cases["nationality_iso3"] = _draw_nationalities(rng, cases["area"], citizenship)
    cases["sex"] = _draw_sex(rng, cases, residents, citizenship)
    _draw_age_and_source(rng, cases)
    cases["vulnerabilities"] = _draw_vulnerabilities(rng, cases)
    cases["consent"] = _draw_consent(rng, cases)
    cases["updated_at"] = _draw_dates(rng, len(cases))
    _place_cases(rng, cases)
    return cases


def _draw_cases(rng: np.random.Generator, residents: pd.DataFrame, scale: float) -> pd.DataFrame:
    """One row per case with province, area and family size summing to the targets."""
    parts = []
    for row in residents.itertuples(index=False):
        target = round(row.total * scale)
        if target == 0:
            continue
        sizes = _case_sizes(rng, target, _CASE_SIZE_PROFILES[_AREA_PROFILE[row.area]])
        parts.append(
            pd.DataFrame(
                {"province_code": row.province_code, "area": row.area, "family_members": sizes - 1}
            )
        )
    return pd.concat(parts, ignore_index=True)


def _case_sizes(rng: np.random.Generator, target: int, profile: tuple[float, ...]) -> np.ndarray:
    """Draw case sizes until they reach ``target`` persons; trim the last case to fit."""
    support = np.arange(1, len(profile) + 1)
    mean = float(np.dot(support, profile))
    sizes = np.empty(0, dtype=np.int64)
    while sizes.sum() < target:
        more = rng.choice(support, size=int(target / mean * 1.2) + 10, p=profile)
        sizes = np.concatenate([sizes, more])
    cumulative = np.cumsum(sizes)
    last = int(np.searchsorted(cumulative, target))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= cumulative[last] - target
    return sizes


def _draw_nationalities(
    rng: np.random.Generator, areas: pd.Series, citizenship: pd.DataFrame
) -> np.ndarray:
    """ISO alpha-3 per case, in proportion to Italy's residents by country in its area."""
    result = np.empty(len(areas), dtype=object)
    for area, group in citizenship.groupby("istat_area"):
        rows = np.flatnonzero(areas.to_numpy() == area)
        weights = group["residents_italy_total"].to_numpy(dtype=float)
        result[rows] = rng.choice(
            group["iso3"].to_numpy(), size=rows.size, p=weights / weights.sum()
        )
    return result


def _draw_sex(
    rng: np.random.Generator,
    cases: pd.DataFrame,
    residents: pd.DataFrame,
    citizenship: pd.DataFrame,
) -> np.ndarray:
    """F/M per registrant from the province × area split, tilted by the country's own.

    The log-odds of "F" are the country's Italy-wide log-odds plus the difference between
    the province's and Italy's log-odds for the area; about 0.5 % are "X", 1.5 % blank.
    """
    country = citizenship.set_index("iso3")
    area_italy = citizenship.groupby("istat_area")[
        ["residents_italy_female", "residents_italy_total"]
    ].sum()
    province = residents.set_index(["province_code", "area"])
    key = pd.MultiIndex.from_arrays([cases["province_code"], cases["area"]])
    logit = (
        _logit(country["residents_italy_female"] / country["residents_italy_total"])
        .loc[cases["nationality_iso3"]]
        .to_numpy()
        + _logit(province["female"] / province["total"]).loc[key].to_numpy()
        - _logit(area_italy["residents_italy_female"] / area_italy["residents_italy_total"])
        .loc[cases["area"]]
        .to_numpy()
    )
    female = rng.random(len(cases)) < 1 / (1 + np.exp(-logit))
    sex = np.where(female, "F", "M").astype(object)
    other = rng.random(len(cases))
    sex[other < 0.005] = "X"
    sex[(other >= 0.005) & (other < 0.02)] = None
    return sex


def _logit(share: pd.Series) -> pd.Series:
    """Log-odds of a share, clipped to [0.01, 0.99] (also for empty groups)."""
    clipped = share.fillna(0.5).clip(0.01, 0.99)
    return np.log(clipped / (1 - clipped))


def _draw_age_and_source(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Add ``age`` (adults 18+, some unaccompanied minors 12-17), ``minor``, ``source``.

    About 4 % of single registrants of the refugee-origin areas are unaccompanied
    minors (90 % boys); minors are registered by the host state on arrival.
    """
    n = len(cases)
    age = np.minimum(18 + np.floor(rng.gamma(3.5, 6.0, size=n)), 85).astype(np.int64)
    minor = (
        (cases["family_members"].to_numpy() == 0)
        & cases["area"].isin(_MINOR_AREAS).to_numpy()
        & (rng.random(n) < 0.04)
    )
    age[minor] = rng.choice(
        np.arange(12, 18), size=minor.sum(), p=[0.03, 0.05, 0.1, 0.17, 0.27, 0.38]
    )
    boys = rng.random(n) < 0.9
    cases.loc[minor, "sex"] = np.where(boys[minor], "M", "F")
    weights = np.array([_AREA_SOURCE_WEIGHTS[area] for area in cases["area"]])
    source_index = (rng.random(n)[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    source = np.array(SOURCES, dtype=object)[np.minimum(source_index, len(SOURCES) - 1)]
    source[minor] = "host_state_arrivals"
    cases["age"] = age
    cases["minor"] = minor
    cases["source"] = source


def _draw_vulnerabilities(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """``;``-separated vulnerabilities, coherent with age, sex and family (~8 % of cases)."""
    n = len(cases)
    age = cases["age"].to_numpy()
    alone = cases["family_members"].to_numpy() == 0
    flags = {
        "disability": rng.random(n) < 0.02,
        "pregnant": (
            (cases["sex"] == "F").to_numpy() & (age >= 18) & (age <= 45) & (rng.random(n) < 0.04)
        ),
        "unaccompanied_minor": cases["minor"].to_numpy(),
        "older_person_alone": (age >= 65) & alone & (rng.random(n) < 0.5),
        "medical": rng.random(n) < 0.025,
        "other": rng.random(n) < 0.01,
    }
    return _join_flags(flags, codes.VULNERABILITIES)


def _draw_consent(rng: np.random.Generator, cases: pd.DataFrame) -> np.ndarray:
    """``;``-separated consent scopes; about 1 % of registrants consent to nothing.

    Stateless registrants have no origin state; unaccompanied minors rarely consent to it.
    """
    n = len(cases)
    origin_rate = np.where(cases["minor"], 0.1, 0.6)
    origin_rate[cases["area"].to_numpy() == STATELESS_AREA] = 0.0
    none = rng.random(n) < 0.01
    flags = {
        "aggregate": (rng.random(n) < 0.97) & ~none,
        "origin_state": (rng.random(n) < origin_rate) & ~none,
        "host_state": (rng.random(n) < 0.4) & ~none,
        "humanitarian": (rng.random(n) < 0.7) & ~none,
    }
    return _join_flags(flags, codes.CONSENT_SCOPES)


def _join_flags(flags: Mapping[str, np.ndarray], order: tuple[str, ...]) -> np.ndarray:
    """Join boolean flag columns into ``;``-separated strings (None when none is set)."""
    matrix = np.column_stack([flags[name] for name in order])
    names = np.array(order, dtype=object)
    return np.array([";".join(names[row]) or None for row in matrix], dtype=object)


def _draw_dates(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniform ``updated_at`` days between 2023-01-01 and 2026-10-31 (datetime64[D])."""
    span = int((_LAST_DAY - FIRST_DAY).astype(int)) + 1
    return FIRST_DAY + rng.integers(0, span, size=n).astype("timedelta64[D]")


def _place_cases(rng: np.random.Generator, cases: pd.DataFrame) -> None:
    """Add ``placement``, ``place_name``, ``latitude`` and ``longitude`` to the cases.

    "settlement" cases (about 2/3) are drawn around a GeoNames place of their province
    chosen with probability ∝ population, with Gaussian spread σ = 1.5 km × (population /
    10,000)^¼ clipped to 1.5-6 km; "scattered" cases uniformly over the province (in the
    equal-area EPSG:3035). Draws outside the province polygon are redrawn.
    """
    settlements = read_settlements()
    provinces = central_italy_provinces().set_index("province_code")
    codes = cases["province_code"].to_numpy()
    on_settlement = rng.random(len(cases)) < _SETTLEMENT_SHARE
    place = np.full(len(cases), -1)
    for code, group in settlements.groupby("province_code"):
        rows = np.flatnonzero((codes == code) & on_settlement)
        weights = group["population"].to_numpy(dtype=float)
        place[rows] = rng.choice(group.index.to_numpy(), size=rows.size, p=weights / weights.sum())
    cx, cy = to_laea().transform(
        settlements["longitude"].to_numpy(), settlements["latitude"].to_numpy()
    )
    sigma = np.clip(
        1500.0 * (settlements["population"].to_numpy() / 10_000) ** 0.25, 1500.0, 6000.0
    )
    bounds = provinces.geometry.to_crs("EPSG:3035").bounds

    def propose(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        near = place[rows]
        box = bounds.loc[codes[rows]].to_numpy()
        x = rng.uniform(box[:, 0], box[:, 2])
        y = rng.uniform(box[:, 1], box[:, 3])
        spread = near >= 0
        x[spread] = rng.normal(cx[near[spread]], sigma[near[spread]])
        y[spread] = rng.normal(cy[near[spread]], sigma[near[spread]])
        return x, y

    lon, lat = _rejection_sample(codes, provinces.geometry, propose)
    cases["placement"] = np.where(on_settlement, "settlement", "scattered")
    cases["place_name"] = np.where(
        on_settlement,
        settlements["name"].to_numpy()[place],
        cases["province_code"].map(provinces["province_name"]),
    )
    cases["latitude"] = lat
    cases["longitude"] = lon


def _rejection_sample(
    codes: np.ndarray,
    polygons: gpd.GeoSeries,
    propose: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """Redraw ``propose(rows)`` (EPSG:3035) until every point is in its province polygon.

    Coordinates are rounded to 6 decimals before the test, so the written values are
    the tested ones.
    """
    lon = np.full(codes.size, np.nan)
    lat = np.full(codes.size, np.nan)
    pending = np.arange(codes.size)
    for _ in range(_MAX_REJECTION_ROUNDS):
        if pending.size == 0:
            break
        x, y = propose(pending)
        plon, plat = to_wgs84().transform(x, y)
        plon, plat = np.round(plon, 6), np.round(plat, 6)
        inside = np.zeros(pending.size, dtype=bool)
        for code in np.unique(codes[pending]):
            mask = codes[pending] == code
            inside[mask] = shapely.contains_xy(polygons[code], plon[mask], plat[mask])
        lon[pending[inside]], lat[pending[inside]] = plon[inside], plat[inside]
        pending = pending[~inside]
    if pending.size:
        raise RuntimeError(f"{pending.size} points could not be placed inside their province")
    return lon, lat
