"""Exposure page, "Who is exposed": community profile, focal points, registered vs official.

Called by ``app_pages/exposure.py`` with the run it computed; every figure comes from
``geo.pipeline.profile`` (released values only), the same as the CLI's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import common
from geo.pipeline import profile as who

SAMPLE_FOCAL_POINTS = Path(__file__).resolve().parent.parent / "data/demo/focal_points_SAMPLE.csv"
WHOLE = "the whole footprint"
PERSON_COLUMNS = {
    "persons_low": "persons (low)",
    "persons_estimate": "persons (estimate)",
    "persons_high": "persons (high)",
}


def _run_key(run, release_file) -> tuple:
    """Return what identifies a run for the profile cache (the run is not hashable)."""
    return (
        release_file.sha256,
        tuple(p.get("sha256", "") for p in run.provenance),
        tuple(run.classes["class_label"]),
        run.exposure.cumulative,
        run.exposure.weighting,
        tuple(run.nationalities or ()),
    )


@st.cache_data(show_spinner="Building the community profile…", max_entries=16)
def _profile(key: tuple, at_least: str | None, _run, _release, population: str | None):
    return who.community_profile(_run, _release, at_least, population)


def show(run, release, release_file) -> None:
    """Render the community profile, the focal points and the stock comparison of a run."""
    st.divider()
    st.subheader("Who is exposed: community profile")
    labels = list(run.classes.sort_values("class_rank", ascending=False)["class_label"])
    comparable = len(run.provenance) <= 1 and run.exposure.ordered
    choices = [WHOLE, *labels] if comparable else [WHOLE]
    scope = st.selectbox(
        "Describe the persons in",
        choices,
        format_func=lambda c: c if c == WHOLE or run.exposure.cumulative else f"{c} or worse",
        key="profile_scope",
    )
    population = common.settings().population
    profile = common.guarded(
        "building the community profile",
        _profile,
        _run_key(run, release_file),
        None if scope == WHOLE else scope,
        run,
        release,
        population,
    )
    if profile is None:
        return
    total = profile.total
    st.markdown(
        f"**{total['persons_estimate']:,} persons** (between {total['persons_low']:,} and "
        f"{total['persons_high']:,}) {common.plain(profile.scope)}, from released values."
    )
    first = profile.languages[profile.languages["language"] != ""].head(6)
    st.markdown(
        "**Languages to warn in first**: "
        + " · ".join(
            f"{common.plain(row.language_name)} {row.persons_estimate:,}"
            for row in first.itertuples()
        )
    )
    left, right = st.columns(2)
    nationalities = profile.nationalities.head(15).assign(
        nationality=lambda t: t["nationality"].map(who.nationality_label)
    )[["nationality", "persons_estimate", "persons_low", "persons_high", "persons_per_case"]]
    left.markdown("**Top nationalities**")
    left.dataframe(
        nationalities.rename(
            columns={**PERSON_COLUMNS, "persons_per_case": "persons per registration"}
        ),
        hide_index=True,
        width="stretch",
    )
    right.markdown("**Languages to communicate in** (persons who may speak them)")
    languages = profile.languages.head(15)[
        ["language_name", "persons_estimate", "persons_low", "persons_high", "nationalities"]
    ]
    right.dataframe(
        languages.rename(columns={"language_name": "language", **PERSON_COLUMNS}),
        hide_index=True,
        width="stretch",
        key="profile_languages",
    )
    columns = st.columns(3)
    for column, dimension in zip(columns, ("sex", "age_band", "vulnerability"), strict=True):
        table = profile.structure.get(dimension)
        column.markdown(f"**{who.DIMENSION_TITLES[dimension]}**")
        if table is None:
            column.write(who.NOT_AVAILABLE)
            continue
        column.dataframe(
            table.assign(share=(table["share"] * 100).round(1))[
                ["label", "share", "persons_estimate", "persons_low", "persons_high"]
            ].rename(columns={**PERSON_COLUMNS, "label": "category", "share": "% of persons"}),
            hide_index=True,
            width="stretch",
        )
    per_case = profile.persons_per_case
    st.markdown(
        f"**Family size**: {per_case:.1f} persons per registration; the distribution of "
        f"family sizes is {who.NOT_AVAILABLE}."
        if per_case
        else f"**Family size**: {who.NOT_AVAILABLE}."
    )
    for note in profile.notes:
        if not note.startswith("Family size"):
            st.caption(common.plain(note))
    _focal_points(run, profile)
    _stocks(run, release)


def _focal_points(run, profile) -> None:
    st.markdown("**Focal points** (organisations serving the exposed communities)")
    upload = st.file_uploader(
        "Focal points CSV (organisation, serves, lat, lon or place, contact)",
        type=["csv"],
        key="profile_focal_upload",
    )
    sample = st.checkbox(
        "Use the SAMPLE focal points (fictitious organisations, for the demo)",
        key="profile_focal_sample",
    )
    within = st.number_input(
        "Up to this distance from the footprint (km)", 0.0, 500.0, 10.0, 1.0, key="profile_within"
    )
    if upload is None and not sample:
        _redraw_map_with(None)
        return
    name, data = (upload.name, upload.getvalue()) if upload else (SAMPLE_FOCAL_POINTS.name, None)
    path = name if upload else SAMPLE_FOCAL_POINTS
    points = common.guarded("reading the focal points", who.read_focal_points, path, data)
    if points is None:
        return
    near = who.focal_points_for(profile, run, points, float(within))
    _redraw_map_with(near)
    matched = near[near["matches"].astype(bool)]
    st.caption(
        f"{len(matched)} focal points inside or within {within:g} km of the footprint serve "
        f"the exposed nationalities or languages; {len(near) - len(matched)} more nearby "
        "serve none of them."
    )
    st.dataframe(
        near.drop(columns=["lon", "lat"]).rename(
            columns={"serves_text": "serves", "matches": "serves of the exposed"}
        ),
        hide_index=True,
        width="stretch",
        key="profile_focal_table",
    )


def _stocks(run, release) -> None:
    st.markdown("**Registered is not present**: registered persons beside official stocks")
    upload = st.file_uploader(
        "Official stocks (CSV area, nationality, persons; ISTAT SDMX-CSV; UN DESA matrix)",
        type=["csv"],
        key="profile_stocks_upload",
    )
    admins = {f.name: f for f in common.admin_files()}
    area_file = st.selectbox(
        "Areas the stock table names",
        ["Countries (Natural Earth)", *admins],
        key="profile_stocks_areas",
    )
    country = st.text_input("Destination country (UN DESA matrix)", key="profile_stocks_country")
    if upload is None:
        return
    stocks = common.guarded(
        "reading the stocks",
        who.read_stocks,
        upload.name,
        upload.getvalue(),
        country=country.strip() or None,
    )
    if stocks is None:
        return
    admin = field = None
    if area_file in admins:
        chosen = admins[area_file]
        admin = common.guarded(
            "reading the boundaries", common.load_admin, chosen.sha256, chosen.name, chosen.path
        )
        fields = [c for c in admin.columns if c != "geometry"] if admin is not None else []
        preferred = who.stock_name_field(admin, stocks) if admin is not None else None
        field = st.selectbox(
            "Area name field",
            fields,
            index=fields.index(preferred) if preferred in fields else 0,
            key="profile_stocks_field",
            help="Defaults to the field whose values name the most areas of the stock table.",
        )
    result = common.guarded(
        "comparing with the stocks", who.stock_comparison, run, release, stocks, admin, field
    )
    if result is None:
        return
    table, notes = result
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", key="profile_stocks")
    st.caption(who.STOCK_SENTENCE)
    for note in notes:
        st.caption(common.plain(note))


def _redraw_map_with(points) -> None:
    """Hand the focal points to the map above; rerun once when they changed.

    The map is drawn before this section reads the file, so a new or removed set of
    points reruns the page (everything else is cached) to draw them.
    """
    signature = None if points is None else pd.util.hash_pandas_object(points).sum()
    if st.session_state.get("profile_focal_signature") == signature:
        return
    st.session_state["profile_focal_signature"] = signature
    st.session_state["profile_focal_points"] = points
    st.rerun()
