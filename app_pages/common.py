"""What the pages share: settings, cached loaders keyed on file hashes, the error guard.

Pages read releases (never the steward store, which only the Data page touches). Every
cached function takes hashable keys (a file's SHA-256, options); paths and objects that
do not identify the content are passed with a leading underscore so they are not hashed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import pandas as pd
import streamlit as st
import streamlit.components.v2 as components_v2
from streamlit import config as streamlit_config

from geo import pipeline
from geo.errors import InputError, one_line
from geo.footprint_classes import SHAPEFILE_SIDECARS
from geo.hashing import file_sha256
from geo.pipeline import ExposureRun
from geo.process_memory import use_system_allocator_for_arrow
from geo.release import Release
from geo.series import series_table
from geo.viz.layers import MAP_HEIGHT_PX, MAP_WIDTH_PX, bounds_to_view, cells_to_view

use_system_allocator_for_arrow()  # the server holds a release for hours (see there)

ROOT = Path(__file__).resolve().parent.parent
FOOTPRINT_DIR = ROOT / "data" / "footprints"
ADMIN_DIR = ROOT / "data" / "admin"
BASEMAP_DIR = ROOT / "data" / "basemap"
RELEASE_SUFFIX = ".release.parquet"
FOOTPRINT_SUFFIXES = (
    ".json",
    ".geojson",
    ".topojson",
    ".shp",
    ".zip",
    ".kml",
    ".kmz",
    ".gpkg",
    ".csv",
    ".fgb",
    ".gml",
    ".xml",
    ".cap",
    ".tif",
    ".tiff",
)
UPLOAD_TYPES = [s.lstrip(".") for s in FOOTPRINT_SUFFIXES + SHAPEFILE_SIDECARS]
# What pipeline.read_boundaries reads from one uploaded file (a shapefile comes zipped).
BOUNDARY_UPLOAD_TYPES = ["geojson", "json", "topojson", "zip", "gpkg"]
LOG = logging.getLogger("crisis_exposure.dashboard")
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """The deployment's configuration, read from the environment on every run."""

    release_dir: Path
    steward: bool
    basemap_url: str | None
    trusted_keys: tuple[str, ...] = ()
    revocations: str | None = None
    population: str | None = None  # a population grid for the population weighting


@dataclass(frozen=True)
class SourceFile:
    """A file the pages may read, named and identified by its content hash."""

    name: str
    path: str
    sha256: str


def settings() -> Settings:
    """Return the settings from ``CRISIS_EXPOSURE_*`` environment variables.

    The steward's Data page is off unless ``CRISIS_EXPOSURE_STEWARD`` turns it on.
    """
    release_dir = Path(os.environ.get("CRISIS_EXPOSURE_RELEASE_DIR", ROOT / "data" / "demo"))
    steward = os.environ.get("CRISIS_EXPOSURE_STEWARD", "0").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )
    basemap = os.environ.get("CRISIS_EXPOSURE_BASEMAP_URL", "").strip() or None
    trusted = os.environ.get("CRISIS_EXPOSURE_TRUSTED_KEYS", "").strip()
    keys = tuple(p for p in trusted.split(os.pathsep) if p)
    revocations = os.environ.get("CRISIS_EXPOSURE_REVOCATIONS", "").strip() or None
    population = os.environ.get("CRISIS_EXPOSURE_POPULATION", "").strip() or None
    return Settings(release_dir, steward, basemap, keys, revocations, population)


LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def steward_refusal() -> str | None:
    """Return why the steward's Data page may not serve this session, or None when it may.

    It serves when the server listens on this machine only (``server.address``
    127.0.0.1, localhost or ::1), or when Streamlit's login is configured (an
    ``[auth]`` section in ``secrets.toml``) and the user has logged in. A server bound
    to every interface without a login would hand ingest and release-building to
    anyone who can reach it.
    """
    address = str(streamlit_config.get_option("server.address") or "").strip().lower()
    if address in LOCAL_ADDRESSES:
        return None
    if login_configured():
        if st.user.get("is_logged_in", False):
            return None
        return "The Data page is for the steward: log in to use it."
    return (
        "The Data page is off: this server listens on "
        f"{address or 'every network interface'}, and no login is configured. Serve it "
        "on 127.0.0.1 only (server.address), or configure Streamlit's login ([auth] in "
        ".streamlit/secrets.toml), or set CRISIS_EXPOSURE_STEWARD=0."
    )


