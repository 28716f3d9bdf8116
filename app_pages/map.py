"""Map page: released H3 cells coloured by persons, with hazard classes over them."""

import streamlit as st

from app_pages import basemap, common, map_drawings
from app_pages.deck_map import deck_map
from geo import pipeline
from geo.accuracy import Accuracy
from geo.viz.cells import BREAKDOWN_FILTERS, MAX_MAP_CELLS, nationality_label
from geo.viz.exposure_map import class_legend as legend_of_classes
from geo.viz.exposure_map import class_palette, edge_layer, footprint_layers
from geo.viz.layers import MAP_HEIGHT_PX, build_deck, filter_scope
from geo.viz.legends import count_legend, legend_html

st.title("Where people are registered")
loaded = common.active_release()
if loaded is None:
    st.stop()
release, release_file = loaded

nationalities = list(common.release_nationalities(release.metadata["content_sha256"], release))
footprints = common.footprint_files()
default_footprint = common.overlapping_footprint(footprints, release)
footprint_names = ["None"] + [f.name for f in footprints]

columns = st.columns([3, 2, 2, 3])
chosen = columns[0].multiselect(
    "Nationality",
    nationalities,
    format_func=nationality_label,
    placeholder="All nationalities",
    key="map_nationalities",
)
dimension_labels = {"All persons": None, "Sex": "sex", "Age band": "age_band"}
dimension = dimension_labels[
    columns[1].selectbox("Breakdown", list(dimension_labels), key="map_dimension")
]
category = None
if dimension is not None:
    category = columns[2].selectbox(
        "Category", BREAKDOWN_FILTERS[dimension], key=f"map_category_{dimension}"
    )
footprint_name = columns[3].selectbox(
    "Hazard footprint",
    footprint_names,
    index=footprint_names.index(default_footprint.name) if default_footprint else 0,
    key="map_footprint",
)

every_cell = st.toggle(
    "Draw every released cell",
    key="map_every_cell",
    help=f"By default at most {MAX_MAP_CELLS:,} hexagons are drawn: when a release "
    "has more cells, the finer ones are summed into a coarser hexagon. Drawing every "
    "cell shows all detail but redraws slowly at national scale.",
)
shown = map_drawings.map_drawing(
    release_file.sha256,
    tuple(chosen),
    dimension,
    category,
    None if every_cell else MAX_MAP_CELLS,
    release,
)
extent = basemap.release_bounds(release.metadata["content_sha256"], release)
layers = basemap.land_layers(extent) + list(shown.layers)
edge = None  # a ShakeMap's map edge, drawn as a dashed frame
class_legend = []
apart = ""  # said when the chosen footprint lies away from every released cell
framed = extent  # the release, and the footprint drawn over it
if footprint_name != "None":
    file = next(f for f in footprints if f.name == footprint_name)
    footprint = common.guarded(
        "reading the footprint",
        common.load_footprint,
        file.sha256,
        file.name,
        None,
        10.0,
        file.path,
    )
    if footprint is not None:
        classes = common.guarded(
            "preparing the footprint", pipeline.footprint_classes, [footprint], False
        )
        if classes is not None:  # outlined; a ShakeMap's edge dashed, not drawn as a class
            palette = class_palette(classes)
            layers.append(footprint_layers(classes, palette)[1])
            layers += [edge] if (edge := edge_layer(classes)) else []
            class_legend = legend_of_classes(classes, palette)
            west, south, east, north = (float(b) for b in classes.total_bounds)
            if pipeline.boxes_apart((west, south, east, north), extent):
                apart = f"{footprint_name} does not overlap the released cells: the map shows both."
            framed = (
                min(framed[0], west),
                min(framed[1], south),
                max(framed[2], east),
                max(framed[3], north),
            )

totals = st.columns(4)
totals[0].metric("Persons shown", f"{shown.persons:,}", help="Sum of released values.")
totals[1].metric("Cases shown", f"{shown.cases:,}", help="Sum of released values.")
totals[2].metric("Cells", f"{shown.cells:,}")
totals[3].metric("Released groups used", f"{shown.groups_shown:,}")
# The notes change with the filters; one container keeps the map at the same place in the
# page, so the browser updates its layers instead of building a new map (a new WebGL
# context compiles every shader again: about 2 s in software WebGL).
notes = st.container()
if apart:
    notes.warning(apart, icon=":material/info:")
scope = filter_scope(chosen, dimension, category)
if dimension is not None:
    category_label = filter_scope([], dimension, category)
    if shown.groups_not_available:  # exact releases withhold some breakdowns; noisy ones none
        notes.caption(
            f"{shown.groups_not_available:,} of "
            f"{shown.groups_shown + shown.groups_not_available:,} released groups have no "
            f"published {dimension.replace('_', ' ')} breakdown (not available: it would have "
            "revealed a category under k cases); they are left out, not estimated."
        )
    noise = Accuracy.of(release.metadata).method == "noise"
    notes.caption(
        f"Each hexagon shows its released count for {category_label}."
        + (
            " Released counts carry noise (see the Release page): a category can show a "
            "little more than it holds, even more than the hexagon's count for all persons, "
            "and the categories need not add up to it."
            if noise
            else ""
        )
    )

if shown.display_resolution is not None:
    notes.caption(
        f"{shown.released_cells:,} released cells are drawn as {shown.cells:,} hexagons: "
        f"cells finer than H3 resolution {shown.display_resolution} are summed into their "
        f"resolution-{shown.display_resolution} hexagon (sums of released values). Narrow "
        'the nationalities or switch on "Draw every released cell" for full detail.'
    )

layers += basemap.place_name_layers(extent)
view = common.release_view(release, framed)
deck_map(
    build_deck(layers, view, scope=scope),
    height=MAP_HEIGHT_PX,
    key="exposure_map",
    alt="Map of released H3 cells coloured by persons, with hazard classes",
    tiles=common.settings().basemap_url,
)

# The first map is on its way: prepare the breakdown filters, and the whole release's
# map for each of their categories, while it is drawn.
map_drawings.map_categories(release_file.sha256, release)

legend = st.columns([3, 2])
legend[0].markdown(
    legend_html("Persons per cell", count_legend(shown.edges)), unsafe_allow_html=True
)
if edge is not None:
    legend[1].caption(
        "The dashed frame is the ShakeMap's map edge: beyond the lowest contour the shaking "
        "is only known to be lower; it is not a hazard zone."
    )
legend[0].caption(
    "Small hexagons are published at the base resolution; larger ones with a dark outline "
    "are rolled-up groups (fewer than k cases in each smaller cell), drawn under the smaller "
    "ones. Hover over a cell for its persons, cases and nationalities."
)
if class_legend:
    legend[1].markdown(
        legend_html(footprint_name, class_legend, shape="outline"), unsafe_allow_html=True
    )
st.caption(basemap.attribution())
