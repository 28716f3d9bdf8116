"""Data page (steward only): ingest registrations, build a release, preview footprints."""

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import basemap, common
from app_pages.deck_map import deck_map
from geo import pipeline
from geo.codes import CONSENT_SCOPES
from geo.release import MAX_BASE_RESOLUTION, ReleasePolicy
from geo.series import series_display, series_table
from geo.viz.layers import bounds_to_view, build_deck, classes_to_layer
from geo.viz.legends import legend_html

st.title("Steward: registrations, releases and footprints")
refusal = common.steward_refusal()
if refusal is not None:
    st.error(refusal, icon=":material/lock:")
    if common.login_configured():
        st.button("Log in", on_click=st.login, key="data_login")
    st.stop()
st.caption(
    "Files uploaded here stay in this session's private temporary folder and store; no "
    "other page reads them. Only the release you build leaves this page."
)
store_path = common.session_dir("store") / "steward.duckdb"

st.header("1. Ingest registration files")
records = st.file_uploader(
    "Registration files (CSV, XLSX, Parquet)",
    type=["csv", "txt", "xlsx", "parquet"],
    accept_multiple_files=True,
    key="data_records",
)
if st.button("Ingest", disabled=not records, key="data_ingest"):
    paths = common.save_uploads(records, "uploads")
    with st.status("Ingesting…", expanded=False) as status:
        reports = common.guarded(
            "ingesting the files",
            pipeline.ingest_files,
            store_path,
            paths,
            rejects_dir=common.session_dir("rejects"),
            progress=lambda message: status.update(label=message),
        )
        for path in paths:  # the raw files (with identifiers) are not kept once read
            path.unlink(missing_ok=True)
        status.update(
            label="Ingest finished" if reports else "Ingest failed: nothing stored",
            state="complete" if reports else "error",
        )
    if reports:
        st.session_state["ingest_reports"] = reports

for report in st.session_state.get("ingest_reports", []):
    with st.container(border=True):
        st.markdown(f"**{common.plain(report.file_name)}** ({report.file_format})")
        if report.already_ingested:
            st.info("Already ingested (same SHA-256): nothing changed.")
            continue
        counts = st.columns(4)
        counts[0].metric("Rows read", f"{report.rows_read:,}")
        counts[1].metric("Accepted", f"{report.accepted:,}")
        counts[2].metric("Rejected", f"{report.rejected:,}")
        counts[3].metric("New / updated", f"{report.inserted:,} / {report.updated:,}")
        if report.rejects_by_reason:
            st.dataframe(
                pd.DataFrame(report.rejects_by_reason.most_common(), columns=["reason", "rows"]),
                hide_index=True,
                width="stretch",
            )
        if report.dropped_columns:
            st.markdown(
                "Dropped columns (never stored): "
                + ", ".join(map(common.plain, report.dropped_columns))
            )
        if report.identifier_columns:
            st.markdown(
                "Of which direct identifiers: "
                + ", ".join(map(common.plain, report.identifier_columns))
            )
        for note in report.notes:
            st.caption(common.plain(note))

summary = None
if store_path.exists():
    summary = common.guarded("opening the store", pipeline.store_summary, store_path)
if summary:
    st.markdown(
        f"The session store holds **{summary['records']:,}** registrations "
        f"({summary['persons']:,} persons, {summary['nationalities']} nationalities) from "
        f"{len(summary['ingests'])} file(s)."
    )

