"""Loading a Kemendagri code list and checking codes against it. Functions take the session
first and never commit."""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
import shapely.errors
import shapely.geometry
from sqlalchemy import bindparam, delete, event, insert
from sqlmodel import Session, col, func, select

from exchange.audit import service as audit
from exchange.errors import ErrorDetail, InvalidInput
from exchange.i18n import t
from exchange.regions.models import Region, RegionBoundary

# Kemendagri's codes and names for all of Indonesia, as published by cahyadsn/wilayah (MIT,
# the licence beside it): what `exchange regions import` loads unless given another list.
SHIPPED_DIRECTORY = Path(__file__).resolve().parent / "data" / "wilayah.csv"
# Population by province and regency/city (Kepmendagri No 300.2.2-2138 Tahun 2025), from
# the same project and licence: what statistics' rates per 100,000 inhabitants divide by.
SHIPPED_POPULATION = Path(__file__).resolve().parent / "data" / "population.csv"
_CODE_SHAPES = {2, 5, 8, 13}  # lengths of 36, 36.03, 36.03.11, 36.03.11.2009
IMPORT_BATCH = 10_000


@dataclass(frozen=True)
class ImportResult:
    count: int
    sha256: str


def _rows(lines: Iterable[str], digest: hashlib._Hash) -> Iterator[dict[str, str]]:
    def hashed() -> Iterator[str]:
        for line in lines:
            digest.update(line.encode("utf-8"))
            yield line

    reader = csv.DictReader(hashed())
    try:
        if reader.fieldnames is None or not {"code", "name"} <= set(reader.fieldnames):
            raise InvalidInput(
                t("regions.bad_file", reason="the header must name the columns code and name")
            )
        for number, row in enumerate(reader, start=2):
            code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
            digits = code.replace(".", "")
            if len(code) not in _CODE_SHAPES or not (digits.isascii() and digits.isdigit()):
                raise InvalidInput(
                    t("regions.bad_file", reason=f"line {number}: {code!r} is not a code")
                )
            if not name or "\0" in name:
                raise InvalidInput(
                    t(
                        "regions.bad_file",
                        reason=f"line {number}: the name is missing or unreadable",
                    )
                )
            yield {"code": code, "name": name[:200]}
    except csv.Error as broken:  # a field past the csv module's limit, a stray quote
        raise InvalidInput(
            t("regions.bad_file", reason=f"line {reader.line_num}: {broken}")
        ) from None


def import_directory(session: Session, *, lines: Iterable[str], actor: str) -> ImportResult:
    """Replace the directory with the code list in ``lines`` (CSV with code,name)."""
    digest = hashlib.sha256()
    session.execute(delete(Region))
    session.info.pop(_LOADED, None)
    session.info.pop(_KNOWN, None)
    count = 0
    batch: list[dict[str, str]] = []
    for row in _rows(lines, digest):
        batch.append(row)
        if len(batch) == IMPORT_BATCH:
            session.execute(insert(Region), batch)
            count, batch = count + len(batch), []
    if batch:
        session.execute(insert(Region), batch)
        count += len(batch)
    result = ImportResult(count=count, sha256=digest.hexdigest())
    audit.record(
        session,
        action="regions.imported",
        subject="regions",
        actor=actor,
        details={"count": result.count, "sha256": result.sha256},
    )
    return result


_LOADED = "exchange.regions_loaded"


# Built once: every submission's transaction asks both, and building a statement costs
# more than SQLite running it.
_ANY_REGION = select(Region.code).limit(1)
_REGIONS_AMONG = select(Region.code).where(col(Region.code).in_(bindparam("codes", expanding=True)))


def is_loaded(session: Session) -> bool:
    """Whether a directory is loaded; asked once per transaction (a bulk asks per line)."""
    if _LOADED not in session.info:
        session.info[_LOADED] = session.exec(_ANY_REGION).first() is not None
    return bool(session.info[_LOADED])


_KNOWN = "exchange.regions_known"


@event.listens_for(Session, "after_soft_rollback")
def _forget_known(session: Session, _previous: Any) -> None:
    """An import rolled back: what it made known is not."""
    session.info.pop(_KNOWN, None)


