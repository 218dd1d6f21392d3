"""HTTP surface of reports: ``POST /v1/reports`` and ``GET /v1/reports/{id}``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from exchange.agencies.models import Scope
from exchange.agencies.service import Principal
from exchange.dependencies import HubDep, PrincipalDep, SessionDep, requires
from exchange.errors import ExchangeError, error_response
from exchange.i18n import negotiate
from exchange.reports import service
from exchange.reports.contracts import ReportOut, ReportSubmission, SubmissionResult

router = APIRouter(tags=["reports"])

SubmitterDep = Annotated[Principal, Depends(requires(Scope.submit))]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]
SignatureHeader = Annotated[str | None, Header(alias="Exchange-Signature", max_length=400)]
REPLAYED = {"Idempotent-Replayed": "true"}


@router.post("/v1/reports", status_code=202, response_model=SubmissionResult)
def submit_report(
    request: Request,
    body: ReportSubmission,
    session: SessionDep,
    hub: HubDep,
    submitter: SubmitterDep,
    idempotency_key: IdempotencyKey = None,
    exchange_signature: SignatureHeader = None,
) -> JSONResponse:
    """Submit one report. With an Idempotency-Key the first answer is replayed for 24 h;
    the same key with another body is a 409."""
    _, request_hash = service.canonical_hash(body.model_dump(mode="json"))
    key = (submitter.agency_id, idempotency_key)
    try:
        if idempotency_key:
            stored = service.replayed(
                session, agency_id=key[0], key=idempotency_key, request_hash=request_hash
            )
            if stored is not None:
                return JSONResponse(stored, status_code=202, headers=REPLAYED)
        with session.begin_nested():  # a rejected report leaves nothing behind
            result = service.submit(
                session,
                principal=submitter,
                registry=hub.registry,
                submission=body,
                signature_header=exchange_signature,
                locale=negotiate(request.headers.get("accept-language")),
            )
            document: dict[str, Any] = result.model_dump(mode="json")
            if idempotency_key:
                service.remember(
                    session,
                    agency_id=key[0],
                    key=idempotency_key,
                    request_hash=request_hash,
                    response=document,
                )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        if not idempotency_key:
            raise
        stored = service.replayed(
            session, agency_id=key[0], key=idempotency_key, request_hash=request_hash
        )
        if stored is None:
            raise
        return JSONResponse(stored, status_code=202, headers=REPLAYED)
    except ExchangeError as error:
        service.record_rejection(
            session, principal=submitter, submission_type=body.type, error=error
        )
        return error_response(request, error)
    return JSONResponse(document, status_code=202)


@router.get("/v1/reports/{report_id}", response_model=ReportOut)
def read_report(report_id: str, session: SessionDep, reader: PrincipalDep) -> ReportOut:
    """A report as its reader may see it; the read is recorded in the audit log."""
    report = service.read(session, principal=reader, report_id=report_id)
    return ReportOut(
        id=report.id,
        type=report.type,
        version=report.version,
        sender=report.sender,
        tlp=report.tlp,
        refs=json.loads(report.refs),
        payload_hash=report.payload_hash,
        received_at=report.received_at,
        payload=json.loads(report.payload),
    )
