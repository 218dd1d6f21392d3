"""The shapes of deliveries, acknowledgements and the inbox over HTTP."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from exchange.contracts import Instant, RowOut
from exchange.delivery.models import Delivery, DeliveryAttempt


class AttemptOut(RowOut):
    number: int
    started_at: datetime
    duration_ms: int
    outcome: str
    status_code: int | None
    error: str | None


class DeliveryOut(RowOut):
    id: str
    report_id: str
    subscription_id: str
    connector: str
    state: str
    attempts: int
    due_at: datetime | None
    last_error: str | None
    last_status: int | None
    data_hash: str | None
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    receipt_key_id: str | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]

    @classmethod
    def with_attempts(cls, delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryDetail:
        return cls(
            **DeliveryOut.of(delivery).model_dump(),
            attempt_log=[AttemptOut.of(a) for a in attempts],
        )


class Acknowledgement(BaseModel):
    """An acknowledgement; with ``key_id`` and ``signature`` a signed receipt: Ed25519 by
    one of the agency's signing keys over ``exchange-receipt/v1\\n<id>\\n<datahash>\\n``."""

    model_config = ConfigDict(extra="forbid")

    key_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    signature: Annotated[str, Field(min_length=1, max_length=128)] | None = None


class RecoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Instant
    until: Instant


class RecoverResult(BaseModel):
    replayed: list[str]


class InboxEntry(BaseModel):
    delivery_id: str
    cursor: str
    lease_expires_at: datetime
    envelope: dict[str, Any]


class InboxPage(BaseModel):
    items: list[InboxEntry]
    next_cursor: str | None


class InboxAck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=32)]],
        Field(min_length=1, max_length=500),
    ]


class InboxAckResult(BaseModel):
    acknowledged: list[str]
