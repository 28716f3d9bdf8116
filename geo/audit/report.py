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
}


@dataclass(frozen=True)
class Finding:
    """One disclosed count: what it is, where, and the interval the attacker proves."""

    kind: str
    release: str
    cell: str
    resolution: int
    nationality: str
    detail: str
    lo: int
    hi: float
    true: int

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

    @property
    def ok(self) -> bool:
        """Return whether nothing is disclosed."""
        return not self.exact and not self.existence

    def lines(self, examples: int = 10) -> list[str]:
        """Return the report as short lines, with up to ``examples`` findings of each kind."""
        checked = ", ".join(f"{n} {TARGET_KINDS[kind]}" for kind, n in self.checked.items() if n)
        lines = [
            f"audit of {', '.join(self.releases)}",
            f"checked {sum(self.checked.values())} counts between 1 and k−1 ({checked or 'none'})"
            f" in {self.subtrees} subtrees with {self.linear_programs} linear programmes, "
            f"{self.seconds:.1f} s",
            f"exact disclosures: {len(self.exact)}",
            f"existence disclosures (lower bound ≥ 1, not exact): {len(self.existence)}",
        ]
        for name, findings in (("exact", self.exact), ("existence", self.existence)):
            lines += [f"  {name}: {f.line()}" for f in findings[:examples]]
        lines.append("verdict: " + ("nothing disclosed" if self.ok else "DISCLOSURES FOUND"))
        return lines
