"""Which H3 cells share area with which zones, how much, and whether wholly inside.

The geometry under every exposure figure: a released cell's records are somewhere in
the union of its descendants at the storage resolution, so its share of a zone is
measured on that union (exactly, through the children of a cell cut by a zone edge).
Pairs already found for a set of zones are kept (:data:`KNOWN_FOOTPRINTS`, at most
:data:`KNOWN_ROWS` cells and pairs), since one exposure page overlays the same cells on
the same classes several times.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import polars as pl
import polars_h3
import shapely

from geo import h3cells
from geo.release import MAX_BASE_RESOLUTION
from geo.tools.overlay import PolygonSet

STORAGE_RESOLUTION = MAX_BASE_RESOLUTION  # records are binned here, then rolled up
_MIN_SHARE = 1e-9
_INSIDE_TOLERANCE = 1e-9
EARTH_RADIUS_KM = 6371.007180918475  # H3's authalic radius
_SCREEN_RESOLUTION = 3
_EDGE_KM = np.array([h3.average_hexagon_edge_length(r, "km") for r in range(16)])
_COLLECTION_TYPES = [
    shapely.GeometryType.MULTIPOLYGON,
    shapely.GeometryType.GEOMETRYCOLLECTION,
]


def cell_rings(cells: np.ndarray) -> np.ndarray:
    """Return cell boundaries as an (n, m, 2) array, short rings repeating their last vertex."""
    vertices, sizes = h3cells.cell_boundaries(cells)
    starts = np.cumsum(sizes) - sizes
    width = int(sizes.max()) if len(sizes) else 0
    position = starts[:, None] + np.minimum(np.arange(width), sizes[:, None] - 1)
    return vertices[position]


def cell_reach(cells: np.ndarray, factor: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Return each cell's centre (lon, lat) and a (lon, lat) box that contains the cell.

    The box reaches ``factor`` times the resolution's mean edge length from the centre
    (no H3 cell reaches 1.1 times it), widened in longitude for the latitude; at the
    poles and the antimeridian it spans every longitude.
    """
    centres = pl.select(polars_h3.cell_to_latlng(pl.Series(cells, dtype=pl.UInt64)))
    lat, lng = centres.to_series().explode().to_numpy().reshape(-1, 2).T
    reach = factor * _EDGE_KM[h3cells.cell_resolutions(cells)] / EARTH_RADIUS_KM  # radians
    widest = np.radians(np.abs(lat)) + reach
    with np.errstate(invalid="ignore", divide="ignore"):
        reach_lng = np.degrees(np.arcsin(np.minimum(np.sin(reach) / np.cos(widest), 1.0)))
    reach_lat = np.degrees(reach)
    reach_lng = np.where((widest >= np.pi / 2) | (np.abs(lng) + reach_lng >= 180), 360, reach_lng)
    box = np.column_stack([lng - reach_lng, lat - reach_lat, lng + reach_lng, lat + reach_lat])
    return np.column_stack([lng, lat]), box


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

    family, ancestors = pd.factorize(h3cells.cells_to_parents(cells, _SCREEN_RESOLUTION))
    _, ancestor_box = cell_reach(np.asarray(ancestors, dtype=np.uint64), factor=3.0)
    candidates = np.flatnonzero(meets(ancestor_box)[family])
    centre, box = cell_reach(cells[candidates])
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


