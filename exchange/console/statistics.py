"""The early-warning picture: the map of the agency's reports by regency, district or
village with the hotspots ringed, the table beside it, each indicator's months (a modus
operandi rising), the top destinations, and the view as CSV, SVG and PNG."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from exchange.accounts.models import Role
from exchange.console.common import (
    PREFIX,
    SECURITY_HEADERS,
    Visitor,
    VisitorDep,
    language,
    page,
    require,
    say,
)
from exchange.dependencies import HubDep, SessionDep
from exchange.hub import Hub
from exchange.i18n import Locale
from exchange.jsonbody import HubRoute
from exchange.models import utcnow
from exchange.regions import service as regions
from exchange.routing.contracts import Indicator
from exchange.statistics import maps, service
from exchange.statistics.contracts import Level, Statistics
from exchange.statistics.export import csv_text
from exchange.statistics.facts import AREA_PATTERN, CODE_LENGTHS, LEVELS, WIB, level_of

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=HubRoute)

Area = Annotated[str | None, Query(pattern=AREA_PATTERN)]
Measure = Literal["reports", "people"]
TOP_DESTINATIONS = 10


class View:
    """What the page shows, as its query says: the same for the page, its CSV and its SVG."""

    def __init__(
        self,
        hub: Hub,
        *,
        level: Level | None,
        within: str | None,
        start: date | None,
        end: date | None,
        type_: str | None,
        indicator: str | None,
        measure: Measure,
    ) -> None:
        self.within = within or hub.settings.statistics_area
        deeper = LEVELS[min(len(LEVELS) - 1, LEVELS.index(level_of(self.within)) + 1)]
        self.query = service.StatsQuery(
            level=level or cast(Level, deeper),
            within=self.within,
            period_from=start,
            period_to=end,
            type=type_ or None,
            indicator=indicator or None,
        )
        self.measure = measure

    def parameters(self, **changes: str) -> str:
        values = {
            "level": self.query.level,
            "within": self.query.within,
            "from": self.query.period_from.isoformat() if self.query.period_from else "",
            "to": self.query.period_to.isoformat() if self.query.period_to else "",
            "type": self.query.type or "",
            "indicator": self.query.indicator or "",
            "measure": self.measure,
            **changes,
        }
        return urlencode({key: value for key, value in values.items() if value})


def _answer(
    request: Request, session: Session, hub: Hub, visitor: Visitor, view: View
) -> tuple[Statistics, Locale]:
    """What every statistics route starts with: a receiver's agency's counts for the view,
    in the reader's language."""
    require(visitor, Role.receiver)
    locale = language(request)
    answer = service.statistics(
        session,
        reader=visitor.agency.id,
        query=view.query,
        registry=hub.registry,
        today=utcnow().astimezone(WIB).date(),
        locale=locale,
    )
    return answer, locale


def _drawing(session: Session, statistics: Statistics, view: View, locale: Locale) -> str:
    outlines = regions.boundaries_under(
        session, statistics.within, length=CODE_LENGTHS[statistics.level]
    )
    links = None
    if statistics.level != "desa":  # a region opens on its own regions, a level down
        below = LEVELS[LEVELS.index(statistics.level) + 1]
        links = {
            code: f"{PREFIX}/statistics?{view.parameters(within=code, level=below)}"
            for code in outlines
        }
    return maps.svg(
        statistics,
        [
            maps.Outline(code, row.shape, row.longitude, row.latitude)
            for code, row in outlines.items()
        ],
        measure=view.measure,
        words={
            "title": say(
                locale,
                "stats_map_title",
                area=statistics.within_name,
                start=statistics.period_from.isoformat(),
                end=statistics.period_to.isoformat(),
            ),
            "legend": say(locale, f"stats_{view.measure}"),
            "none": "0",
            "withheld": say(locale, "stats_withheld"),
            "hotspot": say(locale, "stats_hotspot"),
            "tooltip": "{name}: {value}",
        },
        links=links,
    )


def view_dependency(
    hub: HubDep,
    level: Level | None = None,
    within: Area = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
    type_: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    indicator: Annotated[Indicator | None, Query()] = None,
    measure: Measure = "reports",
) -> View:
    return View(
        hub,
        level=level,
        within=within,
        start=from_,
        end=to,
        type_=type_,
        indicator=indicator,
        measure=measure,
    )


@router.get("/statistics")
def statistics_page(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    view: Annotated[View, Depends(view_dependency)],
) -> Response:
    answer, locale = _answer(request, session, hub, visitor, view)
    today = utcnow().astimezone(WIB).date()
    months, trends = service.trends(
        session,
        reader=visitor.agency.id,
        within=view.within,
        today=today,
        registry=hub.registry,
        locale=locale,
    )
    destinations = service.statistics(
        session,
        reader=visitor.agency.id,
        query=service.StatsQuery(
            level="kabupaten" if len(view.within) == 2 else view.query.level,
            within=view.within,
            period_from=answer.period_from,
            period_to=answer.period_to,
            type=view.query.type,
            indicator=view.query.indicator,
            group_by="destination",
        ),
        registry=hub.registry,
        today=today,
        locale=locale,
    ).total.groups
    top = sorted(
        (group for group in destinations if group.group and group.reports),
        key=lambda group: (-(group.reports or 0), group.group),
    )[:TOP_DESTINATIONS]
    above = [view.within[:length] for length in (2, 5, 8) if length <= len(view.within)]
    names = regions.names_of(session, above)
    trail = [(code, names.get(code, code)) for code in above]
    return page(
        request,
        "statistics.html",
        visitor=visitor,
        answer=answer,
        view=view,
        drawing=_drawing(session, answer, view, locale),
        hotspots=[row for row in answer.regions if row.hotspot and row.hotspot.flagged],
        months=months,
        trends=trends,
        sparkline=maps.sparkline,
        top=top,
        trail=trail,
        types=hub.registry.names(),
        indicators=hub.registry.indicator_labels(),
        levels=[level for level in LEVELS[1:] if CODE_LENGTHS[level] > len(view.within)],
        below=None if answer.level == "desa" else LEVELS[LEVELS.index(answer.level) + 1],
    )


@router.get("/statistics.csv")
def statistics_csv(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    view: Annotated[View, Depends(view_dependency)],
) -> Response:
    answer, _ = _answer(request, session, hub, visitor, view)
    return Response(
        csv_text(answer),
        media_type="text/csv; charset=utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="statistics-{answer.within}.csv"',
        },
    )


@router.get("/statistics.svg")
def statistics_svg(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    view: Annotated[View, Depends(view_dependency)],
) -> Response:
    answer, locale = _answer(request, session, hub, visitor, view)
    drawing = _drawing(session, answer, view, locale)
    return Response(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + drawing,
        media_type="image/svg+xml",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'inline; filename="map-{answer.within}.svg"',
        },
    )
