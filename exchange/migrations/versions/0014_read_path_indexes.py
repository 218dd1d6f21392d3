"""Indexes for reading at scale: whether a report was routed to an agency is one lookup
(``delivery (report_id, agency_id)``; the planner used to take the agency's index and scan
every delivery the agency ever had, for every report, so a search page with 200,000
visible reports did not answer in minutes), and search pages come newest first from an
index (``report (received_at, id)``) instead of sorting every visible report.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_delivery_report_agency", "delivery", ["report_id", "agency_id"])
    op.create_index("ix_report_received", "report", ["received_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_report_received", table_name="report")
    op.drop_index("ix_delivery_report_agency", table_name="delivery")