def login_configured() -> bool:
    """Return whether Streamlit's login (``st.login``) is configured: ``[auth]`` in secrets."""
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, OSError, st.errors.StreamlitSecretNotFoundError):
        return False


MARKUP = str.maketrans({c: "\\" + c for c in "\\[]<>`"})


def plain(text: object) -> str:
    """Return text from a file (a name, a field, a label) safe inside a page's markdown.

    Streamlit renders no raw HTML in markdown, but a name like ``![x](https://…)`` would
    still become an image the browser fetches, and ``[x](…)`` a link: brackets, angle
    brackets, backticks and backslashes are escaped, so the text shows as it is.
    """
    return str(text).translate(MARKUP)


def population_key(path: str | None) -> tuple[str, int, int] | None:
    """Return what identifies a population grid file for the cache: path, size, mtime.

    Such files are gigabytes: hashing one on every run would cost more than the exposure.
    """
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return (path, -1, -1)  # reading it then says what is wrong
    return (path, stat.st_size, stat.st_mtime_ns)


def guarded(action: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``function``; show a bad input's message, or a generic one, instead of a traceback.

    Returns
    -------
    The function's result, or None when it raised (the message is then on the page).
    """
    try:
        return function(*args, **kwargs)
    except InputError as exc:
        st.error(plain(one_line(exc)), icon=":material/error:")
    except Exception:
        LOG.exception("unexpected error while %s", action)
        st.error(
            f"Something went wrong while {action}. Nothing was changed; the details are in "
            "the server log.",
            icon=":material/error:",
        )
    return None


def session_dir(part: str) -> Path:
    """Return this session's private temporary folder ``part`` (created on first use).

    The folder is a ``TemporaryDirectory`` held in the session state: when the session
    ends and its state is collected (or the server stops), the folder, its store and
    its rejects are deleted with it.
    """
    holder = st.session_state.get("_session_dir")
    if holder is None or not Path(holder.name).is_dir():
        holder = tempfile.TemporaryDirectory(prefix="crisis-exposure-session-")
        st.session_state["_session_dir"] = holder
    folder = Path(holder.name) / part
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_uploads(files: list, part: str) -> list[Path]:
    """Write uploaded files into the session folder ``part`` under their own names."""
    folder = session_dir(part)
    paths = []
    for upload in files:
        target = folder / Path(upload.name).name
        target.write_bytes(upload.getvalue())
        paths.append(target)
    return paths


@st.cache_data(show_spinner=False, max_entries=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """Return a file's SHA-256 (cached on path, modification time and size)."""
    return file_sha256(path)


def source_file(path: Path, name: str | None = None) -> SourceFile:
    """Return a file with its content hash (shapefile sidecars included)."""
    parts = [path]
    if path.suffix.lower() == ".shp":
        parts += [p for p in (path.with_suffix(s) for s in SHAPEFILE_SIDECARS) if p.is_file()]
    digests = []
    for part in parts:
        stat = part.stat()
        digests.append(_sha256(str(part), stat.st_mtime_ns, stat.st_size))
    digest = (
        digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
    )
    return SourceFile(name or path.name, str(path), digest)


# --------------------------------------------------------------------------- releases


def release_files(config: Settings) -> list[SourceFile]:
    """Return the releases of the configured folder, then those built in this session."""
    found = (
        sorted(config.release_dir.glob(f"*{RELEASE_SUFFIX}")) if config.release_dir.is_dir() else []
    )
    built = [Path(p) for p in st.session_state.get("session_releases", []) if Path(p).is_file()]
    return [source_file(p) for p in found + built]


@st.cache_resource(show_spinner="Reading the release…", max_entries=8)
def load_release(sha256: str, _path: str) -> Release:
    """Return the release with this content hash (read from ``_path``).

    One shared object, never copied: pages only read it (a per-run copy of a national
    release cost a tenth of a second and its memory on every rerun).
    """
    return pipeline.read_release(_path, settings().trusted_keys)


@st.cache_resource(show_spinner=False, max_entries=32)
def release_nationalities(content_sha256: str, _release: Release) -> tuple[str, ...]:
    """Return the release's nationality codes, sorted (once per release: 20 ms at 10M)."""
    return tuple(sorted(_release.groups["nationality"].unique()))


@st.cache_resource(show_spinner=False, max_entries=32)
def release_extent_view(content_sha256: str, _release: Release) -> dict:
    """Return the view that frames every released cell (computed once per release)."""
    return cells_to_view(list(_release.groups["h3_cell"].unique()))


def release_picker(config: Settings) -> None:
    """Draw the sidebar's release switcher (the active release is kept in session state).

    A page asks for another release by setting ``activate_release`` to its path.
    """
    files = release_files(config)
    if not files:
        st.session_state.pop("release_path", None)
        return
    paths = [f.path for f in files]
    requested = st.session_state.pop("activate_release", None)
    if requested in paths:
        st.session_state["release_path"] = requested
    if st.session_state.get("release_path") not in paths:
        st.session_state["release_path"] = paths[0]
    names = {f.path: f.name.removesuffix(RELEASE_SUFFIX) for f in files}
    st.sidebar.selectbox(
        "Release",
        paths,
        key="release_path",
        format_func=names.get,
        help="Releases in the dashboard's release folder (and any built in this session).",
    )


def active_release() -> tuple[Release, SourceFile] | None:
    """Return the active release and its file, or None (with a message) when there is none.

    A revoked, superseded or expired release is said so at the top of the page
    (:func:`release_standing`); a revocation list that cannot be honoured stops the page.
    """
    path = st.session_state.get("release_path")
    if path is None:
        config = settings()
        st.info(
            f"No release file (`*{RELEASE_SUFFIX}`) in `{config.release_dir}`. Make the demo "
            "with `python -m demo build --out data/demo`, point `CRISIS_EXPOSURE_RELEASE_DIR` "
            "at a folder of releases"
            + (", or build one on the Data page." if config.steward else "."),
            icon=":material/info:",
        )
        return None
    file = source_file(Path(path))
    release = guarded("reading the release", load_release, file.sha256, file.path)
    if release is None:
        return None
    standing = release_standing(release, file)
    if standing is None:
        return None
    if standing.revoked:
        st.error(plain(_sentence(standing.revoked)), icon=":material/block:")
    for warning in (standing.superseded, standing.expired):
        if warning:
            st.warning(plain(_sentence(warning)), icon=":material/history:")
    return release, file


def _sentence(text: str) -> str:
    """Return text as a sentence: a capital first letter and a full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


@st.cache_data(show_spinner=False, max_entries=8)
def load_revocations(sha256: str, trusted: tuple[str, ...], _path: str) -> Any:
    """Return the steward's revocation list (cached on its hash and the trusted key files).

    Raises
    ------
    InputError
        For a list that is unsigned, forged or malformed.
    """
    return pipeline.read_revocations(_path, trusted)


def release_standing(release: Release, file: SourceFile) -> Any | None:
    """Return the release's standing, or None (with the reason on the page) if it cannot be told.

    Uses the revocation list named by ``CRISIS_EXPOSURE_REVOCATIONS`` and the other
    releases on offer (a newer one may name this one in its ``supersedes``).
    """
    config = settings()
    revocations = None
    if config.revocations:
        listed = Path(config.revocations)
        if not listed.is_file():
            st.error(
                f"The revocation list {listed.name} (CRISIS_EXPOSURE_REVOCATIONS) is missing: "
                "without it no release can be shown as current.",
                icon=":material/error:",
            )
            return None
        revocations = guarded(
            "reading the revocation list",
            load_revocations,
            source_file(listed).sha256,
            config.trusted_keys,
            str(listed),
        )
        if revocations is None:
            return None
    others = []
    for other in release_files(config):
        if other.path == file.path:
            continue
        try:
            others.append((other.name, load_release(other.sha256, other.path).metadata))
        except InputError:
            continue  # a bad release is refused when it is chosen, not here
    return guarded(
        "checking the release's standing", pipeline.release_standing, release, revocations, others
    )


# --------------------------------------------------------------------------- footprints


def footprint_files() -> list[SourceFile]:
    """Return the shipped footprints, then those uploaded in this session."""
    shipped = (
        sorted(p for p in FOOTPRINT_DIR.glob("*") if p.suffix.lower() in FOOTPRINT_SUFFIXES)
        if FOOTPRINT_DIR.is_dir()
        else []
    )
    uploaded = [Path(p) for p in st.session_state.get("footprint_uploads", []) if Path(p).is_file()]
    files = [source_file(p) for p in shipped]
    files += [source_file(p, f"{p.name} (uploaded)") for p in uploaded]
    return files


def footprint_kinds(files: list[SourceFile]) -> set[str]:
    """Return which reader settings apply to these footprints: ``acled``, ``raster``.

    Told from the file name alone (an ACLED export is a CSV; a raster a GeoTIFF or a
    ShakeMap ``grid.xml``), so a file is not read to decide what to ask about it.
    """
    kinds = set()
    for file in files:
        name = file.name.removesuffix(" (uploaded)").lower()
        if name.endswith(".csv"):
            kinds.add("acled")
        if name.endswith((".tif", ".tiff")) or (name.endswith(".xml") and "grid" in name):
            kinds.add("raster")
    return kinds


def register_footprint_uploads(files: list) -> list[str]:
    """Save uploaded footprint files for this session; return the display names new to it."""
    saved = save_uploads(files, "footprints")
    known = st.session_state.setdefault("footprint_uploads", [])
    new = []
    for path in saved:
        if path.suffix.lower() not in SHAPEFILE_SIDECARS and str(path) not in known:
            known.append(str(path))
            new.append(f"{path.name} (uploaded)")
    return new


@st.cache_data(show_spinner="Reading the footprint…", max_entries=64)
def load_footprint(
    sha256: str,
    name: str,
    class_field: str | None,
    buffer_km: float,
    _path: str,
    date_window: tuple[str | None, str | None] = (None, None),
    class_order: str | None = None,
    raster: tuple[str, str, str] = ("auto", "", ""),
) -> pipeline.Footprint:
    """Return a footprint read from ``_path`` (cached on its hash and the reader options).

    ``date_window`` (ISO dates or None) limits ACLED events; ``raster`` (kind, thresholds,
    value labels, as text) classes rasters; other formats ignore them.
    ``class_order`` (comma-separated, worst first) ranks classes with no known order.
    """
    (footprint,) = pipeline.read_footprints(
        [_path],
        class_field=class_field,
        buffer_km=buffer_km,
        date_from=date_window[0],
        date_to=date_window[1],
        names=[name.removesuffix(" (uploaded)")],
        class_order=class_order,
        raster=pipeline.raster_options(*raster),
    )
    return footprint


def overlapping_footprint(files: list[SourceFile], release: Release) -> SourceFile | None:
    """Return the first footprint whose classes touch the release's extent, if any.

    Remembered in the session for the same release and files: looking (every file's
    header, the candidates read) took 30 ms of each filter change at 10M.
    """
    asked = (release.metadata["content_sha256"], tuple(file.sha256 for file in files))
    remembered = st.session_state.get("_overlapping_footprint")
    if remembered is not None and remembered[0] == asked:
        return next((file for file in files if file.sha256 == remembered[1]), None)
    found = _first_overlapping(files, release)
    st.session_state["_overlapping_footprint"] = (asked, found.sha256 if found else None)
    return found


def _first_overlapping(files: list[SourceFile], release: Release) -> SourceFile | None:
    view = release_extent_view(release.metadata["content_sha256"], release)
    for file in files:
        # A header far from the release (1° margin for buffers): skip the full read.
        box = pipeline.footprint_file_bounds(file.path)
        if box is not None and not (
            box[0] - 1 <= view["longitude"] <= box[2] + 1
            and box[1] - 1 <= view["latitude"] <= box[3] + 1
        ):
            continue
        footprint = guarded(
            "reading a footprint", load_footprint, file.sha256, file.name, None, 10.0, file.path
        )
        if footprint is None:
            continue
        west, south, east, north = footprint.classes.total_bounds
        if west <= view["longitude"] <= east and south <= view["latitude"] <= north:
            return file
    return None


# --------------------------------------------------------------------------- admin areas


def admin_files() -> list[SourceFile]:
    """Return the shipped administrative boundary files, then those uploaded in this session."""
    shipped = sorted(ADMIN_DIR.glob("*.geojson")) if ADMIN_DIR.is_dir() else []
    uploaded = [Path(p) for p in st.session_state.get("admin_uploads", []) if Path(p).is_file()]
    files = [source_file(p) for p in shipped]
    return files + [source_file(p, f"{p.name} (uploaded)") for p in uploaded]


def register_admin_upload(upload: Any) -> str | None:
    """Save an uploaded boundary file for this session; return its display name if new."""
    (path,) = save_uploads([upload], "boundaries")
    known = st.session_state.setdefault("admin_uploads", [])
    if str(path) in known:
        return None
    known.append(str(path))
    return f"{path.name} (uploaded)"


@st.cache_data(show_spinner="Reading the boundaries…", max_entries=16)
def load_admin(sha256: str, name: str, _path: str) -> gpd.GeoDataFrame:
    """Return administrative boundaries as polygons in EPSG:4326 (the CLI's reader).

    Raises
    ------
    InputError
        If the file cannot be read, has no polygons or no CRS.
    """
    return pipeline.read_boundaries(_path, name)


# --------------------------------------------------------------------------- exposure


@st.cache_data(show_spinner=False, max_entries=32)
def run_exposure(
    release_sha256: str,
    footprint_keys: tuple[tuple[str, str], ...],
    class_field: str | None,
    buffer_km: float,
    cumulative: bool,
    weighting: str,
    admin_key: tuple[str, str] | None,
    admin_field: str | None,
    nationalities: tuple[str, ...],
    _release_path: str,
    _footprint_paths: tuple[str, ...],
    _admin_path: str | None,
    date_window: tuple[str | None, str | None] = (None, None),
    class_order: str | None = None,
    population: tuple[str, int, int] | None = None,
    raster: tuple[str, str, str] = ("auto", "", ""),
) -> ExposureRun:
    """Return the exposure for a release, footprints (hash, name) and options (cached).

    Raises
    ------
    InputError
        For a footprint or boundary file that cannot be used, or bad options.
    """
    release = load_release(release_sha256, _release_path)
    footprints = [
        load_footprint(sha, name, class_field, buffer_km, path, date_window, class_order, raster)
        for (sha, name), path in zip(footprint_keys, _footprint_paths, strict=True)
    ]
    admin = load_admin(admin_key[0], admin_key[1], _admin_path) if admin_key else None
    run = pipeline.run_exposure(
        release,
        footprints,
        cumulative=cumulative,
        weighting=weighting,
        admin=admin,
        admin_field=admin_field,
        nationalities=nationalities,
        population=population[0] if population else None,
    )
    return run


# --------------------------------------------------------------------------- map

# A map's view (centre and zoom) is fixed on the server, so it must know how wide the
# map is: a view framed for a desktop's 1000 px crops a phone's 360 px map. The browser
# says when its window is narrow (< 640 px, where Streamlit stacks columns) through
# this component, which renders nothing and, on a wide window, never sends anything.
NARROW_PX = 640
PHONE_MAP_WIDTH_PX = 350
_VIEWPORT_JS = f"""
export default function(component) {{
  const {{ data, setStateValue }} = component;
  const narrow = window.innerWidth < {NARROW_PX};
  if (narrow !== Boolean(data && data.narrow)) setStateValue("narrow", narrow);
}}
"""
_viewport = components_v2.component("crisis_exposure_viewport", js=_VIEWPORT_JS)


def track_viewport() -> None:
    """Mount the viewport probe; a narrow window reruns the page with ``narrow_viewport``."""
    narrow = bool(st.session_state.get("narrow_viewport", False))
    result = _viewport(data={"narrow": narrow}, key="viewport", on_narrow_change=lambda: None)
    reported = getattr(result, "narrow", None)
    if reported is not None:
        st.session_state["narrow_viewport"] = bool(reported)


def map_width() -> int:
    """Return the width (px) to frame maps for: a phone's, or a desktop's."""
    return PHONE_MAP_WIDTH_PX if st.session_state.get("narrow_viewport") else MAP_WIDTH_PX


def release_view(release: Release, bounds: tuple[float, float, float, float] | None = None) -> dict:
    """Return the map view framing the whole release (filters never move it).

    ``bounds`` (west, south, east, north) are the release's cells' with what else must
    be seen (a footprint and its map edge); the view fits the window's map width.
    """
    if bounds is None:
        return dict(release_extent_view(release.metadata["content_sha256"], release))
    return bounds_to_view(bounds, map_width(), MAP_HEIGHT_PX)


def release_series(config: Settings, active: SourceFile | None = None) -> pd.DataFrame:
    """Return the releases on offer as series (:func:`geo.series.series_table`).

    The active release's name is marked with ▶.
    """
    rows = []
    for file in release_files(config):
        other = guarded("reading a release", load_release, file.sha256, file.path)
        if other is None:
            continue
        meta = other.metadata
        marker = "▶ " if active is not None and file.path == active.path else ""
        rows.append(
            {
                "name": marker + file.name,
                "created": meta["created_at"],
                "store_version": meta.get("store_version", 0),
                "audience": ", ".join(meta["policy"]["nationalities"] or ["all"]),
                "groups": meta["published"]["groups"],
                "persons": meta["published"]["persons"],
            }
        )
    return series_table(rows)
