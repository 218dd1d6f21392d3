"""Field reporting: users' phone numbers, intakes (channels an agency receives messages
from) and drafts; console sessions' confirmation window (a fresh second factor) and the
user who made an API key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("console_user") as table:
        table.add_column(sa.Column("phone", sa.String(20), nullable=True))
        table.create_unique_constraint("uq_console_user_phone", ["phone"])
    with op.batch_alter_table("console_session") as table:
        table.add_column(sa.Column("confirmed_until", UTCDateTime, nullable=True))
    with op.batch_alter_table("api_key") as table:
        table.add_column(sa.Column("created_by_user", sa.String(32), nullable=True))
    op.create_table(
        "intake",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("plugin", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("config_sealed", sa.LargeBinary, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("removed_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_intake_agency_id", "intake", ["agency_id"])
    op.create_table(
        "intake_message",
        sa.Column("intake_id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(100), primary_key=True),
        sa.Column("sender_digest", sa.String(64), nullable=False),
        sa.Column("text_digest", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("report_id", sa.String(32), nullable=True),
        sa.Column("draft_id", sa.String(32), nullable=True),
        sa.Column("reply_sealed", sa.LargeBinary, nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "field_draft",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("console_user.id"), nullable=False),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("intake_id", sa.String(32), nullable=True),
        sa.Column("message_id", sa.String(100), nullable=True),
        sa.Column("report_type", sa.String(64), nullable=True),
        sa.Column("content_sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("report_id", sa.String(32), nullable=True),
        sa.UniqueConstraint("intake_id", "message_id"),
    )
    op.create_index("ix_field_draft_user_id", "field_draft", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_field_draft_user_id", table_name="field_draft")
    op.drop_table("field_draft")
    op.drop_table("intake_message")
    op.drop_index("ix_intake_agency_id", table_name="intake")
    op.drop_table("intake")
    with op.batch_alter_table("api_key") as table:
        table.drop_column("created_by_user")
    with op.batch_alter_table("console_session") as table:
        table.drop_column("confirmed_until")
    with op.batch_alter_table("console_user") as table:
        table.drop_constraint("uq_console_user_phone", type_="unique")
        table.drop_column("phone")
