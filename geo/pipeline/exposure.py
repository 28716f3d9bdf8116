"""Footprints → classes → exposure → exports: the one request both front ends make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from geo.exposure_table import Exposure
    from geo.io.footprints import Footprint, RasterOptions
    from geo.release import Release
    from geo.tools.exposed_cells import ExposedCells
    from geo.tools.headline import Headline


def read_footprints(
    paths: Sequence[str | Path],
    *,
    class_field: str | None = None,
    buffer_km: float = 10.0,
    date_from: str | None = None,
    date_to: str | None = None,
    names: Sequence[str | None] | None = None,
    class_order: str | Sequence[str] | None = None,
    raster: RasterOptions | None = None,
) -> list[Footprint]:
    """Read hazard footprints with the same reader options.

    ``class_order`` (worst first) ranks classes that have no known order, or
    overrides the publisher's (see :func:`geo.io.footprints.read_footprint`).

    Raises
    ------
    InputError
        For a file that cannot be read as a footprint.
    """
    from geo.io.footprints import read_footprint

    names = list(names) if names is not None else [None] * len(paths)
    return [
        read_footprint(
            path,
            class_field=class_field or None,
            buffer_km=buffer_km,
            date_from=date_from,
            date_to=date_to,
            name=name,
            class_order=class_order or None,
            raster=raster,
        )
        for path, name in zip(paths, names, strict=True)
    ]


def footprint_file_bounds(path: str | Path) -> tuple[float, float, float, float] | None:
    """Return a vector footprint file's WGS 84 bounds from its header (None: read it to know)."""
    from geo.io.footprints.extent import footprint_file_bounds as bounds

    return bounds(path)


def raster_options(
    kind: str | None = None, thresholds: str | None = None, labels: str | None = None
) -> RasterOptions | None:
    """Return how to class raster footprints from their text form (None: as published).

    ``kind`` is auto, mmi, depth, continuous or categorical; ``thresholds`` like
    ``"0.5,1.5,3"``; ``labels`` like ``"1=Flooded,2=Deep water"`` (severity in that order).

    Raises
    ------
    InputError
        For an unknown kind, thresholds that are not increasing numbers, or bad labels.
    """
    from geo.io.footprints import RasterOptions

    if (kind or "auto") == "auto" and not thresholds and not labels:
        return None
    return RasterOptions.from_text(kind, thresholds, labels)


def footprint_classes(footprints: Sequence[Footprint], cumulative: bool) -> gpd.GeoDataFrame:
    """Return the classes to expose: one footprint's banded, or several combined.

    Several footprints keep their class systems apart
    (:func:`geo.tools.classes.combine_footprints`): a cell gets one class per system.

    Raises
    ------
    InputError
        For a cumulative ("or worse") view of classes that have no known order.
    """
    from geo.tools.classes import combine_footprints, to_bands, to_cumulative

    if not footprints:
        raise InputError("no footprint given.")
    if cumulative:
        unordered = [
            fp.provenance["file_name"]
            for fp in footprints
            if not fp.provenance.get("cumulative_available", True)
        ]
        if unordered:
            raise InputError(
                "a cumulative view needs classes with an order; "
                + ", ".join(unordered)
                + " has classes without a known order. Use banded classes, or give the "
                "class order (worst first)."
            )
    if len(footprints) > 1:  # each class system kept apart, "worst" within one only
        return combine_footprints(footprints, cumulative=cumulative)
    classes = to_bands(footprints[0].classes)
    return to_cumulative(classes) if cumulative else classes


def read_boundaries(path: str | Path, name: str | None = None) -> gpd.GeoDataFrame:
    """Read administrative boundaries (see :func:`geo.io.boundaries.read_boundaries`)."""
    from geo.io.boundaries import read_boundaries as read

    return read(path, name)


