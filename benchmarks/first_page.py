"""Seconds from ``bash scripts/demo.sh`` to the first page drawn in headless Chromium.

    python benchmarks/first_page.py [--root CHECKOUT] [--repeats 3]

Runs the README's command itself (the set-up check, then ``streamlit run``) on a free
port, polls the server's health endpoint, opens the page in Debian's Chromium (already
running, as a user's browser would be) and stops the clock when the default page (Map)
is idle with its map canvas drawn. On a shared machine the wall time depends on the
load (printed); the server's CPU seconds until then do not, much. The first start is a
warm-up (disk caches, the stamp); the figures are the starts after it. Also prints what
the set-up check alone costs and whether it printed anything. Needs a checkout whose
``.venv`` was set up (``bash scripts/setup.sh``) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dashboard_server import CHROMIUM, CHROMIUM_ARGS, free_port, wait_for_map  # noqa: E402

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float) -> None:
    """Poll ``/_stcore/health`` until it answers 200; raise if the server dies or is late."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"demo.sh exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no answer within {timeout_s} s")


def cpu_seconds(pid: int) -> float:
    """Return the CPU seconds a process and its waited-for children used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def one_start(root: Path, browser, log: Path) -> dict[str, float]:
    """Start demo.sh, open the first page; return seconds to health and to the drawn page."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CRISIS_EXPOSURE_TRUSTED_KEYS": str(root / "data/demo/steward.pub")}
    env.pop("CRISIS_EXPOSURE_BASEMAP_URL", None)
    command = ["bash", "scripts/demo.sh", "--server.headless", "true"]
    command += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    with open(log, "w") as output:
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_health(url, process, 60)
        healthy = time.perf_counter() - start
        page.goto(url)
        wait_for_map(page, timeout=60_000)
        page.wait_for_selector(IDLE, timeout=60_000)
        drawn = time.perf_counter() - start
        cpu = cpu_seconds(process.pid)
    finally:
        context.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    return {"health": healthy, "first_page": drawn, "server_cpu": cpu}


def setup_check(root: Path) -> tuple[float, bool]:
    """Return the seconds ``scripts/setup.sh`` takes and whether it printed anything."""
    start = time.perf_counter()
    result = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, bool(result.stdout or result.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = args.root.resolve()
    from playwright.sync_api import sync_playwright

    check_s, printed = setup_check(root)
    print(f"scripts/setup.sh on a set-up checkout: {check_s:.2f} s, printed: {printed}")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        log = Path(folder) / "demo.log"
        one_start(root, browser, log)  # warm-up
        runs = [one_start(root, browser, log) for _ in range(args.repeats)]
        browser.close()
        output = log.read_text()
    health = statistics.median(r["health"] for r in runs)
    first = statistics.median(r["first_page"] for r in runs)
    print(f"demo.sh to a healthy server: median {health:.2f} s over {len(runs)} warm starts")
    each = ", ".join(f"{r['first_page']:.2f}" for r in runs)
    print(f"demo.sh to the first page drawn (Map, canvas, idle): median {first:.2f} s ({each})")
    cpu = statistics.median(r["server_cpu"] for r in runs)
    print(f"CPU used by demo.sh and the server until then: median {cpu:.2f} s")
    print(f"load average at the end (1 min, {os.cpu_count()} CPUs): {os.getloadavg()[0]:.1f}")
    noisy = [line for line in output.splitlines() if "warn" in line.lower()]
    print(f"warnings printed by the last start: {len(noisy)}")
    for line in noisy:
        print(f"  {line}")


if __name__ == "__main__":
    main()
