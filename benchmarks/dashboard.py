"""Dashboard timings in a real browser: first map, rerun after a filter change, exposure
after an upload, and the server's resident memory.

    python benchmarks/dashboard.py [--size 10000000] [--repeats 3] [--baseline CHECKOUT]

The large release is the one ``benchmarks/run.py --size N`` writes (built here when
missing). Baselines, measured in the same run: the shipped demo release, and with
``--baseline`` another checkout's dashboard (e.g. ``git worktree add --detach
/tmp/base main``) on the same large release, its runs interleaved with ours so both see
the same machine load. Needs Debian's /usr/bin/chromium (``scripts/test.sh`` installs
it). The targets of issue 15 at 10M: first map < 3 s, filter rerun < 0.5 s, server
memory after an exposure < 500 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import CACHE, ROOT, machine_lines, registry_files  # noqa: E402
from tests.dashboard_server import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    start_dashboard,
    stop_dashboard,
    wait_for_map,
)

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# Run in the page and in every frame (the map is an iframe), in wall-clock ms
# (timeOrigin + the frame's clock, so frames compare): the end of the last long task
# (main thread busy ≥ 50 ms: decoding, building and drawing the map), the last time the
# script became idle on the server, and the last pointer press (a user's click).
WATCH_PAGE = """
window.__longTasksEnd = 0; window.__idleAt = 0; window.__pressedAt = 0;
const __wall = (ms) => performance.timeOrigin + ms;
new PerformanceObserver((list) => {
  for (const task of list.getEntries()) {
    window.__longTasksEnd = Math.max(window.__longTasksEnd,
                                     __wall(task.startTime + task.duration));
  }
}).observe({entryTypes: ["longtask"]});
new MutationObserver((changes) => {
  for (const change of changes) {
    if (change.target.getAttribute("data-test-script-state") === "notRunning") {
      window.__idleAt = __wall(performance.now());
    }
  }
}).observe(document,
           {attributes: true, subtree: true, attributeFilter: ["data-test-script-state"]});
window.addEventListener("pointerdown",
                        () => { window.__pressedAt = __wall(performance.now()); }, true);
"""
QUIET_MS = 500
UPLOADER = '.st-key-exposure_uploads [data-testid="stFileUploaderDropzoneInput"]'
UPLOAD = ROOT / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"


def resident_mib(pid: int, field: str = "VmRSS") -> float:
    """Return a process's resident set size (``VmHWM``: its peak) in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(release: Path, root: Path = ROOT) -> tuple[subprocess.Popen, str, float]:
    """Start the dashboard holding only ``release``, as demo.sh does; wait until it is ready.

    Ready: the launcher (``app_pages.serve``) has loaded the release and the first map,
    or, for a checkout without one, the server answers. Returns the process, its URL
    and the start time, wall-clock seconds (``time.time()``), comparable with the page's
    ``performance.timeOrigin``.
    """
    folder = Path(tempfile.mkdtemp(prefix="bench-releases-"))
    shutil.copy(release, folder / release.name)
    log = folder / "streamlit.log"
    started = time.time()
    process, url = start_dashboard(
        folder, log, steward=False, timeout_s=180, root=root, launcher=True
    )
    if (root / "app_pages" / "serve.py").exists():
        deadline = time.monotonic() + 300
        while "Ready:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    return process, url, started


def settled_ms(page) -> float:
    """Wait until the script is idle and the browser has been quiet for ``QUIET_MS``.

    Returns, in ms since the page's navigation, when the work ended: the later of the
    script becoming idle and the end of the last long task in the page or any frame.
    """
    from playwright.sync_api import Error as PlaywrightError

    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE, timeout=180_000)
    while True:
        ends = []
        for frame in page.frames:
            try:
                ends.append(
                    frame.evaluate("Math.max(window.__longTasksEnd || 0, window.__idleAt || 0)")
                )
            except PlaywrightError:  # a frame that went away meanwhile
                continue
        origin, now = page.evaluate(
            "[performance.timeOrigin, performance.timeOrigin + performance.now()]"
        )
        done = max(ends)
        if now - done >= QUIET_MS:
            return done - origin
        page.wait_for_timeout(100)


def pressed_ms(page) -> float:
    """Return the last pointer press, in ms since the page's navigation."""
    return page.evaluate("window.__pressedAt - performance.timeOrigin")