st.header("2. Build a release")
with st.form("policy"):
    columns = st.columns(3)
    base = columns[0].number_input("Base H3 resolution", 0, MAX_BASE_RESOLUTION, 7, key="data_base")
    floor = columns[0].number_input(
        "Floor H3 resolution", 0, MAX_BASE_RESOLUTION, 4, key="data_floor"
    )
    k = columns[1].number_input("Threshold k (cases)", 2, 1000, 10, key="data_k")
    noise = columns[1].number_input(
        "Noise scale (0: k / 3)",
        0.0,
        1000.0,
        0.0,
        help="Every published count carries keyed noise of this scale (persons twice it); "
        "a store's releases keep the first release's scale.",
        key="data_noise",
    )
    consent = columns[2].selectbox("Consent scope required", CONSENT_SCOPES, key="data_consent")
    audience = columns[2].text_input(
        "Audience nationalities (ISO3 or names, comma separated; empty: all)", key="data_audience"
    )
    name = st.text_input("Release name", "session", key="data_name")
    build = st.form_submit_button("Build release", disabled=summary is None, key="data_build")
if summary is None:
    st.caption("Ingest registration files first.")
if build:
    policy = ReleasePolicy(
        base_resolution=int(base),
        floor_resolution=int(floor),
        k=int(k),
        nationalities=tuple(v.strip() for v in audience.split(",") if v.strip()) or None,
        consent_scope=consent,
        noise_scale=float(noise) or None,
    )
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "session"
    target = common.session_dir("releases") / f"{stem}{common.RELEASE_SUFFIX}"
    with st.spinner("Building the release…"):
        release = common.guarded(
            "building the release", pipeline.publish_release, store_path, policy, target
        )
    if release is not None:
        built = st.session_state.setdefault("session_releases", [])
        if str(target) not in built:
            built.append(str(target))
        st.session_state["built_release"] = str(target)
        st.session_state["activate_release"] = str(target)
        st.rerun()

ledger = (
    common.guarded("reading the ledger", pipeline.list_releases, store_path) if (summary) else None
)
if ledger:
    st.markdown(
        "**This store's release series** (every release is published beside every earlier "
        "one; they keep the first release's policy). Changes are between published figures "
        "only."
    )
    series = series_table(
        {
            "name": f"#{e['release_id']} {e['file_name']}",
            "created": str(e["created_at"]),
            "store_version": e["store_version"],
            "audience": ", ".join(e["policy"]["nationalities"] or ["all"]),
            "groups": e["groups"],
            "persons": e["persons"],
        }
        for e in ledger
    )
    st.dataframe(series_display(series), hide_index=True, width="stretch")

built = st.session_state.get("built_release")
if built:
    file = common.source_file(Path(built))
    release = common.guarded("reading the release", common.load_release, file.sha256, file.path)
    if release is not None:
        st.success(
            f"{common.plain(file.name)} is built and is now the active release (see the sidebar)."
        )
        st.code("\n".join(release.summary_lines()), language=None, wrap_lines=True)
        st.download_button(
            "Download the release file",
            Path(built).read_bytes(),
            file.name,
            "application/vnd.apache.parquet",
            on_click="ignore",
            icon=":material/download:",
            key="data_release_download",
        )

st.header("3. Preview footprints")
footprint_uploads = st.file_uploader(
    "Footprint files", type=common.UPLOAD_TYPES, accept_multiple_files=True, key="data_footprints"
)
class_field = st.text_input("Class attribute (optional)", key="data_class_field").strip()
if footprint_uploads:
    common.register_footprint_uploads(footprint_uploads)
uploaded = [f for f in common.footprint_files() if f.name.endswith("(uploaded)")]
for file in uploaded:
    footprint = common.guarded(
        "reading the footprint",
        common.load_footprint,
        file.sha256,
        file.name,
        class_field or None,
        10.0,
        file.path,
    )
    if footprint is None:
        continue
    with st.container(border=True):
        provenance = footprint.provenance
        st.markdown(
            f"**{common.plain(provenance['file_name'])}**: {provenance['format']}, "
            f"{provenance['hazard_type']}, classes from "
            f"{common.plain(provenance['class_field'] or 'the file name')}"
        )
        st.dataframe(footprint.describe(), hide_index=True, width="stretch")
        for line in provenance["repairs"] + provenance["notes"]:
            st.caption(common.plain(line))
        classes = common.guarded(
            "preparing the footprint", pipeline.footprint_classes, [footprint], False
        )
        if classes is not None:
            layer, legend = classes_to_layer(classes, layer_id=f"preview-{file.sha256[:8]}")
            view = bounds_to_view(classes.total_bounds)
            deck_map(
                build_deck(basemap.land_layers(classes.total_bounds) + [layer], view),
                height=360,
                key=f"preview_{file.sha256[:8]}",
                alt=f"Map of the classes of {provenance['file_name']}",
                tiles=common.settings().basemap_url,
            )
            st.markdown(legend_html("Classes", legend, shape="outline"), unsafe_allow_html=True)

