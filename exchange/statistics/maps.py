"""The choropleth: regions' outlines drawn as SVG on the server, coloured by their count,
hotspots ringed, with a legend. No tiles and no request to another host, so the map works
on a closed network, prints, and goes into a slide as it is.

The outlines are simplified to half a pixel of the drawing (GEOS, through shapely) and
projected once per area and level; a drawing then only colours the cached paths. Colours
are presentation attributes, not styles, so the same SVG is shown in the console under its
content security policy and downloaded as a file."""

from __future__ import annotations

import hashlib
import html
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from exchange.statistics.contracts import RegionFigures, Statistics

WIDTH = 960  # user units of the drawing; a unit is a tenth of a pixel in the paths
SCALE = 10
TOLERANCE_PX = 0.5
# ColorBrewer's YlOrRd, five classes: light for few, dark for many; it prints in grey.
PALETTE = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
EMPTY = "#f0f0f0"
WITHHELD = "#9e9e9e"
LEGEND_HEIGHT = 60


@dataclass(frozen=True)
class Outline:
    code: str
    shape: bytes  # WKB
    longitude: float
    latitude: float


@dataclass(frozen=True)
class Drawn:
    path: str
    x: float
    y: float


@dataclass(frozen=True)
class BaseMap:
    width: int
    height: int
    regions: dict[str, Drawn]


_cache: OrderedDict[str, BaseMap] = OrderedDict()
_lock = threading.Lock()
CACHED = 32


def base_map(outlines: Sequence[Outline]) -> BaseMap:
    """The outlines projected and simplified for a drawing ``WIDTH`` wide, cached by
    their content."""
    digest = hashlib.sha256()
    for outline in outlines:
        digest.update(outline.code.encode())
        digest.update(outline.shape)
    key = digest.hexdigest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    drawn = _project(outlines)
    with _lock:
        _cache[key] = drawn
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return drawn


def _project(outlines: Sequence[Outline]) -> BaseMap:
    if not outlines:
        return BaseMap(WIDTH, WIDTH // 2, {})
    shapes = shapely.from_wkb([outline.shape for outline in outlines])
    west, south, east, north = shapely.total_bounds(shapes)
    # Equirectangular, the longitude shortened by the cosine of the middle latitude: true
    # enough for a province.
    stretch = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * stretch, north - south, 1e-9)
    per_degree = WIDTH / ((east - west) * stretch or span)
    height = max(1, round((north - south) * per_degree))
    # Douglas-Peucker without the topology check: a ring that collapses is dropped, and
    # the check would cost seven times as much for nothing that shows at this size.
    simplified = shapely.simplify(shapes, TOLERANCE_PX / per_degree, preserve_topology=False)

    def to_units(points: np.ndarray) -> np.ndarray:
        x = (points[:, 0] - west) * stretch * per_degree
        y = (north - points[:, 1]) * per_degree
        return np.column_stack((x, y)) * SCALE

    regions = {}
    for outline, shape in zip(outlines, simplified, strict=True):
        parts = []
        for polygon in getattr(shape, "geoms", [shape]):
            for ring in (polygon.exterior, *polygon.interiors):
                units = np.rint(to_units(np.asarray(ring.coords))).astype(np.int64)
                if len(units) < 4:
                    continue
                numbers = " ".join(map(str, units[:-1].ravel().tolist()))
                first, _, rest = numbers.partition(" ")
                second, _, rest = rest.partition(" ")
                parts.append(f"M{first} {second}L{rest}Z")
        marker = to_units(np.array([[outline.longitude, outline.latitude]]))[0]
        regions[outline.code] = Drawn("".join(parts), float(marker[0]), float(marker[1]))
    return BaseMap(WIDTH, height, regions)


def breaks(values: Sequence[int]) -> list[int]:
    """Upper bounds of up to five classes of the non-zero values, by quantile."""
    ordered = sorted(v for v in values if v > 0)
    if not ordered:
        return []
    found: list[int] = []
    for n in range(1, len(PALETTE) + 1):
        bound = ordered[min(len(ordered) - 1, math.ceil(n * len(ordered) / len(PALETTE)) - 1)]
        if not found or bound > found[-1]:
            found.append(bound)
    return found


def colour(value: int | None, bounds: Sequence[int]) -> str:
    if value is None:
        return WITHHELD
    if value <= 0 or not bounds:
        return EMPTY
    index = next((i for i, bound in enumerate(bounds) if value <= bound), len(bounds) - 1)
    offset = len(PALETTE) - len(bounds)  # fewer classes take the darker end
    return PALETTE[index + offset]


def _attributes(row: RegionFigures, measure: str) -> str:
    values = {
        "code": row.code,
        "name": row.name,
        "reports": row.reports,
        "people": row.people,
        "previous-reports": row.previous_reports,
        "change-reports": row.change_reports,
        "rate": row.reports_per_100k,
        "measure": getattr(row, measure),
        "withheld": "yes" if row.withheld else None,
        "hotspot": "yes" if row.hotspot and row.hotspot.flagged else None,
        "expected": row.hotspot.expected if row.hotspot else None,
    }
    return " ".join(
        f'data-{key}="{html.escape(str(value))}"'
        for key, value in values.items()
        if value is not None
    )


