"""Exposure page: persons by nationality in each hazard class, low, estimate and high."""

from functools import partial
from pathlib import Path

import streamlit as st

from app_pages import common, exposure_headline, exposure_profile
from app_pages.exposure_map import show_exposure_map
from geo import pipeline
from geo.accuracy import Accuracy
from geo.export_columns import readable_table
from geo.exposure_table import (
    AREA_SENTENCE,
    GRID_WEIGHTINGS,
    RELIABILITY_WORDS,
    ROW_RANGES_SENTENCE,
    WEIGHTINGS,
    default_weighting,
)
from geo.series import series_sentence
from geo.viz.cells import nationality_label
from geo.viz.charts import nationality_bars, nationality_bars_chart

st.title("Exposure to a hazard footprint")
loaded = common.active_release()
if loaded is None:
    st.stop()
release, release_file = loaded
standing = common.release_standing(release, release_file)
if standing is None:
    st.stop()
if standing.revoked and not st.checkbox(
    "Use this revoked release anyway (to compare, knowingly)", key="exposure_allow_revoked"
):
    st.info(
        "The steward withdrew this release: choose another in the sidebar.",
        icon=":material/block:",
    )
    st.stop()
st.markdown(
    f"{Accuracy.of(release.metadata).truth_sentence()} A release only says which hexagon a "
    "group lives in, never where inside it, so a hexagon cut by a class border may hold "
    "its people on either side: the range is the honest answer, the estimate a best "
    "guess within it."
)

uploads = st.file_uploader(
    "Upload footprints (GeoJSON, zipped or bare shapefile with its sidecars, KML/KMZ, "
    "GeoPackage, ShakeMap contours, shape.zip or grid.xml, GeoTIFF, Copernicus EMS zip, "
    "CAP alert XML, USGS rupture.json, ACLED CSV)",
    type=common.UPLOAD_TYPES,
    accept_multiple_files=True,
    key="exposure_uploads",
)
new_uploads = common.register_footprint_uploads(uploads) if uploads else []
footprints = common.footprint_files()
by_name = {f.name: f for f in footprints}
if "exposure_footprints" not in st.session_state:
    default = common.overlapping_footprint(footprints, release)
    st.session_state["exposure_footprints"] = [default.name] if default else []
combine = st.checkbox(
    "Combine several footprints",
    key="exposure_combine",
    help="Overlay the footprints chosen: each keeps its own classes, and within one class "
    "system (MMI, say) a cell takes the worst class it touches. Unticked, an upload "
    "replaces the footprint chosen before.",
)
# A footprint just uploaded is the one the user wants to expose: it replaces the one
# chosen before (the shipped default too), unless the user asked to combine.
if new_uploads:
    before = st.session_state["exposure_footprints"] if combine else []
    st.session_state["exposure_footprints"] = before + (new_uploads if combine else new_uploads[:1])

left, right = st.columns(2)
chosen = left.multiselect("Footprints", list(by_name), key="exposure_footprints")
several = len(chosen) > 1 and not combine
if several:
    left.info(
        "Several footprints are chosen: tick **Combine several footprints** to overlay "
        "them, or keep one.",
        icon=":material/info:",
    )
mode = left.radio(
    "Classes", ["Banded", "Cumulative (at least)"], horizontal=True, key="exposure_mode"
)
class_field = left.text_input(
    "Class attribute (optional, for plain polygon files)", key="exposure_class_field"
).strip()
class_order = left.text_input(
    "Class order, worst first (comma-separated)",
    key="exposure_class_order",
    help="Ranks classes whose order the file does not say (an attribute's values). Without "
    "it they are shown unordered: no worst class, no cumulative view.",
).strip()
# Settings that apply to one kind of footprint only are shown when one of that kind is
# chosen (ACLED settings for an earthquake only confused).
kinds = common.footprint_kinds([by_name[name] for name in chosen if name in by_name])
buffer_km, date_from, date_to = 10.0, None, None
if "acled" in kinds:
    buffer_km = left.number_input(
        "ACLED event buffer (km)", 0.5, 200.0, 10.0, 0.5, key="exposure_buffer"
    )
    first_day, last_day = left.columns(2)
    date_from = first_day.date_input("ACLED events from", value=None, key="exposure_date_from")
    date_to = last_day.date_input("ACLED events to", value=None, key="exposure_date_to")
population_grid = common.settings().population
weightings = [w for w in WEIGHTINGS if population_grid or w not in GRID_WEIGHTINGS]
raster_kind, thresholds, raster_labels = "auto", "", ""
if "raster" in kinds:
    with left.expander("Raster footprints (GeoTIFF, ShakeMap grid.xml)"):
        raster_kind = st.selectbox(
            "Raster kind",
            ["auto", "mmi", "depth", "continuous", "categorical"],
            help="auto: as the file says (grid.xml and MMI rasters by PAGER's MMI bands, "
            "flood depth by the default depths, integer rasters by value); depth: flood "
            "depth in m; continuous: by the thresholds; categorical: by value.",
            key="exposure_raster_kind",
        )
        thresholds = st.text_input(
            "Thresholds (continuous rasters)",
            placeholder="e.g. 0.5,1.5,3 (flood depth default 0,0.15,0.5,1.5,3 m)",
            key="exposure_thresholds",
        ).strip()
        raster_labels = st.text_input(
            "Value labels (categorical rasters, least severe first)",
            placeholder="e.g. 1=Flooded",
            key="exposure_raster_labels",
        ).strip()
