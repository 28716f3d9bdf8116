"""Read the maps an AppTest run drew with the dashboard's map component (app_pages.deck_map)."""

from __future__ import annotations

import json

MAP_COMPONENT = "app_pages.deck_map.deck_map"


def decks(at) -> list[dict]:
    """Return each map of the page as sent to the browser.

    ``layers`` (each parsed from its JSON string), ``initialViewState``, ``tooltip`` (the
    template) and ``tiles`` (the basemap tile URL, or None).
    """
    drawn = []
    for element in at.get("component_instance"):
        if element.proto.component_name != MAP_COMPONENT:
            continue
        args = json.loads(element.proto.json_args)
        drawn.append(
            {
                "layers": [json.loads(layer) for layer in args["layers"]],
                "initialViewState": args["view"],
                "tooltip": args["tooltip"],
                "tiles": args["tiles"],
            }
        )
    return drawn
