"""Statistics: regions' outlines for the map (``region_boundary``); the non-identifying
facts of each report, per reader, kept past purge (``stat_fact``, clustered where SQLite
allows), their counts by place and day and by place and month (``stat_tally``), its
indicators and its people's age bands and genders. ``exchange stats backfill`` fills them
for reports accepted before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region_boundary",
        sa.Column("code", sa.String(13), primary_key=True),
        sa.Column("shape", sa.LargeBinary, nullable=False),
        sa.Column("longitude", sa.Float, nullable=False),
        sa.Column("latitude", sa.Float, nullable=False),
    )
    op.create_table(
        "stat_fact",
        sa.Column("reader", sa.String(63), primary_key=True),
        sa.Column("province", sa.String(2), primary_key=True),
        sa.Column("kabupaten", sa.String(5), primary_key=True),
        sa.Column("kecamatan", sa.String(8), primary_key=True),
        sa.Column("desa", sa.String(13), primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("destination", sa.String(2), nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_stat_fact_report", "stat_fact", ["report_id", "reader"])
    op.create_table(
        "stat_tally",
        sa.Column("reader", sa.String(63), primary_key=True),
        sa.Column("grain", sa.String(1), primary_key=True),
        sa.Column("province", sa.String(2), primary_key=True),
        sa.Column("kabupaten", sa.String(5), primary_key=True),
        sa.Column("kecamatan", sa.String(8), primary_key=True),
        sa.Column("desa", sa.String(13), primary_key=True),
        sa.Column("start", sa.Integer, primary_key=True),
        sa.Column("reports", sa.Integer, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "stat_indicator",
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("indicator", sa.String(64), primary_key=True),
    )
    op.create_index("ix_stat_indicator_indicator", "stat_indicator", ["indicator", "report_id"])
    op.create_table(
        "stat_person",
        sa.Column("report_id", sa.String(32), sa.ForeignKey("report.id"), primary_key=True),
        sa.Column("age_band", sa.String(8), primary_key=True),
        sa.Column("gender", sa.String(32), primary_key=True),
        sa.Column("people", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("region_boundary")
    op.drop_table("stat_person")
    op.drop_index("ix_stat_indicator_indicator", "stat_indicator")
    op.drop_table("stat_indicator")
    op.drop_table("stat_tally")
    op.drop_index("ix_stat_fact_report", "stat_fact")
    op.drop_table("stat_fact")
