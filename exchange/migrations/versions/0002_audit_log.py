"""The audit log: events, Merkle tree nodes, signed checkpoints, witness cosignatures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid alias


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("seq", BigId, primary_key=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("canonical", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=True, unique=True),
    )
    op.create_index("ix_audit_event_action", "audit_event", ["action"])
    op.create_index("ix_audit_event_subject", "audit_event", ["subject"])
    op.create_table(
        "audit_node",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "audit_cosignature",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "checkpoint_size",
            sa.BigInteger(),
            sa.ForeignKey("audit_checkpoint.size"),
            nullable=False,
        ),
        sa.Column("witness_agency", sa.String(63), nullable=False),
        sa.Column("witness_name", sa.String(200), nullable=False),
        sa.Column("signature_line", sa.Text(), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("checkpoint_size", "witness_name"),
    )
    op.create_index(
        "ix_audit_cosignature_checkpoint_size", "audit_cosignature", ["checkpoint_size"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_cosignature_checkpoint_size", table_name="audit_cosignature")
    op.drop_table("audit_cosignature")
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_node")
    op.drop_index("ix_audit_event_subject", table_name="audit_event")
    op.drop_index("ix_audit_event_action", table_name="audit_event")
    op.drop_table("audit_event")
