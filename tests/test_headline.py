"""The PAGER-like headline: both views side by side, alert rule, plain words, released only."""

from __future__ import annotations

import pandas as pd

from geo.accuracy import Accuracy
from geo.io.footprints import read_footprint
from geo.tools.headline import (
    NO_EVENT_TIME,
    NOT_STATED,
    Figure,
    alert_colour,
    at_least_words,
    build_headline,
    confirmed_sentence,
    plain_label,
)
from tests.footprint_files import write_cap_alert

METADATA = {"created_at": "2026-11-30T09:41:38+00:00", "store_version": 3}
NORCIA_PROVENANCE = [{"file_name": "norcia_cont_mmi.json", "event": "ShakeMap, event 1"}]


def totals(rows: list[tuple]) -> pd.DataFrame:
    """Class totals as Exposure.class_totals() gives them: label, rank, low, estimate, high."""
    frame = pd.DataFrame(
        rows,
        columns=["hazard_class", "class_rank", "persons_low", "persons_estimate", "persons_high"],
    )
    frame["reliability"] = "ok"
    return frame


BANDED = totals(
    [
        ("MMI IX", 9, 0, 40, 90),
        ("MMI VIII", 8, 200, 1100, 2500),
        ("MMI VII", 7, 5000, 9000, 12000),
    ]
)
CUMULATIVE = totals(
    [
        ("MMI ≥ IX", 9, 0, 40, 90),
        ("MMI ≥ VIII", 8, 300, 1140, 2600),
        ("MMI ≥ VII", 7, 6000, 10140, 14000),
    ]
)


def test_each_class_sits_beside_at_least_that_class_with_ranges():
    accuracy = Accuracy(withheld_persons=20757, k=10)
    headline = build_headline(BANDED, CUMULATIVE, accuracy, METADATA, NORCIA_PROVENANCE)
    (fp,) = headline.footprints
    row = fp.rows[1]
    assert (row.label, row.band) == ("MMI VIII", Figure(200, 1100, 2500))
    assert (row.at_least_label, row.at_least) == ("at least MMI VIII", Figure(300, 1140, 2600))
    text = "\n".join(headline.lines())
    assert (
        "MMI VIII: 1,100 (range 200–2,500)  |  at least MMI VIII: 1,140 (range 300–2,600)" in text
    )
    assert "withholds 20,757 persons" in text
    assert "2026-11-30 09:41 UTC (store version 3)" in text
    assert NO_EVENT_TIME in text  # the provenance gives no event time
    # the alert: 1,140 persons (estimate) at least MMI VIII → red
    assert fp.alert == "red" and "1,140 persons at least MMI VIII" in fp.alert_reason


def test_alert_rule_thresholds_and_untrusted_estimates_use_the_high_bound():
    assert alert_colour(Figure(0, 0, 0)) == "green"
    assert alert_colour(Figure(0, 0, 3)) == "yellow"
    assert alert_colour(Figure(0, 99, 300)) == "yellow"
    assert alert_colour(Figure(50, 100, 300)) == "orange"
    assert alert_colour(Figure(500, 1000, 3000)) == "red"
    # an estimate that cannot be trusted: the high bound decides
    assert alert_colour(Figure(0, 50, 1200, trusted=False)) == "red"


def test_a_quake_with_no_class_at_mmi_viii_is_green():
    banded = totals([("MMI VII", 7, 10, 500, 900), ("MMI VI", 6, 100, 5000, 9000)])
    cumulative = totals([("MMI ≥ VII", 7, 10, 500, 900), ("MMI ≥ VI", 6, 200, 5500, 9800)])
    headline = build_headline(banded, cumulative, Accuracy(), METADATA, NORCIA_PROVENANCE)
    assert headline.footprints[0].alert == "green"
    assert "no class as severe as MMI VIII" in headline.footprints[0].alert_reason


def test_other_scales_use_their_most_severe_class():
    banded = totals([("Red alert", 3, 10, 150, 300), ("Orange alert", 2, 0, 50, 80)])
    cumulative = totals(
        [("Red alert or worse", 3, 10, 150, 300), ("Orange alert or worse", 2, 20, 200, 380)]
    )
    headline = build_headline(banded, cumulative, Accuracy(), METADATA, [{"file_name": "g.json"}])
    assert headline.footprints[0].alert == "orange"


def test_unordered_classes_get_no_alert_colour_and_no_cumulative_column():
    banded = totals([("Zone A", 0, 10, 150, 300), ("Zone B", 0, 0, 50, 80)])
    headline = build_headline(banded, None, Accuracy(), METADATA, [{"file_name": "z.json"}])
    fp = headline.footprints[0]
    assert fp.alert is None and "no known severity order" in fp.alert_reason
    assert all(r.at_least is None for r in fp.rows)
    assert "no alert colour" in headline.lines()[0]


