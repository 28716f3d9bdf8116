"""crisis-exposure dashboard: migrants exposed to a hazard footprint, from a protected release.

Run with ``streamlit run dashboard.py``. This file holds only the navigation and the
shared sidebar (the release switcher); the pages are in ``app_pages/``. (Not ``pages/``:
Streamlit treats a ``pages/`` folder beside the entry point as old-style pages and then
runs a page script without this file on some reruns, losing the sidebar.)

Configuration (environment variables)
-------------------------------------
CRISIS_EXPOSURE_RELEASE_DIR
    Folder of release files (``*.release.parquet``) to choose from; default
    ``data/demo``. An embassy's deployment holds only its own release there.
CRISIS_EXPOSURE_STEWARD
    ``1`` shows the Data page, where a steward uploads registration files and builds a
    release (``scripts/demo.sh`` turns it on); off by default. Even when on, the page
    serves only on a server bound to 127.0.0.1 alone or to a logged-in user
    (Streamlit's login, ``[auth]`` in ``secrets.toml``).
CRISIS_EXPOSURE_TRUSTED_KEYS, CRISIS_EXPOSURE_REVOCATIONS
    The steward's public key files (``:``-separated) and signed revocation list: every
    page says whether the active release is verified, revoked, superseded or expired.
CRISIS_EXPOSURE_BASEMAP_URL
    Optional raster tile URL template (``https://…/{z}/{x}/{y}.png``). Without it
    the map draws only the shipped outlines (``data/basemap``) and makes no network
    request; with it, tiles are drawn under the cells when the browser is online.
"""

from __future__ import annotations

import streamlit as st

from app_pages import common
from geo.process_memory import give_back_memory

st.set_page_config(page_title="crisis-exposure", page_icon="🌍", layout="wide")
config = common.settings()
pages = [
    st.Page("app_pages/map.py", title="Map", icon=":material/map:", default=True),
    st.Page("app_pages/exposure.py", title="Exposure", icon=":material/crisis_alert:"),
    st.Page("app_pages/release.py", title="Release", icon=":material/inventory_2:"),
]
if config.steward:
    pages.append(st.Page("app_pages/data.py", title="Data", icon=":material/upload_file:"))
navigation = st.navigation(pages)
common.release_picker(config)
st.sidebar.caption(
    "Every figure shown is a released value or a sum of released values: groups under "
    "k cases were rolled up to coarser cells or dropped before release."
)
with st.sidebar:
    common.track_viewport()  # last in the sidebar: its empty element takes no page space
try:
    navigation.run()
finally:
    # A run frees what it built (a map's layers and their JSON, an overlay's copies) into
    # the C library's heap, which keeps it unless asked: at 10M registrations ~60 MiB
    # more resident after a map, for the server's life. Asking takes 1–11 ms.
    give_back_memory()