def known_codes(session: Session, codes: Iterable[str]) -> set[str]:
    """Those of ``codes`` the directory has. Answers are remembered for the transaction:
    the lines of a bulk submission name the same few villages over and over."""
    asked: dict[str, bool] = session.info.setdefault(_KNOWN, {})
    wanted = set(codes)
    fresh = wanted - asked.keys()
    if fresh:
        found = set(session.exec(_REGIONS_AMONG, params={"codes": sorted(fresh)}))
        asked.update((code, code in found) for code in fresh)
    return {code for code in wanted if asked[code]}


def parents(code: str) -> list[str]:
    """The enclosing codes, nearest first: 36.03.11.2009 -> 36.03.11, 36.03, 36."""
    parts = code.split(".")
    return [".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def unknown_code_details(
    session: Session, located: list[tuple[str, str]], *, prefix: str
) -> list[ErrorDetail]:
    """One detail per code (at a JSON pointer) the loaded directory does not have, naming
    the nearest enclosing code it does."""
    if not located or not is_loaded(session):
        return []
    codes = {code for _, code in located}
    known = known_codes(session, codes | {p for code in codes for p in parents(code)})
    details = []
    for pointer, code in located:
        if code in known:
            continue
        nearest = next((p for p in parents(code) if p in known), None)
        message = (
            t("regions.unknown_code", code=code, parent=nearest)
            if nearest
            else t("regions.unknown_code_no_parent", code=code)
        )
        details.append(
            ErrorDetail(message, pointer=prefix + pointer, extra={"type": "unknown_region"})
        )
    return details


def nik_district(nik: str) -> str:
    return f"{nik[0:2]}.{nik[2:4]}.{nik[4:6]}"


DISTRICT_CODE, VILLAGE_CODE = 8, 13  # characters: 36.03.11, 36.03.11.2009


def names_of(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """The names of these region codes (those the directory has)."""
    wanted = set(codes)
    if not wanted:
        return {}
    rows = session.exec(select(Region.code, Region.name).where(col(Region.code).in_(wanted)))
    return dict(rows.all())


def names_under(
    session: Session, prefix: str, *, deepest: int, limit: int | None = None
) -> dict[str, str]:
    """The regions under ``prefix`` (itself included) whose code is at most ``deepest``
    characters long (5: regencies, 8: districts, 13: villages), by code."""
    query = (
        select(Region.code, Region.name)
        .where(col(Region.code).startswith(prefix), func.length(Region.code) <= deepest)
        .order_by(col(Region.code))
    )
    return dict(session.exec(query if limit is None else query.limit(limit)).all())


def villages_named(session: Session, name: str, within: str) -> list[str]:
    """Codes of the villages named ``name`` (any case) in the district of ``within``."""
    rows = session.exec(
        select(Region.code).where(
            func.lower(Region.name) == name.lower(),
            func.length(Region.code) == VILLAGE_CODE,
            col(Region.code).startswith(within[:DISTRICT_CODE]),
        )
    )
    return list(rows.all())


@functools.cache
def populations() -> dict[str, int]:
    """Inhabitants by province and regency/city code, from the shipped table."""
    with SHIPPED_POPULATION.open(encoding="utf-8", newline="") as source:
        return {row["code"]: int(row["total"]) for row in csv.DictReader(source)}


# Boundaries of Banten's regencies, districts and villages (cahyadsn/wilayah_boundaries,
# MIT, the licence beside it): what `exchange regions boundaries` loads unless given more.
SHIPPED_BOUNDARIES = Path(__file__).resolve().parent / "data" / "banten-boundaries.geojson"


REGION_CODE = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")
EARTH = shapely.geometry.box(-180, -90, 180, 90)


def _boundary_rows(document: Any) -> Iterator[dict[str, Any]]:
    """The rows of a GeoJSON FeatureCollection of region outlines, each checked: a region
    code (the feature's ``id`` or ``properties.code``), once in the file; a valid
    Polygon or MultiPolygon in longitude and latitude; a point to mark it by
    (``properties.centroid`` when it lies on Earth, else one worked out inside)."""
    features = document.get("features") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("type") != "FeatureCollection"
        or not (isinstance(features, list))
    ):
        raise InvalidInput.at(
            t("regions.bad_boundaries", reason="not a FeatureCollection"), "/type"
        )
    seen: set[str] = set()
    for index, feature in enumerate(features):
        at = f"/features/{index}"
        if not isinstance(feature, dict):
            raise InvalidInput.at(t("regions.bad_boundaries", reason="not a Feature"), at)
        properties = feature.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        code = properties.get("code") or feature.get("id")
        if not isinstance(code, str) or not REGION_CODE.fullmatch(code):
            raise InvalidInput.at(
                t("regions.bad_boundaries", reason="no Kemendagri region code"), at + "/id"
            )
        if code in seen:
            raise InvalidInput.at(
                t("regions.bad_boundaries", reason=f"{code} has two outlines"), at + "/id"
            )
        seen.add(code)
        geometry: Any = feature.get("geometry")
        try:
            outline = shapely.geometry.shape(geometry)
        except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException):
            outline = None
        if outline is not None:
            polygonal = outline.geom_type in ("Polygon", "MultiPolygon")
            outline = _repaired(outline) if polygonal else None
        if outline is None or outline.is_empty or not EARTH.contains(outline):
            raise InvalidInput.at(
                t("regions.bad_boundaries", reason="not a valid polygon in longitude, latitude"),
                at + "/geometry",
            )
        centroid: Any = properties.get("centroid")
        marked = (
            isinstance(centroid, list)
            and len(centroid) == 2
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in centroid
            )
            and EARTH.contains(shapely.geometry.Point(centroid))
        )
        if not marked:
            inside = outline.representative_point()
            centroid = [inside.x, inside.y]
        yield {
            "code": code,
            "shape": shapely.to_wkb(outline),
            "longitude": float(centroid[0]),
            "latitude": float(centroid[1]),
        }


