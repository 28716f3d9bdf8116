"""Release × footprint classes → exposure table with honest bounds.

For each hazard class (and optional administrative area) and nationality, persons and
cases are reported three ways, all sums of released values only:

- **low**: groups whose cell lies entirely inside the class area;
- **estimate**: every touching group weighted by the share of its cell inside;
- **high**: every group whose cell touches the class area.

Counts are *extensive* (split by share when a cell is cut). The true value of the
released groups lies in [low, high], because a group's people are somewhere inside its
cell; when the released values themselves carry noise (method 2) or rounding, low and
high are widened by what the method can move (:func:`geo.exposure_table.widen`), and
then the truth lies in [low, high] with the release's confidence.

The share inside can be the area share, a settlement share (GeoNames places with
population inside the cell, handed in by the caller: see :mod:`geo.io.settlements`),
or a blend of the two.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely

from geo import h3cells
from geo.accuracy import CONFIDENCE, Accuracy
from geo.errors import InputError
from geo.exposure_table import (
    COUNT_COLUMNS,
    DEFAULT_WEIGHTING,
    TABLE_COLUMNS,
    WEIGHTINGS,
    Exposure,
    widen,
)
from geo.release import Release
from geo.tools.cell_pairs import STORAGE_RESOLUTION, cell_zone_pairs, cell_zone_shares

SETTLEMENT_BLEND = 0.5


def settlement_shares(
    pairs: pd.DataFrame, zones: gpd.GeoDataFrame, places: pd.DataFrame
) -> pd.Series:
    """Return, per (cell, zone) pair, the share of the cell's settlement population inside.

    NaN where the cell holds no GeoNames place (the caller falls back to the area share).
    A place belongs to the released cell that holds it as a record would: its cell at
    the store's resolution, rolled up with ``cell_to_parent``.
    """
    nothing = pd.Series(np.nan, index=pairs.index)
    if pairs.empty:
        return nothing
    cell_of_pair, cells = pd.factorize(pairs["h3_cell"])
    ints = h3cells.cells_to_ints(cells)
    vertices, _ = h3cells.cell_boundaries(ints)
    (minx, miny), (maxx, maxy) = vertices.min(axis=0), vertices.max(axis=0)
    places = places[places["lon"].between(minx, maxx) & places["lat"].between(miny, maxy)]
    if places.empty:
        return nothing
    lon, lat = places["lon"].to_numpy(), places["lat"].to_numpy()
    population = places["population"].to_numpy()
    coordinates = pl.DataFrame({"lat": lat, "lon": lon})
    storage = coordinates.select(polars_h3.latlng_to_cell("lat", "lon", STORAGE_RESOLUTION))
    place, cell = h3cells.storage_to_released(storage.to_series().to_numpy(), ints)
    cell_population = np.bincount(cell, population[place], minlength=len(cells))
    points = shapely.points(lon, lat)
    zone_hit, place_hit = shapely.STRtree(points).query(
        np.asarray(zones.geometry.values), predicate="intersects"
    )
    inside = pd.DataFrame({"place": place, "cell": cell}).merge(
        pd.DataFrame({"place": place_hit, "zone": zone_hit}), on="place"
    )
    keys = inside["cell"].to_numpy() * len(zones) + inside["zone"].to_numpy()
    inside_population = pd.Series(population[inside["place"].to_numpy()]).groupby(keys).sum()
    pair_keys = cell_of_pair * len(zones) + zones.index.get_indexer(pairs["zone"])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (
            inside_population.reindex(pair_keys).fillna(0).to_numpy()
            / cell_population[cell_of_pair]
        )
    return pd.Series(np.where(cell_population[cell_of_pair] > 0, share, np.nan), index=pairs.index)


def check_weighting(weighting: str) -> None:
    """Raise InputError for a weighting that is not one of ``WEIGHTINGS``."""
    if weighting not in WEIGHTINGS:
        raise InputError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}.")


def weighted_shares(
    pairs: pd.DataFrame,
    zones: gpd.GeoDataFrame,
    weighting: str,
    places: pd.DataFrame | None = None,
    population: pd.DataFrame | None = None,
) -> pd.Series:
    """Return the estimate's share per (cell, zone) pair for a weighting method.

    ``places`` are the settlement places (settlement, blend), ``population`` the grid
    read by :func:`geo.io.population.read_population` (population); a cell where they
    put nobody is split by area.

    Raises
    ------
    InputError
        For an unknown weighting.
    """
    check_weighting(weighting)
    area = pairs["area_share"]
    if weighting == "area":
        return area
    if weighting == "population":
        from geo.tools.population import population_shares

        if population is None:
            raise InputError(
                "the population weighting needs a population grid (--population PATH, "
                "or CRISIS_EXPOSURE_POPULATION on the dashboard)."
            )
        return population_shares(pairs, zones, population).fillna(area)
    if places is None:
        raise InputError(f"the {weighting} weighting needs the settlement places.")
    settlement = settlement_shares(pairs, zones, places).fillna(area)
    if weighting == "settlement":
        return settlement
    return SETTLEMENT_BLEND * settlement + (1 - SETTLEMENT_BLEND) * area


def class_zones(classes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return the polygons to expose: the classes (areas: :mod:`geo.tools.areas`)."""
    return classes[["class_label", "class_rank", "geometry"]].reset_index(drop=True)


