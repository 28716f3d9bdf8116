"""Focal points for a footprint: who serves the exposed communities, near the footprint.

A focal point is kept when it lies inside the footprint or within a stated distance of
it (geodesic metres in a local azimuthal equidistant projection centred on the
footprint), and is matched to the exposed population when it serves one of the exposed
nationalities or one of the languages counted for them
(:mod:`geo.tools.languages`), or everyone (``all``).
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import codes
from geo.errors import InputError

EVERYONE = {"all", "everyone", "any", "all nationalities"}
DEFAULT_WITHIN_KM = 10.0
FOCAL_COLUMNS = [
    "organisation",
    "serves_text",
    "contact",
    "lon",
    "lat",
    "distance_km",
    "inside",
    "matches",
]


def _language_lookup() -> dict[str, str]:
    """Return a map from folded English language names and codes to CLDR codes."""
    from babel import Locale

    names = Locale("en").languages
    lookup = {codes.fold_text(code): code for code in names}
    lookup.update({codes.fold_text(name): code for code, name in names.items()})
    return lookup


def resolve_serves(points: pd.DataFrame, name: str = "") -> pd.DataFrame:
    """Return the points with ``nationalities`` and ``languages`` (codes) they serve.

    Each term of ``serves`` (split on ``;`` or ``|``) is a nationality (ISO code or English
    name), a language (English name or CLDR code) or ``all``; a nationality takes
    precedence over a language of the same spelling. ``serves_text`` is the terms in
    words (nationality names, language names).

    Raises
    ------
    InputError
        For a term that is neither, naming the file and row.
    """
    from geo.tools.languages import language_name

    languages = _language_lookup()
    served_nationalities, served_languages, texts, everyone = [], [], [], []
    for row, serves in zip(points["row"], points["serves"], strict=True):
        nats, langs, words, is_all = [], [], [], False
        for term in (t.strip() for t in re.split(r"[;|]", str(serves))):
            if not term:
                continue
            folded = codes.fold_text(term)
            iso3 = codes.nationality_to_iso3(term)
            if folded in EVERYONE:
                is_all = True
                words.append("everyone")
            elif iso3 and not (len(term) == 2 and term.islower() and folded in languages):
                nats.append(iso3)
                words.append(codes.nationality_name(iso3))
            elif folded in languages:
                langs.append(languages[folded])
                words.append(language_name(languages[folded]))
            else:
                raise InputError(
                    f"focal points {name} row {row}: {term!r} in serves is neither a "
                    "nationality nor a language (use ISO codes or English names, or 'all')."
                )
        served_nationalities.append(nats)
        served_languages.append(langs)
        texts.append("; ".join(words))
        everyone.append(is_all)
    return points.assign(
        nationalities=served_nationalities,
        languages=served_languages,
        serves_text=texts,
        everyone=everyone,
    )


def distances_km(points: pd.DataFrame, footprint: shapely.Geometry) -> np.ndarray:
    """Return each point's distance to the footprint in km (0 inside)."""
    centre = shapely.centroid(footprint)
    crs = f"+proj=aeqd +lat_0={centre.y} +lon_0={centre.x} +units=m +ellps=WGS84"
    area = gpd.GeoSeries([footprint], crs="EPSG:4326").to_crs(crs).iloc[0]
    where = gpd.GeoSeries(gpd.points_from_xy(points["lon"], points["lat"]), crs="EPSG:4326").to_crs(
        crs
    )
    return shapely.distance(where.to_numpy(), area) / 1000.0


def focal_points_near(
    points: pd.DataFrame,
    classes: gpd.GeoDataFrame,
    exposed_nationalities: list[str],
    exposed_languages: list[str],
    within_km: float = DEFAULT_WITHIN_KM,
) -> pd.DataFrame:
    """Return the focal points inside or within ``within_km`` of a footprint.

    Parameters
    ----------
    points
        Focal points with coordinates and what they serve (:func:`resolve_serves`).
    classes
        The footprint's classes (their union is the footprint).
    exposed_nationalities, exposed_languages
        Codes of the nationalities exposed and the languages counted for them.

    Returns
    -------
    pandas.DataFrame
        :data:`FOCAL_COLUMNS`: ``distance_km`` (0 inside), ``inside``, ``matches`` (the
        exposed nationalities and languages it serves, in words; "everyone"; empty
        when none). Those that match first, then by distance.

    Raises
    ------
    InputError
        For a negative distance.
    """
    from geo.tools.languages import language_name

    if within_km < 0:
        raise InputError(f"the focal-point distance must be 0 km or more (got {within_km:g}).")
    footprint = shapely.union_all(classes.geometry.to_numpy())
    distance = distances_km(points, footprint)
    near = points.assign(distance_km=np.round(distance, 1), inside=distance == 0)
    near = near[distance <= within_km]
    exposed_n, exposed_l = set(exposed_nationalities), set(exposed_languages)
    matches = []
    for nats, langs, everyone in zip(
        near["nationalities"], near["languages"], near["everyone"], strict=True
    ):
        words = ["everyone"] if everyone else []
        words += [codes.nationality_name(n) for n in nats if n in exposed_n]
        words += [language_name(code) for code in langs if code in exposed_l]
        matches.append("; ".join(words))
    near = near.assign(matches=matches, _unmatched=[not m for m in matches])
    near = near.sort_values(["_unmatched", "distance_km", "organisation"], kind="stable")
    return near[FOCAL_COLUMNS].reset_index(drop=True)
