"""HTTP surface of reports: submission (one and bulk), reading, search, threads, where a
report went, person lookup, evidence and purging."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from exchange.agencies.models import Agency, Scope
from exchange.agencies.service import Principal, get_agency, kept_agency
from exchange.audit import service as audit
from exchange.contracts import Instant, keyset_cursor, links, read_keyset_cursor
from exchange.dependencies import AdminDep, HubDep, PrincipalDep, SessionDep, hub_of, requires
from exchange.errors import (
    ExchangeError,
    InvalidInput,
    NotCommitted,
    PayloadTooLarge,
    UnacceptableJson,
    malformed_json,
    translate_model_error,
    translate_validation_error,
)
from exchange.hub import Hub
from exchange.i18n import Locale, negotiate, t
from exchange.jsonbody import HubRoute, parse_json
from exchange.protection import service as protection
from exchange.reports import service
from exchange.reports.contracts import (
    BulkLine,
    PersonLookup,
    PersonLookupResult,
    PersonMatch,
    Purged,
    ReportItem,
    ReportOut,
    ReportPage,
    ReportSubmission,
    ReportThread,
    SentDelivery,
    SubmissionResult,
    ThreadEntry,
)
from exchange.reports.lines import OVERSIZE, LineSplitter, Oversize
from exchange.reports.models import Report
from exchange.routing.contracts import Indicator, RegionPrefix, Severity

logger = logging.getLogger(__name__)


class SubmissionRoute(HubRoute):
    """A route whose refusals by request validation (a body that is not a submission at all)
    are counted with the other rejected submissions."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as invalid:
                principal: Principal | None = getattr(request.state, "principal", None)
                if principal is not None and request.method == "POST":
                    service.tally_rejection(
                        hub_of(request).rejections,
                        principal=principal,
                        submission_type=None,
                        error=translate_validation_error(invalid),
                    )
                raise

        return counted


router = APIRouter(tags=["reports"], route_class=SubmissionRoute)

SubmitterDep = Annotated[Principal, Depends(requires(Scope.submit))]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]
SignatureHeader = Annotated[str | None, Header(alias="Exchange-Signature", max_length=400)]
REPLAYED = {"Idempotent-Replayed": "true"}
BULK_BATCH = 500  # lines handed to the writer at a time (one unit of work)
RESULT_PIECE_BYTES = 256 * 1024  # the results are sent in pieces this large
BULK_BATCH_BYTES = 8 * 1024 * 1024  # ...or fewer, when they are long: memory stays bounded


NEW_REPORT = {"report_id": "$response.body#/id"}


@router.post(
    "/v1/reports",
    status_code=202,
    response_model=SubmissionResult,
    responses=links(
        202,
        GetReport=("GET", "/v1/reports/{report_id}", NEW_REPORT),
        GetEvidence=("GET", "/v1/reports/{report_id}/evidence", NEW_REPORT),
        PurgeReport=("DELETE", "/v1/reports/{report_id}", NEW_REPORT),
    ),
)
async def submit_report(
    request: Request,
    body: ReportSubmission,
    hub: HubDep,
    submitter: SubmitterDep,
    idempotency_key: IdempotencyKey = None,
    exchange_signature: SignatureHeader = None,
) -> JSONResponse:
    """Submit one report. With an Idempotency-Key the first answer is replayed for 24 h;
    the same key with another body is a 409. Each key may submit so many reports a minute
    (429 with Retry-After past it). Stored with the submissions of other requests in one
    transaction (exchange.writer): the 202 comes once that transaction committed."""
    locale = negotiate(request.headers.get("accept-language"))

    def store(session: Session) -> service.Outcome:
        return service.accept(
            session,
            sender=kept_agency(session, submitter.agency_id),
            principal=submitter,
            registry=hub.registry,
            keyring=hub.keyring,
            submission=body,
            idempotency_key=idempotency_key,
            signature_header=exchange_signature,
            submissions=hub.submissions,
            rejections=hub.rejections,
            locale=locale,
        )

    outcome = await hub.writer.run(store)
    headers = {**outcome.headers, **(REPLAYED if outcome.replayed else {})}
    return JSONResponse(outcome.document, status_code=outcome.status, headers=headers)


