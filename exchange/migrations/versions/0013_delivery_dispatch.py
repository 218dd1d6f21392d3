"""Deliveries carry the number of the one message meant to send them (``dispatch``), so
that a message superseded by a later one is dropped when it surfaces, and when the sweeper
may send one again (``resweep_at``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as table:
        table.add_column(sa.Column("dispatch", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("resweep_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as table:
        table.drop_column("resweep_at")
        table.drop_column("dispatch")
