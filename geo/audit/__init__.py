"""Audit releases with a linear-programming attacker (the package's public names).

The steward knows the true counts; the audit plays an attacker who knows the method
and sees every number of every release given (all resolutions, all breakdowns, the
release-level totals; any polygon sum or exposure figure is a linear combination of
these, so it adds nothing). For every count between 1 and k−1 the audit computes the
interval the attacker can prove by linear programming (scipy ``linprog``, HiGHS) and
reports

- **exact** disclosures: the interval is a single value;
- **existence** disclosures: the lower bound is at least 1, so the attacker can prove
  that someone is there.

What a published value proves depends on the release's method (``metadata["method"]``):

- **exact** (method 1, ``noise_scale=0``): each published group equals the sum of its
  base cells not published at a finer resolution (an interval when the release is
  rounded); each breakdown row equals the sum of its category over the same cells, and
  an absent category of an available breakdown is 0; the vulnerability rows sum a
  category over every released group of a floor cell; the dropped cases bound what
  lies outside the released groups.
- **noise** (method 2): keyed discrete-Laplace noise has unbounded support, so a value
  proves no interval about its true count. What remains is the structure, decided on
  true counts: a published group holds at least k cases (at most the audience, a finite
  ceiling for the programme), every category and the dropped cases at least 0 (no
  constraint at all, so left out), every category row present.

For both, every base group a release does not publish holds 0 to k−1 cases. Nothing
publishes the audience's size any more; the records handed in must be the store
snapshot the releases were made from (the caller reads it at their store version), and
a release whose labels (or, exact, whose totals) the records cannot give is refused.

The unknowns are counts per (cell at the finest base resolution, nationality class,
consent pattern), split by sex × age band and by primary vulnerability where a
breakdown constrains them. Classes are the nationalities the releases cannot tell
apart (those all rolled into ``OTH``); a consent pattern says which of the releases
count a case, so a public and an embassy release with different consent scopes are
linked exactly as the attacker can link them (method 2 does not hide that gap: which
groups are published says it). Cells that no constraint and no target tells apart are
merged into one variable (exact for a linear programme: the sum of m copies of a
convex set is m times the set), and the problem is solved per floor-cell subtree and
group of linked nationalities.

The counts checked ("targets") are: every (base cell, nationality) group of every
release, every unpublished residual at a coarser resolution, their breakdown categories,
the categories and sex × age cross-cells of published groups whose breakdown is not
published (method 2: of every published group), and, with several releases, every
(cell, nationality, consent pattern) subgroup. A target is solved only when no feasible
point seen so far puts it at 0.

Releases made at different store versions (a ledger): nothing links the true counts of
two snapshots (registrations are added, removed, moved, re-consented between them), so
the attacker's programme over all of them separates into one programme per snapshot.
:mod:`geo.ledger_audit` therefore audits the releases of each store version together
here, and bounds each flow between two versions by the difference of the two stocks'
bounds (or, knowing one stock that is not small, by the other's bounds shifted by it).

Not modelled: persons (any case counts the rest allows admit person counts between the
cases and any family size, so they bound nothing further); that a withheld breakdown
has some category under k (a disjunction, not linear), nor that an unpublished
residual is under k or above (n−1)(k−1), nor (method 2) that a published one is at
most (n−1)(k−1) (an upper bound on a sum the priors already cap); sex × vulnerability
cross-cells (the release checks those at the floor); and outside knowledge such as
cells at sea. The dropped
total couples all subtrees; each subtree gets it as a bound that holds whatever the
other subtrees hold (a relaxation; for one unrounded release it adds nothing).

The package, one job per module: :mod:`~geo.audit.lp` (the linear-programming core),
:mod:`~geo.audit.model` (views of the releases by method, classes, patterns, units,
cover), :mod:`~geo.audit.targets` (the counts to check), :mod:`~geo.audit.parts` (atoms
and the cut into subtrees), :mod:`~geo.audit.subtrees` (one subtree's programme and its
findings), :mod:`~geo.audit.report` and :mod:`~geo.audit.engine` (the pure entry
point). Nothing here reads a file or a store: :mod:`geo.pipeline` does that
(``run_audit`` for release files, ``audit_ledger`` for a store's whole ledger).
"""

from geo.audit.engine import audit_releases
from geo.audit.lp import LinearSystem, Verdict, classify, interval_bounds
from geo.audit.report import AuditReport, Finding

__all__ = [
    "AuditReport",
    "Finding",
    "LinearSystem",
    "Verdict",
    "audit_releases",
    "classify",
    "interval_bounds",
]
