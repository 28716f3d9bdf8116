"""Who is exposed, in words: the community profile, focal points and official stocks.

What the CLI, the pages and the report call after an exposure run
(:class:`geo.pipeline.exposure.ExposureRun`): each reads the user's files at the edge
(``geo.io``) and hands released values to the pure functions of ``geo.tools``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from geo.pipeline.exposure import ExposureRun
    from geo.release import Release
    from geo.tools.profile import CommunityProfile


def community_profile(
    run: ExposureRun,
    release: Release,
    at_least: str | None = None,
    population: str | Path | None = None,
) -> CommunityProfile:
    """Return the community profile of a run's exposed population (released values only).

    ``at_least`` names a class: the profile then describes that class and every more
    severe one; None (the default) the whole footprint. Several class systems, or
    classes without an order, are always described as a whole. ``population`` is the
    grid of a run made with the population weighting.

    Raises
    ------
    InputError
        For a class the run does not have.
    """
    from geo.errors import InputError
    from geo.pipeline.exposure import weighting_inputs
    from geo.tools.profile import community_profile as profile
    from geo.tools.profile import profile_area

    exposure = run.exposure
    comparable = len(run.provenance) <= 1 and exposure.ordered
    try:
        area = profile_area(
            run.classes, at_least, cumulative=exposure.cumulative, comparable=comparable
        )
    except ValueError as exc:
        raise InputError(f"profile: {exc}") from None
    weighting = exposure.weighting
    places, grid = weighting_inputs(release, area, weighting, population)
    return profile(
        release,
        area,
        weighting=weighting,
        places=places,
        population=grid,
        nationalities=run.nationalities,
    )


def read_focal_points(path: str | Path, data: bytes | None = None):
    """Read a focal-points CSV, place names located in GeoNames, what each serves resolved.

    Raises
    ------
    InputError
        For a bad file (one line naming the file, row and problem).
    """
    from geo.io.focal_points import locate_places
    from geo.io.focal_points import read_focal_points as read
    from geo.tools.focal_points import resolve_serves

    name = Path(path).name
    return resolve_serves(locate_places(read(path, data), name), name)


def focal_points_for(profile: CommunityProfile, run: ExposureRun, points, within_km: float = 10.0):
    """Return the focal points inside or within ``within_km`` of the run's footprint.

    Matched to the nationalities the profile finds exposed and the languages counted for
    them (see :func:`geo.tools.focal_points.focal_points_near`).
    """
    from geo.tools.focal_points import focal_points_near

    nationalities = profile.nationalities["nationality"].tolist()
    languages = [code for code in profile.languages["language"] if code]
    return focal_points_near(points, run.classes, nationalities, languages, within_km)


def read_stocks(path: str | Path, data: bytes | None = None, *, country=None, year=None):
    """Read an official stock table (plain CSV, ISTAT SDMX-CSV or the UN DESA matrix).

    Raises
    ------
    InputError
        For a bad file (see :func:`geo.io.stocks.read_stocks`).
    """
    from geo.io.stocks import read_stocks as read

    return read(path, data, country=country, year=year)


def stock_name_field(admin, stocks) -> str | None:
    """Return the boundaries' field that names the most of the stock table's areas.

    Compared without case; ties go to the field listed first; None when the boundaries
    have no field. A default for the page, which lets the user choose another.
    """
    wanted = set(stocks.table["area"].astype(str).str.casefold())
    fields = [c for c in admin.columns if c != admin.geometry.name]
    matches = {
        field: len(wanted & set(admin[field].astype(str).str.casefold())) for field in fields
    }
    return max(fields, key=lambda field: matches[field], default=None)


def stock_comparison(run: ExposureRun, release: Release, stocks, admin=None, admin_field=None):
    """Return registered persons beside the official stocks for the areas the footprint meets.

    ``admin`` are the boundaries whose ``admin_field`` names the areas as the stock
    table does; without them (a national table such as UN DESA's) the Natural Earth
    country outlines, named in English. The registered persons of an area are the
    release's exposure over the whole area (released values only).

    Returns
    -------
    tuple of (pandas.DataFrame, list of str)
        The table of :func:`geo.tools.stocks.compare_stocks` and notes.

    Raises
    ------
    InputError
        When no area of the footprint matches an area of the stock table.
    """
    import shapely

    from geo.errors import InputError
    from geo.io.stocks import ISTAT_AREA_NAMES, istat_citizenship_areas
    from geo.pipeline.exposure import compute_exposure
    from geo.tools.stocks import compare_stocks

    if admin is None:
        from geo.io.basemap import country_outlines

        admin, admin_field = country_outlines(tuple(run.classes.total_bounds)), "name"
    footprint = shapely.union_all(run.classes.geometry.to_numpy())
    admin = admin.to_crs("EPSG:4326") if admin.crs is not None else admin.set_crs("EPSG:4326")
    names = admin[admin_field].astype(str)
    met = set(names[admin.intersects(footprint)])
    if not met:
        raise InputError("stocks: no administrative area meets the footprint.")
    # An area is every feature of its name (municipalities named by their region, say),
    # not only those the footprint meets: the stock counts the whole area.
    whole = admin[names.isin(met)]
    areas = whole.assign(class_label=names[whole.index], class_rank=1)[
        ["class_label", "class_rank", "geometry"]
    ].dissolve("class_label", as_index=False)
    exposure = compute_exposure(
        release, areas, weighting=run.exposure.weighting, nationalities=run.nationalities
    )
    registered = exposure.by_class.rename(columns={"hazard_class": "area"})
    level = stocks.level
    areas_of = istat_citizenship_areas() if level == "citizenship area" else None
    names = ISTAT_AREA_NAMES if level == "citizenship area" else None
    table = compare_stocks(registered, stocks.table, level, areas_of, names)
    if table["official"].isna().all():
        raise InputError(
            f"stocks {stocks.name}: none of the areas the footprint meets "
            f"({', '.join(sorted(areas['class_label'])[:8])}) is in the stock table; name the "
            "areas as the boundary field does."
        )
    return table, list(stocks.notes)


def profile_lines(profile: CommunityProfile, top: int = 10) -> list[str]:
    """Return the profile as lines of text, nationalities by name and code."""
    from geo.tools.profile import profile_lines as lines

    return lines(profile, top, name=nationality_label)


def nationality_label(code: str) -> str:
    """Return "Romania (ROU)": the English name and the code."""
    from geo.codes import nationality_name

    name = nationality_name(code)
    return name if f"({code})" in name else f"{name} ({code})"


def focal_point_lines(points, within_km: float) -> list[str]:
    """Return the focal points near the footprint as lines of text."""
    matched = points[points["matches"].astype(bool)]
    lines = [f"focal points inside or within {within_km:g} km of the footprint: {len(matched)}"]
    for row in matched.itertuples():
        where = "inside" if row.inside else f"{row.distance_km:g} km"
        lines.append(f"  {row.organisation} ({where}): serves {row.matches}; contact {row.contact}")
    others = len(points) - len(matched)
    if others:
        lines.append(
            f"  ({others} more nearby serve none of the exposed nationalities or languages)"
        )
    return lines


def stock_lines(table, notes: list[str]) -> list[str]:
    """Return the registered-versus-official table as lines of text."""
    from geo.tools.stocks import STOCK_SENTENCE

    lines = ["registered (release) beside official stocks, areas the footprint meets:"]
    shown = table.assign(
        official=table["official"].astype("object").where(table["official"].notna(), "—"),
        ratio=table["ratio"].map(lambda r: "—" if r != r else f"{r:.2f}"),
    )
    lines += shown.to_string(index=False).splitlines()
    lines.append(STOCK_SENTENCE)
    lines += [f"note: {note}" for note in notes]
    return lines


_WORDS = {
    "DIMENSION_TITLES": "geo.tools.profile",
    "NOT_AVAILABLE": "geo.tools.profile",
    "WHOLE_FOOTPRINT": "geo.tools.profile",
    "LANGUAGE_RULE": "geo.tools.languages",
    "STOCK_SENTENCE": "geo.tools.stocks",
}


def __getattr__(name: str):
    """Hand on the words the front ends show beside the tables, loaded lazily."""
    if name in _WORDS:
        import importlib

        return getattr(importlib.import_module(_WORDS[name]), name)
    raise AttributeError(f"module 'geo.pipeline.profile' has no attribute {name!r}")