weighting = right.selectbox(
    "Estimate weighting",
    weightings,
    index=weightings.index(default_weighting(population_grid is not None)),
    help="area: share of the cell's area inside; settlement: share of the cell's "
    "settlement population (GeoNames) inside; blend: the mean of the two; population: "
    "share of the cell's population inside, from the grid CRISIS_EXPOSURE_POPULATION "
    "names (offered only when it is set).",
    key="exposure_weighting",
)
admin_uploads = right.file_uploader(
    "Upload boundaries (GeoJSON, TopoJSON, zipped shapefile, GeoPackage)",
    type=common.BOUNDARY_UPLOAD_TYPES,
    key="exposure_admin_upload",
)
new_admin = common.register_admin_upload(admin_uploads) if admin_uploads else None
admins = {f.name: f for f in common.admin_files()}
if new_admin:  # boundaries just uploaded are the ones to break down by
    st.session_state["exposure_admin"] = new_admin
admin_name = right.selectbox(
    "Break down by administrative area", ["None", *admins], key="exposure_admin"
)
admin_field, admin_frame = None, None
if admin_name != "None":
    admin = admins[admin_name]
    frame = common.guarded(
        "reading the boundaries", common.load_admin, admin.sha256, admin.name, admin.path
    )
    admin_frame = frame
    fields = [c for c in frame.columns if c != "geometry"] if frame is not None else []
    preferred = next(
        (c for c in ("name", "reg_name", "NAME") if c in fields), fields[0] if fields else None
    )
    admin_field = right.selectbox(
        "Area name field",
        fields,
        index=fields.index(preferred) if preferred else 0,
        key=f"exposure_admin_field_{admin_name}",
    )
nationalities = right.multiselect(
    "Nationalities",
    list(common.release_nationalities(release.metadata["content_sha256"], release)),
    format_func=nationality_label,
    placeholder="All nationalities",
    key="exposure_nationalities",
)

# No Run button: the exposure is computed as soon as a footprint is chosen, and again
# when an option changes; a run is cached on the files' hashes and the options.
if not chosen:
    st.info("Choose or upload a footprint to see who is exposed.", icon=":material/info:")
    st.stop()
if several:
    st.stop()
request = {
    "footprints": tuple(chosen),
    "class_field": class_field or None,
    "class_order": class_order or None,
    "buffer_km": float(buffer_km),
    "date_window": tuple(d.isoformat() if d else None for d in (date_from, date_to)),
    "cumulative": mode.startswith("Cumulative"),
    "weighting": weighting,
    "admin": admin_name if admin_name != "None" else None,
    "admin_field": admin_field,
    "nationalities": tuple(nationalities),
    "raster": (raster_kind, thresholds, raster_labels),
}
files = [by_name[name] for name in request["footprints"]]
admin_file = admins[request["admin"]] if request["admin"] else None
population_key = (
    common.population_key(population_grid) if request["weighting"] in GRID_WEIGHTINGS else None
)
run_key = (
    release_file.sha256,
    tuple((f.sha256, f.name) for f in files),
    request["class_field"],
    request["buffer_km"],
    request["cumulative"],
    request["weighting"],
    (admin_file.sha256, admin_file.name) if admin_file else None,
    request["admin_field"],
    request["nationalities"],
)
with st.spinner("Computing the exposure…"):
    run = common.guarded(
        "computing the exposure",
        common.run_exposure,
        *run_key,
        release_file.path,
        tuple(f.path for f in files),
        admin_file.path if admin_file else None,
        request["date_window"],
        request.get("class_order"),
        population_key,
        request["raster"],
    )
if run is None:
    st.stop()
exposure = run.exposure
table = exposure.table

