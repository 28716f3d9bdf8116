"""Serve the dashboard with its release loaded before the first visitor arrives.

    python -m app_pages.serve [streamlit run options, e.g. --server.port 8502]

This is ``streamlit run dashboard.py`` plus a warm-up. Streamlit runs a page's script
only when a browser connects, so without it the first visitor after a start waits for
the imports, the release's read and verification (hash, signature, invariants) and the
map's source: 5–8 s at ten million registrations. Once the server listens, the warm-up
runs the dashboard's first page once in Streamlit's own script health check, whose
caches every later session shares, waits for the map filters that page prepares in the
background (else they compete with the first visitor's browser for the CPU), and prints
one line when it is done. The check's endpoint (``/_stcore/script-health-check``) then
doubles as a readiness probe for a deployment: it answers ``ok`` once the page runs.
The launcher also keeps every thread on the C library's main heap
(:func:`geo.process_memory.use_one_malloc_arena`), so the memory a page run frees goes
back to the system, and after the warm-up keeps what is loaded out of the collection
Streamlit runs after every page (:func:`set_aside_loaded_objects`).
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard.py"
HEALTH_CHECK = "_stcore/script-health-check"
START_TIMEOUT_S = 120  # the server listens within seconds; beyond this, give up quietly
ANY_ADDRESS = ("", "0.0.0.0", "::")


def main() -> None:
    """Run the dashboard's server (never returns: Streamlit's command exits)."""
    from geo.process_memory import use_one_malloc_arena

    use_one_malloc_arena()  # before any thread: the server then gives freed memory back
    from streamlit.web import cli

    options = sys.argv[1:]
    threading.Thread(target=warm_up, name="dashboard-warm-up", daemon=True).start()
    health_check = ["--server.scriptHealthCheckEnabled", "true"]
    sys.argv = ["streamlit", "run", str(DASHBOARD), *health_check, *options]
    cli.main()


def warm_up() -> None:
    """Wait for the server to listen, run the first page once, print how it went."""
    from streamlit import config

    if not _server_started(time.monotonic() + START_TIMEOUT_S):
        return
    url = health_check_url(
        str(config.get_option("server.address") or ""),
        int(config.get_option("server.port")),
        str(config.get_option("server.baseUrlPath") or ""),
        secure=bool(config.get_option("server.sslCertFile")),
    )
    started = time.monotonic()
    context = None
    if url.startswith("https:"):  # the server's own certificate, asked by itself
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=300, context=context) as response:
            answer = response.read(64).decode("ascii", "replace").strip()
    except urllib.error.HTTPError as exc:
        answer = exc.read(64).decode("ascii", "replace").strip() or str(exc.code)
    except OSError as exc:
        print(f"  Warm-up skipped: the server did not answer ({exc}).", flush=True)
        return
    seconds = time.monotonic() - started
    if answer == "ok":
        # The page left its map filters to prepare in the background (app_pages.map_drawings):
        # done now, they would compete with the first visitor's browser for the CPU.
        from app_pages import map_drawings

        map_drawings.wait_for_map_preparation()
        seconds = time.monotonic() - started
        set_aside_loaded_objects()
        print(f"  Ready: the first page has run ({seconds:.1f} s); visitors share it.", flush=True)
    else:  # "error" or "timeout": a visitor's page shows what went wrong
        print(
            f"  Warm-up: the first page did not finish ({answer}, {seconds:.1f} s); "
            "open the dashboard to see why.",
            flush=True,
        )


def set_aside_loaded_objects() -> int:
    """Keep every object alive now out of the garbage collector's passes; return how many.

    Streamlit collects garbage after every page run (``gc.collect(2)``), walking every
    object the server holds: the libraries' modules, classes and functions and the
    warm-up's caches, about 130,000 objects that live as long as the server. That walk
    took 65–130 ms of each filter change at 10M. Frozen after the warm-up (``gc.freeze``,
    garbage collected first), the walk covers only what later runs create.
    """
    import gc

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _server_started(deadline: float) -> bool:
    """Wait until Streamlit's runtime runs (its port is then bound and final)."""
    from streamlit.runtime import Runtime, RuntimeState

    while time.monotonic() < deadline:
        if Runtime.exists() and Runtime.instance().state in (
            RuntimeState.NO_SESSIONS_CONNECTED,
            RuntimeState.ONE_OR_MORE_SESSIONS_CONNECTED,
        ):
            return True
        time.sleep(0.1)
    return False


def health_check_url(address: str, port: int, base_path: str, secure: bool = False) -> str:
    """Return the URL of the server's script health check, as seen from this machine.

    A server bound to every interface is asked on the loopback address; an IPv6 address
    is bracketed.
    """
    host = "127.0.0.1" if address.strip() in ANY_ADDRESS else address.strip()
    if ":" in host:
        host = f"[{host}]"
    base = base_path.strip("/")
    path = f"{base}/{HEALTH_CHECK}" if base else HEALTH_CHECK
    return f"{'https' if secure else 'http'}://{host}:{port}/{path}"


if __name__ == "__main__":
    main()
