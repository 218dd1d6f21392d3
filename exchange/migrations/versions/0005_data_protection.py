"""Data protection: agency clearance, per-report data keys, person links, purge.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agency") as batch:
        batch.add_column(
            sa.Column(
                "clearance", sa.String(64), nullable=False, server_default="public operational"
            )
        )
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("purged_at", UTCDateTime(), nullable=True))
    op.create_table(
        "report_key",
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(16), nullable=False),
    )
    op.create_index("ix_report_key_kek_id", "report_key", ["kek_id"])
    op.create_table(
        "person_link",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
    )
    op.create_index("ix_person_link_report_id", "person_link", ["report_id"])
    op.create_index("ix_person_link_digest", "person_link", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_person_link_digest", table_name="person_link")
    op.drop_index("ix_person_link_report_id", table_name="person_link")
    op.drop_table("person_link")
    op.drop_index("ix_report_key_kek_id", table_name="report_key")
    op.drop_table("report_key")
    with op.batch_alter_table("report") as batch:
        batch.drop_column("purged_at")
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("clearance")
