"""Key management: the operator agency, signing-key approval, witness names bound to keys.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exchange.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, which SQLite does in place: a batch operation would rebuild the
    # tables, and dropping the old agency table breaks the foreign keys that point at it.
    op.add_column(
        "agency",
        sa.Column(
            "require_signing_key_approval", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
    )
    op.add_column(
        "signing_key", sa.Column("added_by", sa.String(200), nullable=False, server_default="")
    )
    op.add_column("signing_key", sa.Column("approved_at", UTCDateTime(), nullable=True))
    op.add_column("signing_key", sa.Column("approved_by", sa.String(200), nullable=True))
    op.add_column("audit_cosignature", sa.Column("witness_key_id", sa.String(64), nullable=True))
    # Keys registered before approvals existed stay in force.
    op.execute("UPDATE signing_key SET approved_at = created_at")
    # Until now any admin key administered the whole hub. That power stays with the agencies
    # that held one (the operator's), which become the operator agency; from now on an admin
    # key of any other agency administers that agency alone.
    op.execute(
        "UPDATE agency SET kind = 'operator' WHERE kind = 'other' AND id IN ("
        " SELECT agency_id FROM api_key WHERE revoked_at IS NULL"
        " AND (' ' || scopes || ' ') LIKE '% admin %')"
    )


def downgrade() -> None:
    op.execute("UPDATE agency SET kind = 'other' WHERE kind = 'operator'")
    with op.batch_alter_table("audit_cosignature") as batch:
        batch.drop_column("witness_key_id")
    with op.batch_alter_table("signing_key") as batch:
        batch.drop_column("approved_by")
        batch.drop_column("approved_at")
        batch.drop_column("added_by")
    with op.batch_alter_table("agency") as batch:
        batch.drop_column("require_signing_key_approval")
