"""Reports, idempotency records, the region directory; agencies may require signatures.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agency") as batch:
        batch.add_column(
            sa.Column(
                "require_signed_reports", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "report",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("refs", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("region", sa.String(13), nullable=True),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("signature_key_id", sa.String(64), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_report_type", "report", ["type"])
    op.create_index("ix_report_sender", "report", ["sender"])
    op.create_index("ix_report_region", "report", ["region"])
    op.create_table(
        "idempotency_record",
        sa.Column("agency_id", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "region",
        sa.Column("code", sa.String(13), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("region")
    op.drop_table("idempotency_record")
    op.drop_index("ix_report_region", table_name="report")
    op.drop_index("ix_report_sender", table_name="report")
    op.drop_index("ix_report_type", table_name="report")
    op.drop_table("report")
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("require_signed_reports")
