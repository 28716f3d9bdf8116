"""Outreach: the registration owner's raw files × a footprint → a private contact list.

The owner's side, not the steward's: this reads the owner's own raw files (as ``ingest``
reads them) and a footprint, and never the store nor a release. It writes the records
inside the footprint with their contact columns, readable by the owner only, and logs
the run beside the list without any identifier. Every figure it reports is about the
owner's own registrants and goes only to the owner's terminal or page: nothing here is
published.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from geo.errors import InputError

if TYPE_CHECKING:
    import polars as pl

    from geo.io.footprints import Footprint, RasterOptions

PERSONAL_DATA_WARNING = (
    "{out} holds personal data ({count} registrants' contact details): it is readable by "
    "you only; keep it on this machine, hand it only to your messaging system, and delete "
    "it when the outreach is over."
)


@dataclass
class OutreachRun:
    """What an outreach run did, in counts only (the contact list itself is on disk)."""

    out: Path
    log: Path
    footprint: dict
    written: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    files: int = 0
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)
    superseded: int = 0
    rejected_inside: int = 0
    without_contact: int = 0
    contact_columns: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)

    def warning(self) -> str:
        """Return the one-line warning that the list holds personal data."""
        return PERSONAL_DATA_WARNING.format(out=self.out.name, count=self.written)

    def summary_lines(self, where: str | None = None, warning: bool = True) -> list[str]:
        """Return the run's report: counts and the personal-data warning, one line each.

        ``where`` names where the list went for a reader who cannot see the file's path
        (the dashboard's download); ``warning=False`` leaves the warning to the caller.
        """
        classes = ", ".join(f"{label}: {n}" for label, n in self.by_class.items())
        lines = [
            f"{self.written} registrations inside {self.footprint['file_name']}"
            + (f" ({classes})" if classes else "")
            + f" written to {where or self.out}",
            *([self.warning()] if warning else []),
            f"read {self.rows_read} rows from {self.files} file(s): {self.accepted} accepted, "
            f"{self.rejected} rejected" + (f" ({self._reasons()})" if self.rejected else ""),
        ]
        columns = ", ".join(self.contact_columns) or "none"
        lines.append(f"contact columns found: {columns}")
        if self.without_contact:
            lines.append(f"{self.without_contact} of them have no phone and no e-mail")
        if self.superseded:
            lines.append(
                f"{self.superseded} older version(s) of a registration ignored: the latest "
                "(updated_at, then the row read last) decides where a registrant is"
            )
        if self.rejected_inside:
            lines.append(
                f"{self.rejected_inside} rejected row(s) have coordinates inside the footprint "
                "and are not in the list: fix them (see 'crisis-exposure ingest' rejects) and "
                "run again"
            )
        lines.append(f"run logged (no identifiers) in {self.log}")
        return lines

    def _reasons(self) -> str:
        common = self.reasons.most_common(3)
        shown = ", ".join(f"{n} {reason}" for reason, n in common)
        return shown + (", …" if len(self.reasons) > len(common) else "")


def log_path(out: str | Path) -> Path:
    """Return the log beside a contact list: ``contacts.csv`` → ``contacts.csv.log.jsonl``."""
    out = Path(out)
    return out.with_name(f"{out.name}.log.jsonl")


def run_outreach(
    records: Sequence[str | Path],
    hazard: str | Path,
    out: str | Path,
    *,
    classes: Sequence[str] | None = None,
    consent: str | None = None,
    sheet: str | None = None,
    class_field: str | None = None,
    class_order: str | Sequence[str] | None = None,
    raster: RasterOptions | None = None,
    buffer_km: float = 10.0,
    date_from: str | None = None,
    date_to: str | None = None,
    hazard_name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> OutreachRun:
    """List the owner's registrants inside a footprint, with their contact columns.

    Every file is opened (headers and columns checked) and the footprint read before
    anything is written. Accepted rows are kept in their latest version per (source,
    record_id); those whose real coordinates lie inside a footprint class (boundary
    included) are written, with their worst class, to ``out`` (mode 0600), and the run
    is appended to :func:`log_path` without identifiers.

    Parameters
    ----------
    records
        The owner's raw registration files (CSV, XLSX, Parquet).
    hazard
        A footprint file, read by the same readers (and options) as ``exposure``.
    out
        The contact list to write (CSV).
    classes
        Keep only registrants whose class is one of these labels (case-insensitive).
    consent
        Keep only registrants whose consent covers this scope (None: no filter).
    sheet, class_field, class_order, raster, buffer_km, date_from, date_to, hazard_name
        As for ``ingest`` and :func:`geo.pipeline.read_footprints`.
    progress
        Called with a short message as work advances.

    Returns
    -------
    OutreachRun

    Raises
    ------
    InputError
        For an unreadable file or footprint, an unknown class or consent scope, or an
        output that cannot be written (nothing is written then).
    """
    from geo.io.contacts import contact_columns
    from geo.io.private_files import check_private_target
    from geo.io.registrations import open_registration_file
    from geo.pipeline.exposure import read_footprints

    say = progress or (lambda _message: None)
    consent_bit = _consent_bit(consent)
    target = check_private_target(out, [*records, hazard])
    (footprint,) = read_footprints(
        [hazard],
        class_field=class_field,
        buffer_km=buffer_km,
        date_from=date_from,
        date_to=date_to,
        names=[hazard_name],
        class_order=class_order,
        raster=raster,
    )
    chosen = _chosen_classes(footprint, classes)
    headers = [_open(open_registration_file, path, sheet) for path in records]
    contacts = [contact_columns(header) for header in headers]
    names = _contact_names(contacts)
    run = OutreachRun(
        out=target,
        log=log_path(target),
        footprint=footprint.provenance,
        files=len(headers),
        contact_columns=names,
        classes=[str(label) for label in footprint.classes["class_label"]],
    )
    candidates, versions = _scan(headers, contacts, footprint, run, say)
    say("writing the contact list")
    _write(run, candidates, versions, names, chosen, consent_bit, consent, headers)
    return run


def _open(opener: Callable, path: str | Path, sheet: str | None):
    """Open one raw file's header; a folder or an unreadable file is one line."""
    if Path(path).is_dir():
        raise InputError(f"{path}: is a folder; give the registration files themselves.")
    try:
        return opener(path, sheet=sheet)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def _consent_bit(consent: str | None) -> int | None:
    """Return the bit of a consent scope (None: no filter)."""
    from geo import codes

    if consent is None:
        return None
    scope = codes.fold_text(consent).replace(" ", "_")
    if scope not in codes.CONSENT_SCOPES:
        raise InputError(
            f"--consent {consent!r} is not a consent scope; use one of "
            + ", ".join(codes.CONSENT_SCOPES)
            + "."
        )
    return codes.terms_to_mask([scope], codes.CONSENT_SCOPES)


def _chosen_classes(footprint: Footprint, classes: Sequence[str] | None) -> list[str] | None:
    """Return the footprint's labels the user named (case-insensitive), or None for all."""
    if not classes:
        return None
    labels = [str(label) for label in footprint.classes["class_label"]]
    by_fold = {label.casefold(): label for label in labels}
    unknown = [c for c in classes if c.strip().casefold() not in by_fold]
    if unknown:
        raise InputError(
            f"{footprint.provenance['file_name']}: no class named "
            + ", ".join(repr(c) for c in unknown)
            + f"; its classes are: {', '.join(labels)}."
        )
    return [by_fold[c.strip().casefold()] for c in classes]


def _contact_names(contacts: list[dict[str, str]]) -> list[str]:
    """Return the output's contact columns: every kind and number any file has, in order."""
    from geo.io.contacts import CONTACT_KINDS

    names: list[str] = []
    for kind in CONTACT_KINDS:
        most = max(
            (sum(1 for n in c if n == kind or n.rpartition("_")[0] == kind) for c in contacts),
            default=0,
        )
        names += [kind if i == 0 else f"{kind}_{i + 1}" for i in range(most)]
    return names


def _scan(
    headers: list,
    contacts: list[dict[str, str]],
    footprint: Footprint,
    run: OutreachRun,
    say: Callable[[str], None],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read every file once; return the rows inside the footprint and every row's version."""
    import polars as pl

    from geo.io.contacts import iter_contact_batches
    from geo.tools.outreach import points_to_classes

    inside: list[pl.DataFrame] = []
    versions: list[pl.DataFrame] = []
    seq = 0
    for header, columns in zip(headers, contacts, strict=True):
        say(f"reading {header.file_name}")
        for batch in iter_contact_batches(header, columns):
            run.rows_read += batch.rows_read
            run.rejected += batch.rejected
            run.reasons.update(batch.reasons)
            points = batch.rejected_points
            if points.height:
                lost, _ = points_to_classes(
                    points["latitude"].to_numpy(), points["longitude"].to_numpy(), footprint.classes
                )
                run.rejected_inside += int((lost != None).sum())  # noqa: E711 (numpy)
            accepted = batch.accepted
            if not accepted.height:
                continue
            run.accepted += accepted.height
            accepted = accepted.with_columns(
                pl.int_range(seq, seq + accepted.height, dtype=pl.Int64).alias("seq"),
                pl.struct("source", "record_id").hash().alias("key"),
                pl.col("updated_at").alias("updated"),
            )
            seq += accepted.height
            versions.append(accepted.select("key", "updated", "seq"))
            labels, severity = points_to_classes(
                accepted["latitude"].to_numpy(), accepted["longitude"].to_numpy(), footprint.classes
            )
            accepted = accepted.with_columns(
                pl.Series("class", labels.tolist(), dtype=pl.String),
                pl.Series("severity", severity, dtype=pl.Int64),
            ).filter(pl.col("class").is_not_null())
            keep = ["seq", "record_id", "source", "class", "severity", "consent", *columns]
            inside.append(accepted.select(keep))
    schema = {"seq": pl.Int64, "record_id": pl.String, "source": pl.String}
    schema |= {"class": pl.String, "severity": pl.Int64, "consent": pl.UInt8}
    empty = pl.DataFrame(schema=schema)
    every = pl.DataFrame(schema={"key": pl.UInt64, "updated": pl.Datetime("us"), "seq": pl.Int64})
    return (
        pl.concat([empty, *inside], how="diagonal_relaxed"),
        pl.concat([every, *versions], how="vertical_relaxed"),
    )


def _write(
    run: OutreachRun,
    candidates: pl.DataFrame,
    versions: pl.DataFrame,
    names: list[str],
    chosen: list[str] | None,
    consent_bit: int | None,
    consent: str | None,
    headers: list,
) -> None:
    """Write the contact list (mode 0600) and append the run to the log; fill ``run``."""
    import polars as pl

    from geo.io.private_files import append_log, write_private_csv
    from geo.tools.outreach import contact_list, latest_versions

    keep = latest_versions(versions)
    run.superseded = versions.height - keep.len()
    table = contact_list(candidates, keep, names, classes=chosen, consent_bit=consent_bit)
    run.written = write_private_csv(run.out, [table])
    run.by_class = dict(table.group_by("class", maintain_order=True).len().iter_rows())
    reach = [pl.col(n).is_not_null() for n in names if n.startswith(("phone", "email"))]
    run.without_contact = (
        table.height if not reach else table.filter(~pl.any_horizontal(reach)).height
    )
    append_log(
        run.log,
        {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "outreach",
            "footprint_file": run.footprint["file_name"],
            "footprint_sha256": run.footprint["sha256"],
            "footprint_classes": run.classes,
            "classes_selected": chosen,
            "consent": consent,
            "records_sha256": [header.sha256 for header in headers],
            "rows_read": run.rows_read,
            "accepted": run.accepted,
            "rejected": run.rejected,
            "rejected_inside": run.rejected_inside,
            "superseded": run.superseded,
            "written": run.written,
            "by_class": run.by_class,
            "without_contact": run.without_contact,
            "output_file": run.out.name,
        },
    )
