"""Write exposure tables as CSV, HXL CSV, XLSX and GeoJSON, each with its metadata.

Every file says which release (policy, method, noise scale, hash) and which footprint
(file, hash, repairs) it comes from, how the estimate was made, where the true value
lies (between low and high, with the confidence a noisy release allows) and how many
persons the release withholds. Text that a spreadsheet would run as a formula is
neutralised. Only released values (and sums of them) are written.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import shapely

from geo.accuracy import Accuracy
from geo.errors import InputError
from geo.exposure_table import AREA_SENTENCE, RELIABILITY_WORDS, Exposure
from geo.h3cells import cells_to_polygons
from geo.release import Release
from geo.sanitize import spreadsheet_safe

FORMATS = ("csv", "hxl", "xlsx", "geojson")
HXL_TAGS = {
    "hazard_class": "#severity+hazard+name",
    "class_rank": "#severity+hazard+num",
    "nationality": "#country+code+nationality",
    "persons_low": "#affected+ind+low",
    "persons_estimate": "#affected+ind+est",
    "persons_high": "#affected+ind+high",
    "cases_low": "#affected+hh+low",
    "cases_estimate": "#affected+hh+est",
    "cases_high": "#affected+hh+high",
    "reliability": "#meta+reliability",
}
ADMIN_HXL_TAG = "#adm1+name"


def export_metadata(exposure: Exposure, release: Release, footprints: Sequence[dict]) -> dict:
    """Return the metadata every export carries.

    Parameters
    ----------
    exposure
        The exposure table and its method.
    release
        The release it was computed from.
    footprints
        The provenance dicts of the footprints used.

    Returns
    -------
    dict
        title, statement (where the truth lies, for the release's method), release
        (policy, method, noise scale, withheld persons, hash), footprints, method
        (classes, weighting, confidence, how the bounds and the privacy were made, what
        each ``reliability`` value means) and exported_at.
    """
    policy = release.metadata["policy"]
    accuracy = exposure.accuracy
    return {
        "title": "Migrants exposed to a hazard footprint, by nationality (crisis-exposure)",
        "statement": exposure.statement(),
        "release": {
            "k": policy["k"],
            "base_resolution": policy["base_resolution"],
            "floor_resolution": policy["floor_resolution"],
            "consent_scope": policy["consent_scope"],
            "nationalities": policy["nationalities"],
            "round_to": policy["round_to"],
            "method": accuracy.method,
            "noise_scale": accuracy.noise_scale,
            "withheld_persons": accuracy.withheld_persons,
            "created_at": release.metadata["created_at"],
            "content_sha256": release.metadata.get("content_sha256"),
            "method_version": release.metadata["method_version"],
            **_signature_fields(release),
        },
        "footprints": [
            {
                key: fp.get(key)
                for key in (
                    "file_name",
                    "sha256",
                    "format",
                    "hazard_type",
                    "class_field",
                    "ordered",
                    "repairs",
                )
            }
            for fp in footprints
        ],
        "method": {
            "classes": "cumulative (at least)" if exposure.cumulative else "disjoint bands",
            "class_order": (
                "ranked: a higher class_rank is more severe within one class system (the "
                "hazard type before the label); the ranks of different systems (MMI and PGA, "
                "say) are not comparable: each system's classes are listed together, the "
                "first footprint's first"
                if exposure.ordered
                else "unordered: the classes have no known severity order, class_rank ranks "
                "nothing and no class is the worst; overlapping classes each count their cells"
            ),
            "estimate_weighting": exposure.weighting,
            "confidence": accuracy.confidence,
            "bounds": _bounds_words(accuracy),
            "reliability": _reliability_words(),
            "privacy": _privacy_words(accuracy),
            **({"areas": AREA_SENTENCE} if exposure.admin_field else {}),
        },
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _signature_fields(release: Release) -> dict:
    """Return the release's signature status and signer, so an export records its trust.

    The status is the reader's (verified by a trusted key, unverified, unsigned); a
    release not read from a file (built in memory) reports its signature unchecked.
    """
    verification = release.verification
    if verification is not None:
        return {
            "signature_status": verification.status,
            "signer_fingerprint": verification.fingerprint,
        }
    entry = release.metadata.get("signature")
    if isinstance(entry, dict) and entry.get("fingerprint"):
        return {"signature_status": "unverified", "signer_fingerprint": entry["fingerprint"]}
    return {"signature_status": "unsigned", "signer_fingerprint": None}


def _bounds_words(accuracy: Accuracy) -> str:
    """Return how low and high were made, for the export's metadata."""
    plain = "low sums the released groups whose cell lies entirely inside, high those touching"
    if accuracy.method == "noise":
        return (
            f"{plain}; each is widened by the {accuracy.confidence:.0%} bound of the noise "
            "of the groups it sums (low never below 0)"
        )
    if accuracy.round_to:
        return f"{plain}; each is widened by what rounding can move in the groups it sums"
    return plain


def _reliability_words() -> str:
    """Return what the ``reliability`` column's values mean, for the export's metadata."""
    return "; ".join(
        f"{label!r}: {words}" if words else f"{label!r}: the estimate can be used"
        for label, words in RELIABILITY_WORDS.items()
    )


def _privacy_words(accuracy: Accuracy) -> str:
    """Return how the release protects small groups, for the export's metadata."""
    words = (
        "every figure is a sum of released values; groups under k cases were rolled up "
        "to coarser cells or dropped before release"
    )
    if accuracy.method == "noise":
        words += (
            f"; every released count carries random noise (scale {accuracy.noise_scale:.3g} "
            f"for cases, {accuracy.scale('persons'):.3g} for persons) so that no small "
            "group can be recovered"
        )
    return words


def _safe_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with every text cell neutralised for spreadsheets."""
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(spreadsheet_safe)
    return safe


def _metadata_lines(metadata: dict) -> list[str]:
    """Return '# key: value' lines for the top of a CSV (read back with comment='#')."""
    lines = [f"# {metadata['title']}", f"# {metadata['statement']}"]
    for section in ("release", "method"):
        for key, value in metadata[section].items():
            lines.append(f"# {section}.{key}: {json.dumps(value, ensure_ascii=False)}")
    for i, footprint in enumerate(metadata["footprints"], start=1):
        lines.append(f"# footprint {i}: {json.dumps(footprint, ensure_ascii=False)}")
    lines.append(f"# exported_at: {metadata['exported_at']}")
    return [str(spreadsheet_safe(line)) for line in lines]


def table_to_csv_text(table: pd.DataFrame, metadata: dict, hxl: bool = False) -> str:
    """Return the CSV (optionally HXL-tagged) text of an exposure table with metadata."""
    buffer = io.StringIO()
    buffer.write("\n".join(_metadata_lines(metadata)) + "\n")
    safe = _safe_frame(table)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(safe.columns)
    if hxl:
        writer.writerow([HXL_TAGS.get(c, ADMIN_HXL_TAG) for c in safe.columns])
    writer.writerows(safe.itertuples(index=False))
    return buffer.getvalue()


def table_to_xlsx_bytes(table: pd.DataFrame, metadata: dict) -> bytes:
    """Return an XLSX workbook: sheet 'exposure' (data) and sheet 'metadata'."""
    rows = [("title", metadata["title"]), ("statement", metadata["statement"])]
    for section in ("release", "method"):
        rows += [
            (f"{section}.{k}", json.dumps(v, ensure_ascii=False))
            for k, v in metadata[section].items()
        ]
    rows += [
        (f"footprint {i}", json.dumps(fp, ensure_ascii=False))
        for i, fp in enumerate(metadata["footprints"], start=1)
    ]
    rows.append(("exported_at", metadata["exported_at"]))
    meta = _safe_frame(pd.DataFrame(rows, columns=["key", "value"]))
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        _safe_frame(table).to_excel(writer, sheet_name="exposure", index=False)
        meta.to_excel(writer, sheet_name="metadata", index=False)
    return buffer.getvalue()


def exposed_cells_geojson(exposed: pd.DataFrame, metadata: dict) -> dict:
    """Return a GeoJSON FeatureCollection of exposed released groups.

    ``exposed`` is :func:`geo.tools.exposure.exposed_groups`: one released (cell,
    nationality) group per row with its released persons and cases, the most severe
    class its cell touches and whether the cell lies entirely inside that class. The
    collection carries the metadata as a foreign member.
    """
    worst = exposed.drop_duplicates("h3_cell")
    # One geometry per cell, shared by the cell's groups (a cell holds many nationalities).
    polygons = shapely.to_geojson(cells_to_polygons(list(worst["h3_cell"])))
    geometries = {
        cell: json.loads(text) for cell, text in zip(worst["h3_cell"], polygons, strict=True)
    }
    features = []
    for row in exposed.itertuples(index=False):
        features.append(
            {
                "type": "Feature",
                "geometry": geometries[row.h3_cell],
                "properties": {
                    "h3_cell": row.h3_cell,
                    "resolution": int(row.resolution),
                    "nationality": row.nationality,
                    "persons": int(row.persons),
                    "cases": int(row.cases),
                    "worst_class": spreadsheet_safe(row.class_label),
                    "worst_class_rank": int(row.class_rank),
                    "entirely_inside_worst_class": bool(row.inside),
                },
            }
        )
    return {"type": "FeatureCollection", "metadata": metadata, "features": features}


def export_format(path: str | Path) -> str:
    """Return the export format a file name asks for: csv, hxl, xlsx or geojson.

    Raises
    ------
    InputError
        For a suffix that is none of ``.csv``, ``.hxl.csv``, ``.xlsx``, ``.geojson``.
    """
    name = Path(path).name.lower()
    file_format = (
        "hxl" if name.endswith(".hxl.csv") else name.rsplit(".", 1)[-1] if "." in name else ""
    )
    if file_format not in FORMATS:
        raise InputError(
            f"{Path(path).name}: unknown export format; use .csv, .hxl.csv, .xlsx or .geojson."
        )
    return file_format


def export_bytes(
    file_format: str,
    exposure: Exposure,
    release: Release,
    footprints: Sequence[dict],
    exposed: pd.DataFrame | None = None,
) -> bytes:
    """Return an export's bytes: CSV, HXL CSV, XLSX, or GeoJSON of ``exposed`` groups.

    Raises
    ------
    InputError
        For an unknown format or a GeoJSON export without the exposed groups.
    """
    if file_format not in FORMATS:
        raise InputError(f"unknown export format {file_format!r}; use one of {FORMATS}.")
    metadata = export_metadata(exposure, release, footprints)
    if file_format == "xlsx":
        return table_to_xlsx_bytes(exposure.table, metadata)
    if file_format == "geojson":
        if exposed is None:
            raise InputError("a GeoJSON export needs the exposed cells.")
        return json.dumps(exposed_cells_geojson(exposed, metadata), ensure_ascii=False).encode()
    return table_to_csv_text(exposure.table, metadata, hxl=file_format == "hxl").encode()


def write_bytes_atomically(path: str | Path, payload: bytes) -> Path:
    """Write bytes to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(payload)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        where = f": {exc.filename}" if exc.filename else ""
        reason = f"{exc.strerror or type(exc).__name__}{where}"
        raise InputError(
            f"{path}: cannot write the file ({reason}); choose another path."
        ) from None
    return path
