"""The dashboard's map component: a pydeck deck drawn by deck.gl, kept between reruns.

``st.pydeck_chart`` sends the whole deck on every rerun; the browser parses it with
JSON5 and updates every layer (at 10M registrations 0.6 s of parsing alone in a 2 s
filter change). This component sends each layer as its own compact JSON string: the
browser (``frontend/src/main.js``) keeps the deck.gl layer of every string it has seen,
so the basemap, the place names and the footprint are parsed and uploaded once, and a
filter change rebuilds only the cells. The view is applied again only when the page
frames another area. ``frontend/dist`` holds the built bundle (rebuild with ``npm ci &&
npm run build`` in ``frontend``).
"""

from __future__ import annotations

import json
import threading
import weakref
from pathlib import Path

import pydeck as pdk
import streamlit.components.v1 as components
from pydeck.bindings.json_tools import default_serialize

DIST = Path(__file__).resolve().parent / "frontend" / "dist"
_component = components.declare_component("deck_map", path=str(DIST))
# Each layer object's JSON, written once: the basemap's and the place names' layers are
# cached objects every session shares (app_pages.basemap), sent unchanged on every rerun
# (their JSON took 30 ms of each 10M filter change).
_written: weakref.WeakKeyDictionary[pdk.Layer, str] = weakref.WeakKeyDictionary()
_writing = threading.Lock()


def layer_json(layer: pdk.Layer | str) -> str:
    """Return ``layer`` as compact JSON (as pydeck writes it), written once per object.

    A string is a layer this function wrote before, returned as it is.
    """
    if isinstance(layer, str):
        return layer
    with _writing:
        written = _written.get(layer)
    if written is None:
        written = json.dumps(
            layer, sort_keys=True, default=default_serialize, separators=(",", ":")
        )
        with _writing:
            _written[layer] = written
    return written


def deck_arguments(deck: pdk.Deck, tiles: str | None = None) -> dict:
    """Return the component's arguments for ``deck``.

    Its layers as JSON strings, its initial view, its tooltip template and the
    ``{z}/{x}/{y}`` tile URL drawn under the layers (or None).
    """
    return {
        "layers": [layer_json(layer) for layer in deck.layers],
        "view": default_serialize(deck.initial_view_state),
        "tooltip": deck._tooltip or None,
        "tiles": tiles,
    }


def deck_map(deck: pdk.Deck, *, height: int, key: str, alt: str, tiles: str | None = None) -> None:
    """Draw ``deck`` (its layers, initial view and text tooltip) ``height`` px tall.

    ``alt`` is the map's accessible name; ``tiles`` an optional tile URL for a basemap
    under the layers (no request is made without it).
    """
    _component(**deck_arguments(deck, tiles), height=height, alt=alt, key=key, default=None)
