"""The alert desk (what was routed to the agency), one report, acknowledging it, and the
sender's view of what the agency sent."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role
from exchange.audit import service as audit
from exchange.console.common import (
    DESK_PAGE,
    PREFIX,
    SECURITY_HEADERS,
    SHOWN_ERRORS,
    CsrfField,
    Visitor,
    VisitorDep,
    check_csrf,
    language,
    page,
    redirect,
    refusal,
    require,
    say,
    signed_in,
)
from exchange.delivery import receipts
from exchange.delivery.models import Delivery, DeliveryState
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError, InvalidInput
from exchange.hub import Hub
from exchange.i18n import Locale, t
from exchange.jsonbody import HubRoute
from exchange.protection import service as protection
from exchange.regions import service as regions_service
from exchange.registry.service import values_at
from exchange.reports import service as reports
from exchange.reports.models import Report
from exchange.routing.contracts import (
    SEVERITY_ORDER,
    Indicator,
    RegionPrefix,
    Severity,
    TypeName,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=HubRoute)
DESK_REGIONS = 400  # a province's regencies and districts (Banten: 8 and 155)


# --- the alert desk -------------------------------------------------------------------------


def _desk_rows(
    session: Session, visitor: Visitor, *, state: str, search: reports.Search
) -> list[tuple[Delivery, Report]]:
    """What was routed to the agency, newest first, through the search API's filters."""
    query = (
        select(Delivery, Report)
        .join(Report, col(Report.id) == col(Delivery.report_id))
        .where(Delivery.agency_id == visitor.agency.id, *reports.matching(search))
        .order_by(col(Delivery.created_at).desc())
        .limit(DESK_PAGE)
    )
    if state == "new":
        query = query.where(col(Delivery.acknowledged_at).is_(None))
    elif state == "acknowledged":
        query = query.where(col(Delivery.acknowledged_at).is_not(None))
    return [(delivery, report) for delivery, report in session.exec(query).all()]


def _filter(name: str, value: str, shape: TypeAdapter[Any]) -> str | None:
    """A desk filter as the form sent it: empty is no filter; anything else must have the
    shape the search API accepts, or the page says which parameter is wrong."""
    if not value:
        return None
    try:
        return str(shape.validate_python(value))
    except ValidationError as invalid:
        reason = invalid.errors()[0]["msg"]
        raise InvalidInput.at(
            t("form.invalid_field", field=name, reason=reason), f"/{name}", location="query"
        ) from None


REGION = TypeAdapter(RegionPrefix)
REGION_CODE = re.compile(r"^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$")  # a dotted Kemendagri code
SEVERITY = TypeAdapter(Severity)
INDICATOR = TypeAdapter(Indicator)
TYPE = TypeAdapter(TypeName)


def _awaiting(session: Session, agency_id: str) -> tuple[int, str | None]:
    """How many deliveries to the agency await acknowledgement, and the newest's id: two
    index lookups, cheap enough for every open desk to ask each second."""
    waiting = (Delivery.agency_id == agency_id, col(Delivery.acknowledged_at).is_(None))
    count = session.exec(select(func.count()).select_from(Delivery).where(*waiting)).one()
    newest = session.exec(
        select(Delivery.id).where(*waiting).order_by(col(Delivery.created_at).desc()).limit(1)
    ).first()
    return int(count), newest


Filter = Annotated[str, Query(max_length=64)]


@router.get("/desk")
def desk(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    state: Filter = "",
    type: Filter = "",
    region: Filter = "",
    severity: Filter = "",
    indicator: Filter = "",
) -> Response:
    require(visitor, Role.receiver)
    try:
        search = reports.Search(
            types=tuple(filter(None, [_filter("type", type, TYPE)])),
            region=_filter("region", region, REGION),
            min_severity=_filter("severity", severity, SEVERITY),
            indicator=_filter("indicator", indicator, INDICATOR),
        )
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    rows = _desk_rows(session, visitor, state=state, search=search)
    # The jurisdiction's regencies and districts, to pick a region by name.
    regions = regions_service.names_under(
        session,
        visitor.agency.jurisdiction,
        deepest=regions_service.DISTRICT_CODE,
        limit=DESK_REGIONS,
    )
    names = regions_service.names_of(
        session, {r.region for _, r in rows if r.region} - set(regions)
    )
    new, newest = _awaiting(session, visitor.agency.id)
    return page(
        request,
        "desk.html",
        visitor=visitor,
        rows=rows,
        names={**regions, **names},
        regions=regions,
        new=new,
        newest=newest or "",
        filters={
            "state": state,
            "type": type,
            "region": region,
            "severity": severity,
            "indicator": indicator,
        },
        types=hub.registry.names(),
        severities=list(SEVERITY_ORDER),
        indicators=hub.registry.indicator_labels(),
    )