def svg(
    statistics: Statistics,
    outlines: Sequence[Outline],
    *,
    measure: str = "reports",
    words: Mapping[str, str],
    links: Mapping[str, str] | None = None,
) -> str:
    """The drawing of ``statistics`` over its regions' ``outlines``: each region filled by
    its ``measure`` (``reports`` or ``people``), hotspots ringed, a legend below.
    ``words``: ``title``, ``legend``, ``none``, ``withheld``, ``hotspot`` and ``tooltip``
    (a format with ``{name}`` and ``{value}``); ``links``: where a region leads (drill
    down), by code."""
    drawn = base_map(outlines)
    rows = {row.code: row for row in statistics.regions}
    bounds = breaks([getattr(row, measure) or 0 for row in rows.values()])
    height = drawn.height + LEGEND_HEIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {drawn.width * SCALE} '
        f'{height * SCALE}" width="{drawn.width}" height="{height}" role="img" '
        f'aria-labelledby="map-title" class="choropleth" font-family="sans-serif">',
        f'<title id="map-title">{html.escape(words["title"])}</title>',
        f'<g stroke="#ffffff" stroke-width="{SCALE // 2}" stroke-linejoin="round">',
    ]
    hotspots = []
    for code, region in drawn.regions.items():
        row = rows.get(code)
        if row is None:
            continue
        value = getattr(row, measure)
        tooltip = words["tooltip"].format(
            name=row.name, value=words["withheld"] if value is None else value
        )
        path = (
            f'<path class="region" d="{region.path}" fill="{colour(value, bounds)}" '
            f"{_attributes(row, measure)}><title>{html.escape(tooltip)}</title></path>"
        )
        link = (links or {}).get(code)
        out.append(f'<a href="{html.escape(link)}">{path}</a>' if link else path)
        if row.hotspot and row.hotspot.flagged:
            hotspots.append(region)
    out.append("</g>")
    ring = 6 * SCALE
    out.extend(
        f'<circle class="hotspot" cx="{spot.x:.0f}" cy="{spot.y:.0f}" r="{ring}" '
        f'fill="none" stroke="#000000" stroke-width="{SCALE * 2}" pointer-events="none"/>'
        for spot in hotspots
    )
    out.append(_legend(bounds, drawn.height, words, public=statistics.public))
    out.append("</svg>")
    return "".join(out)


def _legend(bounds: Sequence[int], top: int, words: Mapping[str, str], *, public: bool) -> str:
    box = 18 * SCALE
    y = (top + 12) * SCALE
    text_y = y + box + 14 * SCALE
    size = 12 * SCALE
    items = [(EMPTY, words["none"])]
    lower = 1
    offset = len(PALETTE) - len(bounds)
    for index, bound in enumerate(bounds):
        label = f"{lower}" if lower == bound else f"{lower}-{bound}"
        items.append((PALETTE[index + offset], label))
        lower = bound + 1
    if public:
        items.append((WITHHELD, words["withheld"]))
    parts = [
        f'<g class="legend" font-size="{size}"><text x="{8 * SCALE}" y="{y - 2 * SCALE}">'
        f"{html.escape(words['legend'])}</text>"
    ]
    x = 8 * SCALE
    for fill, label in items:
        parts.append(
            f'<rect x="{x}" y="{y}" width="{box * 3}" height="{box}" fill="{fill}" '
            f'stroke="#666666" stroke-width="{SCALE // 2}"/>'
            f'<text x="{x}" y="{text_y}">{html.escape(label)}</text>'
        )
        x += box * 3 + 12 * SCALE
    parts.append(
        f'<circle cx="{x + 6 * SCALE}" cy="{y + box // 2}" r="{6 * SCALE}" fill="none" '
        f'stroke="#000000" stroke-width="{SCALE * 2}"/>'
        f'<text x="{x + 16 * SCALE}" y="{y + box // 2 + 4 * SCALE}">'
        f"{html.escape(words['hotspot'])}</text></g>"
    )
    return "".join(parts)


def sparkline(counts: Sequence[int], *, width: int = 160, height: int = 32) -> str:
    """A small line of monthly counts, the last month dotted, for a table cell."""
    top = max(max(counts, default=0), 1)
    step = width / max(len(counts) - 1, 1)
    points = [
        (round(i * step, 1), round(height - 2 - (value / top) * (height - 4), 1))
        for i, value in enumerate(counts)
    ]
    line = " ".join(f"{x},{y}" for x, y in points)
    last = points[-1] if points else (0, height)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-hidden="true" class="sparkline">'
        f'<polyline points="{line}" fill="none" stroke="#bd0026" stroke-width="2"/>'
        f'<circle cx="{last[0]}" cy="{last[1]}" r="3" fill="#bd0026"/></svg>'
    )
