"""Start the dashboard on a free local port: shared by the browser tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


class DashboardStartError(RuntimeError):
    """The server exited or did not answer; the message holds its output."""


def free_port() -> int:
    """Return a TCP port nobody listens on (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(
    release_dir: Path,
    log: Path,
    steward: bool = True,
    timeout_s: float = 60,
    extra_env: dict[str, str] | None = None,
    root: Path = ROOT,
    launcher: bool = False,
) -> tuple[subprocess.Popen, str]:
    """Run ``streamlit run dashboard.py`` on releases in ``release_dir``; wait for health.

    ``extra_env`` adds environment variables to the server's; ``root`` is the checkout
    whose dashboard runs (a benchmark's baseline runs another). With ``launcher`` the
    server is started as ``scripts/demo.sh`` starts it (``python -m app_pages.serve``,
    which loads the release before the first visitor), when ``root`` has it. Returns
    the process and its URL. Raises DashboardStartError (with the server's output)
    when it exits or does not answer within ``timeout_s``.
    """
    env = {
        **os.environ,
        "CRISIS_EXPOSURE_RELEASE_DIR": str(release_dir),
        "CRISIS_EXPOSURE_STEWARD": "1" if steward else "0",
        **(extra_env or {}),
    }
    env.pop("CRISIS_EXPOSURE_BASEMAP_URL", None)
    port = free_port()
    if launcher and (root / "app_pages" / "serve.py").exists():
        command = [sys.executable, "-m", "app_pages.serve"]
    else:
        command = [sys.executable, "-m", "streamlit", "run", str(root / "dashboard.py")]
    command += [
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log, "w") as output:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise DashboardStartError(
                f"streamlit exited with {process.returncode}:\n{log.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise DashboardStartError(
                f"streamlit did not answer in {timeout_s} s:\n{log.read_text()}"
            )
        time.sleep(0.1)


def stop_dashboard(process: subprocess.Popen) -> None:
    """Stop the server, killing it if it does not stop within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
