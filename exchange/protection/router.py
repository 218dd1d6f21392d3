"""HTTP surface of protection: purging a report (``DELETE /v1/reports/{id}``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from exchange.dependencies import AdminDep, SessionDep
from exchange.jsonbody import HubRoute
from exchange.protection import service

router = APIRouter(tags=["protection"], route_class=HubRoute)


class Purged(BaseModel):
    id: str
    purged_at: datetime
    payload_hash: str


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