@dataclass(frozen=True)
class ExposureRun:
    """An exposure with what its exports need: classes and footprint provenance."""

    exposure: Exposure
    classes: gpd.GeoDataFrame
    provenance: list[dict]
    nationalities: list[str] | None = None  # the nationalities chosen (None: all)
    # The other view's classes (cumulative for a banded run, banded for a cumulative
    # one; None for unordered classes) and the grid path: what the headline needs.
    other_classes: gpd.GeoDataFrame | None = None
    population: str | Path | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def headline(self, release: Release) -> Headline:
        """Return the PAGER-like headline: bands and "at least" side by side, alert colour.

        Computed once per run (the other view's exposure is computed on first call);
        see :func:`geo.pipeline.headline.exposure_headline`.
        """
        if "headline" not in self._cache:
            from geo.pipeline.headline import exposure_headline

            self._cache["headline"] = exposure_headline(self, release)
        return self._cache["headline"]


def compute_exposure(
    release: Release,
    classes: gpd.GeoDataFrame,
    *,
    population: str | Path | None = None,
    **options: Any,
) -> Exposure:
    """Return the exposure of a release for classes, with the weights its weighting needs.

    Takes the options of :func:`geo.tools.exposure.compute_exposure` (``cumulative``,
    ``weighting``, ``admin``, ``admin_field``, ``nationalities``); the GeoNames places
    behind the settlement and blend weightings, and the population grid at
    ``population`` behind the population weighting (read only around the released
    cells the classes touch), are read here, at the edge.

    Raises
    ------
    InputError
        For the population weighting without a grid, or a grid that cannot be read.
    """
    from geo.exposure_table import DEFAULT_WEIGHTING
    from geo.tools import exposure

    weighting = options.get("weighting", DEFAULT_WEIGHTING)
    places, grid = weighting_inputs(
        release,
        classes,
        weighting,
        population,
        missing_grid="the population weighting needs a population grid (--population PATH, "
        "or CRISIS_EXPOSURE_POPULATION on the dashboard).",
    )
    return exposure.compute_exposure(release, classes, places=places, population=grid, **options)


