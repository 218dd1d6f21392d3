"""HTTP surface of deliveries and the pull inbox: ``/v1/deliveries``, ``/v1/inbox``."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query

from exchange.agencies.models import Scope
from exchange.agencies.service import Principal
from exchange.delivery import inbox, receipts, service
from exchange.delivery.contracts import (
    Acknowledgement,
    DeliveryDetail,
    DeliveryOut,
    InboxAck,
    InboxAckResult,
    InboxEntry,
    InboxPage,
    RecoverRequest,
    RecoverResult,
)
from exchange.delivery.models import DeliveryState
from exchange.dependencies import HubDep, SessionDep, requires
from exchange.errors import ErrorDetail, InvalidInput
from exchange.i18n import t
from exchange.jsonbody import HubRoute

router = APIRouter(tags=["deliveries"], route_class=HubRoute)
ReceiverDep = Annotated[Principal, Depends(requires(Scope.receive))]


@router.get("/v1/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    session: SessionDep,
    receiver: ReceiverDep,
    state: DeliveryState | None = None,
    report_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """The caller's deliveries, newest first."""
    return [
        DeliveryOut.of(d)
        for d in service.list_deliveries(
            session, agency_id=receiver.agency_id, state=state, report_id=report_id, limit=limit
        )
    ]


@router.get("/v1/deliveries/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(delivery_id: str, session: SessionDep, receiver: ReceiverDep) -> DeliveryDetail:
    delivery = service.get_delivery(session, agency_id=receiver.agency_id, delivery_id=delivery_id)
    return DeliveryDetail.with_attempts(delivery, service.attempts_of(session, delivery.id))


@router.post("/v1/deliveries/{delivery_id}/replay", response_model=DeliveryOut)
def replay(delivery_id: str, session: SessionDep, receiver: ReceiverDep) -> DeliveryOut:
    """Send a dead (or delivered) delivery again, with the same envelope id."""
    return DeliveryOut.of(
        service.replay(
            session, agency_id=receiver.agency_id, delivery_id=delivery_id, actor=receiver.actor
        )
    )


@router.post("/v1/deliveries:recover", response_model=RecoverResult)
def recover(body: RecoverRequest, session: SessionDep, receiver: ReceiverDep) -> RecoverResult:
    """Replay every dead delivery routed to the caller in [since, until)."""
    if body.since >= body.until:
        raise InvalidInput.at(t("delivery.bad_range"), "/since")
    return RecoverResult(
        replayed=service.recover(
            session,
            agency_id=receiver.agency_id,
            since=body.since,
            until=body.until,
            actor=receiver.actor,
        )
    )


@router.post("/v1/deliveries/{delivery_id}/ack", response_model=DeliveryOut)
def acknowledge(
    delivery_id: str,
    session: SessionDep,
    receiver: ReceiverDep,
    body: Acknowledgement | None = None,
) -> DeliveryOut:
    """Acknowledge an envelope, optionally with a signed receipt."""
    receipt = body or Acknowledgement()
    if (receipt.key_id is None) != (receipt.signature is None):
        detail = ErrorDetail(
            t("validation.missing"), pointer="/key_id" if receipt.key_id is None else "/signature"
        )
        raise InvalidInput(t("request.invalid"), details=[detail])
    return DeliveryOut.of(
        receipts.acknowledge(
            session,
            agency_id=receiver.agency_id,
            delivery_id=delivery_id,
            actor=receiver.actor,
            key_id=receipt.key_id,
            signature=receipt.signature,
        )
    )


@router.get("/v1/inbox", response_model=InboxPage)
def read_inbox(
    session: SessionDep,
    hub: HubDep,
    receiver: ReceiverDep,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> InboxPage:
    """Envelopes waiting in the caller's inbox subscriptions, oldest first. Each is leased
    to this read; acknowledge it with `POST /v1/inbox/ack` or it comes back when the lease
    ends. `after` pages within one round; a read without it starts from the oldest."""
    items = inbox.read_inbox(
        session,
        agency_id=receiver.agency_id,
        after=after,
        limit=limit,
        registry=hub.registry,
        sealer=hub.keyring.sealer,
        actor=receiver.actor,
    )
    entries = [
        InboxEntry(
            delivery_id=item.delivery.id,
            cursor=inbox.encode_cursor(item.delivery),
            lease_expires_at=item.lease_expires_at,
            envelope=_parsed(item.envelope.body),
        )
        for item in items
    ]
    return InboxPage(items=entries, next_cursor=entries[-1].cursor if entries else after)


def _parsed(body: bytes) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(body)
    return document


@router.post("/v1/inbox/ack", response_model=InboxAckResult)
def acknowledge_inbox(body: InboxAck, session: SessionDep, receiver: ReceiverDep) -> InboxAckResult:
    """Acknowledge envelopes read from the inbox (by delivery id)."""
    for delivery_id in body.ids:
        receipts.acknowledge(
            session, agency_id=receiver.agency_id, delivery_id=delivery_id, actor=receiver.actor
        )
    return InboxAckResult(acknowledged=list(body.ids))
