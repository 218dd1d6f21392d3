"""The auditor's pages: the exchange log with filters, checkpoints and their witnesses, a
subject's evidence and the consistency of two checkpoints verified step by step on the page,
the export, and how to verify all of it offline without trusting the hub.

The page recomputes every hash from the bytes the bundle carries with the same code the
offline verifier runs (``exchange.audit.verify``): what it shows is how the verdict was
reached, not a verdict the database asserts. An auditor who trusts nothing the hub serves
downloads the bundle and runs ``exchange audit verify-evidence`` elsewhere."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session, col, func, select

from exchange.accounts.models import Role
from exchange.audit import merkle
from exchange.audit import service as audit
from exchange.audit.models import AuditEvent, Cosignature, SignedCheckpoint
from exchange.audit.notes import NoteError, Verifier, open_checkpoint
from exchange.audit.verify import check_evidence
from exchange.console.common import (
    PREFIX,
    SECURITY_HEADERS,
    VisitorDep,
    page,
    refusal,
    require,
)
from exchange.contracts import MAX_INT64
from exchange.dependencies import HubDep, SessionDep
from exchange.errors import ExchangeError
from exchange.jsonbody import HubRoute

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=HubRoute)
LOG_PAGE = 50
Subject = Annotated[str, Query(min_length=1, max_length=200)]


def _cosignatures(session: Session, size: int) -> list[Cosignature]:
    return list(
        session.exec(
            select(Cosignature)
            .where(Cosignature.checkpoint_size == size)
            .order_by(col(Cosignature.witness_name))
        )
    )


def _log_key(hub: HubDep) -> Verifier:
    return Verifier.parse(hub.keyring.log_verifier_key())


@router.get("/audit")
def log(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    action: Annotated[str, Query(max_length=64)] = "",
    subject: Annotated[str, Query(max_length=200)] = "",
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> Response:
    """The newest events first, filtered by action and subject, with the latest checkpoint
    and who cosigned it."""
    require(visitor, Role.auditor)
    query = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(LOG_PAGE + 1)
    if action:
        query = query.where(AuditEvent.action == action)
    if subject:
        query = query.where(AuditEvent.subject == subject.strip())
    if before is not None:
        query = query.where(col(AuditEvent.seq) < before)
    events = list(session.exec(query))
    more = len(events) > LOG_PAGE
    events = events[:LOG_PAGE]
    rows = [(event, _decoded(event)) for event in events]
    latest = audit.latest_checkpoint(session)
    return page(
        request,
        "audit.html",
        visitor=visitor,
        rows=rows,
        actions=session.exec(select(AuditEvent.action).distinct().order_by(AuditEvent.action)),
        action=action,
        subject=subject,
        next_before=events[-1].seq if more and events else None,
        latest=latest,
        cosignatures=_cosignatures(session, latest.size) if latest else [],
        log_key=hub.keyring.log_verifier_key(),
    )


def _decoded(event: AuditEvent) -> dict[str, Any]:
    """The event as recorded; bytes that are no JSON object (a tampered row) show as such,
    and the evidence page says where."""
    try:
        document = json.loads(event.canonical)
    except ValueError:
        document = None
    return document if isinstance(document, dict) else {"actor": "?", "details": "unreadable"}


@router.get("/audit/checkpoints")
def checkpoints(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> Response:
    """Every signed checkpoint, newest first, with how many witnesses cosigned it."""
    require(visitor, Role.auditor)
    query = select(SignedCheckpoint).order_by(col(SignedCheckpoint.size).desc()).limit(LOG_PAGE)
    if before is not None:
        query = query.where(col(SignedCheckpoint.size) < before)
    signed = list(session.exec(query))
    counts = dict(
        session.exec(
            select(Cosignature.checkpoint_size, func.count())
            .where(col(Cosignature.checkpoint_size).in_([c.size for c in signed]))
            .group_by(col(Cosignature.checkpoint_size))
        ).all()
    )
    latest = audit.latest_checkpoint(session)
    key = _log_key(hub)
    return page(
        request,
        "checkpoints.html",
        visitor=visitor,
        checkpoints=[(c, *signed_root(c, key)) for c in signed],
        counts=counts,
        latest=latest,
        next_before=signed[-1].size if len(signed) == LOG_PAGE else None,
    )


def signed_root(checkpoint: SignedCheckpoint, key: Verifier) -> tuple[bytes | None, str | None]:
    """The root the checkpoint's signed note states (what is trusted: the table's columns
    are only a copy), and what is wrong with the note, if anything."""
    try:
        stated, _ = open_checkpoint(checkpoint.note, key)
    except NoteError as problem:
        return None, str(problem)
    if stated.size != checkpoint.size or stated.root_hash != checkpoint.root_hash:
        return stated.root_hash, "the stored size or root differs from the signed note"
    return stated.root_hash, None


@router.get("/audit/consistency")
def consistency(
    request: Request,
    session: SessionDep,
    hub: HubDep,
    visitor: VisitorDep,
    old_size: Annotated[int, Query(alias="from", ge=1, le=MAX_INT64)],
    new_size: Annotated[int | None, Query(alias="to", ge=1, le=MAX_INT64)] = None,
) -> Response:
    """That the log only grew from one checkpoint to another: both signatures checked, then
    the RFC 9162 consistency proof walked hash by hash to both signed roots."""
    require(visitor, Role.auditor)
    try:
        proof = audit.consistency(session, old_size=old_size, new_size=new_size)
        old = audit.signed_checkpoint(session, proof["from"])
        new = audit.signed_checkpoint(session, proof["to"])
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    key = _log_key(hub)
    (old_root, old_problem), (new_root, new_problem) = signed_root(old, key), signed_root(new, key)
    signatures = {old.size: old_problem, new.size: new_problem}
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    # Everything below is checked against the roots the signed notes state.
    old_signed = old_root or b""
    new_signed = new_root or b""
    start, problem = old_signed, None
    steps: list[merkle.Step] = []
    if old.size != new.size:
        try:
            start, steps = merkle.consistency_path(old.size, new.size, old_signed, hashes)
        except merkle.ProofError as refused_proof:
            problem = str(refused_proof)
    old_reached, new_reached = merkle.reached_roots(start, steps)
    return page(
        request,
        "consistency.html",
        visitor=visitor,
        old=old,
        new=new,
        signatures=signatures,
        start=start,
        steps=steps,
        problem=problem,
        old_ok=bool(old_root) and old_reached == old_signed,
        new_ok=bool(new_root) and new_reached == new_signed,
        old_root=old_signed,
        new_root=new_signed,
        log_key=hub.keyring.log_verifier_key(),
    )


@router.get("/audit/evidence")
def evidence(
    request: Request, session: SessionDep, hub: HubDep, visitor: VisitorDep, subject: Subject
) -> Response:
    """Everything the log says about one subject (a report: ``report:<id>``), each event's
    leaf hash and path to the signed root recomputed from the bundle on this page."""
    require(visitor, Role.auditor)
    try:
        bundle = audit.evidence(session, subject=subject.strip())
    except ExchangeError as refused:
        return refusal(request, refused, visitor)
    check = check_evidence(bundle, log_key=_log_key(hub))
    size = check.checkpoint.size if check.checkpoint else 0
    return page(
        request,
        "evidence.html",
        visitor=visitor,
        subject=subject.strip(),
        check=check,
        pending=bundle["pending"],
        cosignatures=_cosignatures(session, size),
        log_key=hub.keyring.log_verifier_key(),
    )


@router.get("/audit/evidence.json")
def evidence_download(session: SessionDep, visitor: VisitorDep, subject: Subject) -> Response:
    """The same bundle as ``GET /v1/audit/evidence``, to verify offline."""
    require(visitor, Role.auditor)
    bundle = audit.evidence(session, subject=subject.strip())
    name = "".join(c if c.isascii() and c.isalnum() else "-" for c in subject.strip())[:80]
    return Response(
        json.dumps(bundle, indent=2),
        media_type="application/json",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="evidence-{name}.json"',
        },
    )


@router.get("/audit/export")
def export(session: SessionDep, hub: HubDep, visitor: VisitorDep) -> Response:
    """The whole log as NDJSON, for ``exchange audit verify``."""
    require(visitor, Role.auditor)
    audit.current_checkpoint(session)  # a refusal now rather than a broken download later
    return StreamingResponse(
        audit.export_ndjson(hub.session),
        media_type="application/x-ndjson",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": 'attachment; filename="exchange-audit.ndjson"',
        },
    )