NDJSON = {"application/x-ndjson": {"schema": {"type": "string"}}}


@router.post(
    "/v1/reports:bulk",
    response_class=StreamingResponse,
    responses={200: {"content": NDJSON, "description": "One result per line, in order."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": NDJSON,
            "description": "One submission per line (the body of POST /v1/reports, with its "
            "own `idempotency_key` and `signature`).",
        }
    },
)
async def submit_bulk(request: Request, hub: HubDep, submitter: SubmitterDep) -> StreamingResponse:
    """NDJSON in, NDJSON out: one result per line, in order. A bad line never sinks the
    others. Each line may carry its own ``idempotency_key`` and ``signature``.

    Every batch of lines is its own unit of work, committed before the next is read, so a
    large bulk neither holds the database for its whole length nor loses what was accepted
    if the connection drops (retrying with the same idempotency keys is safe). The body is
    read as it arrives and the results are spooled (to disk past a few MB): memory stays
    flat whatever the size. The results are sent once every line has been handled."""
    locale = negotiate(request.headers.get("accept-language"))
    line_limit = hub.settings.max_request_bytes
    results = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115
    batch: list[bytes | Oversize] = []
    number = 0

    async def process(lines: list[bytes | Oversize], first: int) -> None:
        def store(unit: Session) -> list[dict[str, Any]]:
            sender = kept_agency(unit, submitter.agency_id)
            records: list[dict[str, Any]] = []
            for offset, raw in enumerate(lines):
                outcome = _bulk_line(unit, hub, sender, submitter, raw, line_limit, locale)
                record: dict[str, Any] = {"line": first + offset, "status": outcome.status}
                if outcome.status < 400:
                    record["result"] = outcome.document
                else:
                    record["error"] = outcome.document["error"]
                records.append(record)
            return records

        try:
            records = await hub.writer.run(store, weight=len(lines))
        except Exception:
            # Nothing of this batch was committed: say so for each of its lines, and only
            # now, so that no line is reported accepted before it is durable.
            logger.exception("bulk batch not committed", extra={"first_line": first})
            unavailable = NotCommitted(t("report.batch_failed")).body(locale)
            records = [
                {"line": first + offset, "status": 503, "error": unavailable["error"]}
                for offset in range(len(lines))
            ]
        # Off the event loop: past a few MB the spooled results are on disk.
        await run_in_threadpool(results.write, b"".join(orjson.dumps(r) + b"\n" for r in records))

    splitter = LineSplitter(limit=line_limit)
    held = 0  # bytes of the lines in the batch: a batch is also cut by size
    async for chunk in request.stream():
        for line in splitter.feed(chunk):
            batch.append(line)
            held += len(line)
            if len(batch) >= BULK_BATCH or held >= BULK_BATCH_BYTES:
                await process(batch, number + 1)
                number, batch, held = number + len(batch), [], 0
    batch.extend(splitter.close())
    if batch:
        await process(batch, number + 1)
    results.seek(0)

    def stream() -> Iterator[bytes]:
        # In pieces, not line by line: each piece is a hop to the threadpool.
        with results:
            while piece := results.read(RESULT_PIECE_BYTES):
                yield piece

    return StreamingResponse(stream(), media_type="application/x-ndjson")


