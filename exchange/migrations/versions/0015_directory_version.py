"""The directory's version (``directory_version``, one row): raised with every change to
agencies, API keys and subscriptions, so that each process may keep what it read of them
while it stands still (exchange.directory).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    # Random from the start, as every later value is: no two databases share a first one.
    op.bulk_insert(table, [{"id": 1, "version": secrets.randbits(63)}])


def downgrade() -> None:
    op.drop_table("directory_version")
