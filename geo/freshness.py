"""Which registrations a release counts, and how recently its audience was confirmed.

A registration is *believed true* at a date when it was last confirmed (``updated_at``,
kept to the day here) within the policy's ``confirmed_within`` days before that date,
and its ``valid_until`` (departure or return date, when the file has one) has not
passed. A release made ``as_of`` a date with a window counts only those; records with
no confirmation date are never inside a window. Without ``as_of`` nothing is filtered.

The legal basis decides the consent filter: under ``consent`` (the default) a record
counts when its consent covers the policy's scope; under ``other`` (a register held on
another legal basis, stated by the steward in ``basis_note``) every record counts.

A release also publishes, as protected figures, how many cases of its audience were
confirmed within 6, 12 and 24 months (:func:`confirmed_block`): each is a sum of one
keyed-noise figure per nationality, as the dropped total is, so the figure a
nationality adds is the same in every audience that holds it. Pure: no I/O.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from geo import codes

if TYPE_CHECKING:
    from geo.release import ReleasePolicy

LEGAL_BASES = ("consent", "other")
CONFIRMED_MONTHS = (6, 12, 24)
BLOCK_KEY = "confirmed_within_months"
MAX_NOTE_CHARS = 200


def parse_day(value: str, what: str) -> date:
    """Return an ISO date (YYYY-MM-DD).

    Raises
    ------
    InputError
        Naming ``what`` when the value is not such a date.
    """
    from geo.errors import InputError

    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{what} {value!r} is not a date (use YYYY-MM-DD).") from None


def months_before(day: date, months: int) -> date:
    """Return the same day ``months`` calendar months earlier (the month's last day if shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def window(policy: ReleasePolicy) -> tuple[date | None, date | None]:
    """Return (first day confirmed, reference day) of a policy: (None, None) without ``as_of``."""
    if not policy.as_of:
        return None, None
    end = parse_day(policy.as_of, "--as-of")
    if policy.confirmed_within is None:
        return None, end
    return date.fromordinal(end.toordinal() - int(policy.confirmed_within)), end


def believed_expr(policy: ReleasePolicy) -> pl.Expr:
    """Return the records a policy still believes true (columns confirmed_on, valid_until)."""
    start, end = window(policy)
    if end is None:
        return pl.lit(True)
    confirmed = pl.col("confirmed_on")
    kept = pl.col("valid_until").is_null() | (pl.col("valid_until") >= end)
    if start is None:
        return kept & (confirmed.is_null() | (confirmed <= end))
    return kept & confirmed.is_between(start, end)


def believed_sql(policy: ReleasePolicy) -> tuple[str, list]:
    """Return :func:`believed_expr` as a SQL condition on the store and its parameters."""
    start, end = window(policy)
    if end is None:
        return "TRUE", []
    kept = "(valid_until IS NULL OR valid_until >= ?)"
    if start is None:
        return f"{kept} AND (updated_at IS NULL OR updated_at::DATE <= ?)", [end, end]
    return f"{kept} AND updated_at::DATE BETWEEN ? AND ?", [end, start, end]


def consent_mask(policy: ReleasePolicy) -> int | None:
    """Return the consent bit a record must carry, or None under another legal basis."""
    if policy.legal_basis == "other":
        return None
    return 1 << codes.CONSENT_SCOPES.index(policy.consent_scope)


def audience_expr(policy: ReleasePolicy) -> pl.Expr:
    """Return the records a release under ``policy`` counts, before its nationalities.

    Records without the freshness columns (built in code) are taken as undated.
    """
    bit = consent_mask(policy)
    counted = pl.lit(True) if bit is None else (pl.col("consent") & bit) != 0
    return counted & believed_expr(policy)


def with_dates(records: pl.DataFrame) -> pl.DataFrame:
    """Return records with ``confirmed_on`` and ``valid_until`` (null where absent)."""
    missing = [c for c in ("confirmed_on", "valid_until") if c not in records.columns]
    return records.with_columns(pl.lit(None, dtype=pl.Date).alias(c) for c in missing)


def audience_key(policy: ReleasePolicy) -> tuple:
    """Return what decides which records a release counts, nationalities apart.

    Releases with equal keys count the same records of a nationality (the audit links
    them as one consent pattern).
    """
    scope = None if policy.legal_basis == "other" else policy.consent_scope
    start, end = window(policy)
    return scope, start, end


def reference_day(policy: ReleasePolicy, created_at: str) -> date:
    """Return the day the confirmed-within figures count back from: ``as_of``, else creation."""
    return parse_day(policy.as_of or created_at[:10], "the release date")


def confirmed_buckets(reference: date) -> dict[str, tuple[date | None, date]]:
    """Return the block's figures as (first day, last day) of confirmation; ``audience``: all."""
    buckets: dict[str, tuple[date | None, date]] = {
        str(m): (months_before(reference, m), reference) for m in CONFIRMED_MONTHS
    }
    buckets["audience"] = (None, reference)
    return buckets


def confirmed_block(counts: pl.DataFrame, policy: ReleasePolicy, secret: int) -> dict[str, int]:
    """Return the published ``confirmed_within_months`` block, protected like the counts.

    Parameters
    ----------
    counts
        One row per (bucket, nationality): columns bucket (``"6"``, ``"12"``, ``"24"``,
        ``"audience"``), nationality, cases and key_sum (the records' keys summed
        modulo 2³², as the store's audience carries them).
    policy
        The release's checked policy: noisy figures for method 2, exact (rounded when
        the policy rounds) for method 1.
    secret
        The store's noise secret.

    Returns
    -------
    dict
        ``"6"``, ``"12"``, ``"24"`` and ``"audience"`` → cases, with 6 ≤ 12 ≤ 24 ≤
        audience (a function of the noisy values only).
    """
    from geo.noise import KEY_MODULUS, figure_noise

    block = {}
    for bucket in (*map(str, CONFIRMED_MONTHS), "audience"):
        rows = counts.filter(pl.col("bucket") == bucket)
        values = rows["cases"].to_numpy().astype(np.int64)
        if policy.method == "noise" and rows.height:
            labels = ("confirmed " + bucket + "|" + rows["nationality"]).to_numpy().astype(str)
            keys = (rows["key_sum"] % KEY_MODULUS).cast(pl.UInt64).to_numpy()
            cells = np.zeros(rows.height, dtype=np.uint64)
            noise = figure_noise(cells, labels, "cases", keys, policy.noise_scale, secret)
            values = np.maximum(values + noise, 0)
        block[bucket] = int(values.sum())
    if policy.round_to:
        step = policy.round_to
        block = {b: int((v / step + 0.5) // 1 * step) for b, v in block.items()}
    running = 0
    for months in CONFIRMED_MONTHS:
        running = max(running, block[str(months)])
        block[str(months)] = min(running, block["audience"])
    return block


def block_truth(audience: pl.DataFrame, reference: date) -> dict[str, int]:
    """Return the true cases behind each figure of the block (the audit's truth)."""
    audience = with_dates(audience)
    truth = {}
    for bucket, (start, end) in confirmed_buckets(reference).items():
        inside = (
            pl.lit(True)
            if start is None
            else pl.col("confirmed_on").is_between(start, end).fill_null(False)
        )
        truth[bucket] = int(audience.filter(inside).height)
    return truth


def checked_basis(policy: ReleasePolicy) -> tuple[str, str | None]:
    """Return the policy's legal basis and note after checking them.

    Raises
    ------
    InputError
        For an unknown basis, ``other`` without a note, or a note that is too long or
        holds control characters.
    """
    from geo.errors import InputError

    basis, note = policy.legal_basis, policy.basis_note
    if basis not in LEGAL_BASES:
        raise InputError(f"unknown legal basis {basis!r}; use one of {', '.join(LEGAL_BASES)}.")
    if basis == "consent":
        if note:
            raise InputError("--basis-note goes with --legal-basis other only.")
        return basis, None
    note = (note or "").strip()
    if not note:
        raise InputError(
            "--legal-basis other needs --basis-note naming the law or decision the "
            "register is held under (it is published in the release)."
        )
    if len(note) > MAX_NOTE_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise InputError(
            f"--basis-note must be one line of at most {MAX_NOTE_CHARS} characters "
            "(it is published in the release)."
        )
    return basis, note
