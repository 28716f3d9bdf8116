"""Exact cell × polygon areas (geo.tools.overlay) checked against shapely (GEOS) overlays."""

from __future__ import annotations

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.h3cells import cells_to_ints, cells_to_parents, cells_to_polygons
from geo.tools import cell_pairs
from geo.tools.cell_pairs import cell_reach, cell_rings, cell_zone_shares
from geo.tools.overlay import PolygonSet

NORCIA = (42.8303, 13.1092)


def rings_of(cells: list[str]) -> np.ndarray:
    return cell_rings(cells_to_ints(cells))


def random_polygons(
    rng: np.random.Generator, centre: tuple[float, float], spread: float, count: int
) -> list:
    """Star-shaped patches, some with holes, some self-intersecting made valid (multi)."""
    lat, lon = centre
    polygons = []
    for _ in range(count):
        cx, cy = lon + rng.normal(0, spread), lat + rng.normal(0, spread)
        n = int(rng.integers(3, 60))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.2, 2.0) * spread * rng.uniform(0.3, 1, n)
        ring = np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)])
        polygon = shapely.make_valid(shapely.Polygon(ring))
        if rng.random() < 0.4:
            polygon = polygon.difference(shapely.Point(cx, cy).buffer(radius.min() / 2))
        if rng.random() < 0.2:
            scribble = np.column_stack(
                [cx + rng.normal(0, spread / 3, n), cy + rng.normal(0, spread / 3, n)]
            )
            polygon = shapely.make_valid(shapely.Polygon(scribble))
        polygons.extend(p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon")
    return polygons


def check_against_geos(rings: np.ndarray, polygons) -> np.ndarray:
    polygons = np.asarray(polygons, dtype=object)
    cell, polygon, area, cell_area = PolygonSet(polygons).areas_in_cells(rings)
    hexagons = shapely.polygons(rings)
    np.testing.assert_allclose(cell_area, shapely.area(hexagons), rtol=1e-12)
    expected = shapely.area(shapely.intersection(hexagons[cell], polygons[polygon]))
    np.testing.assert_allclose(area, expected, rtol=0, atol=1e-10 * cell_area.max())
    # Every pair that really shares area is reported.
    tree_cell, tree_polygon = shapely.STRtree(polygons).query(hexagons, predicate="intersects")
    reported = set(zip(cell.tolist(), polygon.tolist(), strict=True))
    assert set(zip(tree_cell.tolist(), tree_polygon.tolist(), strict=True)) <= reported
    return area


def test_random_polygons_with_holes_over_mixed_resolutions():
    rng = np.random.default_rng(3)
    centre = h3.latlng_to_cell(*NORCIA, 6)
    cells = sorted(
        set(h3.grid_disk(centre, 3))
        | set(h3.grid_disk(h3.cell_to_center_child(centre, 8), 12))
        | {h3.cell_to_parent(centre, 4)}
    )
    polygons = random_polygons(rng, NORCIA, 0.05, 150)
    areas = check_against_geos(rings_of(cells), polygons)
    assert (areas > 0).sum() > 500


def test_cells_whose_boundaries_the_polygon_follows():
    """Polygons made of the cells themselves: shared edges, vertices on ∂C, holes = cells."""
    centre = h3.latlng_to_cell(*NORCIA, 7)
    cells = sorted(h3.grid_disk(centre, 2))
    hexagons = cells_to_polygons(cells)
    ring_one = shapely.union_all(cells_to_polygons(sorted(h3.grid_ring(centre, 1))))
    polygons = [
        *hexagons[:5],  # the cell itself and its neighbours, sharing edges exactly
        shapely.union_all(hexagons[:7]),
        ring_one,  # a polygon whose hole is exactly the centre cell
        hexagons[3].buffer(1e-4),
        hexagons[3].buffer(-1e-4),
        shapely.box(*hexagons[0].bounds),
    ]
    check_against_geos(rings_of(cells), polygons)


def test_boundary_through_the_first_vertex_and_along_an_edge():
    """Cases where the winding number at the cell's first vertex is undefined go to GEOS."""
    cell = h3.latlng_to_cell(*NORCIA, 7)
    rings = rings_of([cell])
    (x0, y0), (x1, y1) = rings[0, 0], rings[0, 1]
    cx, cy = rings[0, :6].mean(axis=0)
    polygons = [
        shapely.Polygon([(x0, y0), (cx, cy), (x0, cy + 0.1)]),  # vertex at the first vertex
        shapely.Polygon(
            [(x0 - 0.01, y0 - (y1 - y0) / (x1 - x0) * 0.01), (x1, y1), (cx, cy)]
        ),  # an edge through the first vertex
        shapely.Polygon([(x0, y0), (x1, y1), (cx, cy)]),  # along the first edge
        shapely.Polygon(
            [((x0 + x1) / 2, (y0 + y1) / 2), (cx, cy), (cx + 0.05, cy - 0.05)]
        ),  # a vertex on an edge's midpoint
    ]
    check_against_geos(rings, polygons)


def test_distorted_cells_pentagons_and_clockwise_rings():
    pentagon = h3.get_pentagons(5)[2]
    cells = sorted(h3.grid_disk(pentagon, 3))
    rings = rings_of(cells)
    assert {len(h3.cell_to_boundary(c)) for c in cells} > {6}
    lat, lon = h3.cell_to_latlng(pentagon)
    polygons = random_polygons(np.random.default_rng(5), (lat, lon), 0.2, 60)
    areas = check_against_geos(rings, polygons)
    backwards = check_against_geos(rings[:, ::-1], polygons)
    np.testing.assert_allclose(areas, backwards, atol=1e-12)


def test_non_convex_cells_fall_back_to_geos():
    arrow = np.array([[[0, 0], [2, 0], [1, 0.5], [2, 1], [0, 1], [0, 1]]], dtype=float)
    polygons = [shapely.box(0.5, -1, 3, 2), shapely.box(-1, 0.4, 3, 0.6)]
    check_against_geos(arrow, polygons)


def test_empty_inputs():
    no_cells = np.zeros((0, 6, 2))
    cell, polygon, area, cell_area = PolygonSet([shapely.box(0, 0, 1, 1)]).areas_in_cells(no_cells)
    assert len(cell) == len(polygon) == len(area) == len(cell_area) == 0
    rings = rings_of([h3.latlng_to_cell(*NORCIA, 7)])
    for polygons in ([], [shapely.Point(0, 0)], [shapely.Polygon()]):
        cell, polygon, area, cell_area = PolygonSet(polygons).areas_in_cells(rings)
        assert len(cell) == 0 and len(cell_area) == 1


def storage_shares(cells: list[str], zone) -> tuple[np.ndarray, np.ndarray]:
    """Return each cell's share of ``zone`` and whether it touches, by plain GEOS.

    A cell is where its records can be: the union of its resolution-8 children (records
    are binned at 8 and rolled up), whose areas add up since they tile it.
    """
    shares, touching = [], []
    for cell in cells:
        children = [cell] if h3.get_resolution(cell) >= 8 else h3.cell_to_children(cell, 8)
        hexagons = cells_to_polygons(children)
        inside = shapely.area(shapely.intersection(hexagons, zone))
        shares.append(inside.sum() / shapely.area(hexagons).sum())
        touching.append(bool((inside / shapely.area(hexagons) > 1e-9).any()))
    return np.array(shares), np.array(touching)


@pytest.mark.parametrize(
    ("lat", "lon"), [(0.0, 20.0), (62.0, 25.0), (84.9, -40.0), (-16.5, 179.99), (65.0, -179.95)]
)
def test_cell_zone_shares_finds_every_touching_cell(lat, lon):
    """The centre-based preselection keeps every cell that touches, at any latitude."""
    centre = h3.latlng_to_cell(lat, lon, 5)
    cells = sorted(
        set(h3.grid_disk(centre, 4)) | set(h3.grid_disk(h3.cell_to_center_child(centre, 7), 8))
    )
    hexagons = cells_to_polygons(cells)
    zone = shapely.Point(shapely.centroid(hexagons[len(cells) // 2])).buffer(0.3)
    west = min(180.0, zone.bounds[2])
    zone = shapely.intersection(zone, shapely.box(-180, -90, west, 90))
    zones = gpd.GeoDataFrame({"class_label": ["z"]}, geometry=[zone], crs=4326)
    pairs = cell_zone_shares(cells, zones)
    shares, touching = storage_shares(cells, zone)
    expected = {c for c, t in zip(cells, touching, strict=True) if t}
    assert set(pairs["h3_cell"]) == expected
    got = pairs.set_index("h3_cell")["area_share"]
    np.testing.assert_allclose(
        got.loc[sorted(expected)].to_numpy(),
        [s for c, s in zip(cells, shares, strict=True) if c in expected],
        rtol=1e-9,
        atol=1e-9,  # children's areas summed in another order
    )


def test_pairs_kept_from_earlier_overlays_are_those_of_a_fresh_overlay(monkeypatch):
    """An exposure page overlays the same cells several times: kept pairs, same answer."""
    centre = h3.latlng_to_cell(*NORCIA, 5)
    cells = sorted(
        set(h3.grid_disk(centre, 3)) | set(h3.grid_disk(h3.cell_to_center_child(centre, 7), 9))
    )
    zone = shapely.Point(NORCIA[1], NORCIA[0]).buffer(0.25)
    zones = gpd.GeoDataFrame({"class_label": ["z"]}, geometry=[zone], crs=4326)
    monkeypatch.setattr(cell_pairs, "_KNOWN", cell_pairs.OrderedDict())
    fresh = cell_zone_shares(cells, zones)
    assert len(fresh) > 50 and not fresh["inside"].all()
    monkeypatch.setattr(cell_pairs, "_KNOWN", cell_pairs.OrderedDict())
    overlaid = []
    real = cell_pairs._storage_pairs
    monkeypatch.setattr(
        cell_pairs, "_storage_pairs", lambda ints, *a: overlaid.append(len(ints)) or real(ints, *a)
    )
    cell_zone_shares(cells[::3], zones)  # a subset first (a nationality, a breakdown)
    assert overlaid[0] == len(cells[::3])
    calls = len(overlaid)
    pieced = cell_zone_shares(cells[::-1] + cells[:5], zones)  # then all, reordered, repeated
    assert overlaid[calls] == len(cells) - len(cells[::3])  # only the cells not yet overlaid
    calls = len(overlaid)
    assert cell_zone_shares(cells, zones).equals(fresh) and len(overlaid) == calls
    expected = pd.concat([fresh, fresh[fresh["h3_cell"].isin(cells[:5])]])
    pd.testing.assert_frame_equal(
        pieced.reset_index(drop=True),
        expected.sort_values(["h3_cell", "zone"], kind="stable").reset_index(drop=True),
    )


def test_other_zones_over_the_same_cut_cells_reuse_their_childrens_areas(monkeypatch):
    """The headline's other view cuts the same coarse cells: their children's rings are not
    drawn again (0.8 s of its 1.8 s at 10M), and the shares are a fresh overlay's."""
    centre = h3.latlng_to_cell(*NORCIA, 5)
    cells = sorted(h3.grid_disk(centre, 2))  # resolution 5: cut ones go through children
    inner = shapely.Point(NORCIA[1], NORCIA[0]).buffer(0.12)
    outer = shapely.Point(NORCIA[1], NORCIA[0]).buffer(0.3)
    bands = gpd.GeoDataFrame({"class_label": ["a", "b"]}, geometry=[inner, outer.difference(inner)])
    nested = gpd.GeoDataFrame({"class_label": ["a", "b"]}, geometry=[inner, outer])
    empty = (np.zeros(0, dtype=np.uint64), np.zeros(0))
    monkeypatch.setattr(cell_pairs, "_KNOWN", cell_pairs.OrderedDict())
    monkeypatch.setattr(cell_pairs, "_AREAS", empty)
    fresh = cell_zone_shares(cells, nested)
    monkeypatch.setattr(cell_pairs, "_KNOWN", cell_pairs.OrderedDict())
    monkeypatch.setattr(cell_pairs, "_AREAS", empty)
    drawn = []
    real = cell_pairs.cell_rings
    monkeypatch.setattr(cell_pairs, "cell_rings", lambda c: drawn.append(len(c)) or real(c))
    cell_zone_shares(cells, bands)
    children = max(drawn)
    assert children >= 7**3  # at least one cut resolution-5 cell, its resolution-8 children
    drawn.clear()
    again = cell_zone_shares(cells, nested)
    assert children not in drawn and sum(drawn) < children  # only the edges' children
    pd.testing.assert_frame_equal(again, fresh, rtol=1e-12)


def test_the_kept_pairs_are_bounded(monkeypatch):
    """At most KNOWN_FOOTPRINTS sets of zones and KNOWN_ROWS cells and pairs are kept."""
    centre = h3.latlng_to_cell(*NORCIA, 5)
    cells = sorted(h3.grid_disk(h3.cell_to_center_child(centre, 7), 6))
    monkeypatch.setattr(cell_pairs, "_KNOWN", cell_pairs.OrderedDict())
    for radius in (0.02, 0.03, 0.04, 0.05, 0.06, 0.07):
        zone = shapely.Point(NORCIA[1], NORCIA[0]).buffer(radius)
        cell_zone_shares(cells, gpd.GeoDataFrame({"class_label": ["z"]}, geometry=[zone]))
    assert len(cell_pairs._KNOWN) == cell_pairs.KNOWN_FOOTPRINTS
    newest = next(reversed(cell_pairs._KNOWN.values()))
    monkeypatch.setattr(cell_pairs, "KNOWN_ROWS", newest.size)
    zone = shapely.Point(NORCIA[1], NORCIA[0]).buffer(0.08)
    pairs = cell_zone_shares(cells, gpd.GeoDataFrame({"class_label": ["z"]}, geometry=[zone]))
    assert len(cell_pairs._KNOWN) == 1 and len(pairs) > 0  # the newest stays, even alone


def test_far_zones_and_geometry_collections():
    cell = h3.latlng_to_cell(*NORCIA, 7)
    far = gpd.GeoDataFrame({"class_label": ["far"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    assert cell_zone_shares([cell], far).empty
    hexagon = cells_to_polygons([cell])[0]
    mixed = shapely.GeometryCollection(
        [
            shapely.MultiPolygon([hexagon.buffer(-1e-3), shapely.box(0, 0, 1, 1)]),
            shapely.LineString([(0, 0), (13, 42)]),
        ]
    )
    zones = gpd.GeoDataFrame({"class_label": ["mixed"]}, geometry=[mixed], crs=4326)
    pairs = cell_zone_shares([cell], zones)
    expected = storage_shares([cell], hexagon.buffer(-1e-3))[0][0]
    assert pairs["area_share"].tolist() == pytest.approx([expected], rel=1e-9)
    assert not pairs["inside"].any()


def test_ancestors_match_h3_and_hold_their_descendants():
    rng = np.random.default_rng(9)
    cells = [
        h3.latlng_to_cell(rng.uniform(-89, 89), rng.uniform(-180, 180), int(r))
        for r in rng.integers(0, 16, 2000)
    ]
    for pentagon in h3.get_pentagons(3):
        cells += h3.grid_disk(h3.cell_to_center_child(pentagon, 6), 3)
    ints = cells_to_ints(cells)
    expected = [h3.str_to_int(h3.cell_to_parent(c, min(3, h3.get_resolution(c)))) for c in cells]
    assert (cells_to_parents(ints, 3) == np.array(expected, dtype=np.uint64)).all()
    # The screening box (3 mean edges around the ancestor) holds every descendant's box.
    _, own = cell_reach(ints)
    _, screen = cell_reach(cells_to_parents(ints, 3), factor=3.0)
    wrapped = screen[:, 2] - screen[:, 0] >= 360
    inside = (screen[:, :2] <= own[:, :2]).all(axis=1) & (screen[:, 2:] >= own[:, 2:]).all(axis=1)
    assert (inside | wrapped).all()
