"""HTTP surface of statistics: ``GET /v1/stats``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from exchange.agencies.models import Scope
from exchange.dependencies import HubDep, PrincipalDep, SessionDep
from exchange.i18n import negotiate
from exchange.jsonbody import HubRoute
from exchange.models import utcnow
from exchange.regions import service as regions
from exchange.routing.contracts import Indicator
from exchange.statistics import service
from exchange.statistics.contracts import Dimension, Level, Statistics
from exchange.statistics.export import csv_text, geojson_text
from exchange.statistics.facts import AREA_PATTERN, CODE_LENGTHS, WIB

router = APIRouter(tags=["statistics"], route_class=HubRoute)

Area = Annotated[str, Query(pattern=AREA_PATTERN)]


@router.get(
    "/v1/stats",
    response_model=Statistics,
    responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}},
)
def get_statistics(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    reader: PrincipalDep,
    level: Level = "kabupaten",
    within: Area | None = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    type_: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    indicator: Annotated[Indicator | None, Query()] = None,
    group_by: Dimension | None = None,
    public: bool = False,
    format_: Annotated[Literal["json", "csv", "geojson"], Query(alias="format")] = "json",
) -> Response:
    """Reports and people at risk per region of `level` within `within` (default: the
    hub's area), for the period `from`..`to` (inclusive; default the last 30 days) and
    the period of the same length before it, optionally per group. Counts only the
    reports the caller may see. `public=true` counts every report for publication: one
    whole calendar year that has ended, no filters, every count below 11 withheld with
    enough others that none can be worked out from the rest (docs/early-warning.md).
    `format=csv` answers a table, `format=geojson` the regions with their outlines."""
    if not public:
        reader.require(Scope.receive)
    statistics = service.statistics(
        session,
        reader=reader.agency_id,
        query=service.StatsQuery(
            level=level,
            within=within or hub.settings.statistics_area,
            period_from=from_,
            period_to=to,
            type=type_,
            indicator=indicator,
            group_by=group_by,
            public=public,
        ),
        registry=hub.registry,
        today=utcnow().astimezone(WIB).date(),
        locale=negotiate(request.headers.get("accept-language")),
    )
    if format_ == "csv":
        return Response(
            csv_text(statistics),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="statistics.csv"'},
        )
    if format_ == "geojson":
        outlines = regions.boundaries_under(
            session, statistics.within, length=CODE_LENGTHS[statistics.level]
        )
        return Response(
            geojson_text(statistics, {code: row.shape for code, row in outlines.items()}),
            media_type="application/geo+json",
        )
    return JSONResponse(statistics.model_dump(mode="json", by_alias=True))
