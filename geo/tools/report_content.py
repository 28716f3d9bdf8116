"""What the one-page situation report says, apart from how it is drawn (PDF or HTML).

:func:`report_content` turns an exposure (its tables and their sums), its headline
and the release's metadata into plain sections: title and time, footprint provenance,
headline, the class × nationality table (the top N nationalities by name and one row
"other nationalities"), the admin table, the method and privacy sentences and the
release's policy, hash and standing. Every figure comes from released values; the
"other" row and the totals are widened once from the sums of the groups they add up,
exactly like the exposure's class totals (:meth:`geo.exposure_table.Exposure.class_totals`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from geo.codes import nationality_name
from geo.exposure_table import (
    AREA_SENTENCE,
    COUNT_COLUMNS,
    OUTSIDE_AREAS,
    RELIABLE,
    TABLE_COLUMNS,
    Exposure,
    widen,
)
from geo.tools.headline import Figure, Headline, event_words, plain_label
from geo.tools.profile import CommunityProfile

OTHER_ROW = "Other nationalities"
TOTAL_ROW = "All nationalities"
MAX_AREAS = 10


@dataclass(frozen=True)
class Table:
    """A table to print: column titles, rows of figures (or words), a note under it."""

    title: str
    columns: list[str]
    rows: list[list[str | Figure]]
    note: str = ""


@dataclass(frozen=True)
class ReportContent:
    """Everything the report prints, in order; writers only lay it out."""

    title: str
    generated: str
    footprints: list[list[str]]  # per footprint: lines of provenance
    headline: Headline
    tables: list[Table]
    method: list[str]
    release: list[str]
    attribution: str
    notes: list[str] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)  # who is exposed, in words


def nationality_words(code: str) -> str:
    """``"Romania (ROU)"``: the English name and the code (the code alone when unknown)."""
    name = nationality_name(code)
    return code if name == code else f"{name} ({code})"


def privacy_sentence(exposure: Exposure) -> str:
    """Return the method sentence with the persons withheld (as ``exposure`` prints it)."""
    withheld, statement = exposure.accuracy.withheld_sentence(), exposure.statement()
    return statement if withheld in statement else f"{statement} {withheld}"


def _rows_figure(row: pd.Series) -> Figure:
    return Figure(
        int(row["persons_low"]),
        int(row["persons_estimate"]),
        int(row["persons_high"]),
        row.get("reliability", RELIABLE) == RELIABLE,
    )


def top_nationalities(exposure: Exposure, top: int) -> list[str]:
    """Return the ``top`` nationalities by estimated persons exposed (most first).

    Banded classes are disjoint, so a nationality's exposure is the sum over classes;
    cumulative ones are nested, so it is the largest class.
    """
    by_class = exposure.by_class[exposure.by_class["persons_high"] > 0]
    grouped = by_class.groupby("nationality")["persons_estimate"]
    ranked = grouped.max() if exposure.cumulative else grouped.sum()
    high = by_class.groupby("nationality")["persons_high"].max()
    order = pd.DataFrame({"estimate": ranked, "high": high}).reset_index()
    order = order.sort_values(["estimate", "high", "nationality"], ascending=[False, False, True])
    return order["nationality"].head(top).tolist()


def nationality_table(exposure: Exposure, top: int) -> Table:
    """Return the class × nationality table: top nationalities, other, all (widened sums)."""
    totals = exposure.class_totals()
    classes = totals[totals["persons_high"] > 0]
    labels = classes["hazard_class"].tolist()
    chosen = top_nationalities(exposure, top)
    rows: list[list[str | Figure]] = []
    by_class = exposure.by_class.set_index(["nationality", "hazard_class"])
    for code in chosen:
        cells: list[str | Figure] = [nationality_words(code)]
        for label in labels:
            key = (code, label)
            cells.append(_rows_figure(by_class.loc[key]) if key in by_class.index else "0")
        rows.append(cells)
    rest = _other_rows(exposure, chosen)
    if rest is not None:
        rest = rest.set_index("hazard_class")
        rows.append(
            [OTHER_ROW] + [_rows_figure(rest.loc[x]) if x in rest.index else "0" for x in labels]
        )
    indexed = classes.set_index("hazard_class")
    rows.append([TOTAL_ROW] + [_rows_figure(indexed.loc[x]) for x in labels])
    view = "at least each class" if exposure.cumulative else "in each class"
    return Table(
        f"Persons exposed {view}, by nationality (estimate, low–high)",
        ["Nationality", *[plain_label(x) for x in labels]],
        rows,
        "Classes nobody is exposed to are left out. "
        + ("" if rest is None else f"'{OTHER_ROW}' sums every nationality not named."),
    )


def _other_rows(exposure: Exposure, chosen: list[str]) -> pd.DataFrame | None:
    """Return the classes' totals over the nationalities not named, widened once."""
    source = exposure.sums if exposure.sums is not None else exposure.by_class
    rest = source[~source["nationality"].isin(chosen)]
    if rest.empty or not (rest["persons_high"] > 0).any():
        return None
    summed = [c for c in [*TABLE_COLUMNS[3:], *COUNT_COLUMNS] if c in rest.columns]
    rows = rest.groupby("hazard_class", as_index=False, sort=False)[summed].sum()
    return widen(rows, exposure.accuracy) if exposure.sums is not None else rows


