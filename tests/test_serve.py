"""The dashboard's launcher loads the release before the first visitor (``app_pages.serve``)."""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from app_pages.serve import health_check_url
from tests.dashboard_server import DashboardStartError, start_dashboard, stop_dashboard

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "central_italy.release.parquet"
READY = "Ready: the first page has run"


@pytest.mark.parametrize(
    ("address", "port", "base", "secure", "url"),
    [
        ("127.0.0.1", 8501, "", False, "http://127.0.0.1:8501/_stcore/script-health-check"),
        ("", 8502, "", False, "http://127.0.0.1:8502/_stcore/script-health-check"),
        (
            "0.0.0.0",
            80,
            "/exposure/",
            False,
            "http://127.0.0.1:80/exposure/_stcore/script-health-check",
        ),
        ("::1", 8501, "", True, "https://[::1]:8501/_stcore/script-health-check"),
        ("::", 8501, "a/b", False, "http://127.0.0.1:8501/a/b/_stcore/script-health-check"),
    ],
)
def test_the_warm_up_asks_the_server_on_an_address_it_listens_on(address, port, base, secure, url):
    assert health_check_url(address, port, base, secure) == url


def cache_lookups(url: str) -> dict[tuple[str, str], int]:
    """Return Streamlit's cache lookups by (function, hit or miss), from its metrics."""
    with urllib.request.urlopen(f"{url}/_stcore/metrics", timeout=10) as response:
        text = response.read().decode()
    pattern = r'cache_lookups_total\{cache="app_pages\.[\w.]+?\.(\w+)",[^}]*result="(\w+)"\} (\d+)'
    return {(name, result): int(n) for name, result, n in re.findall(pattern, text)}


def test_the_release_and_its_map_are_loaded_before_the_first_visitor(tmp_path):
    releases = tmp_path / "releases"
    releases.mkdir()
    shutil.copy(DEMO, releases / DEMO.name)
    log = tmp_path / "server.log"
    try:
        process, url = start_dashboard(releases, log, steward=False, launcher=True)
    except DashboardStartError as died:
        pytest.fail(str(died))
    try:
        deadline = time.monotonic() + 120
        while READY not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        assert READY in log.read_text(), log.read_text()
        # No browser has connected: the release was read and verified, and the map's
        # cells built, by the warm-up alone.
        warmed = cache_lookups(url)
        for function in ("load_release", "map_groups", "map_drawing"):
            assert warmed[(function, "miss")] == 1, function
        # A visitor's session (Streamlit's check runs the same page) reuses them.
        with urllib.request.urlopen(f"{url}/_stcore/script-health-check", timeout=120) as answer:
            assert answer.read() == b"ok"
        visited = cache_lookups(url)
        for function in ("load_release", "map_groups", "map_drawing"):
            assert visited[(function, "miss")] == 1, function
        for function in ("load_release", "map_drawing"):
            assert visited[(function, "hit")] > warmed[(function, "hit")], function
    finally:
        stop_dashboard(process)
    output = log.read_text()
    assert "Traceback" not in output and "Warning" not in output, output


ARENAS = """
import ctypes, ctypes.util, sys, tempfile, threading
from geo.process_memory import use_one_malloc_arena
if sys.argv[1] == "one":
    assert use_one_malloc_arena()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
started = threading.Barrier(9)
def allocate():
    held = [libc.malloc(200_000) for _ in range(20)]  # beyond the thread's cache
    started.wait()
    started.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()  # every thread holds its memory now
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    stream = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(report.name).read().count("<heap nr="))
started.wait()
"""


def test_the_servers_threads_allocate_from_one_heap():
    # glibc gives threads heaps of their own, and Streamlit runs each page run on a new
    # thread: freed memory scattered over them stayed resident. One heap gives it back:
    # the server after an exposure at 10M, 536-547 -> 447-448 MiB.
    import subprocess
    import sys

    def heaps(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", ARENAS, mode], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return int(done.stdout)

    assert heaps("default") > 1  # the threads got heaps of their own
    assert heaps("one") == 1


def test_what_the_warm_up_loaded_is_kept_out_of_the_collectors_passes():
    # Streamlit's gc.collect(2) after every page run walked every loaded object again:
    # 65-130 ms of a 10M filter change. After the warm-up they are frozen.
    import subprocess
    import sys

    probe = (
        "import gc, pandas, streamlit\n"
        "from app_pages.serve import set_aside_loaded_objects\n"
        "before = len(gc.get_objects())\n"
        "frozen = set_aside_loaded_objects()\n"
        "print(before, frozen, len(gc.get_objects()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    before, frozen, tracked = (int(n) for n in done.stdout.split())
    assert frozen > 0.9 * before  # the libraries' objects are set aside
    assert tracked < 0.01 * before  # what a collection still walks
