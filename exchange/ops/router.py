"""Operator endpoints: liveness, readiness, metrics, published keys, worker probes."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from exchange.agencies.models import Scope
from exchange.contracts import links
from exchange.dependencies import AdminDep, HubDep, SessionDep, requires
from exchange.errors import ErrorDetail, NotReady
from exchange.i18n import t
from exchange.jsonbody import HubRoute
from exchange.ops import service
from exchange.ops.contracts import ProbeOut
from workers.broker import ping_broker

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"], route_class=HubRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers. Needs no credentials and touches nothing."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request, hub: HubDep) -> dict[str, Any]:
    """Ready: the database and the broker answer (and, in memory mode, the worker runs)."""
    checks: dict[str, str] = {}
    try:
        hub.database.ping()
        checks["database"] = "ok"
    except Exception as exc:
        logger.warning("readiness: database unreachable", extra={"error": type(exc).__name__})
        checks["database"] = "unreachable"
    try:
        ping_broker(hub.broker)
        checks["broker"] = "ok"
    except Exception as exc:
        logger.warning("readiness: broker unreachable", extra={"error": type(exc).__name__})
        checks["broker"] = "unreachable"
    if hub.settings.embedded_broker:
        checks["worker"] = "ok" if request.app.state.worker is not None else "stopped"
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        raise NotReady(
            t("ops.not_ready", components=", ".join(failing)),
            details=[
                ErrorDetail(t("ops.not_ready", components=name), pointer="", location=name)
                for name in failing
            ],
        )
    return {"status": "ready", "checks": checks}


@router.get("/metrics", response_class=Response)
def metrics(
    request: Request, _scraper: Annotated[Any, Depends(requires(Scope.metrics))]
) -> Response:
    telemetry = request.app.state.metrics
    return Response(telemetry.render(), media_type=telemetry.content_type)


@router.get("/.well-known/exchange/keys")
def published_keys(hub: HubDep) -> dict[str, Any]:
    """The hub's public keys with their ids, for recipients and auditors to pin.

    Public by design, like any JWK set: they are what a stranger needs to check the hub's
    signatures, and they reveal nothing.
    """
    return hub.keyring.public_document()


@router.post(
    "/v1/ops/probes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProbeOut,
    responses=links(
        202, GetProbe=("GET", "/v1/ops/probes/{probe_id}", {"probe_id": "$response.body#/id"})
    ),
)
def request_probe(session: SessionDep, admin: AdminDep) -> ProbeOut:
    """Send a probe through the job path; poll it to see which worker answered."""
    return ProbeOut.of(service.request_probe(session, requested_by=admin.agency_id))


@router.get("/v1/ops/probes/{probe_id}", response_model=ProbeOut)
def get_probe(probe_id: str, session: SessionDep, _admin: AdminDep) -> ProbeOut:
    return ProbeOut.of(service.get_probe(session, probe_id))
