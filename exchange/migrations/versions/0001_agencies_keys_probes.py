"""Agencies, their API keys and signing keys; worker probes.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agency",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("jurisdiction", sa.String(13), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_key_agency_id", "api_key", ["agency_id"])
    op.create_table(
        "signing_key",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_signing_key_agency_id", "signing_key", ["agency_id"])
    op.create_table(
        "probe",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("requested_by", sa.String(63), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("completed_by", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("probe")
    op.drop_index("ix_signing_key_agency_id", table_name="signing_key")
    op.drop_table("signing_key")
    op.drop_index("ix_api_key_agency_id", table_name="api_key")
    op.drop_table("api_key")
    op.drop_table("agency")