def exposure_sums(
    groups: pd.DataFrame,
    zones: gpd.GeoDataFrame,
    weighting: str,
    admin_columns: list[str],
    places: pd.DataFrame | None,
    population: pd.DataFrame | None = None,
    round_estimates: bool = True,
) -> tuple[pd.DataFrame, list[str]]:
    """Return the low / estimate / high sums of released groups over zones, and notes.

    Sums are bincounts over (zone, nationality) codes of the groups whose cell touches a
    zone, so only those groups are ever expanded. Low and high are plain sums of
    released values, with ``groups_low`` and ``groups_high`` saying how many groups
    each sums (what :func:`geo.exposure_table.widen` needs), and ``persons_area`` the
    persons of the touching groups weighted by area share (what the reliability needs).
    Estimates are rounded unless ``round_estimates`` is false (:mod:`geo.tools.areas`
    rounds them itself).
    """
    cell_of_group, cells = pd.factorize(groups["h3_cell"])
    cell, zone, area_share, inside = cell_zone_pairs(cells, zones)
    notes = [] if len(cell) else ["no released cell touches the footprint"]
    share = area_share
    if weighting != "area":
        pairs = pd.DataFrame(
            {"h3_cell": np.asarray(cells, dtype=object)[cell], "zone": zone, "area_share": share}
        )
        if weighting == "population" and population is not None:
            from geo.tools.population import grid_coverage_note, population_shares

            grid_share = population_shares(pairs, zones, population)
            notes += grid_coverage_note(cell[~inside], grid_share.to_numpy()[~inside])
            share = grid_share.fillna(pairs["area_share"]).to_numpy()
        else:
            share = weighted_shares(pairs, zones, weighting, places, population).to_numpy()
    share = np.where(inside, 1.0, share)
    # Expand each touching group to its (cell, zone) pairs, pairs sorted by cell.
    order = np.argsort(cell, kind="stable")
    cell, zone, share, inside = cell[order], zone[order], share[order], inside[order]
    area_share = area_share[order]
    per_cell = np.bincount(cell, minlength=len(cells))
    first_pair = np.cumsum(per_cell) - per_cell
    touching = np.flatnonzero(per_cell[cell_of_group] > 0)
    repeats = per_cell[cell_of_group[touching]]
    row = np.repeat(touching, repeats)
    pair = np.repeat(first_pair[cell_of_group[touching]], repeats) + (
        np.arange(len(row)) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    )
    nationality_code, nationalities = pd.factorize(groups["nationality"].iloc[row], sort=True)
    slots = len(zones) * len(nationalities)
    key = zone[pair] * len(nationalities) + nationality_code
    present = np.flatnonzero(np.bincount(key, minlength=slots))  # by zone, nationality
    zone_of_row = present // len(nationalities)
    columns = {
        ("hazard_class" if c == "class_label" else c): zones[c].array.take(zone_of_row)
        for c in zones.columns
        if c != "geometry"
    }
    columns["nationality"] = nationalities.array.take(present % len(nationalities))
    for bound, weights in (("low", inside[pair].astype(float)), ("high", None)):
        groups_summed = np.bincount(key, weights, minlength=slots)[present]
        columns[f"groups_{bound}"] = np.round(groups_summed).astype("int64")
    for what in ("persons", "cases"):
        counts = groups[what].to_numpy()[row].astype(float)
        for bound, weights in (
            ("low", counts * inside[pair]),
            ("estimate", counts * share[pair]),
            ("high", counts),
        ):
            sums = np.bincount(key, weights, minlength=slots)[present]
            exact = bound == "estimate" and not round_estimates
            columns[f"{what}_{bound}"] = sums if exact else np.round(sums).astype("int64")
        if what == "persons":  # how much of the touching cells the zone covers
            area = np.where(inside, 1.0, area_share)[pair]
            columns["persons_area"] = np.bincount(key, counts * area, minlength=slots)[present]
    table = pd.DataFrame(columns)[admin_columns + TABLE_COLUMNS + COUNT_COLUMNS]
    return _ordered(table, admin_columns), notes


def _ordered(table: pd.DataFrame, admin_columns: list[str]) -> pd.DataFrame:
    """Return exposure rows by area, most severe class first, then by persons (high)."""
    return table.sort_values(
        admin_columns + ["class_rank", "persons_high", "nationality"],
        ascending=[True] * len(admin_columns) + [False, False, True],
        kind="stable",
    ).reset_index(drop=True)


