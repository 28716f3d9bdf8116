"""The headline of an exposure, like USGS PAGER's and GDACS's: what a planner reads first.

Per footprint (per class system), every class with the persons in it (the band) and
the persons at least that severe (cumulative), side by side, each with its low–high
range; an alert colour; beside them the persons the release withholds, how recently
the registry was confirmed (where the release states it), the release's as-of date
and the footprint's event time. Every figure is a function of released values: the
exposure tables and the release's metadata, never the store.

The alert colour (defined in the README, "The headline"):

* the **severe classes** are, for MMI, at least MMI VIII (PAGER's "severe" shaking
  and worse); for any other ordered classes, the footprint's most severe class;
* the figure is the estimated persons at least that severe; when the estimate cannot
  be trusted (a range too wide, a footprint thinner than the cells), the high bound;
* **red** from :data:`RED_FROM` persons, **orange** from :data:`ORANGE_FROM`,
  **yellow** from 1, **green** when nobody (high bound 0) can be in them;
* classes with no known order get no colour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from geo.accuracy import Accuracy
from geo.exposure_table import RELIABLE

RED_FROM = 1000
ORANGE_FROM = 100
SEVERE_MMI = 8  # PAGER: VIII severe, IX violent, X+ extreme
ALERTS = ("green", "yellow", "orange", "red")
NOT_STATED = "not stated by this release"
NO_EVENT_TIME = "event time not given"
_PREFIX = re.compile(r"^(.*?): (?=\S)")
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9}
_ROMAN |= {"X": 10, "XI": 11, "XII": 12}
_PARAMETERS = {
    "PGA": "peak ground acceleration",
    "PGV": "peak ground velocity",
    "PSA": "spectral acceleration",
}


@dataclass(frozen=True)
class Figure:
    """Persons low, estimate and high, and whether the estimate can be trusted."""

    low: int
    estimate: int
    high: int
    trusted: bool = True

    def text(self) -> str:
        """``'280 (range 0–990)'``, or ``'0–990 (estimate 280 not to be trusted)'``."""
        if self.high == 0:
            return "0"
        if self.trusted:
            return f"{self.estimate:,} (range {self.low:,}–{self.high:,})"
        return f"{self.low:,}–{self.high:,} (estimate {self.estimate:,} not to be trusted)"


@dataclass(frozen=True)
class ClassLine:
    """One class of a footprint: persons in the band and at least this severe."""

    label: str  # the class as the publisher names it, in plain words
    band: Figure
    at_least_label: str | None  # "at least MMI VIII"; None for unordered classes
    at_least: Figure | None


@dataclass(frozen=True)
class FootprintHeadline:
    """A footprint's (class system's) classes, most severe first, and its alert colour."""

    name: str
    rows: list[ClassLine]
    alert: str | None  # green, yellow, orange, red; None: the classes have no order
    alert_reason: str
    event: str | None = None
    event_time: str | None = None


@dataclass(frozen=True)
class Headline:
    """What a planner reads first, every figure as the release publishes it."""

    footprints: list[FootprintHeadline]
    withheld: str  # the persons the release withholds, a sentence ('' when unknown)
    confirmed: str  # how recently the registry was confirmed, or "not stated"
    as_of: str  # the release's as-of date and store version
    nationalities: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return the headline as plain text lines (the CLI prints them)."""
        out = []
        for fp in self.footprints:
            colour = f"alert {fp.alert.upper()}" if fp.alert else "no alert colour"
            out.append(f"{fp.name}: {colour} ({fp.alert_reason})")
            out.append(f"  event: {fp.event or 'not named by the file'}; {event_words(fp)}")
            for row in fp.rows:
                cumulative = (
                    f"  |  {row.at_least_label}: {row.at_least.text()}" if row.at_least else ""
                )
                out.append(f"  {row.label}: {row.band.text()}{cumulative}")
        if self.nationalities:
            out.append(f"nationalities: {', '.join(self.nationalities)} only")
        out.append(f"registry as of: {self.as_of}")
        out.append(f"withheld for privacy: {self.withheld or NOT_STATED}")
        out.append(f"registry confirmed recently: {self.confirmed}")
        return out


