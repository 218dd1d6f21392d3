"""The pull inbox: envelopes of an agency's ``inbox`` subscriptions, read page by page with
a cursor, each leased to the read that returned it until acknowledged. Functions take the
session first and never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from connectors.base import Envelope
from connectors.inbox import InboxConfig
from exchange.agencies.models import Agency
from exchange.audit import service as audit
from exchange.contracts import keyset_cursor, read_keyset_cursor
from exchange.delivery.envelope import build_envelope
from exchange.delivery.models import INBOX, Delivery, DeliveryState
from exchange.i18n import t
from exchange.models import utcnow
from exchange.protection import service as protection
from exchange.protection.sealing import Sealer
from exchange.registry.service import SchemaRegistry
from exchange.reports.models import Report
from exchange.routing.models import Subscription


@dataclass(frozen=True)
class InboxItem:
    delivery: Delivery
    envelope: Envelope
    lease_expires_at: datetime


def encode_cursor(delivery: Delivery) -> str:
    return keyset_cursor(delivery.created_at, delivery.id)


def read_inbox(
    session: Session,
    *,
    agency_id: str,
    after: str | None,
    limit: int,
    registry: SchemaRegistry,
    sealer: Sealer,
    actor: str,
) -> list[InboxItem]:
    """Unacknowledged inbox envelopes not leased to another read, oldest first, after the
    cursor. Each is leased to this read for its subscription's ``lease_s``; one not
    acknowledged in that time is returned again by a later read."""
    now = utcnow()
    query = (
        select(Delivery, Subscription, Report)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .join(Report, col(Report.id) == col(Delivery.report_id))
        .where(
            Delivery.agency_id == agency_id,
            Delivery.connector == INBOX,
            Delivery.state == DeliveryState.delivered,
            col(Report.purged_at).is_(None),
        )
        .where((col(Delivery.due_at).is_(None)) | (col(Delivery.due_at) <= now))
    )
    if after:
        moment, last_id = read_keyset_cursor(after, message=t("delivery.bad_cursor"))
        query = query.where(
            (col(Delivery.created_at) > moment)
            | ((col(Delivery.created_at) == moment) & (col(Delivery.id) > last_id))
        )
    rows = session.exec(
        query.order_by(col(Delivery.created_at), col(Delivery.id)).limit(limit).with_for_update()
    ).all()
    reader = session.get(Agency, agency_id)
    assert reader is not None  # the caller's own agency
    items = []
    for delivery, subscription, report in rows:
        lease = InboxConfig.model_validate_json(subscription.config_shown).lease_s
        envelope = build_envelope(
            report,
            delivery,
            registry=registry,
            seen=protection.view(
                session, report=report, reader=reader, registry=registry, sealer=sealer
            ),
        )
        delivery.due_at = now + timedelta(seconds=lease)
        # What a receipt for this envelope signs: the data of the envelope read, last.
        delivery.data_hash = str(envelope.attributes["datahash"])
        session.add(delivery)
        items.append(InboxItem(delivery, envelope, delivery.due_at))
    if items:
        audit.record(
            session,
            action="inbox.read",
            subject=f"agency:{agency_id}",
            actor=actor,
            # Which envelopes were handed over, and their data: what an unsigned
            # acknowledgement refers to.
            details={
                "deliveries": [item.delivery.id for item in items],
                "data_hashes": [item.delivery.data_hash for item in items],
            },
        )
    return items
