"""A daily release series on the SYNTHETIC demo registry, three methods side by side.

Per day: persons published (and a fresh single release of the same store state), the
Norcia estimate at MMI VI or worse (release, fresh release, exact counts), the summed
low–high width over those classes, and the group flows of 1..k−1 cases between
consecutive releases with how many of them the issue's attacker (who knows the earlier
stock exactly) proves.

    .venv/bin/python benchmarks/series.py --days 30 --scale 0.2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.series import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="crisis-exposure-series-"))
    started = time.perf_counter()
    print(
        "method | day | persons published | fresh | ratio | Norcia ≥VI est. | fresh | exact | "
        "est/fresh | width | small flows | proven"
    )
    for day in simulate(work, args.days, args.scale, say=lambda m: None):
        print(
            f"{day.method} | {day.day} | {day.persons_published:,} | {day.persons_fresh:,} | "
            f"{day.persons_published / day.persons_fresh:.3f} | {day.norcia_estimate:,} | "
            f"{day.norcia_fresh:,} | {day.norcia_truth:,} | "
            f"{day.norcia_estimate / max(day.norcia_fresh, 1):.3f} | {day.width:,} | "
            f"{day.flows} | {day.flows_disclosed} | {'refused' if day.refused else 'written'}",
            flush=True,
        )
    print(f"series: {time.perf_counter() - started:.1f} s, work folder {work}")
    from geo import pipeline

    for store in sorted(work.glob("*.duckdb")):
        ledger = pipeline.list_releases(store)
        if not ledger:
            continue
        began = time.perf_counter()
        report = pipeline.audit_ledger(store)
        print(
            f"audit --store {store.name}: {len(ledger)} releases in the ledger, "
            f"{len(report.exact)} exact, {len(report.existence)} existence, "
            f"{time.perf_counter() - began:.1f} s"
        )


if __name__ == "__main__":
    main()