def compute_exposure(
    release: Release,
    classes: gpd.GeoDataFrame,
    *,
    cumulative: bool = False,
    weighting: str = DEFAULT_WEIGHTING,
    admin: gpd.GeoDataFrame | None = None,
    admin_field: str | None = None,
    nationalities: list[str] | None = None,
    places: pd.DataFrame | None = None,
    confidence: float = CONFIDENCE,
    population: pd.DataFrame | None = None,
) -> Exposure:
    """Return the exposure table of a release for classed hazard polygons.

    Low and high are sums of released values widened by what the release's method can
    move (:class:`geo.accuracy.Accuracy`): for a noisy release, low − B(n_low) (never
    below 0) and high + B(n_high), B the noise bound of the n groups summed, so the
    true count of the registrations the release covers lies in [low, high] with the
    confidence; for an exact release, the plain sums. The estimate is never widened.

    Parameters
    ----------
    release
        The protected release (the only data read).
    classes
        Disjoint classes (banded) or nested ones (cumulative): columns class_label,
        class_rank, geometry, in EPSG:4326.
    cumulative
        Whether the classes are "at least" classes (labels only; the computation is
        the same).
    weighting
        ``area``, ``settlement``, ``blend`` or ``population`` for the estimate.
    admin, admin_field
        Optional administrative boundaries and the field naming each area.
    nationalities
        Restrict to these nationalities (default: all in the release).
    places
        Settlement places (lon, lat, population) for the settlement and blend
        weightings (:func:`geo.io.settlements.read_settlements`).
    confidence
        The confidence of the bounds of a noisy release (default 99%).
    population
        A population grid for the population weighting
        (:func:`geo.io.population.read_population`).

    Returns
    -------
    Exposure
        The widened tables, the sums they were widened from, and the release's
        accuracy (method, noise scale, confidence, persons withheld).

    Raises
    ------
    InputError
        If the classes are empty or do not overlap any released cell.
    """
    if classes.empty:
        raise InputError("the footprint has no classes to expose.")
    check_weighting(weighting)
    accuracy = Accuracy.of(release.metadata, confidence)
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(nationalities)]
    sums, notes = exposure_sums(groups, class_zones(classes), weighting, [], places, population)
    by_class = _ordered(widen(sums, accuracy), [])
    table = by_class
    area_sums = None
    if admin is not None:
        from geo.tools.areas import area_breakdown  # areas builds on this module

        area_sums, area_notes = area_breakdown(
            groups, class_zones(classes), sums, admin, admin_field, weighting, places, population
        )
        notes += area_notes
        table = widen(area_sums, accuracy)
    return Exposure(
        table=table,
        by_class=by_class,
        weighting=weighting,
        cumulative=cumulative,
        admin_field=admin_field,
        notes=notes,
        accuracy=accuracy,
        sums=sums,
        area_sums=area_sums,
    )


def class_totals(
    release: Release,
    classes: gpd.GeoDataFrame,
    *,
    weighting: str = DEFAULT_WEIGHTING,
    nationalities: list[str] | None = None,
    places: pd.DataFrame | None = None,
    confidence: float = CONFIDENCE,
    population: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return each class's totals over every nationality, as :func:`compute_exposure` gives.

    Equal to ``compute_exposure(...).class_totals()`` without widening the rows of every
    nationality (whose noise bounds cost most of the time): what a headline needs.

    Raises
    ------
    InputError
        If the classes are empty.
    """
    if classes.empty:
        raise InputError("the footprint has no classes to expose.")
    check_weighting(weighting)
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(nationalities)]
    sums, _ = exposure_sums(groups, class_zones(classes), weighting, [], places, population)
    accuracy = Accuracy.of(release.metadata, confidence)
    return Exposure(sums, sums, weighting, False, accuracy=accuracy, sums=sums).class_totals()


def exposed_groups(
    release: Release, classes: gpd.GeoDataFrame, nationalities: list[str] | None = None
) -> pd.DataFrame:
    """Return the released groups whose cell touches a class, with the worst class touched.

    Returns
    -------
    pandas.DataFrame
        The release's group columns plus class_label, class_rank (of the most severe
        class the cell touches) and inside (the cell lies entirely inside that class),
        sorted by cell and nationality.
    """
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(nationalities)]
    zones = classes[["class_label", "class_rank", "geometry"]].reset_index(drop=True)
    pairs = cell_zone_shares(sorted(groups["h3_cell"].unique()), zones)
    pairs = pairs.merge(zones.drop(columns="geometry"), left_on="zone", right_index=True)
    worst = pairs.sort_values("class_rank", ascending=False).drop_duplicates("h3_cell")
    exposed = groups.merge(worst, on="h3_cell").sort_values(["h3_cell", "nationality"])
    return exposed.reset_index(drop=True)
