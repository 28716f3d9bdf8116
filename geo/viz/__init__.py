"""Drawing a release: map cells, pydeck layers, colour scales and legends, chart tables.

One job per module, so a page imports only what it draws and no module grows two jobs:

``cells``
    The released values to draw, one row per H3 cell, under the map's filters (with the
    roll-up to a coarser display resolution when there are too many cells).
``layers``
    pydeck layers (cells, hazard classes, offline outlines), map views and the deck.
``legends``
    Palettes, logarithmic count bins, per-class colours and the HTML legend.
``charts``
    Exposure tables shaped for the dashboard's tables and bar charts.
``basemap``
    The offline base every map shares: land, country and admin outlines, place names.
``exposure_map``
    An exposure drawn: footprint classes, exposed cells and tooltips, a ShakeMap's edge.

Nothing here imports Streamlit. This file imports nothing, so ``import geo.viz`` stays
light; import the module you need.
"""