def test_words_a_user_sees_are_plain():
    assert plain_label("PGA ≥ 50 %g") == "peak ground acceleration ≥ 50 % g"
    assert at_least_words("PGA ≥ 10 %g") == "at least peak ground acceleration 10 % g"
    assert at_least_words("MMI: whole map") == "anywhere on the map"
    assert at_least_words("earthquake: MMI ≥ VII") == "earthquake: at least MMI VII"
    headline = build_headline(BANDED, CUMULATIVE, Accuracy(), METADATA, NORCIA_PROVENANCE)
    text = "\n".join(headline.lines())
    for internal in ("%g", "cases", "class_rank", "persons_estimate"):
        assert internal not in text


def test_confirmation_shares_come_from_the_release_block_or_say_not_stated():
    assert confirmed_sentence({}) == NOT_STATED
    block = {"6": 620, "12": 800, "24": 950, "audience": 1000}
    sentence = confirmed_sentence({"confirmed_within_months": block})
    assert "62% within 6 months, 80% within 12 months, 95% within 24 months" in sentence
    headline = build_headline(
        BANDED, CUMULATIVE, Accuracy(), {**METADATA, "confirmed_within_months": block}, []
    )
    assert "62% within 6 months" in "\n".join(headline.lines())


def test_two_footprints_of_two_systems_each_get_their_headline():
    banded = totals(
        [
            ("earthquake: MMI VIII", 4, 0, 200, 400),
            ("earthquake: MMI VII", 3, 0, 300, 500),
            ("flood: Flooded", 1, 5, 20, 40),
        ]
    )
    cumulative = totals(
        [
            ("earthquake: MMI ≥ VIII", 4, 0, 200, 400),
            ("earthquake: MMI ≥ VII", 3, 10, 500, 900),
            ("flood: Flooded or worse", 1, 5, 20, 40),
        ]
    )
    provenance = [
        {"file_name": "quake.json", "hazard_type": "earthquake", "event_time": "2016-10-30"},
        {"file_name": "flood.shp", "hazard_type": "flood"},
    ]
    headline = build_headline(banded, cumulative, Accuracy(), METADATA, provenance)
    quake, flood = headline.footprints
    assert quake.name == "earthquake (quake.json)" and quake.event_time == "2016-10-30"
    assert quake.alert == "orange"  # 200 persons at least MMI VIII
    assert (
        flood.name == "flood (flood.shp)" and flood.alert == "yellow" and flood.event_time is None
    )


def test_cap_alert_gives_its_event_time(tmp_path):
    provenance = read_footprint(write_cap_alert(tmp_path / "alert.xml")).provenance
    assert provenance["event_time"] == "2016-10-30T08:00:00+01:00"  # no onset: when sent
    assert provenance["event"] == (
        "CAP alert from civil.protection@example.org, Earthquake aftershock warning"
    )


def test_shakemap_contours_name_their_event_but_give_no_time():
    path = "data/footprints/italy_norcia_20161030_M6.5_ingv8863681_cont_mmi.json"
    provenance = read_footprint(path).provenance
    assert provenance["event"] == "ShakeMap, event 8863681, epicentre 42.83° N 13.11° E"
    assert provenance["event_time"] is None  # the file states none; never read from its name


def test_shakemap_grid_gives_its_event_time(tmp_path):
    from geo.io.footprints.event import file_to_event

    grid = tmp_path / "grid.xml"
    grid.write_text(
        '<?xml version="1.0"?>\n<shakemap_grid event_id="us1000" shakemap_originator="us">'
        '<event event_id="us1000" magnitude="6.5" event_timestamp="2016-10-30T06:40:18UTC" '
        'event_description="Central Italy" /></shakemap_grid>'
    )
    event = file_to_event(grid, "shakemap-grid")
    assert event == {
        "event_time": "2016-10-30T06:40:18UTC",
        "event": "ShakeMap by us, event us1000, Central Italy, magnitude 6.5",
    }


def test_one_footprint_is_one_system_even_with_colons_in_its_labels():
    banded = totals([("Zone: red", 2, 0, 10, 20), ("Zone: amber", 1, 0, 5, 9)])
    cumulative = totals(
        [("Zone: red or worse", 2, 0, 10, 20), ("Zone: amber or worse", 1, 0, 15, 29)]
    )
    headline = build_headline(banded, cumulative, Accuracy(), METADATA, [{"file_name": "z.json"}])
    assert len(headline.footprints) == 1 and len(headline.footprints[0].rows) == 2
    assert headline.footprints[0].alert == "yellow"  # 10 persons in the most severe class


def test_a_plain_polygon_footprint_gets_a_headline_without_an_at_least_view(tmp_path, capsys):
    """A polygon with no class order: 'exposure' ran, then the headline asked for the
    cumulative view its one class cannot have and the command ended in an error."""
    import json

    from geo.cli import main

    ring = [[12.2, 42.85], [12.75, 42.85], [12.75, 43.25], [12.2, 43.25], [12.2, 42.85]]
    polygon = {"type": "Polygon", "coordinates": [ring]}
    feature = {"type": "Feature", "properties": {}, "geometry": polygon}
    flood = tmp_path / "flood.geojson"
    flood.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    argv = ["exposure", "--release", "data/demo/central_italy.release.parquet"]
    code = main([*argv, "--hazard", str(flood), "--out", str(tmp_path / "x.csv")])
    out = capsys.readouterr().out
    assert code == 0
    assert "no alert colour" in out and "headline" in out