def _bulk_line(
    session: Session,
    hub: Hub,
    sender: Agency,
    submitter: Principal,
    raw: bytes | Oversize,
    limit: int,
    locale: Locale,
) -> service.Outcome:
    def refused(error: ExchangeError) -> service.Outcome:
        service.tally_rejection(
            hub.rejections, principal=submitter, submission_type=None, error=error
        )
        return service.Outcome.refused(error, locale)

    if raw == OVERSIZE:
        return refused(PayloadTooLarge(t("request.too_large", limit=limit)))
    try:
        line = BulkLine.model_validate(parse_json(raw))
    except UnacceptableJson as exc:
        return refused(malformed_json(exc))
    except ValidationError as exc:
        return refused(translate_model_error(exc))
    return service.accept(
        session,
        sender=sender,
        principal=submitter,
        registry=hub.registry,
        keyring=hub.keyring,
        submission=ReportSubmission.model_validate(
            line.model_dump(exclude={"idempotency_key", "signature"})
        ),
        idempotency_key=line.idempotency_key,
        signature_header=line.signature,
        submissions=hub.submissions,
        rejections=hub.rejections,
        locale=locale,
    )


@router.get("/v1/reports/{report_id}/evidence")
def report_evidence(
    report_id: str,
    session: SessionDep,
    auditor: Annotated[Principal, Depends(requires(Scope.audit))],
) -> dict[str, Any]:
    """Everything to verify offline what the log says about one report: its events, their
    inclusion proofs and the signed checkpoint (check with ``exchange audit verify-evidence``)."""
    if session.get(Report, report_id) is None:
        raise service.ReportNotFound(t("report.not_found", report=report_id))
    return audit.evidence(session, subject=f"report:{report_id}")


@router.get("/v1/reports/{report_id}", response_model=ReportOut)
def read_report(
    report_id: str, session: SessionDep, hub: HubDep, reader: PrincipalDep
) -> ReportOut:
    """A report as its reader may see it: redacted to the reader's clearance (the sender
    sees what it sent), with the pointers withheld and how many earlier reports the reader
    may see name the same person. 410 once purged. The read is recorded in the audit log."""
    report = service.read(session, principal=reader, report_id=report_id)
    seen = protection.view(
        session,
        report=report,
        reader=get_agency(session, reader.agency_id),
        registry=hub.registry,
        sealer=hub.keyring.sealer,
    )
    return ReportOut(
        **_described(report),
        payload=seen.data,
        withheld=seen.withheld,
        earlier_reports=seen.earlier_reports,
    )


def _described(report: Report) -> dict[str, Any]:
    """What every shape of a report says of it besides its payload."""
    return {
        "id": report.id,
        "type": report.type,
        "version": report.version,
        "sender": report.sender,
        "tlp": report.tlp,
        "refs": json.loads(report.refs),
        "recipients": json.loads(report.recipients),
        "payload_hash": report.payload_hash,
        "received_at": report.received_at,
    }


def _view(session: Session, hub: Hub, reader: Agency, report: Report) -> ReportItem:
    """A report as ``reader`` may see it, in the shape search pages use."""
    seen = (
        None
        if report.purged_at is not None
        else protection.view(
            session, report=report, reader=reader, registry=hub.registry, sealer=hub.keyring.sealer
        )
    )
    return ReportItem(
        **_described(report),
        region=report.region,
        severity=report.severity,
        purged_at=report.purged_at,
        payload=seen.data if seen else None,
        withheld=seen.withheld if seen else [],
        earlier_reports=seen.earlier_reports if seen else 0,
    )


