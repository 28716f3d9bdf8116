"""Dashboard timings in a real browser: first map, rerun after a filter change, exposure
after an upload, and the server's resident memory.

    python benchmarks/dashboard.py [--size 10000000] [--repeats 3]

The large release is the one ``benchmarks/run.py --size N`` writes (built here when
missing); the baseline, measured in the same run, is the shipped demo release. Needs
Debian's /usr/bin/chromium (``scripts/test.sh`` installs it).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, ROOT, machine_lines, median_figures, registry_files  # noqa: E402
from tests.dashboard_server import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    start_dashboard,
    stop_dashboard,
)

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
MAP_CANVAS = '[data-testid="stDeckGlJsonChart"] canvas'
# Records the browser's long tasks (main thread busy ≥ 50 ms), from page start.
WATCH_LONG_TASKS = """
window.__longTasksEnd = 0;
new PerformanceObserver((list) => {
  for (const task of list.getEntries()) {
    window.__longTasksEnd = Math.max(window.__longTasksEnd, task.startTime + task.duration);
  }
}).observe({entryTypes: ["longtask"]});
"""
QUIET_MS = 500
UPLOAD = ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


def resident_mib(pid: int) -> float:
    """Return a process's resident set size in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(release: Path) -> tuple[subprocess.Popen, str, float]:
    """Start the dashboard holding only ``release``; return it, its URL and the start time."""
    folder = Path(tempfile.mkdtemp(prefix="bench-releases-"))
    shutil.copy(release, folder / release.name)
    started = time.perf_counter()
    process, url = start_dashboard(folder, folder / "streamlit.log", steward=False, timeout_s=180)
    return process, url, started


def wait_idle(page) -> None:
    """Wait until the script has finished running on the server."""
    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE, timeout=180_000)


def settled_at(page, since: float) -> float:
    """Return when the browser finished its work (``time.perf_counter`` clock).

    Waits until the main thread has had no long task for ``QUIET_MS``; the map is drawn
    by then (decoding, layer building and the first draw are long tasks). Returns the end
    of the last long task, and never earlier than ``since`` (the server being idle).
    """
    while True:
        now_ms, end_ms = page.evaluate("[performance.now(), window.__longTasksEnd]")
        if now_ms - end_ms >= QUIET_MS:
            return max(since, time.perf_counter() - (now_ms - end_ms) / 1000)
        page.wait_for_timeout(100)


def measure(release: Path, browser) -> dict[str, float]:
    """Return first map, filter rerun, exposure-after-upload seconds and server RSS."""
    process, url, started = start_server(release)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(WATCH_LONG_TASKS)
        page.goto(url)
        wait_idle(page)
        page.wait_for_selector(MAP_CANVAS, timeout=180_000)
        first_map = settled_at(page, time.perf_counter()) - started
        rss_map = resident_mib(process.pid)
        page.get_by_label("Breakdown").click()
        page.wait_for_timeout(QUIET_MS)
        clicked = time.perf_counter()
        page.get_by_role("option", name="Sex").click()
        wait_idle(page)
        page.wait_for_selector(MAP_CANVAS)
        rerun = settled_at(page, time.perf_counter()) - clicked
        page.goto(f"{url}/exposure")
        wait_idle(page)
        settled_at(page, time.perf_counter())
        clicked = time.perf_counter()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(UPLOAD))
        wait_idle(page)
        page.get_by_role("button", name="Run exposure").click()
        page.wait_for_selector('[data-testid="stDownloadButton"]', timeout=180_000)
        wait_idle(page)
        exposure = settled_at(page, time.perf_counter()) - clicked
        return {
            "first_map_s": first_map,
            "rerun_s": rerun,
            "exposure_s": exposure,
            "rss_map_mib": rss_map,
            "rss_mib": resident_mib(process.pid),
        }
    finally:
        stop_dashboard(process)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    big = CACHE / f"release_{args.size}.release.parquet"
    if not big.exists():
        from benchmarks.run import INGEST_RELEASE

        parquet, _ = registry_files(args.size)
        median_figures(INGEST_RELEASE.format(cache=str(CACHE), path=str(parquet), out=str(big)), 1)
    demo = ROOT / "data/demo/central_italy.release.parquet"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        baseline = median_of([measure(demo, browser) for _ in range(args.repeats)])
        ours = median_of([measure(big, browser) for _ in range(args.repeats)])
        browser.close()
    print(f"\n== dashboard, release from {args.size:,} registrations vs the demo release ==")
    for name, label, unit in (
        ("first_map_s", "server start → map drawn, browser quiet", "s"),
        ("rerun_s", "filter change → map redrawn, browser quiet", "s"),
        ("exposure_s", "exposure after an upload", "s"),
        ("rss_map_mib", "server memory after the map", "MiB"),
        ("rss_mib", "server memory after the exposure", "MiB"),
    ):
        print(
            f"{label:36s} {ours[name]:8.2f} {unit} | demo {baseline[name]:8.2f} {unit} | "
            f"ratio {ours[name] / baseline[name]:5.2f}×"
        )


if __name__ == "__main__":
    main()
