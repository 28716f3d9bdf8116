"""The report of one ingested file: counts, reject reasons, dropped columns, linking.

Every figure here is the steward's own (printed on the steward's terminal, never
published); no line holds a record value.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IngestReport:
    """What happened to one file: counts, reasons, dropped columns, where the rejects are."""

    file_name: str
    sha256: str
    file_format: str
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_newer: int = 0
    no_consent: int = 0
    unconfirmed: int = 0
    already_ingested: bool = False
    rejects_by_reason: Counter = field(default_factory=Counter)
    dropped_columns: list[str] = field(default_factory=list)
    identifier_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    linking: list[str] = field(default_factory=list)
    rejects_path: Path | None = None

    def summary_lines(self) -> list[str]:
        """Return the report as short human-readable lines (no record values)."""
        if self.already_ingested:
            return [f"{self.file_name}: already ingested (same SHA-256); nothing changed."]
        lines = [
            f"{self.file_name}: {self.rows_read} rows read, {self.accepted} accepted, "
            f"{self.rejected} rejected ({self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.kept_newer} older than the stored version)"
        ]
        lines += [
            f"  rejected: {count} × {reason}"
            for reason, count in self.rejects_by_reason.most_common()
        ]
        if self.dropped_columns:
            lines.append("  dropped columns (never stored): " + ", ".join(self.dropped_columns))
        if self.identifier_columns:
            lines.append("  of which direct identifiers: " + ", ".join(self.identifier_columns))
        if self.no_consent:  # the steward's terminal only, like every count here
            lines.append(f"  no consent scope: {self.no_consent} (release --legal-basis other)")
        if self.unconfirmed:
            lines.append(f"  no updated_at: {self.unconfirmed} (outside --confirmed-within)")
        lines += [f"  linking: {line}" for line in self.linking]
        lines += [f"  note: {note}" for note in self.notes]
        if self.rejects_path:
            lines.append(f"  rejects written to {self.rejects_path}")
        return lines
