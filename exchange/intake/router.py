"""HTTP surface of intakes and plugins: the endpoint each registered intake's channel posts
to (``/v1/intakes/{id}``, authenticated by the channel's signature, not an API key), and
``GET /v1/connectors``, what an integrator can plug into."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from connectors.base import IntakeRefused
from connectors.registry import ENTRY_POINT_GROUP, INTAKE_GROUP, plugins
from exchange.audit import service as audit
from exchange.dependencies import HubDep, PrincipalDep
from exchange.errors import AuthenticationFailed, InvalidInput
from exchange.hub import Hub
from exchange.i18n import t
from exchange.intake import service
from exchange.intake.contracts import PluginOut
from exchange.jsonbody import HubRoute
from exchange.models import utcnow

router = APIRouter(tags=["intake"], route_class=HubRoute)

GATEWAY_EXAMPLE = {
    "messages": [
        {
            "id": "gw-000123",
            "from": "+6281234567890",
            "text": "TPPO 36.03.11.2009 TINGGI calo,rombongan 5 MY Berangkat malam ini",
        }
    ]
}


@router.post(
    "/v1/intakes/{intake_id}",
    openapi_extra={
        "security": [],
        "parameters": [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object"},
                    "example": GATEWAY_EXAMPLE,
                }
            },
        },
    },
    responses={
        200: {
            "description": "One reply per message, for the channel to send back.",
            "content": {
                "application/json": {
                    "example": {
                        "replies": [
                            {
                                "id": "gw-000123",
                                "to": "+6281234567890",
                                "text": "Laporan diterima, nomor 1f3a9c2e. Dikirim ke: ...",
                            }
                        ]
                    }
                }
            },
        }
    },
)
async def receive(intake_id: str, request: Request, hub: HubDep) -> Response:
    """Where a registered channel posts the messages it received (the `sms-gateway` intake:
    a batch of text messages, signed with Standard Webhooks headers and the secret issued
    at registration). Each message from a registered user's phone becomes a report on that
    user's behalf, or a draft in the user's console when it cannot be read whole; the
    answer is one reply per message. No API key: the signature authenticates the channel.
    See docs/field-reporting.md."""
    body = await request.body()
    return await run_in_threadpool(_receive, hub, intake_id, dict(request.headers), body)


def _receive(hub: Hub, intake_id: str, headers: dict[str, str], body: bytes) -> Response:
    refused: IntakeRefused | None = None
    with hub.session() as session:
        intake = service.get_intake(session, intake_id)
        config = service.open_config(intake, hub.keyring.sealer)
        channel = service.channel(intake)
        try:
            messages = channel.open(headers, body, config)
        except IntakeRefused as refusal:
            refused = refusal  # on the record (committed), though nothing else is kept
            audit.record(
                session,
                action="intake.refused",
                subject=f"intake:{intake_id}",
                actor="anonymous",
                details={"status": refusal.status_code},
            )
        else:
            replies = service.receive(
                session,
                intake=intake,
                messages=messages,
                hub=service.Submitting(
                    registry=hub.registry,
                    keyring=hub.keyring,
                    submissions=hub.submissions,
                    rejections=hub.rejections,
                ),
                now=utcnow(),
            )
    if refused is not None:
        reason = t("intake.refused", reason=str(refused))
        raise AuthenticationFailed(reason) if refused.status_code == 401 else InvalidInput(reason)
    answer = channel.answer(replies, config)
    return Response(answer.body, status_code=answer.status_code, media_type=answer.content_type)


@router.get("/v1/connectors", response_model=list[PluginOut])
def list_plugins(_caller: PrincipalDep) -> list[PluginOut]:
    """The installed plugins: connectors (deliver reports to a subscription) and intakes
    (take messages in from a channel), each with its version and the JSON Schema of its
    config. Fields marked `writeOnly` are secrets the hub generates and shows once."""
    found: list[dict[str, Any]] = []
    for kind, group in (("connector", ENTRY_POINT_GROUP), ("intake", INTAKE_GROUP)):
        for plugin in plugins(group).values():
            found.append(
                {
                    "name": plugin.name,
                    "kind": kind,
                    "version": plugin.version,
                    "config_schema": plugin.factory.config_model.model_json_schema(),
                }
            )
    return [PluginOut(**entry) for entry in sorted(found, key=lambda e: (e["kind"], e["name"]))]