@router.get("/desk/new")
def desk_new(request: Request, session: SessionDep, hub: HubDep) -> JSONResponse:
    """How many deliveries await acknowledgement, and the newest: the desk's script asks
    every second and reloads the list when it changed. Asking does not count as activity."""
    visitor = signed_in(request, session, hub, complete=True, touch=False)
    require(visitor, Role.receiver)
    count, newest = _awaiting(session, visitor.agency.id)
    return JSONResponse({"new": count, "newest": newest}, headers=SECURITY_HEADERS)


# --- a report -------------------------------------------------------------------------------


def _fields(
    hub: Hub, report: Report, data: dict[str, Any], locale: Locale
) -> list[tuple[str, str]]:
    """(label, value) for each leaf of the payload, labelled from its schema."""
    report_type = hub.registry.get(report.type, report.version)
    index = hub.registry.field_index(report_type)
    found: list[tuple[str, str]] = []
    for pattern, node in index.items():
        if node.get("type") in {"object", "array"}:
            continue
        for pointer, value in values_at(data, pattern):
            label = node.get("x-description-id" if locale == "id" else "description", pointer)
            labels = node.get("x-labels", {})
            if isinstance(value, bool):
                shown = say(locale, "yes" if value else "no")
            elif isinstance(value, str) and value in labels:
                shown = labels[value][locale]
            else:
                shown = str(value)
            found.append((f"{label} ({pointer})", shown))
    return found


@router.get("/reports/{report_id}")
def report_page(
    request: Request, report_id: str, session: SessionDep, hub: HubDep, visitor: VisitorDep
) -> Response:
    try:
        report = reports.read(session, principal=visitor.principal, report_id=report_id)
        seen = protection.view(
            session,
            report=report,
            reader=visitor.agency,
            registry=hub.registry,
            sealer=hub.keyring.sealer,
        )
        thread, _ = reports.thread(session, principal=visitor.principal, report_id=report_id)
    except ExchangeError as refused:
        # A named person asked for a report its agency may not see (or none): the answer
        # is "not found" either way, and the asking is on the record.
        audit.record(
            session,
            action="report.read_refused",
            subject=f"report:{report_id}",
            actor=visitor.principal.actor,
            details={"code": refused.code},
        )
        reason = refused.code if refused.code in SHOWN_ERRORS else "other"
        return page(request, "error.html", status=refused.status, reason=reason)
    mine = [
        d
        for d in session.exec(
            select(Delivery).where(
                Delivery.report_id == report.id, Delivery.agency_id == visitor.agency.id
            )
        )
    ]
    fields = _fields(hub, report, seen.data, language(request))
    codes = {value for _, value in fields if REGION_CODE.match(value)}
    names = regions_service.names_of(session, codes | ({report.region} if report.region else set()))
    return page(
        request,
        "report.html",
        visitor=visitor,
        report=report,
        fields=[(label, f"{v} · {names[v]}" if v in names else v) for label, v in fields],
        region_name=names.get(report.region or "", ""),
        withheld=seen.withheld,
        because=seen.withheld_because,
        earlier=seen.earlier_reports,
        thread=thread,
        deliveries=mine,
        acknowledgeable=visitor.has(Role.receiver)
        and any(d.acknowledged_at is None and d.attempts > 0 for d in mine),
    )


@router.post("/reports/{report_id}/ack")
def acknowledge(
    request: Request,
    report_id: str,
    session: SessionDep,
    visitor: VisitorDep,
    csrf: CsrfField,
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    check_csrf(visitor, csrf)
    require(visitor, Role.receiver)
    pending = session.exec(
        select(Delivery).where(
            Delivery.report_id == report_id,
            Delivery.agency_id == visitor.agency.id,
            col(Delivery.acknowledged_at).is_(None),
            col(Delivery.state) != DeliveryState.dead,
            col(Delivery.attempts) > 0,
        )
    ).all()
    for delivery in pending:
        receipts.acknowledge(
            session,
            agency_id=visitor.agency.id,
            delivery_id=delivery.id,
            actor=visitor.principal.actor,
            note=note.strip() or None,
        )
    return redirect(f"{PREFIX}/reports/{report_id}")


# --- what the agency sent -------------------------------------------------------------------


@router.get("/sent")
def sent(request: Request, session: SessionDep, visitor: VisitorDep) -> Response:
    require(visitor, Role.reporter)
    sent_reports = session.exec(
        select(Report)
        .where(Report.sender == visitor.agency.id)
        .order_by(col(Report.received_at).desc())
        .limit(DESK_PAGE)
    ).all()
    ids = [report.id for report in sent_reports]
    deliveries: dict[str, list[Delivery]] = {report_id: [] for report_id in ids}
    for delivery in session.exec(
        select(Delivery).where(col(Delivery.report_id).in_(ids)).order_by(col(Delivery.agency_id))
    ):
        deliveries[delivery.report_id].append(delivery)
    return page(request, "sent.html", visitor=visitor, reports=sent_reports, deliveries=deliveries)