def event_words(fp: FootprintHeadline) -> str:
    """``'event time 2016-10-30T06:40:18Z'`` or ``'event time not given'``."""
    return f"event time {fp.event_time}" if fp.event_time else NO_EVENT_TIME


def plain_label(label: str) -> str:
    """Return a class label in plain words: "PGA ≥ 50 %g" → "peak ground acceleration ≥ 50 % g"."""
    words = label.replace("%g", "% g")
    for short, long in _PARAMETERS.items():
        words = re.sub(rf"\b{short}\b", long, words)
    if words.endswith(": whole map"):
        words = words.removesuffix(": whole map") + ": anywhere on the map"
    return words


def at_least_words(label: str) -> str:
    """Return a cumulative label in words: "MMI ≥ VIII" → "at least MMI VIII"."""
    prefix, core = _split_prefix(label)
    if core.endswith(": whole map"):
        return prefix + "anywhere on the map"
    if m := re.fullmatch(r"(\S+) ≥ (.+)", core):
        return prefix + plain_label(f"at least {m.group(1)} {m.group(2)}")
    return prefix + plain_label(core)


def _split_prefix(label: str) -> tuple[str, str]:
    """``"earthquake: MMI VIII"`` → ("earthquake: ", "MMI VIII"); no prefix → ("", label)."""
    m = _PREFIX.match(label)
    if m and not label.startswith(("MMI", "PGA", "PGV", "PSA", "VALUE")):
        return m.group(0), label[m.end() :]
    return "", label


def _figure(row: pd.Series) -> Figure:
    return Figure(
        int(row["persons_low"]),
        int(row["persons_estimate"]),
        int(row["persons_high"]),
        row.get("reliability", RELIABLE) == RELIABLE,
    )


def _severe_rank(labels: list[str], ranks: list[int]) -> int | None:
    """Return the lowest rank of the severe classes (module docstring); None: the map has none."""
    values = [
        _ROMAN.get(m.group(1)) if (m := re.fullmatch(r"MMI ([IVX]+)", x)) else None for x in labels
    ]
    is_mmi = all(
        v is not None or x.startswith("MMI <") for v, x in zip(values, labels, strict=True)
    )
    if is_mmi and any(v is not None for v in values):
        severe = [
            r for r, v in zip(ranks, values, strict=True) if v is not None and v >= SEVERE_MMI
        ]
        return min(severe) if severe else None
    return max(ranks)


def alert_colour(figure: Figure) -> str:
    """Return the alert colour of the persons in the severe classes (module docstring)."""
    persons = figure.estimate if figure.trusted else figure.high
    if figure.high == 0:
        return "green"
    if persons >= RED_FROM:
        return "red"
    if persons >= ORANGE_FROM:
        return "orange"
    return "yellow"


def _alert(system: pd.DataFrame, cumulative: pd.DataFrame | None) -> tuple[str | None, str]:
    """Return (colour, reason in words) for one class system's totals."""
    if cumulative is None:
        return None, "the classes have no known severity order"
    labels, ranks = system["hazard_class"].tolist(), system["class_rank"].astype(int).tolist()
    rank = _severe_rank([_split_prefix(x)[1] for x in labels], ranks)
    severe = cumulative[cumulative["class_rank"] == rank] if rank is not None else cumulative[:0]
    if severe.empty:
        return "green", f"the footprint has no class as severe as MMI {_roman(SEVERE_MMI)}"
    figure = _figure(severe.iloc[0])
    colour = alert_colour(figure)
    basis = "estimate" if figure.trusted else "high bound, the estimate cannot be trusted"
    persons = figure.estimate if figure.trusted else figure.high
    words = at_least_words(str(severe.iloc[0]["hazard_class"]))
    return colour, (
        f"{persons:,} persons {words} ({basis}); red from {RED_FROM:,} persons, orange from "
        f"{ORANGE_FROM:,}, yellow from 1"
    )


def _roman(value: int) -> str:
    return next(k for k, v in _ROMAN.items() if v == value)


