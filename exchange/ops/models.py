"""Tables of the operations domain."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


class Probe(SQLModel, table=True):
    """One round trip through the job path: requested over HTTP, completed by a worker."""

    __tablename__ = "probe"

    id: str = Field(primary_key=True, max_length=32)
    requested_by: str = Field(max_length=63)
    requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_by: str | None = Field(default=None, max_length=200)  # worker host:pid