def _repaired(outline: Any) -> Any:
    """An outline as GEOS would draw it: published boundaries have the odd ring that
    touches itself or a sliver of too few points, which ``make_valid`` mends; only its
    polygons are kept (a mended outline may add a stray line). None when nothing is left."""
    if outline.is_valid:
        return outline
    parts = [
        part
        for part in shapely.get_parts(shapely.make_valid(outline))
        if part.geom_type in ("Polygon", "MultiPolygon")
    ]
    polygons = [p for part in parts for p in getattr(part, "geoms", [part])]
    return shapely.MultiPolygon(polygons) if polygons else None


def import_boundaries(session: Session, *, data: bytes, actor: str) -> ImportResult:
    """Add the outlines in a GeoJSON FeatureCollection, replacing those of the same
    regions (another province's file adds to Banten's)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput.at(t("regions.bad_boundaries", reason="not JSON"), "") from None
    rows = list(_boundary_rows(document))
    codes = [row["code"] for row in rows]
    for start in range(0, len(codes), IMPORT_BATCH):
        chunk = codes[start : start + IMPORT_BATCH]
        session.execute(delete(RegionBoundary).where(col(RegionBoundary.code).in_(chunk)))
    for start in range(0, len(rows), IMPORT_BATCH):
        session.execute(insert(RegionBoundary), rows[start : start + IMPORT_BATCH])
    result = ImportResult(count=len(rows), sha256=hashlib.sha256(data).hexdigest())
    audit.record(
        session,
        action="regions.boundaries_imported",
        subject="regions",
        actor=actor,
        details={"count": result.count, "sha256": result.sha256},
    )
    return result


def has_boundaries(session: Session) -> bool:
    return session.exec(select(RegionBoundary.code).limit(1)).first() is not None


def boundaries_under(session: Session, within: str, *, length: int) -> dict[str, RegionBoundary]:
    """The outlines of the regions under ``within`` whose code is ``length`` long."""
    rows = session.exec(
        select(RegionBoundary).where(
            col(RegionBoundary.code).startswith(within + "."),
            func.length(RegionBoundary.code) == length,
        )
    )
    return {row.code: row for row in rows}
