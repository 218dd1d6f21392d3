"""Tables of the delivery domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, Session, SQLModel, col, select

from exchange.jobs import enqueue_after_commit
from exchange.models import UTCDateTime, insert_rows, utcnow

SEND_ACTOR = "delivery.send"
# The connector whose envelopes wait in the hub for the recipient to pull them: routing
# places them there (delivered at once); no worker sends them.
INBOX = "inbox"
FIRST_DISPATCH = 1  # the number of the message routing sends a new delivery
ERROR_LENGTH = 300
SWEEP_ACTOR = "delivery.sweep"


class DeliveryState(StrEnum):
    pending = "pending"  # routed; its first attempt is due
    in_flight = "in_flight"  # a worker holds it until ``due_at`` (then the sweeper may)
    retrying = "retrying"  # an attempt failed; the next is due at ``due_at``
    delivered = "delivered"  # the connector took it
    acknowledged = "acknowledged"  # the recipient said it has it
    dead = "dead"  # the schedule ran out or the failure was permanent


DUE_STATES = (DeliveryState.pending, DeliveryState.in_flight, DeliveryState.retrying)


class Delivery(SQLModel, table=True):
    """One report to one subscription. Its id is the envelope's id, the same on every
    attempt and replay, so recipients deduplicate by it."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_state_due", "state", "due_at"),
        # "was this report routed to this agency?": what every read's visibility asks
        Index("ix_delivery_report_agency", "report_id", "agency_id"),
    )

    id: str = Field(primary_key=True, max_length=32)
    report_id: str = Field(
        sa_column=Column(String(32), ForeignKey("report.id"), nullable=False, index=True)
    )
    subscription_id: str = Field(
        sa_column=Column(String(32), ForeignKey("subscription.id"), nullable=False, index=True)
    )
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    connector: str = Field(max_length=64)
    state: DeliveryState = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # When the next attempt is due (pending, retrying) or when a worker's hold on it lapses
    # (in_flight); for inbox deliveries that were read, when the reader's lease ends.
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=300)
    last_status: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    data_hash: str | None = Field(default=None, max_length=64)
    # The number of the one message meant to send it: every message sent for it carries the
    # number it was sent with, and a message whose number is not this one was superseded
    # (the sweeper sent another, or the delivery was rescheduled) and is dropped.
    dispatch: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # Not before then does the sweeper send it again, however overdue it is.
    resweep_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: str | None = Field(default=None, max_length=120)  # the key's actor
    receipt_key_id: str | None = Field(default=None, max_length=64)
    receipt_signature: str | None = Field(default=None, max_length=128)

    def end(self, reason: str) -> None:
        """Give up on this delivery: it is dead, and ``reason`` says why."""
        self.state = DeliveryState.dead
        self.due_at = None
        self.last_error = reason[:ERROR_LENGTH]


def enqueue_send(
    session: Session, delivery: Delivery, *, delay_ms: int | None = None, superseding: bool = True
) -> None:
    """Send ``delivery`` a message once the session commits. A rescheduled delivery (a retry,
    a wait for a slot or the throttle, a replay) supersedes every message sent for it
    before, so a delivery has one live message however often it was rescheduled. The
    sweeper's copy (``superseding=False``) carries the current number instead: the message
    it may duplicate keeps its place in the queue, and whichever comes first moves the
    delivery on and leaves the other with nothing to do."""
    if superseding:
        delivery.dispatch += 1
    delivery.resweep_at = None
    session.add(delivery)
    enqueue_after_commit(
        session, SEND_ACTOR, delivery_id=delivery.id, dispatch=delivery.dispatch, delay_ms=delay_ms
    )


def starting_state(connector: str, now: datetime) -> dict[str, Any]:
    """Where a delivery starts, routed or replayed: a pushed one pending, due now; an inbox
    one delivered, placing it in the inbox being its one attempt (no worker sends it)."""
    if connector == INBOX:
        return {
            "state": DeliveryState.delivered,
            "attempts": 1,
            "due_at": None,
            "delivered_at": now,
        }
    return {"state": DeliveryState.pending, "attempts": 0, "due_at": now}


def insert_routed(session: Session, rows: list[dict[str, Any]]) -> None:
    """Store a report's new deliveries (plain rows: routing writes several for every
    report) as they start (:func:`starting_state`), and send each pushed one its first
    message, numbered 1, once the session commits."""
    now = utcnow()
    numbered = [
        {
            **row,
            "dispatch": FIRST_DISPATCH,
            "delivered_at": None,
            **starting_state(row["connector"], now),
        }
        for row in rows
    ]
    insert_rows(session, Delivery, numbered)
    for row in numbered:
        if row["connector"] != INBOX:
            enqueue_after_commit(
                session, SEND_ACTOR, delivery_id=row["id"], dispatch=FIRST_DISPATCH
            )


def end_due_deliveries(
    session: Session,
    *,
    reason: str,
    report_id: str | None = None,
    subscription_id: str | None = None,
    agency_id: str | None = None,
) -> int:
    """End every delivery still due of a report, a subscription or a recipient agency that
    is going away (a purge, a deletion, a deactivation); returns how many. A message for
    one of them finds it dead."""
    query = select(Delivery).where(col(Delivery.state).in_(list(DUE_STATES)))
    if agency_id is not None:
        query = query.where(Delivery.agency_id == agency_id)
    if report_id is not None:
        query = query.where(Delivery.report_id == report_id)
    if subscription_id is not None:
        query = query.where(Delivery.subscription_id == subscription_id)
    due = session.exec(query).all()
    for delivery in due:
        delivery.end(reason)
        session.add(delivery)
    return len(due)


class DeliveryAttempt(SQLModel, table=True):
    """One try at delivering: when, how long, what came of it."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(
        sa_column=Column(String(32), ForeignKey("delivery.id"), nullable=False, index=True)
    )
    number: int = Field(sa_column=Column(Integer, nullable=False))
    started_at: datetime = Field(sa_type=UTCDateTime)
    duration_ms: int = Field(sa_column=Column(Integer, nullable=False))
    outcome: str = Field(max_length=16)  # delivered | retry | dead
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    error: str | None = Field(default=None, max_length=300)
    worker: str = Field(default="", max_length=120)
