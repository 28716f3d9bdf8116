"""Exposure page: the PAGER-like headline and the one-page report download.

The figures are the run's headline (:meth:`geo.pipeline.ExposureRun.headline`), the
same the CLI's ``exposure`` and ``report`` print: per footprint, persons in each class
and at least each class with their ranges, an alert colour, and beside them the
persons withheld, how recently the registry was confirmed, and the release's as-of
date with the footprint's event time.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from app_pages import common
from geo import pipeline
from geo.pipeline import ExposureRun
from geo.release import Release

# Streamlit's text colours for the alert badge (the word is printed too).
BADGE = {"green": "green", "yellow": "yellow", "orange": "orange", "red": "red"}


@st.cache_data(show_spinner=False, max_entries=16)
def _headline(key: str, _run: ExposureRun, _release: Release):
    """Return the run's headline, computed once per request (``key``)."""
    return _run.headline(_release)


def show_headline(run: ExposureRun, release: Release, key: str) -> None:
    """Draw the headline of an exposure run (``key`` identifies the request)."""
    with st.spinner("Computing the headline (each class, and at least each class)…"):
        headline = common.guarded("computing the headline", _headline, key, run, release)
    if headline is None:
        return
    st.subheader("Headline")
    for fp in headline.footprints:
        badge = (
            f":{BADGE[fp.alert]}-background[**ALERT {fp.alert.upper()}**]"
            if fp.alert
            else "**no alert colour**"
        )
        st.markdown(f"{badge} {common.plain(fp.name)}: {common.plain(fp.alert_reason)}.")
        rows = pd.DataFrame(
            {
                "Class": [r.label for r in fp.rows],
                "Persons in the class": [r.band.text() for r in fp.rows],
                "At least": [r.at_least_label or "—" for r in fp.rows],
                "Persons at least": [r.at_least.text() if r.at_least else "—" for r in fp.rows],
            }
        )
        st.table(rows.set_index("Class"))  # plain HTML: readable, printable, searchable
        event = f"event time {fp.event_time}" if fp.event_time else "event time not given"
        st.caption(
            f"Event: {common.plain(fp.event or 'not named by the file')}; {event}. "
            f"Registry as of {headline.as_of}."
        )
    st.markdown(
        f"**Withheld for privacy:** {headline.withheld or 'not stated by this release'}  \n"
        f"**Registry confirmed recently:** {headline.confirmed}"
    )
    st.caption(
        "Alert colour: from the estimated persons at least MMI VIII (other scales: their "
        "most severe class), or the high bound where the estimate cannot be trusted; red "
        "from 1,000, orange from 100, yellow from 1, green when nobody can be there."
    )


def report_button(run: ExposureRun, release: Release, admin_file, stem: str, key: str) -> None:
    """Offer the one-page report (PDF), written when the button is clicked."""
    headline = common.guarded("computing the headline", _headline, key, run, release)
    admin = (
        common.load_admin(admin_file.sha256, admin_file.name, admin_file.path)
        if admin_file
        else None
    )
    st.download_button(
        "Download report (PDF)",
        partial(pipeline.report_bytes, run, release, "pdf", admin=admin, headline=headline),
        f"{stem}_report.pdf",
        "application/pdf",
        on_click="ignore",
        icon=":material/picture_as_pdf:",
        key="download_report",
    )
