"""Floors of issue 15's open targets on this machine: what the least possible work reaches.

    python benchmarks/floors.py [--size 10000000] [--repeats 3] [--skip-ingest] [--skip-browser]

Each floor is measured in the same run as this checkout's figure, so the ratios hold on a
loaded machine too.

Ingest + release (target: ≥ 2M registrations/s end to end from Parquet). Four
pipelines on the benchmark's registry, each in a fresh process, both cores:

- core: the issue's "core work": read four columns, check coordinate ranges, bin at H3
  resolution 8, count persons and cases by (cell, nationality). No record identity,
  nothing stored, nothing protected.
- keyed store: what any store that keeps the registrations must do once per record to
  honour idempotent re-ingest and "latest version wins" without holding raw ids: read
  every column, compute the record key (HMAC-SHA256 of source + record id, the same keys
  as ``geo.hashing.record_keys``, checked), bin, write the records (Parquet, no index).
- count: the (cell × nationality) count of those stored records, the first step of any
  release.
- validated store: the keyed store with this product's own row rules (codes, dates,
  ranges, rejects: ``geo.pipeline.ingest._prepared_batches``, on two workers as ingest
  runs them), its batches written to Parquet instead of the store.

keyed store + count is a floor for ingest + release: no validation of codes or dates,
no rejects, no duplicate resolution, no transaction, no roll-up, noise or signature.
validated store + count is the floor of a store that keeps the issue's guarantee of
rejects, with nothing else (no duplicate resolution, transaction, roll-up or noise).

Dashboard (targets at 10M: first map < 3 s, rerun after a filter < 0.5 s). Streamlit
pages with nothing of the dashboard in them, in the same headless Chromium and with the
same clock as ``benchmarks/dashboard.py`` (page opened → browser quiet):

- a page of text;
- a page with a select box and a one-point deck.gl map (``st.pydeck_chart``, Streamlit's
  own map), and its rerun after the select box changes;
- the same page with the map drawn by the dashboard's map component (``app_pages.deck_map``).

Beside them, the Map page on the demo release and on the release of ``--size``
registrations (``benchmarks/dashboard.py``'s figures, without the exposure step).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, ROOT, in_subprocess, machine_lines, registry_files  # noqa: E402

TARGET_RATE = 2e6
TARGET_FIRST_MAP_S = 3.0
TARGET_RERUN_S = 0.5

FLOOR_PIPELINE = """
import os, time
import polars as pl, polars_h3 as plh3, polars_hash  # noqa: F401
from geo.hashing import RECORD_KEY_SEPARATOR, record_keys
step, source, stored = {step!r}, {source!r}, {stored!r}
key = bytes(range(32))
started, cpu = time.perf_counter(), time.process_time()
if step == "core":
    (pl.scan_parquet(source)
     .select("nationality", "latitude", "longitude", "family_members")
     .filter(pl.col("latitude").is_between(-90, 90) & pl.col("longitude").is_between(-180, 180))
     .with_columns(plh3.latlng_to_cell("latitude", "longitude", 8).alias("cell"))
     .group_by("cell", "nationality")
     .agg(pl.len().alias("cases"), (1 + pl.col("family_members")).sum().alias("persons"))
     .collect(engine="streaming"))
elif step == "validated_store":  # the product's own read, rules, bin and keys, written
    import pyarrow.parquet as pq
    from geo.io.registrations import open_registration_file
    from geo.pipeline.ingest import _prepared_batches
    writer = None
    for batch, keyed in _prepared_batches(open_registration_file(source), key, key):
        if writer is None:
            writer = pq.ParquetWriter(stored, keyed.schema)
        writer.write_table(keyed)
    writer.close()
