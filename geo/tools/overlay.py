"""Exact areas of polygons inside convex cells, vectorised over many (cell, polygon) pairs.

For a polygon P and a convex cell C, Green's theorem gives

    area(P ∩ C) = ∫ x dy over ∂P inside C  +  ∮ w x dy over ∂C,

where w is P's winding number (1 inside, 0 outside, with exteriors counter-clockwise and
holes clockwise). Along ∂C, w is its value at C's first vertex, changed by ±1 wherever
P's boundary crosses ∂C. Both terms need only the edges of P that reach C, so the work
follows the edges near each cell instead of a full GEOS overlay per pair (which costs
tens of microseconds even for a small cut). Edges are taken in short runs whose bounding
box settles the whole run at once (inside C, or beyond one of its sides); only runs that
straddle ∂C are clipped edge by edge (Cyrus–Beck). Before that, a box around a cell that
meets no run at all is settled by one point-in-polygon test.

Pairs where the method is ill-conditioned go to GEOS: P's boundary passing within
rounding distance of C's first vertex (w there is undefined), or a cell that is not
convex.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

RUN_EDGES = 8
_RELATIVE_MARGIN = 1e-9
_ABSOLUTE_MARGIN = 1e-12


@dataclass(frozen=True)
class _Cells:
    """Convex cells in local coordinates (origin at each cell's bounding-box centre).

    Edge j of a cell runs counter-clockwise from vertex j to vertex j+1; per-edge arrays
    (K, M) hold the real edges first, then zero-length padding (normal 0).
    """

    origin: np.ndarray  # (K, 2) global coordinates of the local origin
    first: np.ndarray  # (K, 2) global coordinates of vertex 0
    first_local: np.ndarray  # (K, 2)
    edge_count: np.ndarray  # (K,) number of real (non-padding) edges
    nx: np.ndarray  # (K, M) unit inward normal of each edge
    ny: np.ndarray
    offset: np.ndarray  # (K, M) normal · start vertex, so that side = normal · p - offset
    end_x: np.ndarray  # (K, M) end vertex of each edge
    end_y: np.ndarray
    tail: np.ndarray  # (K, M) ∫ x dy along ∂C from the edge's end round to vertex 0
    area: np.ndarray  # (K,)
    margin: np.ndarray  # (K,) distance below which a point counts as on the boundary
    convex: np.ndarray  # (K,) bool
    bounds: np.ndarray  # (K, 4) global xmin, ymin, xmax, ymax

    def tail_from(self, cell: np.ndarray, edge: np.ndarray, x: np.ndarray, y: np.ndarray):
        """Return ∫ x dy along ∂C from point (x, y) on ``edge`` round to vertex 0."""
        end_x, end_y = self.end_x[cell, edge], self.end_y[cell, edge]
        return (x + end_x) / 2 * (end_y - y) + self.tail[cell, edge]


def _cells(rings: np.ndarray) -> _Cells:
    """Return the local description of cells given as padded rings (K, M, 2)."""
    lower, upper = rings.min(axis=1), rings.max(axis=1)
    origin = (lower + upper) / 2
    local = rings - origin[:, None, :]
    x, y = local[..., 0], local[..., 1]
    clockwise = ((x + np.roll(x, -1, axis=1)) * (np.roll(y, -1, axis=1) - y)).sum(axis=1) < 0
    local[clockwise] = local[clockwise, ::-1]
    x_next, y_next = np.roll(x, -1, axis=1), np.roll(y, -1, axis=1)
    edge_area = (x + x_next) / 2 * (y_next - y)
    dx, dy = x_next - x, y_next - y
    length = np.hypot(dx, dy)
    real = length > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        nx = np.where(real, -dy / length, 0.0)
        ny = np.where(real, dx / length, 0.0)
    offset = nx * x + ny * y
    suffix = np.cumsum(edge_area[:, ::-1], axis=1)[:, ::-1]
    tail = np.concatenate([suffix[:, 1:], np.zeros((len(rings), 1))], axis=1)
    size = (upper - lower).max(axis=1)
    margin = _RELATIVE_MARGIN * size + _ABSOLUTE_MARGIN
    # Convex exactly when every vertex lies on the inner side of every edge line.
    sides = nx[:, :, None] * x[:, None, :] + ny[:, :, None] * y[:, None, :] - offset[:, :, None]
    convex = (sides >= -margin[:, None, None]).all(axis=(1, 2))
    order = np.argsort(~real, axis=1, kind="stable")

    def real_first(values: np.ndarray) -> np.ndarray:
        return np.take_along_axis(values, order, axis=1)

    return _Cells(
        origin=origin,
        first=np.where(clockwise[:, None], rings[:, -1], rings[:, 0]),
        first_local=local[:, 0].copy(),
        edge_count=real.sum(axis=1),
        nx=real_first(nx),
        ny=real_first(ny),
        offset=real_first(offset),
        end_x=real_first(x_next),
        end_y=real_first(y_next),
        tail=real_first(tail),
        area=edge_area.sum(axis=1),
        margin=margin,
        convex=convex,
        bounds=np.column_stack([lower, upper]),
    )


@dataclass(frozen=True)
class _Edges:
    """Polygon edges (interiors on their left), grouped in runs of consecutive edges."""

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    run_start: np.ndarray  # first edge of each run
    run_size: np.ndarray
    run_polygon: np.ndarray
    run_bounds: np.ndarray  # (R, 4)
    run_integral: np.ndarray  # ∫ x dy over the run, x measured from run_bounds' xmin
    run_rise: np.ndarray  # y at the run's end minus y at its start


def _edges(polygons: np.ndarray, run_length: float) -> _Edges:
    """Return the edges of polygons, oriented so that each interior lies on the left.

    A run ends after ``RUN_EDGES`` edges or once its edges add up to ``run_length``, so
    that a run's bounding box stays about a cell wide even where edges are long.
    """
    oriented = shapely.orient_polygons(polygons, exterior_cw=False)
    rings, owner = shapely.get_rings(oriented, return_index=True)
    coordinates, ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring[1:] == ring[:-1]
    start, end = coordinates[:-1][same_ring], coordinates[1:][same_ring]
    ring = ring[:-1][same_ring]
    moving = (start != end).any(axis=1)
    start, end, ring = start[moving], end[moving], ring[moving]
    position = np.arange(len(ring))
    first_of_ring = np.r_[True, ring[1:] != ring[:-1]] if len(ring) else np.zeros(0, bool)
    ring_start = np.maximum.accumulate(np.where(first_of_ring, position, 0))
    length = np.hypot(*(end - start).T)
    travelled = np.cumsum(length) - length
    stretch = np.floor((travelled - travelled[ring_start]) / run_length)
    run_first = first_of_ring | ((position - ring_start) % RUN_EDGES == 0)
    run_first[1:] |= stretch[1:] != stretch[:-1]
    run_start = np.flatnonzero(run_first)
    run_size = np.diff(np.r_[run_start, len(ring)])
    ax, ay, bx, by = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
    if len(run_start):
        xmin = np.minimum.reduceat(np.minimum(ax, bx), run_start)
        bounds = np.column_stack(
            [
                xmin,
                np.minimum.reduceat(np.minimum(ay, by), run_start),
                np.maximum.reduceat(np.maximum(ax, bx), run_start),
                np.maximum.reduceat(np.maximum(ay, by), run_start),
            ]
        )
        run_of_edge = np.repeat(np.arange(len(run_start)), run_size)
        local_x = (ax + bx) / 2 - xmin[run_of_edge]
        integral = np.add.reduceat(local_x * (by - ay), run_start)
        rise = np.add.reduceat(by - ay, run_start)
    else:
        bounds, integral, rise = np.zeros((0, 4)), np.zeros(0), np.zeros(0)
    return _Edges(
        ax=ax,
        ay=ay,
        bx=bx,
        by=by,
        run_start=run_start,
        run_size=run_size,
        run_polygon=owner[ring[run_start]],
        run_bounds=bounds,
        run_integral=integral,
        run_rise=rise,
    )


def envelopes(bounds: np.ndarray) -> np.ndarray:
    """Return geometries with the given bounds, for STRtree queries on bounding boxes.

    A box's diagonal has the box as its envelope and is several times cheaper to build.
    """
    return shapely.linestrings(np.stack([bounds[:, :2], bounds[:, 2:]], axis=1))


class PolygonSet:
    """Polygons prepared once for exact area queries: their edges in runs, two STRtrees.

    Parameters
    ----------
    polygons
        Shapely polygons in planar coordinates (other geometry types count as empty).
    cell_size
        Typical width of the cells to come; runs of edges are kept about that long.
    """

    def __init__(self, polygons: np.ndarray, cell_size: float = np.inf) -> None:
        self.polygons = np.asarray(polygons, dtype=object)
        is_polygon = shapely.get_type_id(self.polygons) == shapely.GeometryType.POLYGON
        self._usable = np.flatnonzero(is_polygon & ~shapely.is_empty(self.polygons))
        usable = self.polygons[self._usable]
        shapely.prepare(usable)
        self._tree = shapely.STRtree(usable)
        self._edges = _edges(usable, cell_size)
        self._run_polygon = self._usable[self._edges.run_polygon]
        self._run_tree = shapely.STRtree(envelopes(self._edges.run_bounds))

    def sort_boxes(
        self, bounds: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return boxes that may meet a polygon's boundary, and boxes wholly inside one.

        A box that meets no edge is wholly inside or wholly outside each polygon, which
        its point (x, y) decides; anything inside the box (a cell) shares that fate.

        Returns
        -------
        tuple of numpy.ndarray
            Indices of the boxes to settle exactly (they may meet a polygon's boundary);
            then box and polygon indices of the pairs where the box lies wholly inside
            the polygon. Other boxes lie outside every polygon.
        """
        boxes = envelopes(bounds)
        meets, polygon = self._tree.query(boxes)
        polygon = self._usable[polygon]
        held = shapely.contains_xy(self.polygons[polygon], x[meets], y[meets])
        box, polygon = meets[held], polygon[held]
        # Only boxes whose point some polygon holds can be wholly inside one.
        edged = np.zeros(len(bounds), dtype=bool)
        edged[meets] = True
        edged[box] = False
        edged[box[self._run_tree.query(boxes[box])[0]]] = True
        clear = ~edged[box]
        return np.flatnonzero(edged), box[clear], polygon[clear]

    def areas_in_cells(
        self, rings: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return the area of every convex cell inside every polygon whose bounds it meets.

        Parameters
        ----------
        rings
            Convex cells as rings of shape (K, M, 2), (x, y) in the polygons' planar
            coordinates, either orientation; cells with fewer vertices repeat their last.

        Returns
        -------
        tuple of numpy.ndarray
            Cell index, polygon index and intersection area of each pair whose bounding
            boxes meet (areas may be 0), then the planar area of each cell.
        """
        rings = np.asarray(rings, dtype=float)
        if len(rings) == 0:
            nothing = np.zeros(0, dtype=np.int64)
            return nothing, nothing, np.zeros(0), np.zeros(0)
        polygons, edges = self.polygons, self._edges
        cells = _cells(rings)
        cell_boxes = envelopes(cells.bounds)
        pair_cell, pair_polygon = self._tree.query(cell_boxes)
        pair_polygon = self._usable[pair_polygon]
        order = np.lexsort((pair_polygon, pair_cell))
        pair_cell, pair_polygon = pair_cell[order], pair_polygon[order]
        keys = pair_cell * len(polygons) + pair_polygon
        first = cells.first[pair_cell]
        winding = shapely.contains_xy(polygons[pair_polygon], first[:, 0], first[:, 1])
        area = winding * cells.area[pair_cell]

        run_cell, run = self._run_tree.query(cell_boxes)
        inside, straddling = _classify_runs(cells, edges, run_cell, run)
        pair_of_run = np.searchsorted(keys, run_cell * len(polygons) + self._run_polygon[run])
        run_x = edges.run_bounds[run, 0] - cells.origin[run_cell, 0]
        run_area = edges.run_integral[run] + run_x * edges.run_rise[run]
        area += np.bincount(pair_of_run[inside], run_area[inside], minlength=len(keys))

        element_cell, element_edge = _expand(edges, run_cell[straddling], run[straddling])
        element_pair = np.repeat(pair_of_run[straddling], edges.run_size[run[straddling]])
        near = _meets_bounds(cells, edges, element_cell, element_edge)
        element_cell, element_edge, element_pair = (
            element_cell[near],
            element_edge[near],
            element_pair[near],
        )
        element_area, degenerate = _clip_edges(cells, edges, element_cell, element_edge)
        area += np.bincount(element_pair, element_area, minlength=len(keys))

        fallback = np.zeros(len(keys), dtype=bool)
        fallback[element_pair[degenerate]] = True
        fallback |= ~cells.convex[pair_cell]
        if fallback.any():
            cell_polygons = shapely.polygons(rings[pair_cell[fallback]])
            area[fallback] = shapely.area(
                shapely.intersection(cell_polygons, polygons[pair_polygon[fallback]])
            )
        return pair_cell, pair_polygon, area, cells.area


def _classify_runs(
    cells: _Cells, edges: _Edges, run_cell: np.ndarray, run: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return which (cell, run) pairs lie wholly inside the cell, and which straddle ∂C."""
    bounds = edges.run_bounds[run]
    centre_x = (bounds[:, 0] + bounds[:, 2]) / 2 - cells.origin[run_cell, 0]
    centre_y = (bounds[:, 1] + bounds[:, 3]) / 2 - cells.origin[run_cell, 1]
    half_w, half_h = (bounds[:, 2] - bounds[:, 0]) / 2, (bounds[:, 3] - bounds[:, 1]) / 2
    nx, ny = cells.nx[run_cell], cells.ny[run_cell]
    centre = nx * centre_x[:, None] + ny * centre_y[:, None] - cells.offset[run_cell]
    reach = np.abs(nx) * half_w[:, None] + np.abs(ny) * half_h[:, None]
    margin = cells.margin[run_cell, None]
    padded = (nx == 0) & (ny == 0)
    inside = ((centre - reach >= margin) | padded).all(axis=1)
    beyond = (centre + reach < -margin).any(axis=1)
    return inside, ~inside & ~beyond


def _expand(edges: _Edges, run_cell: np.ndarray, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (cell, edge) for every edge of the given (cell, run) pairs."""
    size = edges.run_size[run]
    offset = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
    return np.repeat(run_cell, size), np.repeat(edges.run_start[run], size) + offset


def _meets_bounds(cells: _Cells, edges: _Edges, cell: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """Return whether each edge's bounding box meets its cell's (edges away add nothing)."""
    bounds = cells.bounds[cell]
    ax, ay, bx, by = edges.ax[edge], edges.ay[edge], edges.bx[edge], edges.by[edge]
    return (
        (np.maximum(ax, bx) >= bounds[:, 0])
        & (np.minimum(ax, bx) <= bounds[:, 2])
        & (np.maximum(ay, by) >= bounds[:, 1])
        & (np.minimum(ay, by) <= bounds[:, 3])
    )


def _clip_edges(
    cells: _Cells, edges: _Edges, cell: np.ndarray, edge: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return each edge's share of area(P ∩ C), and whether it passes through vertex 0.

    The share is ∫ x dy over the part of the edge inside C, plus, where the edge
    crosses ∂C, ∓ the integral of x dy along ∂C from the crossing round to vertex 0
    (w drops by one where P's boundary enters C, seen along ∂C counter-clockwise).
    Cells are taken by number of edges, so hexagons pay for six edges, not ten.
    """
    area, degenerate = np.zeros(len(edge)), np.zeros(len(edge), dtype=bool)
    count = cells.edge_count[cell]
    for size in np.unique(count):
        group = np.flatnonzero(count == size)
        area[group], degenerate[group] = _clip_group(cells, edges, cell[group], edge[group], size)
    return area, degenerate


def _clip_group(
    cells: _Cells, edges: _Edges, cell: np.ndarray, edge: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``_clip_edges`` for edges whose cells all have ``size`` real edges."""
    ox, oy = cells.origin[cell, 0], cells.origin[cell, 1]
    ax, ay = edges.ax[edge] - ox, edges.ay[edge] - oy
    bx, by = edges.bx[edge] - ox, edges.by[edge] - oy
    nx, ny = cells.nx[:, :size][cell], cells.ny[:, :size][cell]
    offset = cells.offset[:, :size][cell]
    side_a = nx * ax[:, None] + ny * ay[:, None] - offset
    side_b = nx * bx[:, None] + ny * by[:, None] - offset
    out_a, out_b = side_a < 0, side_b < 0
    start_out, end_out = out_a.any(axis=1), out_b.any(axis=1)
    area = np.where(start_out | end_out, 0.0, (ax + bx) / 2 * (by - ay))
    cut = np.flatnonzero((start_out | end_out) & ~(out_a & out_b).any(axis=1))
    side_a, side_b, out_a, out_b = side_a[cut], side_b[cut], out_a[cut], out_b[cut]
    with np.errstate(divide="ignore", invalid="ignore"):
        at = side_a / (side_a - side_b)
    # Defaults outside [0, 1] so that argmax / argmin pick a real crossing edge of ∂C.
    entering = np.where(out_a & ~out_b, at, -1.0)
    leaving = np.where(~out_a & out_b, at, 2.0)
    edge_in, edge_out = entering.argmax(axis=1), leaving.argmin(axis=1)
    rows = np.arange(len(cut))
    t0 = np.maximum(entering[rows, edge_in], 0.0)
    t1 = np.minimum(leaving[rows, edge_out], 1.0)
    hit = t0 <= t1
    cx, cy, dx, dy = ax[cut], ay[cut], bx[cut] - ax[cut], by[cut] - ay[cut]
    x0, y0, x1, y1 = cx + t0 * dx, cy + t0 * dy, cx + t1 * dx, cy + t1 * dy
    part = np.where(hit, (x0 + x1) / 2 * (y1 - y0), 0.0)
    enters, leaves = hit & start_out[cut], hit & end_out[cut]
    part -= np.where(enters, cells.tail_from(cell[cut], edge_in, x0, y0), 0.0)
    part += np.where(leaves, cells.tail_from(cell[cut], edge_out, x1, y1), 0.0)
    area[cut] = part
    # Distance from vertex 0 to the edge: within the margin, w at vertex 0 is undefined.
    px, py = cells.first_local[cell, 0] - ax, cells.first_local[cell, 1] - ay
    dx, dy = bx - ax, by - ay
    along = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    distance2 = (px - along * dx) ** 2 + (py - along * dy) ** 2
    return area, distance2 <= cells.margin[cell] ** 2