def area_table(exposure: Exposure) -> Table | None:
    """Return the areas × classes table (the areas most exposed first), or None."""
    totals = exposure.area_totals()
    if totals is None:
        return None
    field_name = exposure.admin_field
    classes = exposure.class_totals()
    labels = classes.loc[classes["persons_high"] > 0, "hazard_class"].tolist()
    totals = totals[totals["hazard_class"].isin(labels)]
    estimate = totals.groupby(field_name)["persons_estimate"]
    weight = estimate.max() if exposure.cumulative else estimate.sum()
    high = totals.groupby(field_name)["persons_high"].max()
    areas = [a for a in weight.sort_values(ascending=False).index if high[a] > 0]
    shown = [a for a in areas if a != OUTSIDE_AREAS][:MAX_AREAS]
    shown += [OUTSIDE_AREAS] if OUTSIDE_AREAS in areas else []  # last, as in the exports
    indexed = totals.set_index([field_name, "hazard_class"])
    rows = [
        [str(area)]
        + [
            _rows_figure(indexed.loc[(area, x)]) if (area, x) in indexed.index else "0"
            for x in labels
        ]
        for area in shown
    ]
    more = len(areas) - len(shown)
    note = AREA_SENTENCE + (f" {more} further areas are in the exports." if more > 0 else "")
    return Table(
        f"Persons exposed by area ({field_name}), all nationalities (estimate, low–high)",
        ["Area", *[plain_label(x) for x in labels]],
        rows,
        note,
    )


def provenance_lines(provenance: dict) -> list[str]:
    """Return one footprint's provenance in a few lines: file, hash, publisher, event time."""
    lines = [
        f"{provenance.get('file_name', 'footprint')} ({provenance.get('format', '?')}, "
        f"hazard {provenance.get('hazard_type', '?')}), sha256 {provenance.get('sha256', '')}",
        f"{provenance.get('event') or 'publisher and event not named by the file'}; "
        + (
            f"event time {provenance['event_time']}"
            if provenance.get("event_time")
            else "event time not given"
        ),
    ]
    return lines + [f"repaired: {r}" for r in provenance.get("repairs", [])]


def release_lines(metadata: dict, verification: str, standing: list[str]) -> list[str]:
    """Return the release's policy, content hash and signature standing, in words."""
    policy = metadata.get("policy") or {}
    audience = ", ".join(policy.get("nationalities") or []) or "all nationalities"
    method = (
        f"keyed noise of scale {float(policy['noise_scale']):.3g} on every count"
        if policy.get("noise_scale")
        else (
            f"counts rounded to {policy['round_to']}" if policy.get("round_to") else "exact counts"
        )
    )
    # With noise every breakdown is published: a category can count fewer than k.
    behind = "group (cell and nationality)" if policy.get("noise_scale") else "count"
    return [
        f"Policy: at least k = {policy.get('k')} registrations behind every published {behind}, "
        f"H3 resolution {policy.get('base_resolution')} rolled up to "
        f"{policy.get('floor_resolution')} at most, consent scope "
        f"'{policy.get('consent_scope')}', audience {audience}, {method}.",
        f"Release created {metadata.get('created_at', '?')} (store version "
        f"{metadata.get('store_version', '?')}), valid until "
        f"{metadata.get('valid_until') or 'no stated end'}; content sha256 "
        f"{metadata.get('content_sha256', '?')}.",
        f"Signature: {verification}.",
        *[f"Standing: {s}" for s in standing],
    ]


def profile_section(profile: CommunityProfile, top: int = 6) -> list[str]:
    """Return the report's "who is exposed" lines: languages, sex, age, vulnerabilities, family.

    The nationalities are in the report's table already; every figure is the community
    profile's (released values only), "not available in this release" where the release
    publishes no such breakdown.
    """
    from geo.tools.profile import DIMENSION_TITLES
    from geo.tools.profile import profile_lines as lines

    spoken = "; ".join(
        f"{row.language_name} {row.persons_estimate:,}"
        for row in profile.languages.head(top).itertuples()
    )
    titles = tuple(DIMENSION_TITLES.values())
    # What the sex and age shares cannot say (noisy categories summing past the groups),
    # as the page says it beside them.
    breakdowns = (DIMENSION_TITLES["sex"], DIMENSION_TITLES["age_band"])
    return [
        f"Languages to warn in ({profile.scope}; persons who may speak them, estimate): "
        + (spoken or "none"),
        *(line for line in lines(profile, top=0) if line.startswith(titles)),
        *(note for note in profile.notes if note.startswith(breakdowns)),
    ]


def report_content(
    exposure: Exposure,
    headline: Headline,
    provenance: list[dict],
    metadata: dict,
    *,
    verification: str,
    standing: list[str],
    generated: str,
    attribution: str,
    top: int = 8,
    profile: CommunityProfile | None = None,
) -> ReportContent:
    """Return the report's sections (see the module docstring)."""
    names = " + ".join(p.get("file_name", "footprint") for p in provenance)
    tables = [nationality_table(exposure, top)]
    areas = area_table(exposure)
    if areas is not None:
        tables.append(areas)
    event = "; ".join(event_words(fp) for fp in headline.footprints)
    method = [
        privacy_sentence(exposure),
        f"Estimate weighting: {exposure.weighting}. Registered is not present: the release "
        f"counts the registrations it covers as of {headline.as_of} ({event}), not everyone "
        "who lives there.",
        *exposure.notes,
    ]
    return ReportContent(
        title=f"Migrants exposed: {names}",
        generated=generated,
        footprints=[provenance_lines(p) for p in provenance],
        headline=headline,
        tables=tables,
        method=[m for m in method if m],
        release=release_lines(metadata, verification, standing),
        attribution=attribution,
        profile=profile_section(profile) if profile is not None else [],
    )
