"""Release × footprint classes → exposure table with honest bounds.

For each hazard class (and optional administrative area) and nationality, persons and
cases are reported three ways, all sums of released values only:

- **low**: groups whose cell lies entirely inside the class area;
- **estimate**: every touching group weighted by the share of its cell inside;
- **high**: every group whose cell touches the class area.

Counts are *extensive* (split by share when a cell is cut). The true value always lies
in [low, high], because a released group's people are somewhere inside its cell.

The share inside can be the area share, a settlement share (GeoNames places with
population inside the cell, shipped in ``data/settlements``: see
:mod:`geo.settlements`), or a blend of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely

from geo.errors import InputError
from geo.io.settlements import read_settlements
from geo.overlay import PolygonSet
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
EARTH_RADIUS_KM = 6371.007180918475  # H3's authalic radius
_SCREEN_RESOLUTION = 3
_EDGE_KM = np.array([h3.average_hexagon_edge_length(r, "km") for r in range(16)])
_COLLECTION_TYPES = [
    shapely.GeometryType.MULTIPOLYGON,
    shapely.GeometryType.GEOMETRYCOLLECTION,
]


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


def cells_to_ints(cells: Sequence[str]) -> np.ndarray:
    """Return H3 cells (strings) as unsigned 64-bit integers, vectorised."""
    strings = pl.from_pandas(pd.Series(cells)).cast(pl.String)  # no copy for Arrow strings
    return pl.select(polars_h3.str_to_int(strings)).to_series().to_numpy()


def cell_boundaries(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the vertices of cells (integers) as one (n, 2) array of (lon, lat), and counts.

    A cell whose boundary jumps across ±180° is unwrapped to one side, so its planar
    area stays right; zones crossing the antimeridian are split by the footprint reader.
    """
    if len(cells) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    boundary = pl.select(polars_h3.cell_to_boundary(pl.Series(cells, dtype=pl.UInt64)))
    boundary = boundary.to_series()
    sizes = boundary.list.len().to_numpy().astype(np.int64)
    latlng = boundary.explode().explode().to_numpy().reshape(-1, 2)
    lng, lat = latlng[:, 1], latlng[:, 0]
    starts = np.cumsum(sizes) - sizes
    span = np.maximum.reduceat(lng, starts) - np.minimum.reduceat(lng, starts)
    wraps = np.repeat(span > 180, sizes)
    lng = np.where(wraps & (lng < 0), lng + 360, lng)
    return np.column_stack([lng, lat]), sizes


def cells_to_polygons(cells: Sequence[str]) -> np.ndarray:
    """Return shapely polygons (lon, lat) for H3 cells, unwrapped at the antimeridian."""
    vertices, sizes = cell_boundaries(cells_to_ints(cells))
    if len(sizes) == 0:
        return np.array([], dtype=object)
    rings = shapely.linearrings(vertices, indices=np.repeat(np.arange(len(sizes)), sizes))
    return shapely.polygons(rings)


def _cell_rings(cells: np.ndarray) -> np.ndarray:
    """Return cell boundaries as an (n, m, 2) array, short rings repeating their last vertex."""
    vertices, sizes = cell_boundaries(cells)
    starts = np.cumsum(sizes) - sizes
    width = int(sizes.max()) if len(sizes) else 0
    position = starts[:, None] + np.minimum(np.arange(width), sizes[:, None] - 1)
    return vertices[position]


def _resolutions(cells: np.ndarray) -> np.ndarray:
    """Return the resolution of H3 cells (integers), read from bits 52–55 of the index."""
    return ((cells >> np.uint64(52)) & np.uint64(15)).astype(np.int64)


