"""A simulated daily release series on the SYNTHETIC demo registry.

Day 0 ingests the demo registry; every later day ingests a file of changes — new
registrations (1 % of the registry), moves (0.5 %: a household re-registers elsewhere,
same record_id, later ``updated_at``) and consent withdrawals (0.2 %: the record comes
back without the "aggregate" scope) — and publishes a release through the ledger. The
figures say what the series costs and what it gives away: persons published, the Norcia
estimate, interval widths, and the flows between consecutive releases that the issue's
attacker (who knows each earlier stock exactly) can prove.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from demo.registry import FILE_NAMES, generate_demo_registry, write_demo_registry
from geo import pipeline
from geo.errors import InputError
from geo.release import Release, ReleasePolicy

NORCIA = (
    Path(__file__).resolve().parent.parent
    / "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
)
DAILY = {"new": 0.01, "moves": 0.005, "withdrawals": 0.002}
METHODS = {
    "exact (method 1)": ReleasePolicy(noise_scale=0),
    "rounded to k": ReleasePolicy(noise_scale=0, round_to=10),
    "keyed noise (method 2)": ReleasePolicy(),
}


@dataclass
class Day:
    """One day of the series: what was published and what it cost or gave away."""

    day: int
    method: str
    persons_published: int
    persons_fresh: int
    norcia_estimate: int
    norcia_fresh: int
    norcia_truth: int
    width: int
    flows: int
    flows_disclosed: int
    refused: bool = False  # the ledger's guard refused to publish it


def _raw_registry(scale: float, seed: int, folder: Path) -> tuple[list[Path], pd.DataFrame]:
    """Write the demo registry's raw files; return them and its clean CSV rows."""
    frame = generate_demo_registry(seed=seed, scale=scale)
    paths = [p for p in write_demo_registry(frame, folder) if p.suffix in (".csv", ".xlsx")]
    paths = [p for p in paths if p.name in FILE_NAMES.values()]
    rows = pd.read_csv(
        folder / FILE_NAMES["consular_registration"],
        sep=None,
        engine="python",
        encoding="utf-8-sig",
        dtype=str,
    )
    for column in ("latitude", "longitude"):
        rows[column] = pd.to_numeric(rows[column].str.replace(",", "."), errors="coerce")
    rows = rows[rows["latitude"].between(41, 44) & rows["longitude"].between(11, 15)]
    return paths, rows.dropna(subset=["record_id"]).reset_index(drop=True)