st.divider()
series = common.release_series(common.settings(), release_file)
st.caption(common.plain(series_sentence(series, f"▶ {release_file.name}")))
st.caption(
    f"Release {common.plain(release_file.name)} · footprints "
    f"{common.plain(', '.join(request['footprints']))} · "
    f"{'cumulative' if request['cumulative'] else 'banded'} classes · estimate weighting "
    f"{request['weighting']}"
)
# The notes and headline vary with the options; in one container they keep the map
# below at the same place in the page, so the browser updates it instead of building
# a new one (a new WebGL context compiles every shader again).
with st.container():
    for note in exposure.notes:
        st.warning(common.plain(note))
    headline = exposure.headline()
    if not exposure.ordered:
        st.info(
            "The classes have no known severity order: they are shown unordered, with no worst "
            "class and no cumulative view. Give the class order (worst first) to rank them.",
            icon=":material/info:",
        )
    elif headline["hazard_class"] is None:
        st.info("No released cell touches the footprint: nobody in this release is exposed.")
        st.stop()
    else:
        st.subheader(
            f"Persons exposed in the worst class reached: {common.plain(headline['hazard_class'])}"
        )
    if exposure.ordered:
        widened = (
            f", widened by what the noise can move ({exposure.confidence:.0%} confidence)"
            if exposure.accuracy.method == "noise"
            else ""
        )
        if headline["reliability_words"]:
            # The estimate cannot be trusted: the range comes first, the estimate after, in words.
            metrics = st.columns(2)
            metrics[0].metric(
                "Between low and high",
                f"{headline['persons_low']:,} – {headline['persons_high']:,}",
                help="Low: released persons of the cells entirely inside the class; high: of "
                f"every cell that touches it{widened}.",
            )
            metrics[1].metric("Estimate (not to be trusted)", f"{headline['persons_estimate']:,}")
            st.warning(
                f"{headline['reliability']}: {headline['reliability_words']}.",
                icon=":material/warning:",
            )
        else:
            metrics = st.columns(3)
            metrics[0].metric(
                "Low (cells entirely inside)",
                f"{headline['persons_low']:,}",
                help=f"Released persons of the cells entirely inside the class{widened}.",
            )
            metrics[1].metric("Estimate", f"{headline['persons_estimate']:,}")
            metrics[2].metric(
                "High (cells touching)",
                f"{headline['persons_high']:,}",
                help=f"Released persons of every cell that touches the class{widened}.",
            )
    headline_key = f"{release_file.sha256} {request}"  # one headline per request
    exposure_headline.show_headline(run, release, headline_key)
    withheld = exposure.accuracy.withheld_sentence()
    statement = exposure.statement()
    st.caption(statement if withheld in statement else f"{statement} {withheld}")

    st.caption(
        "Reliability: "
        + "; ".join(f"**{label}**: {words}" for label, words in RELIABILITY_WORDS.items() if words)
        + "."
    )
show_exposure_map(
    run,
    release,
    (*run_key, request["date_window"], request["class_order"], population_key, request["raster"]),
    population_grid if population_key else None,
    admin_frame,
)
st.markdown("**By class** (all nationalities)")
st.dataframe(readable_table(exposure.class_totals()), hide_index=True, width="stretch")

area_totals = exposure.area_totals()
if area_totals is not None:
    st.markdown(f"**By area ({exposure.admin_field}) and class** (all nationalities)")
    st.dataframe(
        readable_table(area_totals, exposure.admin_field), hide_index=True, width="stretch"
    )
    st.caption(AREA_SENTENCE)

st.markdown("**By nationality and class**" + (" and area" if exposure.admin_field else ""))
st.dataframe(readable_table(table, exposure.admin_field), hide_index=True, width="stretch")
ranges_widened = exposure.accuracy.method == "noise" or exposure.accuracy.round_to
table_notes = ([f"{ROW_RANGES_SENTENCE}."] if ranges_widened else []) + (
    [f"{withheld} They are in no row of these tables."] if withheld else []
)
if table_notes:
    st.caption(" ".join(table_notes))

by_class = exposure.by_class
classes = list(dict.fromkeys(by_class.sort_values("class_rank", ascending=False)["hazard_class"]))
bar_class = st.selectbox("Chart class", classes, key="exposure_chart_class")
bars = nationality_bars(by_class, bar_class)
st.vega_lite_chart(bars, nationality_bars_chart(bars, bar_class), width="stretch")

stem = "exposure_" + "_".join(
    Path(name.removesuffix(" (uploaded)")).stem for name in request["footprints"]
)
export = partial(pipeline.export_bytes, run, release, nationalities=request["nationalities"])


# Files are written when their button is clicked (on a server thread), not on every
# run: at national scale the four took about 3 s per rerun of this page.
files = [
    ("CSV", partial(export, "csv"), ".csv", "text/csv", "download_csv"),
    (
        "XLSX",
        partial(export, "xlsx"),
        ".xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "download_xlsx",
    ),
    (
        "HXL CSV",
        partial(export, "hxl"),
        ".hxl.csv",
        "text/csv",
        "download_hxl",
    ),
    (
        "CSV metadata (CSVW)",
        partial(export, "csv-metadata", name=f"{stem}.csv"),
        ".csv-metadata.json",
        "application/csvm+json",
        "download_csvw",
    ),
    (
        "GeoJSON (exposed cells)",
        partial(export, "geojson"),
        ".geojson",
        "application/geo+json",
        "download_geojson",
    ),
]
for column, (label, writer, suffix, mime, key) in zip(st.columns(len(files)), files, strict=True):
    column.download_button(
        label,
        writer,
        f"{stem}{suffix}",
        mime,
        on_click="ignore",
        icon=":material/download:",
        key=key,
    )

exposure_headline.report_button(run, release, admin_file, stem, headline_key)

with st.expander("Footprint details: what was read and repaired"):
    for provenance in run.provenance:
        st.markdown(
            f"**{common.plain(provenance['file_name'])}** ({provenance['format']}, "
            f"{provenance['hazard_type']}), sha256 `{provenance['sha256'][:16]}…`"
        )
        for line in provenance["repairs"] + provenance["notes"]:
            st.markdown(f"- {common.plain(line)}")

exposure_profile.show(run, release, release_file)