def weighting_inputs(
    release: Release,
    classes: gpd.GeoDataFrame,
    weighting: str,
    population: str | Path | None,
    missing_grid: str | None = None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Return what the weighting spreads persons over: (settlement places, population grid).

    Each is None when the weighting does not use it. The grid is read around the
    released cells the classes touch; without one, a grid weighting raises InputError
    ``missing_grid`` (when given; else it goes without).
    """
    from geo.exposure_table import GRID_WEIGHTINGS, PLACE_WEIGHTINGS

    places = settlement_places() if weighting in PLACE_WEIGHTINGS else None
    grid = None
    if weighting in GRID_WEIGHTINGS:
        if population is not None:
            grid = population_around(release, classes, population)
        elif missing_grid:
            raise InputError(missing_grid)
    return places, grid


def population_around(
    release: Release, classes: gpd.GeoDataFrame, path: str | Path
) -> pd.DataFrame:
    """Return the population grid at ``path`` around the released cells the classes touch."""
    from geo.io.population import read_population
    from geo.tools.population import population_bounds

    bounds = population_bounds(release.groups["h3_cell"].tolist(), classes)
    if bounds is None:
        import pandas as pd

        return pd.DataFrame({"h3": [], "population": []})
    return read_population(path, bounds)


def settlement_places() -> pd.DataFrame:
    """Return the shipped settlements (what the place weightings spread persons over)."""
    from geo.io.settlements import read_settlements

    return read_settlements()


def run_exposure(
    release: Release,
    footprints: Sequence[Footprint],
    *,
    cumulative: bool = False,
    weighting: str | None = None,
    admin: gpd.GeoDataFrame | None = None,
    admin_field: str | None = None,
    nationalities: Sequence[str] | None = None,
    population: str | Path | None = None,
) -> ExposureRun:
    """Return the exposure of a release for footprints: the one request both front ends make.

    ``population`` is the path of a population grid (raster or H3 table) for the
    population weighting; without ``weighting``, the default for what is available
    (:func:`geo.exposure_table.default_weighting`).

    Raises
    ------
    InputError
        For unusable footprints or boundaries, or bad options.
    """
    from geo.exposure_table import default_weighting

    if admin is not None and not admin_field:
        raise InputError("--admin needs --admin-field (the field that names each area).")
    nationalities = _chosen_nationalities(release, nationalities)
    classes = footprint_classes(footprints, cumulative)
    release_box = _release_bounds(release, nationalities)
    _check_overlap(classes, release_box)
    exposure = compute_exposure(
        release,
        classes,
        cumulative=cumulative,
        weighting=weighting or default_weighting(population is not None),
        population=population,
        admin=admin,
        admin_field=admin_field if admin is not None else None,
        nationalities=list(nationalities) if nationalities else None,
    )
    if not (exposure.by_class["persons_high"] > 0).any():
        _check_overlap(classes, release_box, touching=False)
    from geo.footprint_classes import classes_are_ordered

    if not classes_are_ordered(classes):
        exposure.ordered = False
        exposure.notes.append(UNORDERED_NOTE)
    chosen = list(nationalities) if nationalities else None
    # The headline's other view: banded always exists; "at least" only for classes
    # whose publisher gives an order (a plain polygon's one class has none).
    other_possible = cumulative or all(
        fp.provenance.get("cumulative_available", True) for fp in footprints
    )
    other = (
        footprint_classes(footprints, not cumulative)
        if exposure.ordered and other_possible
        else None
    )
    provenance = [fp.provenance for fp in footprints]
    return ExposureRun(exposure, classes, provenance, chosen, other, population)


UNORDERED_NOTE = (
    "the classes have no known severity order: they are reported unordered (no worst "
    "class, no 'or worse' view, no alert colour); give the class order, worst first, to rank them."
)


def _chosen_nationalities(
    release: Release, nationalities: Sequence[str] | None
) -> list[str] | None:
    """Nationality codes upper-cased; one line naming any code this release does not have.

    Raises
    ------
    InputError
        For a code with no released group (a typo, or a nationality not published).
    """
    if not nationalities:
        return None
    wanted = list(dict.fromkeys(str(code).strip().upper() for code in nationalities))
    released = sorted(release.groups["nationality"].astype(str).unique())
    unknown = [code for code in wanted if code not in set(released)]
    if unknown:
        shown = ", ".join(released[:30]) + (" …" if len(released) > 30 else "")
        raise InputError(
            f"nationality {', '.join(unknown)} is not in this release (it has {shown})."
        )
    return wanted


def _release_bounds(release: Release, nationalities: Sequence[str] | None) -> tuple | None:
    """Bounding box (lon/lat) of the released cells, of the chosen nationalities; None if none.

    Released cells are published values, so their extent may be shown.
    """
    import numpy as np

    from geo import h3cells

    groups = release.groups
    if nationalities:
        groups = groups[groups["nationality"].isin(list(nationalities))]
    cells = groups["h3_cell"].unique()
    if not len(cells):
        return None
    vertices, _ = h3cells.cell_boundaries(h3cells.cells_to_ints(cells))
    lon, lat = vertices[:, 0], vertices[:, 1]
    return (float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat)))


def _check_overlap(
    classes: gpd.GeoDataFrame, release_box: tuple | None, touching: bool = True
) -> None:
    """Raise one line when the footprint meets no released cell (``touching``: by extent only).

    Raises
    ------
    InputError
        "the footprint does not overlap any released cell (footprint bbox …, release bbox …)".
    """
    box = tuple(float(v) for v in classes.total_bounds)
    if release_box is not None and touching and not boxes_apart(box, release_box):
        return
    raise InputError(
        f"the footprint does not overlap any released cell (footprint bbox {_box_text(box)}, "
        f"release bbox {_box_text(release_box)}); check that the footprint and the release "
        "cover the same place."
    )


def boxes_apart(box: Sequence[float], other: Sequence[float]) -> bool:
    """Return whether two (west, south, east, north) boxes share no point."""
    return box[2] < other[0] or other[2] < box[0] or box[3] < other[1] or other[3] < box[1]


def _box_text(box: tuple | None) -> str:
    """``'12.10, 42.30 – 13.90, 43.40'`` (lon, lat of two corners), or 'empty'."""
    if box is None:
        return "empty"
    return f"{box[0]:.2f}, {box[1]:.2f} – {box[2]:.2f}, {box[3]:.2f}"


def export_bytes(
    run: ExposureRun,
    release: Release,
    file_format: str,
    nationalities: Sequence[str] | None = None,
    name: str = "exposure.csv",
) -> bytes:
    """Return an exposure run's export in ``file_format`` (csv, hxl, xlsx or geojson).

    ``csv-metadata`` / ``hxl-metadata``: the CSVW sidecar of the CSV / HXL CSV whose
    file name is ``name``.

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_bytes as payload
    from geo.tools.exposure import exposed_groups

    exposed = None
    if file_format == "geojson":
        chosen = list(nationalities or run.nationalities or []) or None
        exposed = exposed_groups(release, run.classes, chosen)
    return payload(file_format, run.exposure, release, run.provenance, exposed, name=name)


def write_export(path: str | Path, run: ExposureRun, release: Release) -> Path:
    """Write an exposure run as CSV, HXL CSV, XLSX or GeoJSON (by the file's suffix), atomically.

    A CSV or HXL CSV is written with its CSVW sidecar (``<name>.csv-metadata.json``),
    which holds its metadata (:func:`geo.io.export.sidecar_path`). Returns the table's path.

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_format, sidecar_path, write_bytes_atomically

    file_format = export_format(path)
    if file_format in ("csv", "hxl"):  # the metadata first: a table never lacks it
        sidecar = export_bytes(run, release, f"{file_format}-metadata", name=Path(path).name)
        write_bytes_atomically(sidecar_path(path), sidecar)
    return write_bytes_atomically(path, export_bytes(run, release, file_format))


def export_sidecar(path: str | Path) -> Path | None:
    """Return where :func:`write_export` puts the CSVW metadata of ``path`` (None: inside it)."""
    from geo.io.export import export_format, sidecar_path

    return sidecar_path(path) if export_format(path) in ("csv", "hxl") else None


def write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write a file the command line produces (cells, keys); one-line error if it cannot."""
    from geo.io.export import write_bytes_atomically

    return write_bytes_atomically(path, payload)


def exposure_cells(
    run: ExposureRun, release: Release, population: str | Path | None = None
) -> ExposedCells:
    """Return the exposure of each released cell of a run: what the exposure map draws.

    The same sums as the run's table, per cell (:mod:`geo.tools.exposed_cells`), with
    the run's weighting, its nationalities and the same settlement places or
    population grid (``population``, the run's grid path) behind the estimate.
    """
    from geo.tools.exposed_cells import exposed_cells

    weighting = run.exposure.weighting
    places, grid = weighting_inputs(
        release,
        run.classes,
        weighting,
        population,
        missing_grid="the population weighting's map needs the run's population grid.",
    )
    return exposed_cells(
        release,
        run.classes,
        weighting=weighting,
        accuracy=run.exposure.accuracy,
        nationalities=run.nationalities,
        places=places,
        population=grid,
    )


def country_outlines(bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Return the shipped Natural Earth countries meeting ``bounds`` (the maps' base layer)."""
    from geo.io.basemap import country_outlines as countries

    return countries(bounds)


def place_names(bounds: tuple[float, float, float, float], limit: int) -> pd.DataFrame:
    """Return the ``limit`` most populous GeoNames places in ``bounds``, for map labels."""
    from geo.io.settlements import read_places

    return read_places(bounds, limit)


def basemap_attribution() -> str:
    """Return the credit line of the offline base layer (Natural Earth, GeoNames)."""
    from geo.io.basemap import ATTRIBUTION

    return f"{ATTRIBUTION}; place names: GeoNames (CC BY 4.0)."