def _systems(totals: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split class totals by class system (the label prefix of combined footprints)."""
    prefixes = [_split_prefix(str(x))[0] for x in totals["hazard_class"]]
    return {p: totals[[q == p for q in prefixes]] for p in dict.fromkeys(prefixes)}


def confirmed_sentence(metadata: dict) -> str:
    """Return how recently the registry was confirmed, as the release publishes it.

    Reads ``confirmed_within_months`` (``{"6": …, "12": …, "24": …, "audience": …}``,
    protected figures); "not stated by this release" when absent.
    """
    block = metadata.get("confirmed_within_months")
    if not isinstance(block, dict) or not block.get("audience"):
        return NOT_STATED
    audience = float(block["audience"])
    shares = [
        f"{min(float(block[m]) / audience, 1.0):.0%} within {m} months"
        for m in sorted((k for k in block if str(k).isdigit()), key=int)
        if block[m] is not None
    ]
    if not shares:
        return NOT_STATED
    return (
        "registrations confirmed or renewed: "
        + ", ".join(shares)
        + " (shares of the registry this release covers, from its protected figures)"
    )


def as_of_sentence(metadata: dict) -> str:
    """Return the release's as-of date and store version, in words."""
    created = str(metadata.get("created_at") or "")
    when = created.replace("T", " ")[:16] + " UTC" if created else "date not stated"
    version = metadata.get("store_version")
    return f"{when}" + (f" (store version {version})" if version is not None else "")


def build_headline(
    banded: pd.DataFrame,
    cumulative: pd.DataFrame | None,
    accuracy: Accuracy,
    metadata: dict,
    provenance: list[dict],
    nationalities: list[str] | None = None,
) -> Headline:
    """Return the headline of an exposure from its banded and cumulative class totals.

    Parameters
    ----------
    banded, cumulative
        ``Exposure.class_totals()`` of the same release, footprints and options, in
        bands and in "at least" classes (cumulative None: the classes have no order).
    accuracy
        The release's accuracy (the persons it withholds).
    metadata
        The release's metadata (confirmation block, as-of date).
    provenance
        The footprints' provenance (names, event time), in the order given.
    nationalities
        The nationalities chosen (None: all).
    """
    # only combined footprints prefix their labels ("earthquake: MMI VIII"); one
    # footprint is one system whatever its labels hold
    systems = _systems(banded) if len(provenance) > 1 else {"": banded}
    footprints = []
    for prefix, system in systems.items():
        cum = cumulative
        if cumulative is not None and len(systems) > 1:
            keep = [_split_prefix(str(x))[0] == prefix for x in cumulative["hazard_class"]]
            cum = cumulative[keep]
        rows = []
        for _, row in system.iterrows():
            match = cum[cum["class_rank"] == row["class_rank"]] if cum is not None else None
            found = match is not None and len(match) > 0
            rows.append(
                ClassLine(
                    plain_label(str(row["hazard_class"])),
                    _figure(row),
                    at_least_words(str(match.iloc[0]["hazard_class"])) if found else None,
                    _figure(match.iloc[0]) if found else None,
                )
            )
        colour, reason = _alert(system, cum)
        named = _named(prefix, provenance, len(systems))
        footprints.append(
            FootprintHeadline(
                named["name"], rows, colour, reason, named["event"], named["event_time"]
            )
        )
    return Headline(
        footprints,
        accuracy.withheld_sentence(),
        confirmed_sentence(metadata),
        as_of_sentence(metadata),
        nationalities,
    )


def _named(prefix: str, provenance: list[dict], systems: int) -> dict:
    """Return the name, event and event time of a class system's footprint(s)."""
    files = provenance if systems == 1 or not prefix else _matching(prefix, provenance)
    name = " + ".join(p.get("file_name", "footprint") for p in files) or prefix.rstrip(": ")
    if prefix and systems > 1:
        name = f"{prefix.rstrip(': ')} ({name})"
    times = [p.get("event_time") for p in files if p.get("event_time")]
    events = [p.get("event") for p in files if p.get("event")]
    return {
        "name": name,
        "event": "; ".join(dict.fromkeys(events)) or None,
        "event_time": "; ".join(dict.fromkeys(times)) or None,
    }


def _matching(prefix: str, provenance: list[dict]) -> list[dict]:
    """Return the footprints a combined label prefix stands for (hazard type, file name)."""
    core = prefix.rstrip(": ")
    named = [p for p in provenance if p.get("file_name") and f"({p['file_name']})" in core]
    if named:
        return named
    hazard = core.split(" (")[0]
    return [p for p in provenance if p.get("hazard_type") == hazard] or provenance
