"""Read the registration owner's raw files for outreach: valid rows with their contact columns.

The owner's own files, read exactly as ``ingest`` reads them (same column recognition,
limits and row rules, :mod:`geo.io.registrations` and :mod:`geo.validate`), with one
difference: the contact columns (phone, e-mail, preferred language) that ingest drops
are kept, aligned with the accepted rows, for the owner's messaging system. Nothing here
writes to disk and nothing touches the steward store. Rejected rows are only counted by
reason; their values never leave this module.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import polars as pl

from geo.io.limits import check_count
from geo.io.registrations import BATCH_ROWS, FileHeader, fold_column_name, raw_batches
from geo.validate import reference_point_of, validate_batch

CONTACT_KINDS = ("phone", "email", "preferred_language")
# Folded header names (see fold_column_name) that hold each kind of contact detail.
CONTACT_ALIASES = {
    "phone": (
        "phone",
        "phone_number",
        "phone_no",
        "telephone",
        "telephone_number",
        "tel",
        "tel_no",
        "mobile",
        "mobile_phone",
        "mobile_number",
        "cell",
        "cellphone",
        "cell_phone",
        "msisdn",
        "whatsapp",
        "contact_phone",
        "telefono",
        "cellulare",
        "telephone_portable",
    ),
    "email": ("email", "e_mail", "email_address", "e_mail_address", "mail", "contact_email"),
    "preferred_language": (
        "preferred_language",
        "language",
        "lang",
        "preferred_lang",
        "language_preference",
        "language_code",
        "contact_language",
        "spoken_language",
        "lingua",
        "langue",
        "idioma",
    ),
}
_CONTACT_PATTERNS = {
    "phone": re.compile(r"(^|_)(phone|mobile|telephone|tel|cell|msisdn|whatsapp)(_|$)"),
    "email": re.compile(r"(^|_)e_?mail(_|$)"),
    "preferred_language": re.compile(r"(^|_)(language|lang)(_|$)"),
}


@dataclass
class ContactBatch:
    """One batch of a file: accepted rows with contacts, and what was rejected (counts only).

    ``accepted`` has the columns of :data:`geo.validate.ACCEPTED_SCHEMA` plus one string
    column per contact column of the file (``phone``, ``phone_2``, ``email`` …).
    ``rejected_points`` holds the parsed (latitude, longitude) of rejected rows whose
    coordinates are numbers in range, so the caller can say how many rejected rows lie
    inside a footprint without ever showing them.
    """

    accepted: pl.DataFrame
    rows_read: int
    rejected: int
    reasons: Counter
    rejected_points: pl.DataFrame


def contact_columns(header: FileHeader) -> dict[str, str]:
    """Return the file's contact columns: output name (``phone``, ``phone_2`` …) → header.

    Only columns ingest would drop are considered (never a canonical column). A header
    is recognised by its folded name (``"E-Mail Address"`` → ``e_mail_address``), first
    against :data:`CONTACT_ALIASES`, then by a word pattern (``phone_mobile``).
    """
    found: dict[str, list[str]] = {kind: [] for kind in CONTACT_KINDS}
    for column in header.dropped_columns:
        folded = fold_column_name(column)
        kind = next((k for k in CONTACT_KINDS if folded in CONTACT_ALIASES[k]), None)
        kind = kind or next((k for k in CONTACT_KINDS if _CONTACT_PATTERNS[k].search(folded)), None)
        if kind is not None:
            found[kind].append(column)
    return {
        (kind if i == 0 else f"{kind}_{i + 1}"): column
        for kind in CONTACT_KINDS
        for i, column in enumerate(found[kind])
    }


def iter_contact_batches(
    header: FileHeader, contacts: dict[str, str], batch_rows: int = BATCH_ROWS
) -> Iterator[ContactBatch]:
    """Read a file's rows in batches, validate them, and keep contacts beside accepted rows.

    Parameters
    ----------
    header
        From :func:`geo.io.registrations.open_registration_file`.
    contacts
        From :func:`contact_columns`.
    batch_rows
        Rows per batch (Parquet and XLSX; CSV reads 16 MB blocks).

    Yields
    ------
    ContactBatch

    Raises
    ------
    InputError
        When the file cannot be read, or holds more rows than the ``ROWS`` limit.
    """
    wanted = {**header.column_map, **{f"contact:{k}": v for k, v in contacts.items()}}
    reading = replace(header, column_map=wanted)
    canonical = list(header.column_map.values())
    next_row, rows_read = header.header_row + 1, 0
    reference: tuple[float, float] | None = None
    for raw, malformed in raw_batches(reading, batch_rows):
        if malformed:
            yield _malformed(len(malformed))
        if not raw.height:
            continue
        if reference is None:
            reference = reference_point_of(raw, header.column_map)
        batch = validate_batch(
            raw.select(canonical), header.column_map, next_row, header.file_name, reference
        )
        taken = (batch.accepted["row"] - next_row).to_numpy()
        dropped = (batch.rejects["row"] - next_row).to_numpy()
        accepted = batch.accepted
        if contacts:
            contact_frame = raw.select(
                pl.col(src).cast(pl.String).str.strip_chars().alias(name)
                for name, src in contacts.items()
            )
            accepted = pl.concat([accepted, contact_frame[taken]], how="horizontal")
        reasons = Counter(
            reason for text in batch.rejects["reasons"].to_list() for reason in text.split("; ")
        )
        next_row += raw.height
        rows_read += raw.height
        check_count("ROWS", header.file_name, rows_read, "rows or more")
        yield ContactBatch(
            accepted=accepted,
            rows_read=raw.height,
            rejected=batch.rejects.height,
            reasons=reasons,
            rejected_points=_points(raw[dropped], header.column_map),
        )


def _malformed(count: int) -> ContactBatch:
    """Return a batch that counts ``count`` malformed CSV rows (wrong number of fields)."""
    return ContactBatch(
        accepted=pl.DataFrame(),
        rows_read=count,
        rejected=count,
        reasons=Counter({"malformed row (wrong number of fields)": count}),
        rejected_points=pl.DataFrame(schema={"latitude": pl.Float64, "longitude": pl.Float64}),
    )


def _points(raw: pl.DataFrame, column_map: dict[str, str]) -> pl.DataFrame:
    """Return the numeric, in-range coordinates of raw rows (as the row rules parse them)."""

    def number(column: str) -> pl.Expr:
        return (
            pl.col(column)
            .cast(pl.String)
            .str.strip_chars()
            .str.replace(",", ".", literal=True)
            .cast(pl.Float64, strict=False)
        )

    return raw.select(
        number(column_map["latitude"]).alias("latitude"),
        number(column_map["longitude"]).alias("longitude"),
    ).filter((pl.col("latitude").abs() <= 90) & (pl.col("longitude").abs() <= 180))