def rerun_seconds(page, timeout_ms: int = 5_000) -> float:
    """Return seconds from the last press to the page settled after the rerun it caused.

    Waits (up to ``timeout_ms``) for the script to go idle after the press first: a
    rerun that had not started 200 ms after the click would otherwise be timed from the
    quiet before it. A rerun so short that Streamlit never shows it running leaves no
    idle mark; it is then timed by its long tasks alone, and never below zero.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function("window.__idleAt > window.__pressedAt", timeout=timeout_ms)
    return max(settled_ms(page) - pressed_ms(page), 0.0) / 1000


def measure(release: Path, browser, root: Path = ROOT, exposure: bool = True) -> dict[str, float]:
    """Return first map, filter rerun, exposure-after-upload seconds and server RSS.

    Without ``exposure`` the exposure figures are NaN (a quick run: the map only).
    """
    process, url, started = start_server(release, root)
    try:
        ready = time.time() - started
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)  # a loaded machine: slow, not failed
        page.add_init_script(WATCH_PAGE)
        page.goto(url)
        wait_for_map(page, timeout=180_000)
        visit = settled_ms(page) / 1000  # the page's clock starts at navigation
        first_map = ready + visit
        rss_map = resident_mib(process.pid)
        page.get_by_label("Breakdown").click()
        settled_ms(page)
        page.get_by_role("option", name="Sex").click()
        wait_for_map(page)
        rerun = rerun_seconds(page)
        # The same kind of change with every released cell drawn (no hexagon limit).
        page.get_by_text("Draw every released cell", exact=True).click()
        settled_ms(page)
        page.get_by_label("Category").click()
        settled_ms(page)
        page.get_by_role("option", name="M", exact=True).click()
        rerun_every_cell = rerun_seconds(page)
        maps = {
            "ready_s": ready,
            "visit_s": visit,
            "first_map_s": first_map,
            "rerun_s": rerun,
            "rerun_every_cell_s": rerun_every_cell,
        }
        if not exposure:
            nan = float("nan")
            return {
                **maps,
                "exposure_s": nan,
                "rss_map_mib": rss_map,
                "rss_mib": nan,
                "peak_mib": resident_mib(process.pid, "VmHWM"),
            }
        page.goto(f"{url}/exposure")
        settled_ms(page)
        # No Run button: the page computes the exposure of an uploaded footprint at once.
        before_upload = page.evaluate("performance.now()")
        page.locator(UPLOADER).set_input_files(str(UPLOAD))
        page.wait_for_selector('[data-testid="stDownloadButton"]', timeout=180_000)
        computed = settled_ms(page) - before_upload
        return {
            **maps,
            "exposure_s": computed / 1000,
            "rss_map_mib": rss_map,
            "rss_mib": resident_mib(process.pid),
            "peak_mib": resident_mib(process.pid, "VmHWM"),
        }
    finally:
        stop_dashboard(process)


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def large_release(size: int) -> Path:
    """Return the release of ``size`` registrations that ``run.py`` writes (built if missing)."""
    big = CACHE / f"release_{size}.release.parquet"
    if not big.exists():
        from benchmarks.run import ingest_and_release

        parquet, _ = registry_files(size, csv=False)
        ingest_and_release(parquet, str(big), repeats=1)
    return big


def stage_dashboard(
    size: int, repeats: int, baseline_root: Path | None = None, exposure: bool = True
) -> None:
    """Print the dashboard figures for the release of ``size`` registrations vs baselines.

    The baselines are the demo release, and ``baseline_root``'s dashboard on the same
    release when given (runs interleaved with ours).
    """
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        print(f"\n== dashboard: skipped, no browser at {CHROMIUM} (scripts/test.sh installs it) ==")
        return
    big = large_release(size)
    demo = ROOT / "data/demo/central_italy.release.parquet"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        baseline = median_of([measure(demo, browser, ROOT, exposure) for _ in range(repeats)])
        runs, other_runs = [], []
        for _ in range(repeats):
            runs.append(measure(big, browser, ROOT, exposure))
            if baseline_root is not None:
                other_runs.append(measure(big, browser, baseline_root, exposure))
        ours = median_of(runs)
        browser.close()
    for label, each in (("this checkout", runs), (str(baseline_root), other_runs)):
        for run in each:  # every run, not only the medians: a loaded machine has outliers
            print(f"{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in run.items()), flush=True)
    print(f"\n== dashboard, release from {size:,} registrations vs the demo release ==")
    print_figures(ours, baseline, "demo")
    if other_runs:
        print(f"\n== the same release, this checkout vs {baseline_root} (same run) ==")
        print_figures(ours, median_of(other_runs), "base")
    print(f"load average at the end (1 min): {__import__('os').getloadavg()[0]:.1f}")


def print_figures(ours: dict[str, float], baseline: dict[str, float], name: str) -> None:
    """Print each figure beside the baseline's and their ratio."""
    for name_, label, unit in (
        ("ready_s", "server start → ready (release loaded)", "s"),
        ("visit_s", "page opened on it → map drawn", "s"),
        ("first_map_s", "server start → map drawn, browser quiet", "s"),
        ("rerun_s", "filter change → map redrawn, browser quiet", "s"),
        ("rerun_every_cell_s", "the same, every released cell drawn", "s"),
        ("exposure_s", "footprint upload → exposure drawn", "s"),
        ("rss_map_mib", "server memory after the map", "MiB"),
        ("rss_mib", "server memory after the exposure", "MiB"),
        ("peak_mib", "server peak memory (VmHWM)", "MiB"),
    ):
        print(
            f"{label:36s} {ours[name_]:8.2f} {unit} | {name} {baseline[name_]:8.2f} {unit} | "
            f"ratio {ours[name_] / baseline[name_]:5.2f}×"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure beside")
    parser.add_argument("--map-only", action="store_true", help="skip the exposure step")
    args = parser.parse_args()
    print("\n".join(machine_lines()))
    stage_dashboard(args.size, args.repeats, args.baseline, not args.map_only)


if __name__ == "__main__":
    main()
