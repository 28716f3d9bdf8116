"""The offline base layer every map shares: land, country and admin outlines, place names.

No tiles and no network: countries come from Natural Earth (shipped in the package,
:mod:`geo.io.basemap`), finer outlines from the files of ``data/basemap`` (a country
drawn there replaces its coarse Natural Earth shape, so coasts do not double), admin
areas from the boundaries a user supplies, and place names from GeoNames (the N most
populous in view). Pure: the frames are handed in by the page (through
:mod:`geo.pipeline`), layers come out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import shapely

from geo.viz.layers import COUNTRY_LINE, LAND_FILL, REGION_LINE

PLACE_COLOUR = (40, 40, 40, 255)
PLACE_HALO = (255, 255, 255, 230)
ADMIN_LINE = (120, 120, 160, 200)
SIMPLIFY_DEG = 0.005


def _features(geometries: Sequence, properties: Sequence[dict] | None = None) -> dict:
    """Return a FeatureCollection of geometries (coordinates rounded to 1e-4°)."""
    features = []
    for i, geometry in enumerate(geometries):
        if geometry is None or geometry.is_empty:
            continue
        rounded = shapely.set_precision(geometry, 1e-4)
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(shapely.to_geojson(rounded)),
                "properties": dict(properties[i]) if properties else {},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _shipped_outlines(paths: Sequence[str | Path]) -> tuple[list, list]:
    """Return the (country, other) geometries of shipped outline files (``level`` property)."""
    countries, others = [], []
    for path in paths:
        collection = json.loads(Path(path).read_text(encoding="utf-8"))
        for feature in collection["features"]:
            geometry = shapely.geometry.shape(feature["geometry"])
            is_country = (feature.get("properties") or {}).get("level") == "country"
            (countries if is_country else others).append(geometry)
    return countries, others


def base_layers(
    countries: gpd.GeoDataFrame,
    outline_paths: Sequence[str | Path] = (),
    fill_land: bool = True,
) -> list[pdk.Layer]:
    """Return the land and outline layers drawn under everything else.

    Parameters
    ----------
    countries
        Natural Earth countries (``geo.io.basemap.country_outlines``) around the view.
    outline_paths
        Finer outline files (GeoJSON features with a ``level`` property: ``country``
        or a region level), e.g. ``data/basemap/*.geojson``. A Natural Earth country
        whose centre lies in one of their countries is left out.
    fill_land
        Fill the countries (off when tiles are drawn underneath).

    Returns
    -------
    list of pydeck.Layer
        Non-pickable GeoJsonLayers: land, then region lines.
    """
    fine, regions = _shipped_outlines(outline_paths)
    shapes = list(countries.geometry.values)
    if fine:
        covered = shapely.union_all(fine)
        centres = shapely.point_on_surface(shapes) if shapes else []
        shapes = [s for s, c in zip(shapes, centres, strict=True) if not covered.contains(c)]
    land = _features(shapely.simplify(shapes + fine, SIMPLIFY_DEG, preserve_topology=True))
    layers = [
        pdk.Layer(
            "GeoJsonLayer",
            data=land,
            id="basemap-land",
            stroked=True,
            filled=fill_land,
            get_fill_color=list(LAND_FILL),
            get_line_color=list(COUNTRY_LINE),
            line_width_units='"pixels"',
            get_line_width=1.2,
            pickable=False,
        )
    ]
    if regions:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer",
                data=_features(regions),
                id="basemap-admin",
                stroked=True,
                filled=False,
                get_line_color=list(REGION_LINE),
                line_width_units='"pixels"',
                get_line_width=0.8,
                pickable=False,
            )
        )
    return layers


def admin_layer(areas: gpd.GeoDataFrame, layer_id: str = "admin-areas") -> pdk.Layer:
    """Return supplied administrative areas as thin outlines (not pickable)."""
    simplified = shapely.simplify(areas.geometry.values, SIMPLIFY_DEG / 5, preserve_topology=True)
    return pdk.Layer(
        "GeoJsonLayer",
        data=_features(simplified),
        id=layer_id,
        stroked=True,
        filled=False,
        get_line_color=list(ADMIN_LINE),
        line_width_units='"pixels"',
        get_line_width=0.8,
        pickable=False,
    )


def spaced_places(places: pd.DataFrame, min_distance_deg: float, limit: int) -> pd.DataFrame:
    """Return up to ``limit`` places, each at least ``min_distance_deg`` from a larger one.

    ``places`` comes most populous first; a place too close to one kept before is
    skipped, so names do not print over each other (Rome's suburbs under "Rome").
    Distances are in degrees of latitude (longitude scaled by the cosine of latitude).
    """
    kept: list[int] = []
    lon = places["lon"].to_numpy(dtype=float)
    lat = places["lat"].to_numpy(dtype=float)
    for i in range(len(places)):
        if len(kept) >= limit:
            break
        dx = (lon[kept] - lon[i]) * np.cos(np.radians(lat[i]))
        dy = lat[kept] - lat[i]
        if not len(kept) or np.min(np.hypot(dx, dy)) >= min_distance_deg:
            kept.append(i)
    return places.iloc[kept].reset_index(drop=True)


def place_layers(places: pd.DataFrame) -> list[pdk.Layer]:
    """Return place names (a dot and the name, dark on a white halo), not pickable.

    ``places`` has ``name``, ``lon``, ``lat`` (the most populous in view, from
    ``geo.io.settlements.read_places``, spaced by :func:`spaced_places`). Names are
    drawn as text by deck.gl (a canvas), never as markup.
    """
    if places.empty:
        return []
    data = [
        {"label": str(name), "position": [round(float(lon), 5), round(float(lat), 5)]}
        for name, lon, lat in zip(places["name"], places["lon"], places["lat"], strict=True)
    ]
    return [
        pdk.Layer(
            "ScatterplotLayer",
            data=data,
            id="places-dots",
            get_position="position",
            get_radius=3,
            radius_units='"pixels"',
            get_fill_color=list(PLACE_COLOUR),
            stroked=True,
            get_line_color=list(PLACE_HALO),
            line_width_units='"pixels"',
            get_line_width=1,
            pickable=False,
        ),
        pdk.Layer(
            "TextLayer",
            data=data,
            id="places-names",
            get_position="position",
            get_text="label",
            get_size=13,
            size_units='"pixels"',
            get_color=list(PLACE_COLOUR),
            get_text_anchor='"start"',
            get_alignment_baseline='"center"',
            get_pixel_offset=[7, 0],
            character_set='"auto"',
            font_family='"Helvetica, Arial, sans-serif"',
            font_settings={"sdf": True},
            outline_width=3,
            outline_color=list(PLACE_HALO),
            pickable=False,
        ),
    ]
