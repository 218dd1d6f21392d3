"""Subscriptions, deliveries and delivery attempts; reports name their recipients.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("recipients", sa.Text(), nullable=False, server_default="[]"))
    op.create_table(
        "subscription",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("regions", sa.Text(), nullable=False),
        sa.Column("indicators", sa.Text(), nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=True),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("config_shown", sa.Text(), nullable=False),
        sa.Column("config_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("throttle_per_s", sa.Float(), nullable=True),
        sa.Column("next_slot_at", UTCDateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_subscription_agency_id", "subscription", ["agency_id"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), nullable=False),
        sa.Column(
            "subscription_id", sa.String(32), sa.ForeignKey("subscription.id"), nullable=False
        ),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("connector", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("data_hash", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("receipt_key_id", sa.String(64), nullable=True),
        sa.Column("receipt_signature", sa.String(128), nullable=True),
    )
    op.create_index("ix_delivery_report_id", "delivery", ["report_id"])
    op.create_index("ix_delivery_subscription_id", "delivery", ["subscription_id"])
    op.create_index("ix_delivery_agency_id", "delivery", ["agency_id"])
    op.create_index("ix_delivery_created_at", "delivery", ["created_at"])
    op.create_index("ix_delivery_state_due", "delivery", ["state", "due_at"])
    op.create_table(
        "delivery_attempt",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(32), sa.ForeignKey("delivery.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("worker", sa.String(120), nullable=False),
    )
    op.create_index("ix_delivery_attempt_delivery_id", "delivery_attempt", ["delivery_id"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempt_delivery_id", table_name="delivery_attempt")
    op.drop_table("delivery_attempt")
    for index in ("state_due", "created_at", "agency_id", "subscription_id", "report_id"):
        op.drop_index(f"ix_delivery_{index}", table_name="delivery")
    op.drop_table("delivery")
    op.drop_index("ix_subscription_agency_id", table_name="subscription")
    op.drop_table("subscription")
    with op.batch_alter_table("report") as batch:
        batch.drop_column("recipients")