elif step == "keyed_store":
    message = pl.concat_str("source", pl.lit(RECORD_KEY_SEPARATOR), "record_id")
    digest = pl.col("digest")
    (pl.scan_parquet(source)
     .with_columns(message.chash.hmac_sha256(key=key.hex()).alias("digest"))
     .with_columns(
         digest.str.slice(0, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("key_hi"),
         digest.str.slice(16, 16).str.to_integer(base=16, dtype=pl.UInt64).alias("key_lo"),
         plh3.latlng_to_cell("latitude", "longitude", 8).alias("cell"))
     .drop("record_id", "digest", "latitude", "longitude")
     .sink_parquet(stored))
else:
    (pl.scan_parquet(stored).group_by("cell", "nationality")
     .agg(pl.len().alias("cases"), (1 + pl.col("family_members")).sum().alias("persons"))
     .collect(engine="streaming"))
print("seconds", time.perf_counter() - started)
print("cpu_s", time.process_time() - cpu)
if step == "keyed_store":  # the same keys as the store's, on the first records
    first = pl.read_parquet(source, n_rows=1000)
    ours = record_keys(first.select("source", "record_id"), key)
    floor = pl.read_parquet(stored, n_rows=1000)
    same = ours["key_hi"].equals(floor["key_hi"]) and ours["key_lo"].equals(floor["key_lo"])
    print("same_keys", float(same))
"""

TEXT_PAGE = """
import streamlit as st
st.title("A page of text")
st.write("Nothing else: Streamlit's own time to a settled page.")
"""

DECK_PAGE = """
import pydeck as pdk
import streamlit as st
st.title("A one-point map")
colour = st.selectbox("Colour", ["Red", "Blue", "Green"])
rgb = {"Red": [200, 30, 30], "Blue": [30, 30, 200], "Green": [30, 160, 30]}[colour]
point = pdk.Layer("ScatterplotLayer", data=[{"p": [12.5, 42.0]}], get_position="p",
                  get_radius=2000, get_fill_color=rgb)
view = pdk.ViewState(latitude=42.0, longitude=12.5, zoom=6)
st.pydeck_chart(pdk.Deck(layers=[point], initial_view_state=view, map_provider=None))
"""

# The same page drawn by the dashboard's own map component (app_pages.deck_map).
COMPONENT_PAGE = (
    f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom app_pages.deck_map import deck_map\n"
    + DECK_PAGE.replace(
        "st.pydeck_chart(pdk.Deck(layers=[point], initial_view_state=view, map_provider=None))",
        "deck_map(pdk.Deck(layers=[point], initial_view_state=view, map_provider=None), "
        'height=560, key="map", alt="A point")',
    )
)


def ingest_floors(size: int, repeats: int) -> None:
    """Print the four floor pipelines, this checkout's ingest + release and naive, same run."""
    from benchmarks.common import median_figures
    from benchmarks.run import NAIVE_INGEST, TARGET_RATIO, ingest_and_release

    parquet, _ = registry_files(size, csv=False)
    work = Path(tempfile.mkdtemp(dir=CACHE))
    try:
        stored = str(work / "records.parquet")
        floors: dict[str, list[dict[str, float]]] = {
            "core": [],
            "keyed_store": [],
            "count": [],
            "validated_store": [],
        }
        for _ in range(repeats):
            for step, runs in floors.items():
                code = FLOOR_PIPELINE.format(step=step, source=str(parquet), stored=stored)
                runs.append(in_subprocess(code))
        ours = ingest_and_release(parquet, str(work / "ours.release.parquet"), repeats)
        naive = NAIVE_INGEST.format(kind="parquet", path=str(parquet), columns="columns")
        naive_s = median_figures(naive, repeats)["total_s"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        step: {name: statistics.median(run[name] for run in runs) for name in runs[0]}
        for step, runs in floors.items()
    }
    floor_s = figures["keyed_store"]["seconds"] + figures["count"]["seconds"]
    print(f"\n== ingest + release floors, {size:,} registrations (medians of {repeats}) ==")
    for step, label in (
        ("core", "core work (no identity, nothing stored)"),
        ("keyed_store", "keyed store (record keys, bin, write)"),
        ("count", "count of the stored records"),
        ("validated_store", "validated store (+ the product's row rules)"),
    ):
        each = figures[step]
        print(
            f"{label:44s} {each['seconds']:7.2f} s, {each['cpu_s']:6.2f} s CPU, peak "
            f"{each['peak_mib']:5.0f} MiB, {size / each['seconds'] / 1e6:5.2f} M/s"
        )
    print(f"keys equal to geo.hashing.record_keys: {bool(figures['keyed_store']['same_keys'])}")
    print(
        f"floor: keyed store + count {floor_s:7.2f} s = {size / floor_s / 1e6:.2f} M/s "
        f"({size / floor_s / TARGET_RATE:.2f}× the {TARGET_RATE / 1e6:.0f}M/s target)"
    )
    validated_s = figures["validated_store"]["seconds"] + figures["count"]["seconds"]
    print(
        f"floor with rejects: validated store + count {validated_s:7.2f} s = "
        f"{size / validated_s / 1e6:.2f} M/s ({size / validated_s / TARGET_RATE:.2f}× the "
        f"target)"
    )
    print(
        f"this checkout: ingest + release {ours['total_s']:7.2f} s = "
        f"{size / ours['total_s'] / 1e6:.2f} M/s "
        f"({floor_s / ours['total_s']:.2f}× the floor's rate)"
    )
    print(
        f"naive baseline {naive_s:7.2f} s: {TARGET_RATIO}× it is {naive_s / TARGET_RATIO:.2f} s; "
        f"the floors reach {naive_s / floor_s:.2f}× (keyed) and {naive_s / validated_s:.2f}× "
        f"(with rejects), this checkout {naive_s / ours['total_s']:.2f}×"
    )


def page_figures(url: str, browser, rerun: bool) -> dict[str, float]:
    """Open a page in a new tab; return page opened → quiet, and a select box's rerun."""
    from benchmarks.dashboard import WATCH_PAGE, rerun_seconds, settled_ms, wait_for_map

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(180_000)
    page.add_init_script(WATCH_PAGE)
    try:
        page.goto(url)
        if rerun:
            wait_for_map(page)
        figures = {"visit_s": settled_ms(page) / 1000}
        if rerun:
            times = []
            for colour in ("Blue", "Green", "Red"):
                page.get_by_label("Colour").click()
                settled_ms(page)
                page.get_by_role("option", name=colour).click()
                times.append(rerun_seconds(page))
            figures["rerun_s"] = statistics.median(times)
        return figures
    finally:
        page.close()


def serve_page(source: str, browser, repeats: int, rerun: bool) -> dict[str, float]:
    """Serve ``source`` as a Streamlit app; return the median of ``repeats`` visits."""
    from tests.dashboard_server import start_dashboard, stop_dashboard

    root = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    try:
        (root / "dashboard.py").write_text(source)
        process, url = start_dashboard(root, root / "streamlit.log", steward=False, root=root)
        try:
            runs = [page_figures(url, browser, rerun) for _ in range(repeats)]
        finally:
            stop_dashboard(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def browser_floors(size: int, repeats: int) -> None:
    """Print the pages' floors beside the Map page on the demo and the large release."""
    from playwright.sync_api import sync_playwright

    from benchmarks.dashboard import measure
    from tests.dashboard_server import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        print(f"\n== browser floors: skipped, no browser at {CHROMIUM} ==")
        return
    big = CACHE / f"release_{size}.release.parquet"
    releases = {"demo": ROOT / "data/demo/central_italy.release.parquet"}
    if big.exists():
        releases[f"{size:,}"] = big
    else:
        print(f"(no {big.name}: `benchmarks/run.py --size {size}` writes it)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        floor_pages = {
            "text page": serve_page(TEXT_PAGE, browser, repeats, rerun=False),
            "one-point map page": serve_page(DECK_PAGE, browser, repeats, rerun=True),
            "one-point map, our component": serve_page(
                COMPONENT_PAGE, browser, repeats, rerun=True
            ),
        }
        maps = {}
        for name, release in releases.items():
            runs = [measure(release, browser, ROOT, exposure=False) for _ in range(repeats)]
            maps[name] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        browser.close()
    print(f"\n== browser floors (page opened → quiet; medians of {repeats}) ==")
    for name, each in floor_pages.items():
        rerun = f", select box → redrawn {each['rerun_s']:.2f} s" if "rerun_s" in each else ""
        print(f"{name:30s} opened → quiet {each['visit_s']:5.2f} s{rerun}")
    for name, each in maps.items():
        print(
            f"{'Map page, ' + name + ' release':30s} opened → quiet {each['visit_s']:5.2f} s, "
            f"filter → redrawn {each['rerun_s']:.2f} s"
        )
    for name in ("one-point map page", "one-point map, our component"):
        deck = floor_pages[name]
        print(
            f"{name} against the targets: first map {deck['visit_s']:.2f} s "
            f"({deck['visit_s'] / TARGET_FIRST_MAP_S:.2f}× the {TARGET_FIRST_MAP_S:.0f} s "
            f"target), rerun {deck['rerun_s']:.2f} s ({deck['rerun_s'] / TARGET_RERUN_S:.2f}× "
            f"the {TARGET_RERUN_S} s target)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    if not args.skip_ingest:
        ingest_floors(args.size, args.repeats)
    if not args.skip_browser:
        browser_floors(args.size, args.repeats)
    print(f"load average at the end (1 min): {__import__('os').getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
