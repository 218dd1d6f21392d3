"""Console users and their sessions.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_user",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agency_id", sa.String(63), sa.ForeignKey("agency.id"), nullable=False),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("password_must_change", sa.Boolean, nullable=False),
        sa.Column("totp_sealed", sa.LargeBinary, nullable=True),
        sa.Column("totp_confirmed_at", UTCDateTime, nullable=True),
        sa.Column("totp_last_step", sa.Integer, nullable=True),
        sa.Column("failed_logins", sa.Integer, nullable=False),
        sa.Column("locked_until", UTCDateTime, nullable=True),
        sa.Column("reset_token_hash", sa.String(64), nullable=True),
        sa.Column("reset_expires_at", UTCDateTime, nullable=True),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_console_user_agency_id", "console_user", ["agency_id"])
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("console_user.id"), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("second_factor", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_console_session_user_id", "console_session", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_console_session_user_id", table_name="console_session")
    op.drop_table("console_session")
    op.drop_index("ix_console_user_agency_id", table_name="console_user")
    op.drop_table("console_user")
