"""Routing by index: one row per (type, region) a subscription selects.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    match = op.create_table(
        "subscription_match",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id", sa.String(32), sa.ForeignKey("subscription.id"), nullable=False
        ),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("region", sa.String(13), nullable=False),
    )
    op.create_index(
        "ix_subscription_match_subscription_id", "subscription_match", ["subscription_id"]
    )
    op.create_index("ix_subscription_match_type_region", "subscription_match", ["type", "region"])
    subscriptions = op.get_bind().execute(
        sa.text("SELECT id, types, regions FROM subscription WHERE deleted_at IS NULL")
    )
    rows = [
        {"subscription_id": sid, "type": type_, "region": region}
        for sid, types, regions in subscriptions
        for type_ in sorted(set(json.loads(types))) or [""]
        for region in sorted(set(json.loads(regions))) or [""]
    ]
    if rows:
        op.bulk_insert(match, rows)


def downgrade() -> None:
    op.drop_index("ix_subscription_match_type_region", table_name="subscription_match")
    op.drop_index("ix_subscription_match_subscription_id", table_name="subscription_match")
    op.drop_table("subscription_match")
