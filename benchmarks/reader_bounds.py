"""Peak memory of the readers on the largest legitimate inputs, and on the issue's bombs.

Each command runs in its own process under ``/usr/bin/time -v``; the figures are its
maximum resident set size and CPU seconds. Files are generated (``tests/hostile.py``)
into ``--folder`` and kept there between runs.

    .venv/bin/python benchmarks/reader_bounds.py                    # ACLED 1M + bombs
    .venv/bin/python benchmarks/reader_bounds.py --rows 24000000    # + a 24M-row ingest
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import hostile  # noqa: E402


def measure(label: str, args: list[str], env: dict | None = None) -> None:
    """Run ``python ARGS`` under /usr/bin/time -v; print exit code, peak RSS and CPU."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    stats = dict(re.findall(r"^\s*(.+?): (.+)$", result.stderr, flags=re.M))
    peak = int(stats.get("Maximum resident set size (kbytes)", 0)) / 1024
    cpu = float(stats.get("User time (seconds)", 0)) + float(stats.get("System time (seconds)", 0))
    wall = stats.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "?")
    said = [line for line in result.stderr.splitlines() if "error:" in line][:1]
    print(
        f"{label}: exit {result.returncode}, peak RSS {peak:,.0f} MB, CPU {cpu:,.1f} s, "
        f"wall {wall} {said[0][:160] if said else ''}",
        flush=True,
    )


def main() -> None:
    """Generate the inputs, run each command, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "h14-bench")
    parser.add_argument("--rows", type=int, default=0, help="rows of a registration CSV to ingest")
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = args.folder
    folder.mkdir(parents=True, exist_ok=True)
    env = {"CRISIS_EXPOSURE_STEWARD_KEY": "5e" * 32}

    acled = folder / f"acled_{args.events}.csv"
    if not acled.exists():
        hostile.write_acled(acled, events=args.events, places=20_000)
    size = acled.stat().st_size / 1e6
    measure(
        f"ACLED {args.events:,} events ({size:,.0f} MB)", ["-m", "geo.cli", "hazard", str(acled)]
    )

    for make, name, command in (
        (hostile.kmz_bomb, "bomb.kmz", "hazard"),
        (hostile.contour_bomb, "cont_mmi.zip", "hazard"),
        (hostile.geojson_bomb, "zones.zip", "hazard"),
        (hostile.xlsx_whitespace_bomb, "whitespace.xlsx", "ingest"),
        (hostile.xlsx_inline_string_bomb, "inline.xlsx", "ingest"),
        (hostile.xlsx_shared_strings_bomb, "shared.xlsx", "ingest"),
    ):
        path = make(folder / name)
        store = ["--store", str(folder / "bomb.duckdb")] if command == "ingest" else []
        measure(
            f"{name} ({path.stat().st_size / 1e6:.1f} MB)",
            ["-m", "geo.cli", command, str(path), *store],
            env,
        )

    if args.rows:
        csv = folder / f"registrations_{args.rows}.csv"
        if not csv.exists():
            hostile.write_registrations(csv, args.rows)
        store = folder / f"store_{args.rows}.duckdb"
        for stale in (store, store.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        size = csv.stat().st_size / 1e6
        measure(
            f"ingest {args.rows:,} rows ({size:,.0f} MB CSV)",
            [
                "-m",
                "geo.cli",
                "ingest",
                str(csv),
                "--store",
                str(store),
                "--rejects-dir",
                str(folder),
            ],
            env,
        )
        print(f"store file: {store.stat().st_size / 1e6:,.0f} MB", flush=True)


if __name__ == "__main__":
    main()
