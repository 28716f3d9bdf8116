"""A small registration lake in Parquet, built in code: valid rows, bad rows, duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

CENTRES = [(42.79, 13.09), (42.56, 12.65), (43.11, 12.39), (42.35, 13.40), (42.46, 14.21)]
NATIONALITIES = ["ROU", "Romania", "UA", "UKR", "ALB", "MAR", "PHL", "Ukraine", "ro"]
SEXES = ["F", "M", "female", "", "X"]
CONSENTS = ["aggregate;origin_state", "aggregate", "aggregate|humanitarian", "origin_state", ""]
VULNERABILITIES = ["", "", "", "medical", "disability;pregnant"]
BAD_ROWS = [
    {"record_id": ""},
    {"record_id": "bad\x00id"},
    {"nationality": "Atlantis"},
    {"latitude": "95.5", "longitude": "42.1"},
    {"latitude": "13,09", "longitude": "42,79"},  # swapped: far from the file's others
    {"latitude": "0", "longitude": "0"},
    {"age": "150"},
    {"family_members": "2.5"},
    {"consent": "marketing"},
    {"updated_at": "yesterday"},
    {"sex": "maybe"},
    {"latitude": "north"},
]


def lake_frames(records: int = 3_000, files: int = 4, seed: int = 11) -> list[pl.DataFrame]:
    """Return the lake's files as frames of text columns (as a CSV turned Parquet would be).

    Every file has valid rows, one of each kind of bad row, duplicates inside the file
    (the later ``updated_at`` wins) and record ids repeated from an earlier file (newer,
    older, undated).
    """
    rng = np.random.default_rng(seed)
    frames = []
    per_file = records // files
    for f in range(files):
        centre = rng.integers(0, len(CENTRES), per_file)
        lat = np.array([CENTRES[c][0] for c in centre]) + rng.normal(0, 0.02, per_file)
        lon = np.array([CENTRES[c][1] for c in centre]) + rng.normal(0, 0.02, per_file)
        ids = [f"R{f}-{i:05d}" for i in range(per_file)]
        if f:  # records updated from the previous file: newer, older and undated versions
            ids[:60] = [f"R{f - 1}-{i:05d}" for i in range(60, 120)]
        dates = [f"2025-{1 + (i + f) % 12:02d}-{1 + i % 28:02d}" for i in range(per_file)]
        if f:
            dates[:20] = ["2026-06-01"] * 20
            dates[20:40] = ["2024-01-01"] * 20
            dates[40:60] = [""] * 20
        rows = {
            "record_id": ids,
            "full_name": [f"Person {i}" for i in ids],
            "nationality": rng.choice(NATIONALITIES, per_file).tolist(),
            "latitude": [
                f"{v:.5f}".replace(".", ",") if i % 7 == 0 else f"{v:.5f}"
                for i, v in enumerate(lat)
            ],
            "longitude": [f" {v:.5f}" for v in lon],
            "sex": rng.choice(SEXES, per_file).tolist(),
            "age": [str(a) if a < 95 else "" for a in rng.integers(0, 100, per_file)],
            "family_members": [str(n) for n in rng.integers(0, 6, per_file)],
            "vulnerabilities": rng.choice(VULNERABILITIES, per_file).tolist(),
            "consent": rng.choice(CONSENTS, per_file).tolist(),
            "source": ["consular" if i % 3 else "" for i in range(per_file)],
            "updated_at": dates,
        }
        frame = pl.DataFrame(rows)
        duplicated = frame.slice(100, 30).with_columns(
            pl.lit("2027-01-01").alias("updated_at"), pl.lit("ALB").alias("nationality")
        )
        bad = [frame.row(200 + j, named=True) | change for j, change in enumerate(BAD_ROWS)]
        frames.append(pl.concat([frame, duplicated, pl.DataFrame(bad, schema=frame.schema)]))
    return frames


def write_lake(folder: Path, **kwargs) -> list[Path]:
    """Write the lake's files in nested folders (``folder/day=N/part-0000N.parquet``)."""
    paths = []
    for n, frame in enumerate(lake_frames(**kwargs)):
        path = folder / f"day={n}" / f"part-{n:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path, row_group_size=500)
        paths.append(path)
    return paths