st.header("4. Reach your registrants inside a footprint")
st.caption(
    "For the registration owner: your own raw files (as ingested above, not the store) and "
    "a footprint give the contact list of the registrants whose real position lies inside "
    "it, with their worst class and the contact columns the files hold. The raw files are "
    "deleted once read; the list stays in this session's private folder until you leave."
)
outreach_records = st.file_uploader(
    "Your registration files (CSV, XLSX, Parquet)",
    type=["csv", "txt", "xlsx", "parquet"],
    accept_multiple_files=True,
    key="outreach_records",
)
outreach_hazard = st.file_uploader(
    "Footprint (a shapefile with its sidecars)",
    type=common.UPLOAD_TYPES,
    accept_multiple_files=True,
    key="outreach_hazard",
)
columns = st.columns(3)
outreach_field = columns[0].text_input("Class attribute (optional)", key="outreach_class_field")
outreach_order = columns[0].text_input(
    "Class order, worst first (optional)", key="outreach_class_order"
)
outreach_classes = columns[1].text_input(
    "Only these classes (comma separated; empty: all)", key="outreach_classes"
)
NO_CONSENT_FILTER = "(no consent filter)"
outreach_consent = columns[2].selectbox(
    "Consent the records must carry",
    [NO_CONSENT_FILTER, *CONSENT_SCOPES],
    key="outreach_consent",
)
if st.button(
    "Build the contact list",
    disabled=not (outreach_records and outreach_hazard),
    key="outreach_run",
):
    raw_paths = common.save_uploads(outreach_records, "outreach_uploads")
    hazard_paths = common.save_uploads(outreach_hazard, "outreach_footprint")
    mains = [p for p in hazard_paths if p.suffix.lower() not in common.SHAPEFILE_SIDECARS]
    target = common.session_dir("outreach") / "contacts.csv"
    if len(mains) != 1:
        st.error("Upload one footprint (a shapefile may come with its .shx, .dbf, .prj, .cpg).")
        run = None
    else:
        with st.spinner("Finding the registrants inside the footprint…"):
            run = common.guarded(
                "building the contact list",
                pipeline.run_outreach,
                raw_paths,
                mains[0],
                target,
                classes=[c.strip() for c in outreach_classes.split(",") if c.strip()] or None,
                consent=None if outreach_consent == NO_CONSENT_FILTER else outreach_consent,
                class_field=outreach_field.strip() or None,
                class_order=outreach_order.strip() or None,
            )
    for path in raw_paths:  # the raw files (with identifiers) are not kept once read
        path.unlink(missing_ok=True)
    st.session_state["outreach_result"] = run

outreach = st.session_state.get("outreach_result")
if outreach is not None and outreach.out.exists():
    st.warning(outreach.warning(), icon=":material/warning:")
    lines = outreach.summary_lines(where="the download below", warning=False)
    st.code("\n".join(lines), language=None, wrap_lines=True)
    st.download_button(
        "Download the contact list (personal data)",
        outreach.out.read_bytes(),
        "contacts.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
        key="outreach_download",
    )
    st.download_button(
        "Download the run log (no identifiers)",
        outreach.log.read_bytes(),
        outreach.log.name,
        "application/jsonl",
        on_click="ignore",
        key="outreach_log_download",
    )
