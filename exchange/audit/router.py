"""HTTP surface of the audit log: ``/v1/audit/...``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from exchange.agencies.models import Scope
from exchange.agencies.service import Principal
from exchange.audit import service
from exchange.audit.contracts import CosignatureIn
from exchange.contracts import MAX_INT64
from exchange.dependencies import PrincipalDep, SessionDep, hub_of, requires
from exchange.jsonbody import HubRoute

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=HubRoute)

AuditorDep = Annotated[Principal, Depends(requires(Scope.audit))]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(session: SessionDep, _caller: PrincipalDep) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint) with every witness cosignature."""
    latest = service.current_checkpoint(session)
    return PlainTextResponse(service.checkpoint_with_cosignatures(session, latest))


@router.get("/events")
def events(
    session: SessionDep,
    _auditor: AuditorDep,
    start: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    end: Annotated[int, Query(ge=1, le=MAX_INT64)] = 100,
) -> list[dict[str, Any]]:
    """Integrated events with their leaf indices, canonical bytes (base64) and logged leaf."""
    return service.events(session, start=start, end=end)


@router.get("/proof/inclusion")
def inclusion_proof(
    session: SessionDep,
    _auditor: AuditorDep,
    index: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    event_id: Annotated[str | None, Query(max_length=32)] = None,
    size: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of a leaf (by index or by event id) in the tree of ``size``
    (default: the latest checkpoint)."""
    if event_id is not None:
        index = service.event_leaf_index(session, event_id)
    if index is None:
        index = -1  # neither given: reported as out of range below
    return service.inclusion(session, index=index, size=size)


@router.get("/proof/consistency")
def consistency_proof(
    session: SessionDep,
    _auditor: AuditorDep,
    old_size: Annotated[int, Query(alias="from", ge=1, le=MAX_INT64)],
    new_size: Annotated[int | None, Query(alias="to", ge=1, le=MAX_INT64)] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof between two tree sizes (default ``to``: the latest)."""
    return service.consistency(session, old_size=old_size, new_size=new_size)


@router.get("/evidence")
def evidence(
    session: SessionDep,
    _auditor: AuditorDep,
    subject: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Everything to verify offline what the log says about one subject."""
    return service.evidence(session, subject=subject)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def export(request: Request, session: SessionDep, _auditor: AuditorDep) -> StreamingResponse:
    """The whole log as NDJSON, streamed in constant memory, for ``exchange audit verify``.

    The stream reads in its own session, opened once the request's has closed: the response
    outlives the request."""
    hub = hub_of(request)
    service.current_checkpoint(session)  # a 404 now rather than a broken stream later

    return StreamingResponse(service.export_ndjson(hub.session), media_type="application/x-ndjson")


@router.post("/cosignatures", status_code=status.HTTP_201_CREATED)
def add_cosignature(
    body: CosignatureIn, session: SessionDep, auditor: AuditorDep
) -> dict[str, Any]:
    """A witness's cosignature/v1 line for the checkpoint of ``size``, checked against the
    witness agency's registered Ed25519 keys."""
    # Not an audit event: a cosignature is itself a signature over the log, kept beside its
    # checkpoint and exported with it. Logging it would grow the log, and a running witness
    # would then cosign its own event's checkpoint forever.
    stored = service.add_cosignature(
        session, agency_id=auditor.agency_id, size=body.size, signature_line=body.signature
    )
    return {
        "size": stored.checkpoint_size,
        "witness": stored.witness_name,
        "cosigned_at": stored.cosigned_at,
    }
