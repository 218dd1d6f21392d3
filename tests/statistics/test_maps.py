"""The SVG map: every region with an outline drawn and coloured by its class, names
escaped, hotspots ringed, a village map of Banten within its size."""

from __future__ import annotations

import json
import re
from datetime import date
from xml.etree import ElementTree

import shapely

from exchange.regions.service import SHIPPED_BOUNDARIES
from exchange.statistics import maps
from exchange.statistics.contracts import HotspotOut, RegionFigures, Statistics
from exchange.statistics.export import csv_text

WORDS = {
    "title": "Banten",
    "legend": "Reports",
    "none": "0",
    "withheld": "withheld",
    "hotspot": "hotspot",
    "tooltip": "{name}: {value}",
}


def _outlines(level: str) -> list[maps.Outline]:
    document = json.loads(SHIPPED_BOUNDARIES.read_text())
    return [
        maps.Outline(
            feature["id"],
            shapely.to_wkb(shapely.from_geojson(json.dumps(feature["geometry"]))),
            *feature["properties"]["centroid"],
        )
        for feature in document["features"]
        if feature["properties"]["level"] == level
    ]


def _figures(code: str, reports: int | None, **extra: object) -> RegionFigures:
    return RegionFigures(
        code=code,
        name=str(extra.pop("name", code)),
        reports=reports,
        people=reports,
        previous_reports=0,
        previous_people=0,
        change_reports=reports,
        change_people=reports,
        **extra,  # type: ignore[arg-type]
    )


def _answer(rows: list[RegionFigures], *, public: bool = False) -> Statistics:
    empty = _figures("", 0)
    return Statistics(
        level="kabupaten",
        within="36",
        within_name="Banten",
        period_from=date(2026, 1, 1),
        period_to=date(2026, 1, 31),
        previous_from=date(2025, 12, 1),
        previous_to=date(2025, 12, 31),
        type=None,
        indicator=None,
        group_by=None,
        public=public,
        threshold=None,
        regions=rows,
        unplaced=empty,
        total=empty,
    )


def test_classes_by_quantile() -> None:
    assert maps.breaks([0, 0, 0]) == []
    assert maps.breaks([5, 5, 5]) == [5]
    assert maps.breaks(list(range(1, 11))) == [2, 4, 6, 8, 10]
    bounds = maps.breaks(list(range(1, 11)))
    assert maps.colour(0, bounds) == maps.EMPTY
    assert maps.colour(None, bounds) == maps.WITHHELD
    assert maps.colour(1, bounds) == maps.PALETTE[0]
    assert maps.colour(10, bounds) == maps.PALETTE[-1]
    assert maps.colour(5, [5]) == maps.PALETTE[-1]  # one class: the darkest


def test_the_regencies_drawn_coloured_escaped_and_ringed() -> None:
    outlines = _outlines("kabupaten")
    hot = HotspotOut(expected=1.0, excess=9.0, p_value=1e-6, flagged=True)
    rows = [
        _figures(o.code, n * 3, hotspot=hot if o.code == "36.03" else None)
        for n, o in enumerate(outlines)
    ]
    rows[0] = _figures(outlines[0].code, 0, name='<script>alert("x")</script>')
    drawing = maps.svg(_answer(rows), outlines, words=WORDS, links={"36.03": "/next?a=1&b=2"})
    tree = ElementTree.fromstring(drawing)  # noqa: S314  # the hub's own drawing; escaped names keep it XML
    namespace = {"svg": "http://www.w3.org/2000/svg"}
    paths = tree.findall(".//svg:path", namespace)
    assert len(paths) == 8
    fills = {p.get("data-code"): p.get("fill") for p in paths}
    assert fills[outlines[0].code] == maps.EMPTY
    assert fills[outlines[-1].code] == maps.PALETTE[-1]
    assert "<script>" not in drawing
    assert len(tree.findall(".//svg:circle[@class='hotspot']", namespace)) == 1
    link = tree.find(".//svg:a", namespace)
    assert link is not None
    assert link.get("href") == "/next?a=1&b=2"


def test_banten_villages_fit_the_budget() -> None:
    outlines = _outlines("desa")
    assert len(outlines) == 1551
    rows = [_figures(o.code, i % 40) for i, o in enumerate(outlines)]
    maps._cache.clear()
    drawing = maps.svg(_answer(rows), outlines, words=WORDS)
    assert len(drawing.encode()) <= 1_500_000
    assert len(re.findall(r'<path class="region"', drawing)) == 1551
    again = maps.svg(_answer(rows), outlines, words=WORDS)
    assert again == drawing  # from the cache, the same drawing


def test_a_public_map_shows_withheld_regions_grey() -> None:
    outlines = _outlines("kabupaten")
    rows = [_figures(o.code, None, withheld=True) for o in outlines]
    drawing = maps.svg(_answer(rows, public=True), outlines, words=WORDS)
    assert drawing.count(f'fill="{maps.WITHHELD}"') >= 8
    assert "withheld" in drawing


def test_the_csv_runs_no_formula() -> None:
    rows = [_figures("36.01", 3, name='=HYPERLINK("http://x")'), _figures("36.02", 4)]
    table = csv_text(_answer(rows))
    assert "\n" + "region,36.01,'=HYPERLINK" in table.replace('"', "")
    assert "region,36.02,36.02,,4," in table
