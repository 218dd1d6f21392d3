"""Tables of the reports domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


class Report(SQLModel, table=True):
    """One accepted submission. Immutable: a correction is a new report that refers to it."""

    __tablename__ = "report"
    # Search pages, newest first, read in index order.
    __table_args__ = (Index("ix_report_received", "received_at", "id"),)

    id: str = Field(primary_key=True, max_length=32)
    type: str = Field(max_length=64, index=True)
    version: int = Field(sa_column=Column(Integer, nullable=False))
    sender: str = Field(
        sa_column=Column(String(63), ForeignKey("agency.id"), nullable=False, index=True)
    )
    tlp: str = Field(max_length=16)
    refs: str = Field(sa_column=Column(Text, nullable=False))  # JSON array of report ids
    # JSON array of agency ids named as the report's audience (TLP RED, AMBER+STRICT)
    recipients: str = Field(sa_column=Column(Text, nullable=False, server_default="[]"))
    # The RFC 8785 bytes, encrypted with the report's data key (AES-256-GCM: nonce ||
    # ciphertext); empty once purged.
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_hash: str = Field(max_length=64)  # SHA-256 of the canonical payload, hex
    region: str | None = Field(default=None, max_length=13, index=True)
    severity: str | None = Field(default=None, max_length=16)
    signature_key_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    purged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReportFacet(SQLModel, table=True):
    """What search and backfill select reports by, kept beside the encrypted payload: the
    place the report is about (``place``: its village, office or checkpoint, what search
    matches), each region it concerns (``region``: the place, people's homes, NIK districts,
    what backfill routes by) and each indicator it raises (``indicator``). Deleted with the
    payload when the report is purged."""

    __tablename__ = "report_facet"
    __table_args__ = (Index("ix_report_facet_value", "facet", "value"),)

    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    facet: str = Field(sa_column=Column(String(16), primary_key=True))
    value: str = Field(sa_column=Column(String(64), primary_key=True))


class ReportRef(SQLModel, table=True):
    """One report referring to another (``refs`` and fields marked ``x-report-refs``): the
    links of a case thread, followed both ways."""

    __tablename__ = "report_ref"

    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    refers_to: str = Field(
        sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True, index=True)
    )


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a submission with an Idempotency-Key, replayed for 24 hours."""

    __tablename__ = "idempotency_record"

    agency_id: str = Field(primary_key=True, max_length=63)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    response: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
