"""The audit's report: the disclosures found and the text shown to the steward.

Kept apart from the solver so that the command line and the pages can print or show a
report without knowing how it was computed. The report names true counts: it is for
the steward, never to be published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TARGET_KINDS = {
    "group": "groups",
    "residual": "residuals",
    "category": "categories",
    "group category": "group categories",
    "cross-cell": "cross-cells",
    "consent subgroup": "consent subgroups",
    "flow": "flows between snapshots",
    "confirmed": "confirmed-within figures",
}


@dataclass(frozen=True)
class Finding:
    """One disclosed count: what it is, where, and the interval the attacker proves.

    A flow between two releases of the ledger names both in ``release`` and their
    ledger ids in ``pair`` (None for release files audited without the ledger).
    """

    kind: str
    release: str
    cell: str
    resolution: int
    nationality: str
    detail: str
    lo: int
    hi: float
    true: int
    pair: tuple[int | None, int | None] | None = None

    def line(self) -> str:
        """Return the finding as one line for the steward (true count included)."""
        hi = "?" if math.isinf(self.hi) else str(int(self.hi))
        detail = f" {self.detail}" if self.detail else ""
        release = f" of {self.release}" if self.release else ""
        return (
            f"{self.kind} {self.cell} (res {self.resolution}) {self.nationality}{detail}"
            f"{release}: proven [{self.lo}, {hi}], true {self.true}"
        )


@dataclass
class AuditReport:
    """The audit's result: counts checked, disclosures with examples, time taken."""

    releases: list[str]
    checked: dict[str, int]
    exact: list[Finding] = field(default_factory=list)
    existence: list[Finding] = field(default_factory=list)
    subtrees: int = 0
    linear_programs: int = 0
    seconds: float = 0.0
    audited: list[str] = field(default_factory=list)

    def absorb(self, other: AuditReport) -> None:
        """Add another report's counts, findings and work to this one (not its releases)."""
        for kind, n in other.checked.items():
            self.checked[kind] = self.checked.get(kind, 0) + n
        self.exact += other.exact
        self.existence += other.existence
        self.subtrees += other.subtrees
        self.linear_programs += other.linear_programs
        self.seconds += other.seconds

    @property
    def ok(self) -> bool:
        """Return whether nothing is disclosed."""
        return not self.exact and not self.existence

    def lines(self, examples: int = 10) -> list[str]:
        """Return the report as short lines, with up to ``examples`` findings of each kind."""
        checked = ", ".join(f"{n} {TARGET_KINDS[kind]}" for kind, n in self.checked.items() if n)
        lines = [f"audit of {', '.join(self.releases)}"]
        lines += [f"  {line}" for line in self.audited]
        lines += [
            f"checked {sum(self.checked.values())} counts between 1 and k−1 ({checked or 'none'})"
            f" in {self.subtrees} subtrees with {self.linear_programs} linear programmes, "
            f"{self.seconds:.1f} s",
            f"exact disclosures: {len(self.exact)}",
            f"existence disclosures (proven ≥ 1, a flow within ±[1, k−1]; not exact): "
            f"{len(self.existence)}",
        ]
        for name, findings in (("exact", self.exact), ("existence", self.existence)):
            lines += [f"  {name}: {f.line()}" for f in findings[:examples]]
        lines.append("verdict: " + ("nothing disclosed" if self.ok else "DISCLOSURES FOUND"))
        return lines
