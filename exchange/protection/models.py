"""Tables of the protection domain."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, LargeBinary, String
from sqlmodel import Field, SQLModel


class ReportKey(SQLModel, table=True):
    """A report's data key, sealed by the hub's key-encryption key. Deleting the row is
    what purging a report means: without it the stored ciphertext is noise."""

    __tablename__ = "report_key"

    report_id: str = Field(sa_column=Column(String(32), ForeignKey("report.id"), primary_key=True))
    wrapped: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kek_id: str = Field(max_length=16, index=True)  # which sealing key wrapped it


class PersonLink(SQLModel, table=True):
    """A keyed hash (HMAC-SHA256) of a NIK or passport number found in a report: equal
    numbers give equal digests, and nobody without the hub's linking key can tell which
    number it was."""

    __tablename__ = "person_link"

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(
        sa_column=Column(String(32), ForeignKey("report.id"), nullable=False, index=True)
    )
    digest: str = Field(max_length=64, index=True)