def cell_zone_pairs(
    cells: Sequence[str], zones: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (cell position, zone position, area share, inside) of pairs sharing area.

    A cell's geometry is where its records can be: the union of its descendants at the
    store's resolution (:data:`STORAGE_RESOLUTION`), since records are binned there and
    rolled up with ``cell_to_parent``; a coarser hexagon is not that union (its
    children stick out of it in slivers and leave notches in it). Shares, containment
    and touching are exact for that union, so the truth lies in [low, high].
    """
    parts, source = _zone_parts(zones)
    nothing = np.zeros(0, dtype=np.int64)
    if len(cells) == 0 or len(parts) == 0:
        return nothing, nothing, np.zeros(0), np.zeros(0, dtype=bool)
    ints = h3cells.cells_to_ints(cells)
    key = _zones_key(parts, source, len(zones))
    with _KNOWN_LOCK:
        known = _KNOWN.get(key)
    unknown = np.unique(ints) if known is None else np.setdiff1d(ints, known.cells)
    if len(unknown):
        position, zone, share, inside = _storage_pairs(unknown, parts, source, len(zones))
        order = np.argsort(unknown[position], kind="stable")
        found = _KnownPairs(
            unknown, unknown[position][order], zone[order], share[order], inside[order]
        )
        known = found if known is None else known.merged(found)
    with _KNOWN_LOCK:
        _KNOWN[key] = known
        _KNOWN.move_to_end(key)
        while len(_KNOWN) > 1 and (
            len(_KNOWN) > KNOWN_FOOTPRINTS or sum(k.size for k in _KNOWN.values()) > KNOWN_ROWS
        ):
            _KNOWN.popitem(last=False)
    return known.pairs_of(ints)


# The pairs of the cells already overlaid, per set of zones: one exposure page sums the
# same cells over the same classes several times (the table, each breakdown of the
# profile, the headline's other views), and each cut cell costs its children's clipping.
KNOWN_FOOTPRINTS = 4
KNOWN_ROWS = 2_000_000  # cells and pairs kept in all (~40 MB); the newest set always stays
_KNOWN: OrderedDict[bytes, _KnownPairs] = OrderedDict()
_KNOWN_LOCK = threading.Lock()


def _zones_key(parts: np.ndarray, source: np.ndarray, n_zones: int) -> bytes:
    """Return a digest of the zones' polygon parts and the zone each belongs to."""
    digest = hashlib.sha256(np.int64(n_zones).tobytes() + source.astype(np.int64).tobytes())
    for wkb in shapely.to_wkb(parts):
        digest.update(wkb)
    return digest.digest()


@dataclass(frozen=True)
class _KnownPairs:
    """The (cell, zone) pairs of the cells overlaid so far, sorted by cell."""

    cells: np.ndarray  # sorted integers of the cells overlaid (whether they touch or not)
    pair_cell: np.ndarray  # each pair's cell integer, sorted
    zone: np.ndarray
    share: np.ndarray
    inside: np.ndarray

    @property
    def size(self) -> int:
        """Return the cells and pairs held (what the memory kept grows with)."""
        return len(self.cells) + len(self.pair_cell)

    def merged(self, other: _KnownPairs) -> _KnownPairs:
        """Return these pairs with another set of cells' (cells not already known)."""
        pair_cell = np.concatenate([self.pair_cell, other.pair_cell])
        order = np.argsort(pair_cell, kind="stable")
        columns = [(self.zone, other.zone), (self.share, other.share), (self.inside, other.inside)]
        return _KnownPairs(
            np.union1d(self.cells, other.cells),
            pair_cell[order],
            *(np.concatenate(pair)[order] for pair in columns),
        )

    def pairs_of(self, ints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (position in ``ints``, zone, share, inside) of the pairs of ``ints``."""
        first = np.searchsorted(self.pair_cell, ints, "left")
        counts = np.searchsorted(self.pair_cell, ints, "right") - first
        cell = np.repeat(np.arange(len(ints)), counts)
        pair = np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(len(cell))
        return cell, self.zone[pair], self.share[pair], self.inside[pair]


def _storage_pairs(
    ints: np.ndarray, parts: np.ndarray, source: np.ndarray, n_zones: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``cell_zone_pairs`` for cells given as integers.

    A coarse cell whose box meets no zone edge lies, with all its descendants (within
    1.2 mean edge lengths of its centre, inside its box of 1.5), wholly inside the zone
    that holds its centre, or outside every zone; one whose box meets an edge is
    settled through its storage-level children, their exact shares weighted by area.
    """
    nothing = np.zeros(0, dtype=np.int64)
    near, centre, box = _cells_near(ints, shapely.total_bounds(parts))
    if len(near) == 0:
        return nothing, nothing, np.zeros(0), np.zeros(0, dtype=bool)
    shapes = PolygonSet(parts, cell_size=float(np.median(box[:, 3] - box[:, 1])))
    edged, clear, clear_part = shapes.sort_boxes(box, centre[:, 0], centre[:, 1])
    coarse = h3cells.cell_resolutions(ints[near[edged]]) < STORAGE_RESOLUTION
    parents = near[edged[coarse]]
    edged = near[edged[~coarse]]
    cell, part, area, cell_area = shapes.areas_in_cells(cell_rings(ints[edged]))
    keys, pair = np.unique(cell * n_zones + source[part], return_inverse=True)
    share = np.bincount(pair, area, minlength=len(keys)) / cell_area[keys // n_zones]
    inside = share >= 1 - _INSIDE_TOLERANCE
    kept = inside | (share > _MIN_SHARE)
    keys = keys[kept]
    parent, parent_zone, parent_share, parent_inside = _children_pairs(
        ints[parents], parts, source, n_zones
    )
    # Cells whose box meets no edge lie wholly inside the part that holds their centre.
    return (
        np.concatenate([edged[keys // n_zones], near[clear], parents[parent]]),
        np.concatenate([keys % n_zones, source[clear_part], parent_zone]),
        np.concatenate([share[kept].clip(0.0, 1.0), np.ones(len(clear)), parent_share]),
        np.concatenate([inside[kept], np.ones(len(clear), dtype=bool), parent_inside]),
    )


def _children_pairs(
    coarse: np.ndarray, parts: np.ndarray, source: np.ndarray, n_zones: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``_storage_pairs`` of coarse cells from their storage-level children.

    A coarse cell's share of a zone is the area-weighted mean of its children's shares;
    it is inside the zone when every child is, and touches it when any child does.
    """
    nothing = np.zeros(0, dtype=np.int64)
    if len(coarse) == 0:
        return nothing, nothing, np.zeros(0), np.zeros(0, dtype=bool)
    children = pl.select(
        polars_h3.cell_to_children(pl.Series(coarse, dtype=pl.UInt64), STORAGE_RESOLUTION)
    ).to_series()
    counts = children.list.len().to_numpy().astype(np.int64)
    children = children.explode().to_numpy().astype(np.uint64)
    parent_of_child = np.repeat(np.arange(len(coarse)), counts)
    child_area = _storage_cell_areas(children)
    parent_area = np.bincount(parent_of_child, child_area, minlength=len(coarse))
    child, zone, share, inside = _storage_pairs(children, parts, source, n_zones)
    keys, pair = np.unique(parent_of_child[child] * n_zones + zone, return_inverse=True)
    weighted = np.bincount(pair, share * child_area[child], minlength=len(keys))
    inside_children = np.bincount(pair, inside, minlength=len(keys))
    parent = keys // n_zones
    parent_share = (weighted / parent_area[parent]).clip(0.0, 1.0)
    parent_inside = inside_children == counts[parent]
    return parent, keys % n_zones, np.where(parent_inside, 1.0, parent_share), parent_inside


def _storage_cell_areas(cells: np.ndarray) -> np.ndarray:
    """Return each cell's planar area in degrees², around its first vertex (no cancellation).

    The areas of the last cells asked are kept: an exposure page asks again for the same
    cut cells' children under other zones (the headline's other view), and their rings
    were 0.8 s of its 1.8 s at 10M registrations. An area depends on the cell alone.
    """
    global _AREAS
    with _AREAS_LOCK:
        known_cells, known_areas = _AREAS
    areas = np.empty(len(cells))
    known = np.zeros(len(cells), dtype=bool)
    if len(known_cells):
        position = np.searchsorted(known_cells, cells).clip(max=len(known_cells) - 1)
        known = known_cells[position] == cells
        areas[known] = known_areas[position[known]]
    if not known.all():
        rings = cell_rings(cells[~known])
        rings = rings - rings[:, :1]  # local coordinates: no cancellation at large longitudes
        x, y = rings[..., 0], rings[..., 1]
        areas[~known] = np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(1) / 2)
    if len(cells) <= KNOWN_ROWS:
        order = np.argsort(cells)
        with _AREAS_LOCK:
            _AREAS = (cells[order], areas[order])
    return areas


_AREAS: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.uint64), np.zeros(0))
_AREAS_LOCK = threading.Lock()


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
    cell, zone, share, inside = cell_zone_pairs(cells, zones)
    pairs = pd.DataFrame(
        {
            "h3_cell": np.asarray(cells, dtype=object)[cell],
            "zone": zones.index.values[zone],
            "area_share": share,
            "inside": inside,
        }
    )
    return pairs.sort_values(["h3_cell", "zone"], kind="stable").reset_index(drop=True)
