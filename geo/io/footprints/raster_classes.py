"""How the values of a raster footprint become hazard classes: the class schemes.

A raster holds either a continuous quantity (shaking intensity, flood depth, wind
speed), classed by thresholds, or categories (flood extent 1 = flooded, a hazard
zone code), classed by value. A :class:`Scheme` turns pixel values into small
integer class codes, strip by strip, so that :mod:`.raster` can decimate and
polygonise codes instead of values.

Schemes and their sources
-------------------------
* **MMI** (ShakeMap ``grid.xml``, MMI GeoTIFFs): the USGS PAGER rule, integer MMI
  band k covers [k-0.5, k+0.5), labels ``"MMI I"`` … ``"MMI XII"`` and rank k, the
  same labels as the ShakeMap contour reader (:mod:`.shakemap`).
* **Flood depth** in metres, by default 0–0.15 / 0.15–0.5 / 0.5–1.5 / 1.5–3 / ≥ 3 m
  (dry, depth ≤ 0, is no class). 0.15 m: about six inches of moving water knock an
  adult over (US National Weather Service, "Turn Around Don't Drown"); 0.5 m: above
  the floor of most houses and the depth from which the Japanese flood hazard-map
  guideline (MLIT, 2016) and the Swiss dam-safety danger levels count people as in
  danger; 1.5 m: over an adult's chest, and half of the JRC global depth-damage
  range for residential buildings (Huizinga et al., 2017, damage factor about 0.6);
  3 m: a whole storey under water, the MLIT class where only an upper floor or the
  roof is a refuge. Users give their own with ``thresholds``.
* **Any other continuous raster**: the user's thresholds t1 < … < tn; class i covers
  [t_i, t_i+1), the last [t_n, ∞), values below t1 are no class.
* **Categorical rasters**: one class per value, labelled and ordered by the user's
  value → label map (severity in the order given, values left out are no class); with
  no map every value except 0 is a class named after it, unordered when there are
  several (no "or worse" view until the user orders them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from geo.io.footprints.common import FootprintError

KINDS = ("auto", "mmi", "depth", "continuous", "categorical")
DEFAULT_DEPTH_THRESHOLDS_M = (0.0, 0.15, 0.5, 1.5, 3.0)
ROMAN = ["0", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII"]
NO_CLASS = 254  # a valid value outside every class (dry land, value 0 of an extent)
NODATA = 255  # no value: outside the raster's coverage
MAX_CATEGORIES = 64


@dataclass(frozen=True)
class RasterOptions:
    """How to class a raster footprint (defaults read the raster as its publisher meant).

    Attributes
    ----------
    kind : str
        ``auto``, ``mmi``, ``depth``, ``continuous`` or ``categorical``.
    thresholds : tuple of float, optional
        Class boundaries of a continuous raster, increasing.
    labels : tuple of (float, str), optional
        Value → label of a categorical raster, in increasing severity.
    """

    kind: str = "auto"
    thresholds: tuple[float, ...] | None = None
    labels: tuple[tuple[float, str], ...] | None = None

    @classmethod
    def from_text(
        cls, kind: str | None = None, thresholds: str | None = None, labels: str | None = None
    ) -> RasterOptions:
        """Parse the command-line / page form: ``"0.5,1.5,3"`` and ``"1=Flooded,2=Deep"``.

        Raises
        ------
        FootprintError
            For an unknown kind, thresholds that are not increasing numbers, or a
            label map that is not ``value=label`` pairs with distinct values.
        """
        kind = (kind or "auto").strip().lower()
        if kind not in KINDS:
            raise FootprintError(f"unknown raster kind {kind!r}; use one of {', '.join(KINDS)}.")
        return cls(kind, _parse_thresholds(thresholds), _parse_labels(labels))


def _parse_thresholds(text: str | None) -> tuple[float, ...] | None:
    """``"0.5, 1.5,3"`` → (0.5, 1.5, 3.0); None for an empty text."""
    if text is None or not str(text).strip():
        return None
    try:
        values = tuple(float(v) for v in re.split(r"[,;\s]+", str(text).strip()) if v)
    except ValueError:
        raise FootprintError(
            f"thresholds {text!r} are not numbers; give them like 0.5,1.5,3."
        ) from None
    if not all(math.isfinite(v) for v in values) or any(
        b <= a for a, b in zip(values, values[1:], strict=False)
    ):
        raise FootprintError(f"thresholds {text!r} must be finite and increasing, like 0.5,1.5,3.")
    return values


def _parse_labels(text: str | None) -> tuple[tuple[float, str], ...] | None:
    """``"1=Flooded, 2=Deep water"`` → ((1.0, "Flooded"), (2.0, "Deep water"))."""
    if text is None or not str(text).strip():
        return None
    pairs = []
    for item in str(text).split(","):
        value, sep, label = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not label.strip() or not math.isfinite(number):
            raise FootprintError(
                f"raster labels {text!r}: write value=label pairs, like 1=Flooded,2=Deep water."
            )
        pairs.append((number, label.strip()))
    if len({v for v, _ in pairs}) < len(pairs) or len({lab for _, lab in pairs}) < len(pairs):
        raise FootprintError(f"raster labels {text!r}: each value and each label only once.")
    return tuple(pairs)


@dataclass
class Scheme:
    """Pixel values → class codes 0…n-1 (or NO_CLASS / NODATA), with labels and ranks.

    A categorical scheme without a label map learns its values while strips are
    classed (``learn``); :meth:`finish` then gives labels and ranks in value order.
    """

    kind: str
    hazard: str
    labels: list[str] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    ordered: bool = True
    thresholds: tuple[float, ...] = ()
    values: list[float] = field(default_factory=list)  # categorical: value of each code
    learn: bool = False
    description: str = ""

    def classify(self, values: np.ndarray, valid: np.ndarray, display: str) -> np.ndarray:
        """Return the uint8 class code of each pixel (NODATA where not ``valid``)."""
        codes = np.full(values.shape, NODATA, dtype=np.uint8)
        v = values[valid]
        if self.kind == "mmi":
            codes[valid] = np.clip(np.floor(v.astype(float) + 0.5), 1, 12).astype(np.uint8) - 1
        elif self.kind in ("depth", "continuous"):
            index = np.searchsorted(np.asarray(self.thresholds), v, side="right") - 1
            below = (index < 0) | ((v <= 0) if self.kind == "depth" else False)
            codes[valid] = np.where(below, NO_CLASS, np.maximum(index, 0)).astype(np.uint8)
        else:
            codes[valid] = self._categories(v, display)
        return codes

    def _categories(self, v: np.ndarray, display: str) -> np.ndarray:
        """Codes of categorical values, learning new values when there is no label map."""
        if v.dtype.kind in "iub" and v.size and int(v.max()) - int(v.min()) < 1 << 16:
            low = int(v.min())
            shifted = v.astype(np.int64) - low  # bincount and a lookup: no sort
            present = np.flatnonzero(np.bincount(shifted)) + low
        else:
            low, shifted, present = 0, None, np.unique(v)
        if self.learn:
            new = [float(x) for x in present if x != 0 and float(x) not in self.values]
            self.values += new
            if len(self.values) > MAX_CATEGORIES:
                raise FootprintError(
                    f"{display}: more than {MAX_CATEGORIES} distinct values, too many for a "
                    "categorical raster; class it by thresholds (--thresholds, raster kind "
                    "continuous)."
                )
        lookup = {value: code for code, value in enumerate(self.values)}
        if shifted is not None:
            table = np.full(int(present[-1]) - low + 1, NO_CLASS, dtype=np.uint8)
            for x in present:
                table[int(x) - low] = lookup.get(float(x), NO_CLASS)
            return table[shifted]
        codes = np.full(v.shape, NO_CLASS, dtype=np.uint8)
        for x in present:
            code = lookup.get(float(x))
            if code is not None:
                codes[v == x] = code
        return codes

    def finish(self) -> tuple[list[str], list[int], np.ndarray]:
        """Return labels, ranks and the code remap (learned codes → value order)."""
        if not self.learn:
            return self.labels, self.ranks, np.arange(256, dtype=np.uint8)
        order = np.argsort(self.values, kind="stable")
        remap = np.arange(256, dtype=np.uint8)
        remap[order] = np.arange(len(order), dtype=np.uint8)
        values = [self.values[i] for i in order]
        labels = [f"value {v:g}" for v in values]
        self.ordered = len(values) <= 1
        return labels, list(range(1, len(values) + 1)), remap


def scheme_for(
    options: RasterOptions, *, dtype: str, hints: str, display: str, hazard: str
) -> Scheme:
    """Choose the class scheme of a raster from the options and what the file says.

    ``hints`` is the file name, band description and tags, in lower case; with kind
    ``auto`` a name or description saying MMI or intensity means MMI, depth means flood
    depth, and otherwise integer rasters are categorical and float rasters need
    thresholds.

    Raises
    ------
    FootprintError
        For a continuous raster without thresholds, or options that contradict each other.
    """
    kind = options.kind
    if kind == "auto":
        kind = _auto_kind(options, dtype, hints)
    if kind == "categorical":
        if options.thresholds:
            raise FootprintError(f"{display}: thresholds are for continuous rasters, not labels.")
        return _categorical(options, hazard)
    if options.labels:
        raise FootprintError(
            f"{display}: a value→label map is for categorical rasters; this one is read as "
            f"{kind} (set the raster kind to categorical)."
        )
    if kind == "mmi":
        if options.thresholds:
            raise FootprintError(
                f"{display}: MMI is classed by PAGER's integer bands; drop the thresholds or "
                "set the raster kind to continuous."
            )
        labels = [f"MMI {ROMAN[k]}" for k in range(1, 13)]
        return Scheme(
            "mmi",
            "earthquake",
            labels,
            list(range(1, 13)),
            description="MMI binned by the PAGER rule: MMI k covers [k-0.5, k+0.5)",
        )
    if kind == "depth":
        thresholds = options.thresholds or DEFAULT_DEPTH_THRESHOLDS_M
        if thresholds[0] < 0:
            raise FootprintError(f"{display}: flood depth thresholds must be ≥ 0 m.")
        source = "given" if options.thresholds else "default"
        return _intervals("depth", "flood", thresholds, " m", f"flood depth, {source} thresholds")
    if not options.thresholds:
        raise FootprintError(
            f"{display}: a continuous raster ({dtype}) needs thresholds to make classes; "
            "give them (e.g. --thresholds 0.5,1.5,3), or the raster kind mmi or depth."
        )
    return _intervals("continuous", hazard, options.thresholds, "", "classed by the thresholds")


def _auto_kind(options: RasterOptions, dtype: str, hints: str) -> str:
    """Return the kind of an ``auto`` raster: by options, then name, then type."""
    if options.labels:
        return "categorical"
    if re.search(r"(^|[^a-z])(mmi|mi|intensity)([^a-z]|$)", hints) and not options.thresholds:
        return "mmi"
    if "depth" in hints:
        return "depth"
    if options.thresholds:
        return "continuous"
    return "categorical" if np.issubdtype(np.dtype(dtype), np.integer) else "continuous"


def _intervals(
    kind: str, hazard: str, thresholds: tuple[float, ...], unit: str, description: str
) -> Scheme:
    """Scheme of classes [t_i, t_i+1) and [t_n, ∞)."""
    if len(thresholds) >= NO_CLASS:
        raise FootprintError(f"too many thresholds ({len(thresholds)}).")
    bounds = [f"{t:g}" for t in thresholds]
    labels = [f"{a}–{b}{unit}" for a, b in zip(bounds, bounds[1:], strict=False)]
    labels.append(f"≥ {bounds[-1]}{unit}")
    ranks = list(range(1, len(labels) + 1))
    return Scheme(
        kind, hazard, labels, ranks, thresholds=tuple(thresholds), description=description
    )


def _categorical(options: RasterOptions, hazard: str) -> Scheme:
    """Scheme of a categorical raster: from the label map, or learned from the values."""
    if options.labels:
        values = [v for v, _ in options.labels]
        labels = [label for _, label in options.labels]
        return Scheme(
            "categorical",
            hazard,
            labels,
            list(range(1, len(labels) + 1)),
            values=values,
            description="classes from the value→label map, severity in the order given",
        )
    return Scheme(
        "categorical",
        hazard,
        learn=True,
        description="one class per value (0 is no class), unordered",
    )