def _cell_reach(cells: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Return each cell's centre (lon, lat) and a (lon, lat) box that contains the cell.

    The box reaches ``factor`` times the resolution's mean edge length from the centre
    (no H3 cell reaches 1.1 times it), widened in longitude for the latitude; at the
    poles and the antimeridian it spans every longitude.
    """
    centres = pl.select(polars_h3.cell_to_latlng(pl.Series(cells, dtype=pl.UInt64)))
    lat, lng = centres.to_series().explode().to_numpy().reshape(-1, 2).T
    reach = factor * _EDGE_KM[_resolutions(cells)] / EARTH_RADIUS_KM  # radians
    widest = np.radians(np.abs(lat)) + reach
    with np.errstate(invalid="ignore", divide="ignore"):
        reach_lng = np.degrees(np.arcsin(np.minimum(np.sin(reach) / np.cos(widest), 1.0)))
    reach_lat = np.degrees(reach)
    reach_lng = np.where((widest >= np.pi / 2) | (np.abs(lng) + reach_lng >= 180), 360, reach_lng)
    box = np.column_stack([lng - reach_lng, lat - reach_lat, lng + reach_lng, lat + reach_lat])
    return np.column_stack([lng, lat]), box


def _ancestors(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Return each cell's parent at ``resolution`` (itself if coarser), in H3 bit arithmetic.

    The resolution field (bits 52–55) is set and the digits below it set to 7 (unused).
    """
    level = np.minimum(_resolutions(cells), resolution).astype(np.uint64)
    unused = (np.uint64(1) << (np.uint64(3) * (np.uint64(15) - level))) - np.uint64(1)
    cleared = cells & ~(np.uint64(15) << np.uint64(52)) & ~unused
    return cleared | (level << np.uint64(52)) | unused


def _cells_near(cells: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return positions, centres and boxes of the cells whose box meets ``bounds``.

    Cells are first screened through their ancestors at resolution 3 (a few hundred
    centres instead of every cell's): every descendant lies within 1.7 mean edge lengths
    of its ancestor's centre (child centres lie inside the parent, edges shrink by √7 a
    level), so a box of 3 edge lengths around the ancestor misses no descendant.
    """
    xmin, ymin, xmax, ymax = bounds

    def meets(box: np.ndarray) -> np.ndarray:
        return (box[:, 2] >= xmin) & (box[:, 0] <= xmax) & (box[:, 3] >= ymin) & (box[:, 1] <= ymax)

    family, ancestors = pd.factorize(_ancestors(cells, _SCREEN_RESOLUTION))
    _, ancestor_box = _cell_reach(np.asarray(ancestors, dtype=np.uint64), factor=3.0)
    candidates = np.flatnonzero(meets(ancestor_box)[family])
    centre, box = _cell_reach(cells[candidates])
    near = meets(box)
    return candidates[near], centre[near], box[near]


def _zone_parts(zones: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the polygon parts of the zones and each part's zone position."""
    parts = np.asarray(zones.geometry.values, dtype=object)
    source = np.arange(len(parts))
    while True:  # collections may hold multipolygons, or further collections
        kind = shapely.get_type_id(parts)
        if not np.isin(kind, _COLLECTION_TYPES).any():
            break
        parts, index = shapely.get_parts(parts, return_index=True)
        source = source[index]
    polygon = kind == shapely.GeometryType.POLYGON
    return parts[polygon], source[polygon]


def _cell_zone_pairs(
    cells: Sequence[str], zones: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (cell position, zone position, area share, inside) of pairs sharing area.

    A zone's parts are disjoint, so a cell's share of a zone is the sum over its parts;
    a cell is inside a zone when that share is 1 to within rounding.
    """
    parts, source = _zone_parts(zones)
    nothing = np.zeros(0, dtype=np.int64)
    if len(cells) == 0 or len(parts) == 0:
        return nothing, nothing, np.zeros(0), np.zeros(0, dtype=bool)
    ints = cells_to_ints(cells)
    near, centre, box = _cells_near(ints, shapely.total_bounds(parts))
    if len(near) == 0:
        return nothing, nothing, np.zeros(0), np.zeros(0, dtype=bool)
    shapes = PolygonSet(parts, cell_size=float(np.median(box[:, 3] - box[:, 1])))
    edged, clear, clear_part = shapes.sort_boxes(box, centre[:, 0], centre[:, 1])
    edged = near[edged]
    cell, part, area, cell_area = shapes.areas_in_cells(_cell_rings(ints[edged]))
    keys, pair = np.unique(cell * len(zones) + source[part], return_inverse=True)
    share = np.bincount(pair, area, minlength=len(keys)) / cell_area[keys // len(zones)]
    inside = share >= 1 - _INSIDE_TOLERANCE
    kept = inside | (share > _MIN_SHARE)
    keys = keys[kept]
    # Cells whose box meets no edge lie wholly inside the part that holds their centre.
    return (
        np.concatenate([edged[keys // len(zones)], near[clear]]),
        np.concatenate([keys % len(zones), source[clear_part]]),
        np.concatenate([share[kept].clip(0.0, 1.0), np.ones(len(clear))]),
        np.concatenate([inside[kept], np.ones(len(clear), dtype=bool)]),
    )


def cell_zone_shares(cells: Sequence[str], zones: gpd.GeoDataFrame) -> pd.DataFrame:
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
        Columns h3_cell, zone, area_share (0–1], inside (cell entirely in the zone),
        sorted by cell and zone.
    """
    cell, zone, share, inside = _cell_zone_pairs(cells, zones)
    pairs = pd.DataFrame(
        {
            "h3_cell": np.asarray(cells, dtype=object)[cell],
            "zone": zones.index.values[zone],
            "area_share": share,
            "inside": inside,
        }
    )
    return pairs.sort_values(["h3_cell", "zone"], kind="stable").reset_index(drop=True)


def settlement_shares(pairs: pd.DataFrame, zones: gpd.GeoDataFrame) -> pd.Series:
    """Return, per (cell, zone) pair, the share of the cell's settlement population inside.

    NaN where the cell holds no GeoNames place (the caller falls back to the area share).
    A place belongs to the released cell that contains it at that cell's resolution.
    """
    nothing = pd.Series(np.nan, index=pairs.index)
    if pairs.empty:
        return nothing
    cell_of_pair, cells = pd.factorize(pairs["h3_cell"])
    ints = cells_to_ints(cells)
    vertices, _ = cell_boundaries(ints)
    (minx, miny), (maxx, maxy) = vertices.min(axis=0), vertices.max(axis=0)
    places = read_settlements()
    places = places[places["lon"].between(minx, maxx) & places["lat"].between(miny, maxy)]
    if places.empty:
        return nothing
    lon, lat = places["lon"].to_numpy(), places["lat"].to_numpy()
    population = places["population"].to_numpy()
    order = np.argsort(ints)
    coordinates = pl.DataFrame({"lat": lat, "lon": lon})
    place, cell = [], []
    for resolution in np.unique(_resolutions(ints)):
        located = coordinates.select(polars_h3.latlng_to_cell("lat", "lon", int(resolution)))
        located = located.to_series().to_numpy()
        position = np.minimum(np.searchsorted(ints, located, sorter=order), len(ints) - 1)
        found = ints[order[position]] == located
        place.append(np.flatnonzero(found))
        cell.append(order[position[found]])
    place, cell = np.concatenate(place), np.concatenate(cell)
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


def _check_weighting(weighting: str) -> None:
    """Raise InputError for a weighting that is not one of ``WEIGHTINGS``."""
    if weighting not in WEIGHTINGS:
        raise InputError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}.")


def weighted_shares(pairs: pd.DataFrame, zones: gpd.GeoDataFrame, weighting: str) -> pd.Series:
    """Return the estimate's share per (cell, zone) pair for a weighting method.

    Raises
    ------
    InputError
        For an unknown weighting.
    """
    _check_weighting(weighting)
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
    """Return the low / estimate / high table of released groups over zones, and notes.

    Sums are bincounts over (zone, nationality) codes of the groups whose cell touches a
    zone, so only those groups are ever expanded.
    """
    cell_of_group, cells = pd.factorize(groups["h3_cell"])
    cell, zone, area_share, inside = _cell_zone_pairs(cells, zones)
    notes = [] if len(cell) else ["no released cell touches the footprint"]
    share = area_share
    if weighting != "area":
        pairs = pd.DataFrame(
            {"h3_cell": np.asarray(cells, dtype=object)[cell], "zone": zone, "area_share": share}
        )
        share = weighted_shares(pairs, zones, weighting).to_numpy()
    share = np.where(inside, 1.0, share)
    # Expand each touching group to its (cell, zone) pairs, pairs sorted by cell.
    order = np.argsort(cell, kind="stable")
    cell, zone, share, inside = cell[order], zone[order], share[order], inside[order]
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
    for what in ("persons", "cases"):
        counts = groups[what].to_numpy()[row].astype(float)
        for bound, weights in (
            ("low", counts * inside[pair]),
            ("estimate", counts * share[pair]),
            ("high", counts),
        ):
            sums = np.bincount(key, weights, minlength=slots)[present]
            columns[f"{what}_{bound}"] = np.round(sums).astype("int64")
    table = pd.DataFrame(columns)
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
    _check_weighting(weighting)
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
