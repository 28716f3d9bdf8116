"""Footprints → classes → exposure → exports: the one request both front ends make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geo.errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from geo.exposure_table import Exposure
    from geo.io.footprints import Footprint, RasterOptions
    from geo.release import Release


def read_footprints(
    paths: Sequence[str | Path],
    *,
    class_field: str | None = None,
    buffer_km: float = 10.0,
    date_from: str | None = None,
    date_to: str | None = None,
    names: Sequence[str | None] | None = None,
    raster: RasterOptions | None = None,
) -> list[Footprint]:
    """Read hazard footprints with the same reader options.

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
            raster=raster,
        )
        for path, name in zip(paths, names, strict=True)
    ]


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

    Raises
    ------
    InputError
        For a cumulative ("or worse") view of classes that have no known order.
    """
    from geo.tools.classes import combine_footprints, to_bands, to_cumulative

    if not footprints:
        raise InputError("no footprint given.")
    classes = (
        combine_footprints(footprints) if len(footprints) > 1 else to_bands(footprints[0].classes)
    )
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
                + " has classes in alphabetical order only. Use banded classes."
            )
        classes = to_cumulative(classes)
    return classes


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


def compute_exposure(release: Release, classes: gpd.GeoDataFrame, **options: Any) -> Exposure:
    """Return the exposure of a release for classes, with the shipped settlement weights.

    Takes the options of :func:`geo.tools.exposure.compute_exposure` (``cumulative``,
    ``weighting``, ``admin``, ``admin_field``, ``nationalities``); the GeoNames places
    behind the settlement and blend weightings are read here, at the edge.
    """
    from geo.exposure_table import DEFAULT_WEIGHTING, PLACE_WEIGHTINGS
    from geo.tools import exposure

    weighting = options.get("weighting", DEFAULT_WEIGHTING)
    places = _settlements() if weighting in PLACE_WEIGHTINGS else None
    return exposure.compute_exposure(release, classes, places=places, **options)


def _settlements() -> pd.DataFrame:
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
) -> ExposureRun:
    """Return the exposure of a release for footprints: the one request both front ends make.

    Raises
    ------
    InputError
        For unusable footprints or boundaries, or bad options.
    """
    from geo.exposure_table import DEFAULT_WEIGHTING

    if admin is not None and not admin_field:
        raise InputError("--admin needs --admin-field (the field that names each area).")
    classes = footprint_classes(footprints, cumulative)
    exposure = compute_exposure(
        release,
        classes,
        cumulative=cumulative,
        weighting=weighting or DEFAULT_WEIGHTING,
        admin=admin,
        admin_field=admin_field if admin is not None else None,
        nationalities=list(nationalities) if nationalities else None,
    )
    if "no released cell touches the footprint" in exposure.notes:
        names = ", ".join(fp.provenance["file_name"] for fp in footprints)
        xmin, ymin, xmax, ymax = classes.total_bounds
        raise InputError(
            f"{names}: the footprint does not overlap the release (no released cell touches "
            f"it; footprint lon {xmin:.2f}…{xmax:.2f}, lat {ymin:.2f}…{ymax:.2f}); check that "
            "both are for the same place."
        )
    return ExposureRun(exposure, classes, [fp.provenance for fp in footprints])


def export_bytes(
    run: ExposureRun,
    release: Release,
    file_format: str,
    nationalities: Sequence[str] | None = None,
) -> bytes:
    """Return an exposure run's export in ``file_format`` (csv, hxl, xlsx or geojson).

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_bytes as payload
    from geo.tools.exposure import exposed_groups

    exposed = None
    if file_format == "geojson":
        exposed = exposed_groups(release, run.classes, list(nationalities or []) or None)
    return payload(file_format, run.exposure, release, run.provenance, exposed)


def write_export(path: str | Path, run: ExposureRun, release: Release) -> Path:
    """Write an exposure run as CSV, HXL CSV, XLSX or GeoJSON (by the file's suffix), atomically.

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.export import export_format, write_bytes_atomically

    payload = export_bytes(run, release, export_format(path))
    return write_bytes_atomically(path, payload)
