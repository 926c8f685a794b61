"""The first schema: runs, their plan rows, and the target changes pushed.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(80), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("run_date", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(120)),
        sa.Column("plan_dir", sa.String(1000)),
        sa.UniqueConstraint("account", "run_date", name="uq_runs_account_day"),
    )
    op.create_table(
        "plan_rows",
        sa.Column(
            "run_id", sa.String(80), sa.ForeignKey("runs.run_id"), primary_key=True
        ),
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("new_troas", sa.Float),
        sa.Column("row", sa.JSON, nullable=False),
    )
    op.create_table(
        "target_changes",
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id", sa.String(80), sa.ForeignKey("runs.run_id"), nullable=False
        ),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_strategy", sa.String(40), nullable=False),
        sa.Column("old_target_cpa", sa.Float),
        sa.Column("old_target_roas", sa.Float),
        sa.Column("new_target_roas", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("target_changes")
    op.drop_table("plan_rows")
    op.drop_table("runs")
