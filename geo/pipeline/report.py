"""The one-page situation report: exposure run → content → map → PDF or HTML.

``crisis-exposure report`` and the Exposure page's "Download report" button call
:func:`report_bytes` / :func:`write_report` with the same :class:`ExposureRun` the
``exposure`` command and the page use, so the report's figures are theirs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from geo.errors import InputError

if TYPE_CHECKING:
    import geopandas as gpd

    from geo.pipeline.exposure import ExposureRun
    from geo.release import Release
    from geo.tools.headline import Headline

REPORT_FORMATS = {".pdf": "pdf", ".html": "html", ".htm": "html"}


def report_format(path: str | Path) -> str:
    """Return ``pdf`` or ``html`` from a file name.

    Raises
    ------
    InputError
        For any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise InputError(f"{Path(path).name}: a report is written as .pdf or .html.")
    return REPORT_FORMATS[suffix]


def report_bytes(
    run: ExposureRun,
    release: Release,
    file_format: str = "pdf",
    *,
    admin: gpd.GeoDataFrame | None = None,
    top: int = 8,
    generated: str | None = None,
    headline: Headline | None = None,
    profile_scope: str | None = None,
) -> bytes:
    """Return the report of an exposure run as PDF or HTML bytes.

    ``headline`` is the run's headline when the caller has it already (the page).
    ``profile_scope`` is the class the community profile describes with every more
    severe one (None: the whole footprint), as ``exposure --profile``.

    Raises
    ------
    InputError
        For an unknown format.
    """
    from geo.io.basemap import ATTRIBUTION, country_outlines
    from geo.io.report_pdf import report_html, report_pdf
    from geo.pipeline.profile import community_profile
    from geo.tools.exposure import exposed_groups
    from geo.tools.headline import plain_label
    from geo.tools.report_content import report_content
    from geo.viz.report_map import report_map_png

    if file_format not in ("pdf", "html"):
        raise InputError(f"unknown report format {file_format!r}; use pdf or html.")
    verification = release.verification.sentence() if release.verification else "unsigned"
    standing = release.standing.sentences() if release.standing else []
    content = report_content(
        run.exposure,
        headline or run.headline(release),
        run.provenance,
        release.metadata,
        verification=verification,
        standing=standing,
        generated=generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        attribution=f"Map: {ATTRIBUTION}; footprint classes as their publisher defines them.",
        top=top,
        profile=community_profile(run, release, profile_scope),
    )
    exposed = exposed_groups(release, run.classes, run.nationalities)
    cells = exposed.groupby("h3_cell", as_index=False)["persons"].sum()
    bounds = tuple(float(v) for v in run.classes.total_bounds)
    labels = {str(x): plain_label(str(x)) for x in run.classes["class_label"]}
    png = report_map_png(
        run.classes,
        country_outlines(bounds),
        cells,
        admin=admin,
        labels=labels,
        attribution=ATTRIBUTION,
    )
    return report_pdf(content, png) if file_format == "pdf" else report_html(content, png)


def write_report(
    path: str | Path,
    run: ExposureRun,
    release: Release,
    *,
    admin: gpd.GeoDataFrame | None = None,
    top: int = 8,
    profile_scope: str | None = None,
) -> Path:
    """Write the report as PDF or HTML (by the file's suffix), atomically.

    Raises
    ------
    InputError
        For a suffix other than .pdf or .html, or a file that cannot be written.
    """
    from geo.io.export import write_bytes_atomically

    payload = report_bytes(
        run, release, report_format(path), admin=admin, top=top, profile_scope=profile_scope
    )
    return write_bytes_atomically(path, payload)
