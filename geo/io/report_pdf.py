"""Write the one-page situation report as PDF (fpdf2) or HTML.

The content comes ready-made (:class:`geo.tools.report_content.ReportContent`); this
module only lays it out on one A4 page that prints in black and white: the alert
colour is a word as well as a tint, classes are greys and hatching on the map, and
every figure is text (``pdftotext`` reads it back). fpdf2 embeds matplotlib's DejaVu
Sans (a subset, with its Unicode map) so "≥", "–" and names in any Latin script print.
When the tables do not fit, the page is laid out again with smaller type.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

A4 = (210.0, 297.0)
MARGIN = 10.0
ALERT_TINTS = {  # light tints, so the black words on them print readably in grey
    "green": (200, 235, 200),
    "yellow": (250, 240, 170),
    "orange": (250, 210, 160),
    "red": (245, 180, 180),
    None: (235, 235, 235),
}
SCALES = (1.0, 0.9, 0.8, 0.7, 0.6)
UNTRUSTED_MARK = "†"
UNTRUSTED_NOTE = (
    f"{UNTRUSTED_MARK} the estimate cannot be trusted here (range too wide, or footprint "
    "thinner than the released cells): use the range."
)


def cell_text(value) -> str:
    """Return a table cell: estimate over range, or range over a marked estimate.

    ``value`` is words, or a figure with ``low``, ``estimate``, ``high`` and ``trusted``
    (:class:`geo.tools.headline.Figure`).
    """
    if isinstance(value, str):
        return value
    if value.high == 0:
        return "0"
    if value.trusted:
        return f"{value.estimate:,}\n({value.low:,}–{value.high:,})"
    return f"{value.low:,}–{value.high:,}\n(≈{value.estimate:,} {UNTRUSTED_MARK})"


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def report_pdf(content, map_png: bytes) -> bytes:
    """Return the report as a one-page A4 PDF (smaller type if needed to fit one page)."""
    for scale in SCALES:
        pdf = _layout(content, map_png, scale)
        if pdf.pages_count == 1:
            break
    return bytes(pdf.output())


def _layout(content, map_png: bytes, scale: float):
    """Lay the report out at one type scale; return the FPDF document."""
    import io

    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=MARGIN)
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_title(content.title)
    pdf.set_creator("crisis-exposure")
    pdf.add_page()
    width = A4[0] - 2 * MARGIN

    def text(size: float, words: str, style: str = "", height: float = 1.0) -> None:
        pdf.set_font("DejaVu", style, size * scale)
        pdf.multi_cell(
            width, size * scale * 0.42 * height, words, align="L", new_x="LMARGIN", new_y="NEXT"
        )

    text(13, content.title, "B")
    text(
        7,
        f"Situation report generated {content.generated}. Registry as of {content.headline.as_of}.",
    )
    pdf.ln(1)
    for lines in content.footprints:
        text(6, "Footprint: " + lines[0])
        for line in lines[1:]:
            text(6, "    " + line)
    pdf.ln(1)
    map_height = 78 * scale
    pdf.image(io.BytesIO(map_png), x=MARGIN, w=width, h=map_height, keep_aspect_ratio=True)
    pdf.ln(1)
    _headline(pdf, content.headline, width, scale, text, FontFace)
    for table in content.tables:
        pdf.ln(1.2)
        text(7.5, table.title, "B")
        _table(pdf, table, width, scale, FontFace)
        if table.note:
            text(5.5, table.note)
    text(5.5, UNTRUSTED_NOTE)
    pdf.ln(1)
    if content.profile:
        text(7, "Who is exposed (community profile, released values)", "B")
        for line in content.profile:
            text(6, line)
        pdf.ln(0.8)
    text(7, "Method and privacy", "B")
    for line in content.method:
        text(6, line)
    pdf.ln(0.8)
    text(7, "Release", "B")
    for line in content.release:
        text(6, line)
    pdf.ln(0.8)
    text(5.5, content.attribution)
    return pdf


def _headline(pdf, headline, width: float, scale: float, text, face) -> None:
    """Write the headline: per footprint an alert box, then class and "at least" side by side."""
    for fp in headline.footprints:
        tint = ALERT_TINTS.get(fp.alert, ALERT_TINTS[None])
        colour = f"ALERT {fp.alert.upper()}" if fp.alert else "NO ALERT COLOUR"
        pdf.set_fill_color(*tint)
        pdf.set_font("DejaVu", "B", 8.5 * scale)
        pdf.multi_cell(
            width,
            8.5 * scale * 0.45,
            f"{colour}: {fp.name}",
            fill=True,
            align="L",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        text(
            6.5,
            f"{fp.alert_reason}. Event: {fp.event or 'not named by the file'}; "
            + (f"event time {fp.event_time}." if fp.event_time else "event time not given."),
        )
        pdf.set_fill_color(255, 255, 255)
        pdf.set_font("DejaVu", "", 6.5 * scale)
        heading = face(emphasis="BOLD", fill_color=(230, 230, 230))
        with pdf.table(
            col_widths=(20, 46, 24, 46),
            width=width,
            line_height=6.5 * scale * 0.45,
            headings_style=heading,
            text_align=("LEFT", "RIGHT", "LEFT", "RIGHT"),
            padding=0.6,
        ) as table:
            table.row(["Class", "Persons in the class", "At least", "Persons at least"])
            for row in fp.rows:
                table.row(
                    [
                        row.label,
                        row.band.text(),
                        row.at_least_label or "—",
                        row.at_least.text() if row.at_least else "—",
                    ]
                )
    pdf.ln(0.6)
    nationalities = ", ".join(headline.nationalities) if headline.nationalities else ""
    text(
        6.5,
        (f"Nationalities: {nationalities} only. " if nationalities else "")
        + f"Withheld for privacy: {headline.withheld or 'not stated by this release'} "
        f"Registry confirmed recently: {headline.confirmed}.",
    )


def _table(pdf, table, width: float, scale: float, face) -> None:
    """Write a class × nationality (or area) table, two lines per figure."""
    pdf.set_font("DejaVu", "", 6 * scale)
    first = 36.0
    rest = max(len(table.columns) - 1, 1)
    widths = (first, *([(width - first) / rest] * rest))
    heading = face(emphasis="BOLD", fill_color=(230, 230, 230))
    with pdf.table(
        col_widths=widths,
        width=width,
        line_height=6 * scale * 0.42,
        headings_style=heading,
        text_align=("LEFT", *(["RIGHT"] * rest)),
        padding=0.5,
    ) as grid:
        grid.row(table.columns)
        for cells in table.rows:
            grid.row([cell_text(c) for c in cells])


def report_html(content, map_png: bytes) -> bytes:
    """Return the report as one HTML file (map inline), laid out for A4 when printed."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(content.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(content.title)}</h1>",
        f"<p class='small'>Situation report generated {esc(content.generated)}. Registry as of "
        f"{esc(content.headline.as_of)}.</p>",
    ]
    for lines in content.footprints:
        parts.append("<p class='small'>Footprint: " + "<br>".join(map(esc, lines)) + "</p>")
    image = base64.b64encode(map_png).decode()
    parts.append(
        "<img alt='map of the footprint classes and exposed cells' "
        f"src='data:image/png;base64,{image}'>"
    )
    for fp in content.headline.footprints:
        colour = f"ALERT {fp.alert.upper()}" if fp.alert else "NO ALERT COLOUR"
        tint = "rgb({},{},{})".format(*ALERT_TINTS.get(fp.alert, ALERT_TINTS[None]))
        parts.append(f"<h2 style='background:{tint}'>{esc(colour)}: {esc(fp.name)}</h2>")
        event = f"event time {fp.event_time}" if fp.event_time else "event time not given"
        parts.append(
            f"<p>{esc(fp.alert_reason)}. Event: "
            f"{esc(fp.event or 'not named by the file')}; {esc(event)}.</p>"
        )
        rows = [
            [
                r.label,
                r.band.text(),
                r.at_least_label or "—",
                r.at_least.text() if r.at_least else "—",
            ]
            for r in fp.rows
        ]
        parts.append(
            _html_table(["Class", "Persons in the class", "At least", "Persons at least"], rows)
        )
    headline = content.headline
    parts.append(
        f"<p>Withheld for privacy: {esc(headline.withheld or 'not stated by this release')} "
        f"Registry confirmed recently: {esc(headline.confirmed)}.</p>"
    )
    for table in content.tables:
        parts.append(f"<h3>{esc(table.title)}</h3>")
        rows = [[cell_text(c).replace("\n", " ") for c in cells] for cells in table.rows]
        parts.append(_html_table(table.columns, rows))
        if table.note:
            parts.append(f"<p class='small'>{esc(table.note)}</p>")
    parts.append(f"<p class='small'>{esc(UNTRUSTED_NOTE)}</p>")
    if content.profile:
        parts.append("<h3>Who is exposed (community profile, released values)</h3>")
        parts += [f"<p class='small'>{esc(line)}</p>" for line in content.profile]
    parts.append("<h3>Method and privacy</h3>")
    parts += [f"<p class='small'>{esc(line)}</p>" for line in content.method]
    parts.append("<h3>Release</h3>")
    parts += [f"<p class='small'>{esc(line)}</p>" for line in content.release]
    parts.append(f"<p class='small'>{esc(content.attribution)}</p></body></html>")
    return "\n".join(parts).encode("utf-8")


def _html_table(columns: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = (
    "@page{size:A4;margin:10mm}body{font-family:'DejaVu Sans',Arial,sans-serif;"
    "font-size:9pt;max-width:190mm;margin:auto;color:#000}h1{font-size:14pt}"
    "h2{font-size:10pt;padding:2px}h3{font-size:9pt;margin:6px 0 2px}"
    "img{width:100%}table{border-collapse:collapse;font-size:7.5pt;width:100%}"
    "th,td{border:1px solid #888;padding:1px 3px}td+td,th+th{text-align:right}"
    ".small{font-size:7pt}"
)
