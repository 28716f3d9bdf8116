"""Builders of test data: registration rows and files, audience records, reference rules."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl
import polars_h3

HEADER = [
    "record_id",
    "full_name",
    "phone",
    "nationality",
    "latitude",
    "longitude",
    "sex",
    "age",
    "family_members",
    "vulnerabilities",
    "consent",
    "source",
    "updated_at",
]


def registration_row(record_id: str, **overrides) -> dict:
    """Return one valid registration near Norcia with identifiers, overridable."""
    row = {
        "record_id": record_id,
        "full_name": f"Test Person {record_id}",
        "phone": "+39 000 000 0000",
        "nationality": "ROU",
        "latitude": "42.79",
        "longitude": "13.09",
        "sex": "F",
        "age": "34",
        "family_members": "1",
        "vulnerabilities": "",
        "consent": "aggregate;origin_state",
        "source": "consular",
        "updated_at": "2025-01-01",
    }
    row.update(overrides)
    return row


def write_rows(path: Path, rows: list[dict], delimiter: str = ",", encoding: str = "utf-8") -> Path:
    """Write dict rows as CSV with the union of their keys as header."""
    header = list(dict.fromkeys(key for row in rows for key in row)) if rows else HEADER
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=header, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def clustered_records(
    n: int,
    seed: int = 0,
    nationalities: dict[str, float] | None = None,
    keep_points: bool = False,
) -> pl.DataFrame:
    """Return audience records (as the store hands them to a release) clustered in Umbria.

    With ``keep_points`` the records keep their exact ``lat`` and ``lon`` (the truth a
    test compares exposure with; drop them before protecting).
    """
    rng = np.random.default_rng(seed)
    nationalities = nationalities or {
        "ROU": 0.4,
        "ALB": 0.2,
        "MAR": 0.15,
        "UKR": 0.15,
        "PHL": 0.0998,
        "NPL": 0.0002,
    }
    centres = np.array([[43.11, 12.39], [42.79, 13.09], [42.56, 12.65], [43.0, 12.9]])
    which = rng.integers(0, len(centres), n)
    spread = rng.choice([0.01, 0.05, 0.2], n, p=[0.4, 0.4, 0.2])
    lat = centres[which, 0] + rng.normal(0, 1, n) * spread
    lon = centres[which, 1] + rng.normal(0, 1, n) * spread
    names = list(nationalities)
    frame = pl.DataFrame(
        {
            "lat": lat,
            "lon": lon,
            "nationality": rng.choice(
                names, n, p=np.array(list(nationalities.values())) / sum(nationalities.values())
            ),
            "sex": rng.choice(["F", "M", "X", "unknown"], n, p=[0.5, 0.46, 0.01, 0.03]),
            "age_band": rng.choice(
                ["0-4", "5-17", "18-59", "60+", "unknown"], n, p=[0.03, 0.07, 0.8, 0.08, 0.02]
            ),
            "vulnerabilities": rng.choice(
                [0, 1, 2, 4, 16, 17], n, p=[0.9, 0.03, 0.02, 0.02, 0.02, 0.01]
            ).astype(np.uint16),
            "persons": rng.choice([1, 2, 3, 4, 6], n, p=[0.5, 0.2, 0.15, 0.1, 0.05]).astype(
                np.int64
            ),
        }
    )
    frame = frame.with_columns(polars_h3.latlng_to_cell("lat", "lon", 8).alias("cell"))
    return frame if keep_points else frame.drop("lat", "lon")


def residual_is_safe(cases: int, unpublished_children: int, k: int) -> bool:
    """Return whether a rolled-up residual may be published (the release's rule, restated).

    An attacker knows each of the parent's unpublished children holds between 0 and
    k−1 cases; a residual above what all but one child can hold proves that child
    non-empty. Safe when ``k ≤ cases ≤ (unpublished_children − 1) × (k − 1)``.
    """
    return k <= cases <= (unpublished_children - 1) * (k - 1)


def consenting_records(n: int = 8_000, seed: int = 5, origin_share: float = 0.6) -> pl.DataFrame:
    """Return clustered records that all consent to "aggregate", some also to "origin_state"."""
    rng = np.random.default_rng(seed)
    frame = clustered_records(n, seed=seed)
    aggregate, origin = 1, 2  # the bits of codes.CONSENT_SCOPES
    consent = aggregate | np.where(rng.random(frame.height) < origin_share, origin, 0)
    return frame.with_columns(pl.Series("consent", consent.astype(np.uint8)))
