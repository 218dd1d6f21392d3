"""Tables of the intake domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


class Intake(SQLModel, table=True):
    """One agency's endpoint for one channel: the plugin that reads it and its sealed
    config (the secret the channel signs with)."""

    __tablename__ = "intake"

    id: str = Field(primary_key=True, max_length=32)
    agency_id: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    plugin: str = Field(max_length=64)
    label: str = Field(default="", max_length=200)
    config_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IntakeMessage(SQLModel, table=True):
    """Every message an intake was handed, kept for good: a channel that sends a message
    again (an hour or a month later) gets the same answer and makes nothing new, and an id
    reused for another sender's or another text is refused. Sender and text are kept as
    keyed digests only; the answer, which may quote the message, sealed."""

    __tablename__ = "intake_message"

    intake_id: str = Field(sa_column=Column(String(32), primary_key=True))
    message_id: str = Field(sa_column=Column(String(100), primary_key=True))
    sender_digest: str = Field(max_length=64)
    text_digest: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    report_id: str | None = Field(default=None, max_length=32)
    draft_id: str | None = Field(default=None, max_length=32)
    reply_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FieldDraft(SQLModel, table=True):
    """A report begun outside the console (a text message the hub could not read whole),
    kept for its author to complete in the console. Its content (the message, what was
    read of it, what was wrong) is sealed: it may name people."""

    __tablename__ = "field_draft"
    __table_args__ = (UniqueConstraint("intake_id", "message_id"),)

    id: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(
        sa_column=Column(String(32), ForeignKey("console_user.id"), nullable=False, index=True)
    )
    agency_id: str = Field(sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False))
    intake_id: str | None = Field(default=None, max_length=32)
    message_id: str | None = Field(default=None, max_length=100)
    report_type: str | None = Field(default=None, max_length=64)
    content_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    report_id: str | None = Field(default=None, max_length=32)  # what it became, if sent
