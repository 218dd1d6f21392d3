"""Reporting from the field: a phone form for every report type the user's agency may
file, built in the browser from the type's JSON Schema, working offline (a service worker
keeps the form and its data; an encrypted outbox on the device sends what was written
offline once the phone is back online, each report with its own Idempotency-Key), and the
drafts a text message left for its author to complete.

What the browser needs comes in one bundle: the schemas (of the types the agency may file)
with their ``$ref``s inlined, the regions of its province by name, the countries by their
Indonesian names, the agencies a referral may name. An agency files every field of a type
it may file, as through the API: its clearance limits what it receives, not what it knows.
A report is sent to ``/console/field/reports``, which runs the API's own submission
(``reports.service.accept``) as the signed-in user."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from exchange.accounts.models import Role
from exchange.agencies.models import Agency
from exchange.console.common import (
    HERE,
    PREFIX,
    SECURITY_HEADERS,
    ConsoleForbidden,
    Visitor,
    VisitorDep,
    page,
    require,
    same_token,
    signed_in,
)
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import InvalidInput, translate_model_error
from exchange.hub import Hub
from exchange.i18n import t
from exchange.intake import service as intake
from exchange.jsonbody import HubRoute, parse_json
from exchange.models import utcnow
from exchange.regions import service as regions_service
from exchange.regions.countries import country_names
from exchange.registry.service import ReportType
from exchange.reports import service as reports
from exchange.reports.contracts import ReportSubmission

router = APIRouter(prefix=f"{PREFIX}/field", include_in_schema=False, route_class=HubRoute)
FIELD = f"{PREFIX}/field"


def _title(report_type: ReportType) -> str:
    """The type's name in Indonesian: its schema's description reads "English / Indonesia"."""
    described = str(report_type.schema.get("description", ""))
    return described.split(" / ")[-1] if " / " in described else report_type.name


def _filable(hub: Hub, agency: Agency) -> list[ReportType]:
    return [rt for rt in hub.registry.latest() if agency.kind in rt.submitters]


@router.get("")
def form_page(request: Request, hub: HubDep, visitor: VisitorDep) -> Response:
    require(visitor, Role.reporter)
    return page(
        request,
        "field.html",
        visitor=visitor,
        types=[(rt.name, _title(rt)) for rt in _filable(hub, visitor.agency)],
    )


@router.get("/bundle.json")
def bundle(session: SessionDep, hub: HubDep, visitor: VisitorDep) -> JSONResponse:
    """Everything the form needs, for the service worker to keep for offline use."""
    require(visitor, Role.reporter)
    agency = visitor.agency
    regions = regions_service.names_under(
        session, agency.jurisdiction[:2], deepest=regions_service.VILLAGE_CODE
    )
    agencies = dict(
        session.exec(
            select(Agency.id, Agency.name)
            .where(col(Agency.active).is_(True))
            .order_by(col(Agency.id))
        ).all()
    )
    document = {
        "agency": {"id": agency.id, "jurisdiction": agency.jurisdiction},
        "types": [
            {
                "name": rt.name,
                "version": rt.version,
                "title": _title(rt),
                "schema": hub.registry.inlined(rt),
                "regionPaths": list(rt.region_code_paths),
                "recipientPaths": list(rt.recipient_paths),
            }
            for rt in _filable(hub, agency)
        ],
        "regions": regions,
        "agencies": agencies,
        "countries": country_names("id"),
    }
    return JSONResponse(document, headers=SECURITY_HEADERS)


@router.post("/reports")
async def submit(
    request: Request,
    hub: HubDep,
    csrf: Annotated[str, Header(alias="X-CSRF-Token", max_length=100)] = "",
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=150)
    ] = None,
) -> Response:
    """One report from the form, as the API's ``POST /v1/reports`` takes it and answers
    it (the errors in Indonesian, their pointers into the submission), sent as the user.
    ``draft`` (a text message's draft this report completes) is closed when it is sent."""
    body = await request.body()
    return await run_in_threadpool(_submit, request, hub, csrf, idempotency_key, body)


def _submit(
    request: Request, hub: Hub, csrf: str, idempotency_key: str | None, body: bytes
) -> Response:
    with hub.session() as session:
        # Who it is, and that the page sent it, before anything of the body is read.
        visitor = signed_in(request, session, hub, complete=True)
        if not same_token(visitor.record.csrf_token, csrf):
            raise ConsoleForbidden()
        require(visitor, Role.reporter)
        document = parse_json(body)
        if not isinstance(document, dict):
            raise InvalidInput.at(t("validation.dict_type"), "")
        draft_id = document.pop("draft", None)
        try:
            submission = ReportSubmission.model_validate(document)
        except ValidationError as invalid:
            raise translate_model_error(invalid) from None
        outcome = reports.accept(
            session,
            sender=visitor.agency,
            principal=visitor.principal,
            registry=hub.registry,
            keyring=hub.keyring,
            submission=submission,
            # The form's keys are its own: never one an API client or an intake chose.
            idempotency_key=f"console:{visitor.user.id}:{idempotency_key}"
            if idempotency_key
            else None,
            signature_header=None,
            submissions=hub.submissions,
            rejections=hub.rejections,
            locale="id",
        )
        if outcome.status == 202 and isinstance(draft_id, str):
            _close_draft(session, hub, visitor, draft_id, str(outcome.document["id"]))
    return JSONResponse(
        outcome.document,
        status_code=outcome.status,
        headers={**SECURITY_HEADERS, **outcome.headers},
    )


def _close_draft(session: Session, hub: Hub, visitor: Visitor, draft_id: str, report: str) -> None:
    try:
        draft = intake.get_draft(
            session, user_id=visitor.user.id, draft_id=draft_id, sealer=hub.keyring.sealer
        )
    except intake.DraftNotFound:
        return  # closed already (sent twice from two tabs): the report stands
    intake.close_draft(session, draft=draft.record, report_id=report, now=utcnow())


@router.get("/drafts")
def drafts(request: Request, session: SessionDep, hub: HubDep, visitor: VisitorDep) -> Response:
    """The drafts text messages left: what was read, what was wrong, to complete."""
    require(visitor, Role.reporter)
    opened = intake.open_drafts(session, user_id=visitor.user.id, sealer=hub.keyring.sealer)
    return page(request, "drafts.html", visitor=visitor, drafts=opened)


@router.get("/drafts/{draft_id}.json")
def draft(draft_id: str, session: SessionDep, hub: HubDep, visitor: VisitorDep) -> JSONResponse:
    require(visitor, Role.reporter)
    found = intake.get_draft(
        session, user_id=visitor.user.id, draft_id=draft_id, sealer=hub.keyring.sealer
    )
    document = {
        "id": found.record.id,
        "type": found.record.report_type,
        "text": found.text,
        "payload": found.payload,
        "problems": found.problems,
    }
    return JSONResponse(document, headers=SECURITY_HEADERS)


@router.get("/sw.js")
def service_worker() -> Response:
    """Served from here so that its scope is the field form's folder."""
    return FileResponse(
        HERE / "static" / "field-sw.js",
        media_type="text/javascript",
        headers={
            **SECURITY_HEADERS,
            "Cache-Control": "no-cache",
            "Service-Worker-Allowed": FIELD,  # its scope: the form's own path and below
        },
    )


@router.get("/manifest.webmanifest")
def manifest() -> Response:
    document = {
        "name": "Lapor TPPO · Hub pertukaran data",
        "short_name": "Lapor TPPO",
        "start_url": FIELD,
        "scope": f"{FIELD}/",
        "display": "standalone",
        "lang": "id",
        "background_color": "#fafafa",
        "theme_color": "#12355b",
        "icons": [{"src": f"{PREFIX}/static/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
    }
    return Response(
        json.dumps(document), media_type="application/manifest+json", headers=SECURITY_HEADERS
    )