def _changes(rng: np.random.Generator, rows: pd.DataFrame, day: int) -> pd.DataFrame:
    """Return one day's changes as raw rows (new, moved, withdrawn registrations)."""
    n = len(rows)
    when = (pd.Timestamp("2026-11-01") + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
    new = rows.sample(max(1, round(DAILY["new"] * n)), random_state=rng.integers(2**31)).copy()
    new["record_id"] = [f"day{day}-new{i}" for i in range(len(new))]
    new["latitude"] += rng.normal(0, 0.01, len(new))
    new["longitude"] += rng.normal(0, 0.01, len(new))
    moved = rows.sample(max(1, round(DAILY["moves"] * n)), random_state=rng.integers(2**31)).copy()
    elsewhere = rows.sample(len(moved), random_state=rng.integers(2**31))
    moved["latitude"] = elsewhere["latitude"].to_numpy()
    moved["longitude"] = elsewhere["longitude"].to_numpy()
    count = max(1, round(DAILY["withdrawals"] * n))
    withdrawn = rows.sample(count, random_state=rng.integers(2**31)).copy()
    withdrawn["consent"] = "humanitarian"
    changes = pd.concat([new, moved, withdrawn])
    changes["updated_at"] = when
    rows.loc[moved.index, ["latitude", "longitude"]] = moved[["latitude", "longitude"]]
    return changes


def simulate(
    work: Path,
    days: int,
    scale: float = 0.05,
    seed: int = 2016,
    methods: dict[str, ReleasePolicy] | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Iterator[Day]:
    """Run the series for each method in its own store; yield one Day per method and day."""
    from geo.tools.classes import to_bands

    work.mkdir(parents=True, exist_ok=True)
    paths, rows = _raw_registry(scale, seed, work / "registry")
    classes = to_bands(pipeline.read_footprints([NORCIA])[0].classes)
    for method, policy in (methods or METHODS).items():
        rng = np.random.default_rng(seed)
        store = work / f"{method.split()[0]}.duckdb"
        store.unlink(missing_ok=True)
        pipeline.ingest_files(store, paths, rejects_dir=work / "rejects")
        state = rows.copy()
        previous: tuple[Release, Release] | None = None
        for day in range(days):
            if day:
                change_file = work / f"changes-{method.split()[0]}-{day}.csv"
                _changes(rng, state, day).to_csv(change_file, index=False)
                pipeline.ingest_files(store, [change_file], rejects_dir=work / "rejects")
            out = work / f"{method.split()[0]}-{day}.release.parquet"
            try:
                release, refused = pipeline.publish_release(store, policy, out), False
            except InputError:  # the ledger's guard: measure what it would have published
                release, refused = pipeline.build_release(store, policy), True
            fresh = pipeline.build_release(store, policy)  # the same state, no ledger
            truth = pipeline.release_as_of(
                store, ReleasePolicy(noise_scale=0), release.metadata["store_version"]
            )
            yield replace(
                _day(day, method, (release, fresh, truth), previous, classes, policy),
                refused=refused,
            )
            say(f"{method}: day {day} published")
            previous = (release, truth)


def _day(day, method, releases, previous, classes, policy) -> Day:
    """Return the figures of one day (fresh = a first release of the same store state)."""
    release, fresh, truth = releases
    mmi = pipeline.compute_exposure(release, classes).by_class
    fresh_mmi = pipeline.compute_exposure(fresh, classes).by_class
    exact = pipeline.compute_exposure(truth, classes).by_class
    worst_six = mmi[mmi["class_rank"] >= 6]
    flows, disclosed = (0, 0) if previous is None else _attack(previous, release, truth, policy)
    return Day(
        day=day,
        method=method,
        persons_published=int(release.groups["persons"].sum()),
        persons_fresh=int(fresh.groups["persons"].sum()),
        norcia_estimate=int(worst_six["persons_estimate"].sum()),
        norcia_fresh=int(fresh_mmi[fresh_mmi["class_rank"] >= 6]["persons_estimate"].sum()),
        norcia_truth=int(exact[exact["class_rank"] >= 6]["persons_estimate"].sum()),
        width=int((worst_six["persons_high"] - worst_six["persons_low"]).sum()),
        flows=flows,
        flows_disclosed=disclosed,
    )


def _attack(previous, release, truth, policy) -> tuple[int, int]:
    """Count the group flows of 1..k−1 between two days, and those the attacker proves.

    The attacker knows the earlier true stock x₁ of every group and reads the later
    published value: exact counts prove x₂; a value rounded to base m proves
    [v − m/2, v + m/2) ∩ [k, ∞); keyed noise proves only x₂ ≥ k.
    """
    k = policy.k
    keys = ["h3_cell", "resolution", "nationality"]
    before = previous[1].groups.set_index(keys)["cases"]
    now = truth.groups.set_index(keys)["cases"]
    published = release.groups.set_index(keys)["cases"]
    both = before.index.intersection(now.index)
    flow = now[both] - before[both]
    small = flow[(flow.abs() >= 1) & (flow.abs() <= k - 1)]
    value = published[small.index]
    if policy.method == "noise":
        low, high = pd.Series(k, index=small.index), pd.Series(math.inf, index=small.index)
    elif policy.round_to:
        m = policy.round_to
        low = np.maximum(value - m // 2, k)
        high = value + (m + 1) // 2 - 1
    else:
        low = high = value
    low, high = low - before[small.index], high - before[small.index]
    exact = low == high
    inside = ((low >= 1) & (high <= k - 1)) | ((low >= -(k - 1)) & (high <= -1))
    return len(small), int((exact | inside).sum())
