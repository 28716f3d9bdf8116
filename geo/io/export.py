"""Write exposure tables as CSV, HXL CSV, XLSX and GeoJSON, each with its metadata.

The CSVs are plain (a UTF-8 BOM, the titles, for HXL the hashtag row, then the rows:
any reader opens them with no options); their metadata goes in a W3C CSVW sidecar
(``<name>.csv-metadata.json``). The XLSX holds it in its ``metadata`` sheet, the
GeoJSON as a foreign member.

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
from geo.export_columns import Column, column_specs, readable_table
from geo.exposure_table import AREA_SENTENCE, RELIABILITY_WORDS, ROW_RANGES_SENTENCE, Exposure
from geo.h3cells import cells_to_polygons
from geo.release import Release
from geo.sanitize import spreadsheet_safe

FORMATS = ("csv", "hxl", "xlsx", "geojson")
SIDECARS = ("csv-metadata", "hxl-metadata")  # the CSVW sidecars of the two CSVs


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
                "ranked: a higher severity rank is more severe within one class system (the "
                "hazard type before the label); the ranks of different systems (MMI and PGA, "
                "say) are not comparable: each system's classes are listed together, the "
                "first footprint's first"
                if exposure.ordered
                else "unordered: the classes have no known severity order, the severity "
                "rank ranks nothing and no class is the worst; overlapping classes each count "
                "their cells"
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
            f"of the groups it sums (low never below 0). {ROW_RANGES_SENTENCE}"
        )
    if accuracy.round_to:
        return (
            f"{plain}; each is widened by what rounding can move in the groups it sums. "
            f"{ROW_RANGES_SENTENCE}"
        )
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


BOM = "\ufeff"  # so that spreadsheet programs read the CSV as UTF-8 ("≥", "–", names)


def _export_frame(exposure: Exposure) -> tuple[pd.DataFrame, list[Column]]:
    """Return the exported rows (names beside codes, text neutralised) and their columns."""
    table = exposure.table
    specs = column_specs(list(table.columns), exposure.admin_field)
    rows = readable_table(table, exposure.admin_field)
    rows.columns = [spec.name for spec in specs]
    return _safe_frame(rows), specs


def table_to_csv_text(exposure: Exposure, hxl: bool = False) -> str:
    """Return the CSV text of an exposure table: a BOM, the titles, (HXL hashtags,) the rows.

    Plain, so that any reader opens it with no options; the metadata goes in the CSVW
    sidecar (:func:`csvw_metadata`). The HXL CSV has the hashtag row right under the
    titles, as the HXL standard asks.
    """
    rows, specs = _export_frame(exposure)
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spec.title for spec in specs])
    if hxl:
        writer.writerow([spec.hxl for spec in specs])
    writer.writerows(rows.itertuples(index=False))
    return buffer.getvalue()


def metadata_items(metadata: dict) -> list[tuple[str, str, object]]:
    """Return the metadata as (key, readable label, value) rows, values as plain scalars.

    Lists become comma-separated text, booleans yes/no, missing values empty: what the
    XLSX metadata sheet shows, one row each.
    """
    labels = {"k": "threshold k (registrations)", "withheld_persons": "persons withheld"}
    items: list[tuple[str, str, object]] = [
        ("title", "Title", metadata["title"]),
        ("statement", "Where the true number lies", metadata["statement"]),
    ]
    for section in ("release", "method"):
        for key, value in metadata[section].items():
            label = f"{section.capitalize()}: {labels.get(key, key.replace('_', ' '))}"
            items.append((f"{section}.{key}", label, _scalar(value)))
    for i, footprint in enumerate(metadata["footprints"], start=1):
        for key, value in footprint.items():
            items.append(
                (f"footprint{i}.{key}", f"Footprint {i}: {key.replace('_', ' ')}", _scalar(value))
            )
    items.append(("exported_at", "Exported at (UTC)", metadata["exported_at"]))
    return items


def _scalar(value: object) -> object:
    """Return a metadata value as one cell: text, a number or empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return "; ".join(str(_scalar(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def csvw_metadata(metadata: dict, specs: Sequence[Column], url: str, hxl: bool = False) -> dict:
    """Return the W3C CSVW sidecar (``<name>.csv-metadata.json``) of an exported CSV.

    Parameters
    ----------
    metadata
        :func:`export_metadata`.
    specs
        The exported columns, in order.
    url
        The CSV's file name (the sidecar lies beside it).
    hxl
        True for the HXL CSV: its second header row holds the hashtags.

    Returns
    -------
    dict
        ``@context``, ``url``, ``dc:`` title, description (where the truth lies, the
        persons withheld), source (the release and footprints with their SHA-256),
        provenance (method and privacy sentences), the release's policy as
        ``schema:additionalProperty``, the dialect and the ``tableSchema``.
    """
    release = metadata["release"]
    sources = [
        {
            "dc:type": "crisis-exposure release",
            "dc:identifier": f"sha256:{release['content_sha256']}",
            "dc:created": release["created_at"],
        }
    ] + [
        {
            "dc:type": "hazard footprint",
            "dc:title": footprint.get("file_name"),
            "dc:identifier": f"sha256:{footprint.get('sha256')}",
        }
        for footprint in metadata["footprints"]
    ]
    method = metadata["method"]
    provenance = [
        f"Classes: {method['classes']}; {method['class_order']}.",
        f"Estimate weighting: {method['estimate_weighting']}.",
        f"Bounds: {method['bounds']}.",
        f"Privacy: {method['privacy']}.",
        f"Reliability: {method['reliability']}.",
    ] + ([method["areas"]] if "areas" in method else [])
    policy = [
        {"@type": "schema:PropertyValue", "schema:name": key, "schema:value": _scalar(value)}
        for key, value in release.items()
    ]
    columns = []
    for spec in specs:
        column = {
            "name": spec.name,
            "titles": [spec.title, spec.hxl] if hxl else spec.title,
            "datatype": spec.datatype,
            "dc:description": spec.description,
            "required": spec.datatype == "integer",
        }
        if spec.datatype == "integer":
            column["datatype"] = {"base": "integer", "minimum": 0}
        columns.append(column)
    return {
        "@context": ["http://www.w3.org/ns/csvw", {"@language": "en"}],
        "url": url,
        "dc:title": metadata["title"],
        "dc:description": metadata["statement"],
        "dc:creator": "crisis-exposure",
        "dc:created": metadata["exported_at"],
        "dc:source": sources,
        "dc:provenance": provenance,
        "schema:additionalProperty": policy,
        "dialect": {"encoding": "utf-8", "header": True, "headerRowCount": 2 if hxl else 1},
        "tableSchema": {"columns": columns},
    }


def csvw_bytes(exposure: Exposure, metadata: dict, url: str, hxl: bool = False) -> bytes:
    """Return the CSVW sidecar of the CSV (or HXL CSV) named ``url``, as UTF-8 JSON."""
    _, specs = _export_frame(exposure)
    sidecar = csvw_metadata(metadata, specs, url, hxl=hxl)
    return json.dumps(sidecar, ensure_ascii=False, indent=2).encode()


COUNT_FORMAT = "#,##0"  # thousands separator, no decimals
PERCENT_FORMAT = "0%"
_PERCENT_KEYS = {"method.confidence"}


def table_to_xlsx_bytes(exposure: Exposure, metadata: dict) -> bytes:
    """Return an XLSX workbook: sheet 'exposure' (the table) and sheet 'metadata'.

    The exposure sheet has readable titles, a frozen header row, a filter, counts with a
    thousands separator and columns wide enough for their titles; the metadata sheet
    holds every metadata item (key, label, value) and what each column means.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    rows, specs = _export_frame(exposure)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "exposure"
    sheet.append([spec.title for spec in specs])
    for row in rows.itertuples(index=False):
        sheet.append([_cell(value) for value in row])
    for index, spec in enumerate(specs, start=1):
        letter = get_column_letter(index)
        sheet.cell(1, index).font = Font(bold=True)
        sheet.cell(1, index).alignment = Alignment(wrap_text=True, vertical="top")
        longest = max([len(str(v)) for v in rows.iloc[:, index - 1]] + [0])
        sheet.column_dimensions[letter].width = min(max(12, longest + 2, len(spec.title) * 0.6), 40)
        if spec.datatype == "integer":
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = COUNT_FORMAT
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions

    meta = workbook.create_sheet("metadata")
    meta.append(["Item", "Value", "Key"])
    for key, label, value in metadata_items(metadata):
        meta.append([_cell(label), _cell(value), key])
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta.cell(meta.max_row, 2).number_format = (
                PERCENT_FORMAT
                if key in _PERCENT_KEYS
                else COUNT_FORMAT
                if float(value).is_integer()
                else "General"
            )
    meta.append([])
    meta.append(["Column", "Meaning", "HXL hashtag"])
    for spec in specs:
        meta.append([_cell(spec.title), _cell(spec.description), spec.hxl])
    for row in (1, meta.max_row - len(specs)):
        for cell in meta[row]:
            cell.font = Font(bold=True)
    meta.column_dimensions["A"].width = 40
    meta.column_dimensions["B"].width = 100
    meta.column_dimensions["C"].width = 28
    for (cell,) in meta.iter_rows(min_col=2, max_col=2):
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    meta.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _cell(value: object) -> object:
    """Return a value as a workbook cell: numbers as numbers, text neutralised."""
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return spreadsheet_safe(value) if isinstance(value, str) else value


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


def sidecar_path(path: str | Path) -> Path:
    """Return where a CSV's CSVW metadata lies: ``<name>.csv-metadata.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + "-metadata.json")


def export_bytes(
    file_format: str,
    exposure: Exposure,
    release: Release,
    footprints: Sequence[dict],
    exposed: pd.DataFrame | None = None,
    name: str = "exposure.csv",
) -> bytes:
    """Return an export's bytes: CSV, HXL CSV, XLSX, GeoJSON of ``exposed`` groups, or CSVW.

    ``csv-metadata`` and ``hxl-metadata`` are the CSVW sidecars of the CSV and the HXL
    CSV whose file name is ``name``.

    Raises
    ------
    InputError
        For an unknown format or a GeoJSON export without the exposed groups.
    """
    if file_format not in FORMATS + SIDECARS:
        raise InputError(f"unknown export format {file_format!r}; use one of {FORMATS}.")
    metadata = export_metadata(exposure, release, footprints)
    if file_format in SIDECARS:
        return csvw_bytes(exposure, metadata, Path(name).name, hxl=file_format == "hxl-metadata")
    if file_format == "xlsx":
        return table_to_xlsx_bytes(exposure, metadata)
    if file_format == "geojson":
        if exposed is None:
            raise InputError("a GeoJSON export needs the exposed cells.")
        return json.dumps(exposed_cells_geojson(exposed, metadata), ensure_ascii=False).encode()
    return table_to_csv_text(exposure, hxl=file_format == "hxl").encode()


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
