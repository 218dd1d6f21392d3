"""Tables of the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from exchange.models import UTCDateTime, utcnow


class AuditEvent(SQLModel, table=True):
    """One recorded action, as the RFC 8785 canonical JSON that its leaf hashes.

    ``seq`` orders recording; ``leaf_index`` is given by the integrator, in the order it
    appends committed events to the tree (NULL until then).
    """

    __tablename__ = "audit_event"

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    id: str = Field(max_length=32, unique=True)
    action: str = Field(max_length=64, index=True)
    subject: str = Field(max_length=200, index=True)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    canonical: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_index: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True, unique=True)
    )


class AuditNode(SQLModel, table=True):
    """The hash of the perfect subtree at (level, index): leaves at level 0, each level up
    covering twice as many. Written once, never changed; proofs read O(log n) of them."""

    __tablename__ = "audit_node"

    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class SignedCheckpoint(SQLModel, table=True):
    """A checkpoint the hub signed; one per tree size, kept for auditors' history."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Cosignature(SQLModel, table=True):
    """A witness's cosignature/v1 on one checkpoint."""

    __tablename__ = "audit_cosignature"
    __table_args__ = (UniqueConstraint("checkpoint_size", "witness_name"),)

    id: int | None = Field(default=None, primary_key=True)
    checkpoint_size: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("audit_checkpoint.size"), nullable=False, index=True
        )
    )
    witness_agency: str = Field(sa_column=Column(String(63), nullable=False))
    witness_name: str = Field(max_length=200)
    # The signing key that cosigned: a witness name stays bound to it.
    witness_key_id: str | None = Field(default=None, max_length=64)
    signature_line: str = Field(sa_column=Column(Text, nullable=False))
    cosigned_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
