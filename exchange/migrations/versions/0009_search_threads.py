"""Search and case threads: the regions and indicators of each report, the references
between reports, and who acknowledged a delivery.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reports accepted before this revision get their first region (report.region) and
    # their refs as facets and links; the regions and references inside their encrypted
    # payloads are not read back.
    op.create_table(
        "report_facet",
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("facet", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(64), primary_key=True),
    )
    op.create_index("ix_report_facet_value", "report_facet", ["facet", "value"])
    op.create_table(
        "report_ref",
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("refers_to", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
    )
    op.create_index("ix_report_ref_refers_to", "report_ref", ["refers_to"])
    connection = op.get_bind()
    reports = sa.table(
        "report",
        sa.column("id", sa.String),
        sa.column("region", sa.String),
        sa.column("refs", sa.Text),
    )
    facets: list[dict[str, str]] = []
    links: list[dict[str, str]] = []
    for report_id, region, refs in connection.execute(
        sa.select(reports.c.id, reports.c.region, reports.c.refs)
    ):
        if region:  # the first region a report concerns is the place it is about
            facets.extend(
                {"report_id": report_id, "facet": facet, "value": region}
                for facet in ("place", "region")
            )
        links.extend({"report_id": report_id, "refers_to": ref} for ref in set(json.loads(refs)))
    if facets:
        op.bulk_insert(
            sa.table("report_facet", *(sa.column(n) for n in ("report_id", "facet", "value"))),
            facets,
        )
    if links:
        op.bulk_insert(
            sa.table("report_ref", sa.column("report_id"), sa.column("refers_to")), links
        )
    op.add_column("delivery", sa.Column("acknowledged_by", sa.String(120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("acknowledged_by")
    op.drop_index("ix_report_ref_refers_to", table_name="report_ref")
    op.drop_table("report_ref")
    op.drop_index("ix_report_facet_value", table_name="report_facet")
    op.drop_table("report_facet")