@router.get("/v1/reports", response_model=ReportPage)
def search_reports(
    session: SessionDep,
    hub: HubDep,
    reader: PrincipalDep,
    type_: Annotated[
        list[Annotated[str, Query(max_length=64)]] | None, Query(alias="type", max_length=20)
    ] = None,
    region: Annotated[RegionPrefix | None, Query(description="A region-code prefix.")] = None,
    min_severity: Severity | None = None,
    indicator: Annotated[Indicator | None, Query()] = None,
    since: Annotated[Instant | None, Query(description="Received at or after.")] = None,
    until: Annotated[Instant | None, Query(description="Received before.")] = None,
    status: Literal["live", "purged"] = "live",
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ReportPage:
    """The reports the caller may see (it sent them, or they were routed to it) matching
    every filter given, newest first, each redacted to the caller's clearance. `region`
    matches any region a report concerns; `status=purged` lists purged reports (without
    payload). Page with `after` (the `next_cursor` of the page before). Every report
    returned is recorded in the audit log as read."""
    reports = service.search(
        session,
        principal=reader,
        query=service.Search(
            types=tuple(type_ or ()),
            region=region,
            min_severity=min_severity,
            indicator=indicator,
            since=since,
            until=until,
            purged=status == "purged",
        ),
        after=read_keyset_cursor(after, message=t("report.bad_cursor")) if after else None,
        limit=limit,
    )
    agency = get_agency(session, reader.agency_id)
    last = reports[-1] if len(reports) == limit else None
    return ReportPage(
        items=[_view(session, hub, agency, report) for report in reports],
        next_cursor=keyset_cursor(last.received_at, last.id) if last else None,
    )


@router.get("/v1/reports/{report_id}/deliveries", response_model=list[SentDelivery])
def report_deliveries(
    report_id: str, session: SessionDep, sender: PrincipalDep
) -> list[SentDelivery]:
    """Where the caller's report went: each recipient agency, the delivery's state and
    attempts, and when and by which key it was acknowledged (with a verified receipt or
    not). Only the sender may ask; the recipients' endpoints and secrets are never shown."""
    return [
        SentDelivery.of(delivery)
        for delivery in service.sent_deliveries(session, principal=sender, report_id=report_id)
    ]


@router.get("/v1/reports/{report_id}/thread", response_model=ReportThread)
def report_thread(report_id: str, session: SessionDep, reader: PrincipalDep) -> ReportThread:
    """The case the report belongs to: every report linked to it by references (`refs`,
    and payload fields such as a case update's `references`), both ways, that the caller
    may see, oldest first."""
    reports, refers = service.thread(session, principal=reader, report_id=report_id)
    return ReportThread(
        report_id=report_id,
        reports=[
            ThreadEntry.model_validate(
                {name: getattr(report, name) for name in ThreadEntry.model_fields if name != "refs"}
                | {"refs": refers[report.id]}
            )
            for report in reports
        ],
    )


@router.post("/v1/persons:lookup", response_model=PersonLookupResult, tags=["persons"])
def lookup_person(
    body: PersonLookup,
    session: SessionDep,
    hub: HubDep,
    reader: Annotated[Principal, Depends(requires(Scope.receive))],
) -> PersonLookupResult:
    """Whether a NIK or passport number appears in reports the caller may see: their ids,
    types, dates and markings, newest first. The number travels in the body only; the hub
    matches it by keyed hash and records the lookup with the hash. Each key may look up so
    many persons a minute, and each agency a few times that (429 with Retry-After past it);
    only an agency cleared for identifying data may ask (403 otherwise)."""
    given = [
        (kind, value)
        for kind, value in (("nik", body.nik), ("passport", body.passport_number))
        if value
    ]
    if len(given) != 1:
        raise InvalidInput.at(t("person.one_identifier"), "/nik")
    # Per key, and per agency: an agency's admin could otherwise multiply its keys.
    hub.lookups.admit(reader.key_id)
    hub.agency_lookups.admit(reader.agency_id)
    ((kind, value),) = given
    found = protection.lookup_person(
        session,
        key=hub.keyring.linking_key,
        kind=kind,
        value=value,
        reader=get_agency(session, reader.agency_id),
        actor=reader.actor,
    )
    return PersonLookupResult(matches=[PersonMatch.of(report) for report in found])


@router.delete("/v1/reports/{report_id}", response_model=Purged)
def purge_report(
    report_id: str,
    session: SessionDep,
    admin: AdminDep,
    reason: Annotated[str, Query(min_length=1, max_length=200)] = "operator request",
) -> Purged:
    """Destroy a report's data key and ciphertext. It answers 410 from then on; its
    metadata and audit events stay, and the audit log still verifies."""
    report = service.purge(session, report_id=report_id, actor=admin.actor, reason=reason)
    assert report.purged_at is not None
    return Purged(id=report.id, purged_at=report.purged_at, payload_hash=report.payload_hash)
