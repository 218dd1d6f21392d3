"""Acknowledgements: a recipient says it has an envelope, optionally with a receipt signed
by one of its Ed25519 keys that it cannot later deny. Functions take the session first and
never commit."""

from __future__ import annotations

import binascii

from sqlmodel import Session

from exchange.agencies import signatures
from exchange.audit import service as audit
from exchange.crypto import b64url_decode, receipt_message
from exchange.delivery.models import Delivery, DeliveryState
from exchange.delivery.service import DeliveryConflict, get_delivery
from exchange.errors import InvalidInput
from exchange.i18n import t
from exchange.models import utcnow


class ReceiptInvalid(InvalidInput):
    """Raised when a signed receipt names an unknown key or does not verify."""

    code = "receipt_invalid"


def _checked_receipt(session: Session, delivery: Delivery, *, key_id: str, signature: str) -> None:
    try:
        signatures.verify(
            session,
            agency_id=delivery.agency_id,
            key_id=key_id,
            signature=b64url_decode(signature),
            message=receipt_message(delivery.id, delivery.data_hash or ""),
        )
    except signatures.UnknownSigningKey:
        raise ReceiptInvalid.at(t("delivery.receipt_unknown_key", key=key_id), "/key_id") from None
    except (signatures.WrongSignature, binascii.Error, ValueError):
        raise ReceiptInvalid.at(t("delivery.receipt_wrong"), "/signature") from None


def acknowledge(
    session: Session,
    *,
    agency_id: str,
    delivery_id: str,
    actor: str,
    key_id: str | None = None,
    signature: str | None = None,
    note: str | None = None,
) -> Delivery:
    """The recipient says it has the envelope; with a signature, a receipt it cannot later
    deny; with a note (from the console), what it is doing about it, kept in the audit
    log. Acknowledging twice is harmless. A delivery that was never attempted cannot be
    acknowledged, nor signed for before the envelope it signs exists (an inbox
    delivery's, before it was read)."""
    delivery = get_delivery(session, agency_id=agency_id, delivery_id=delivery_id)
    if delivery.state == DeliveryState.acknowledged and signature is None:
        return delivery
    if delivery.attempts == 0 and delivery.state != DeliveryState.acknowledged:
        raise DeliveryConflict(t("delivery.not_sent", id=delivery_id))
    if signature is not None:
        if delivery.data_hash is None:
            raise DeliveryConflict(t("delivery.not_read", id=delivery_id))
        _checked_receipt(session, delivery, key_id=key_id or "", signature=signature)
        delivery.receipt_key_id = key_id
        delivery.receipt_signature = signature
    delivery.state = DeliveryState.acknowledged
    if delivery.acknowledged_at is None:
        delivery.acknowledged_at = utcnow()
        delivery.acknowledged_by = actor
    delivery.due_at = None
    session.add(delivery)
    audit.record(
        session,
        action="delivery.acknowledged",
        subject=f"report:{delivery.report_id}",
        actor=actor,
        details={
            "delivery": delivery.id,
            "agency": delivery.agency_id,
            "data_hash": delivery.data_hash,
            "receipt_key_id": key_id if signature else None,
            "receipt_signature": signature,
            **({"note": note} if note else {}),
        },
    )
    return delivery
