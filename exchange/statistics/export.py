"""The statistics answer as a table (CSV: one line per region, per group and for the
unplaced reports and the area's total, the same figures as the JSON) and as a map's data
(GeoJSON)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping

import shapely

from exchange.statistics.contracts import Figures, RegionFigures, Statistics

FORMULA_STARTS = frozenset("=+-@\t\r")
COLUMNS = (
    "scope",
    "code",
    "name",
    "group",
    "reports",
    "people",
    "previous_reports",
    "previous_people",
    "change_reports",
    "change_people",
    "reports_per_100k",
    "people_per_100k",
    "withheld",
    "expected",
    "excess",
    "hotspot",
)


def _text(value: str) -> str:
    """A name as a spreadsheet will not run it: one that starts like a formula gets a
    leading apostrophe (OWASP's advice on CSV injection). Region names come from a file an
    administrator uploads."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def _line(scope: str, region: RegionFigures, figures: Figures, group: str) -> list[object]:
    hotspot = region.hotspot if figures is region else None
    return [
        scope,
        region.code,
        _text(region.name),
        _text(group),
        *(
            "" if value is None else value
            for value in (
                figures.reports,
                figures.people,
                figures.previous_reports,
                figures.previous_people,
                figures.change_reports,
                figures.change_people,
                figures.reports_per_100k,
                figures.people_per_100k,
            )
        ),
        "yes" if figures.withheld else "",
        "" if hotspot is None else hotspot.expected,
        "" if hotspot is None else hotspot.excess,
        "" if hotspot is None else ("yes" if hotspot.flagged else "no"),
    ]


def csv_text(statistics: Statistics) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for scope, rows in (
        ("region", statistics.regions),
        ("unplaced", [statistics.unplaced]),
        ("total", [statistics.total]),
    ):
        for region in rows:
            writer.writerow(_line(scope, region, region, ""))
            for group in region.groups:
                writer.writerow(_line(scope, region, group, group.group))
    return out.getvalue()


def geojson_text(statistics: Statistics, outlines: Mapping[str, bytes]) -> str:
    """The answer's regions as a GeoJSON FeatureCollection: each region with an outline
    (WKB, by code) as a Feature whose properties are its figures; the unplaced reports and
    the total, which have no outline of their own, as properties of the collection."""
    codes = [row.code for row in statistics.regions if row.code in outlines]
    shapes = shapely.from_wkb([outlines[code] for code in codes])
    geometries = dict(zip(codes, shapely.to_geojson(shapes).tolist(), strict=True))
    features = [
        f'{{"type":"Feature","id":{json.dumps(row.code)},"geometry":{geometries[row.code]},'
        f'"properties":{row.model_dump_json(exclude=None if row.groups else {"groups"})}}}'
        for row in statistics.regions
        if row.code in geometries
    ]
    about = json.dumps(
        statistics.model_dump(mode="json", by_alias=True, exclude={"regions"}),
        ensure_ascii=False,
    )
    return f'{{"type":"FeatureCollection","properties":{about},"features":[{",".join(features)}]}}'
