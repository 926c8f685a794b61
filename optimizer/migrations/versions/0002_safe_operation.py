"""Safe operation: run kinds, stop reasons, approvals, two-step changes, leases.

- ``runs`` gains ``kind`` (cycle or rollback), ``rolls_back`` (the run a
  rollback undoes) and ``stop_reason``; one run per account, day, kind and
  undone run replaces one run per account and day, so a rollback can be
  recorded on a day that also has a cycle.
- ``plan_rows`` gains ``approved_at``.
- ``target_changes`` gains the wanted strategy and tCPA (a rollback may
  restore a tCPA strategy), the API request id, and one change per run and
  campaign, which is what makes a resumed apply idempotent.
- ``leases``: the lock that lets one process at a time apply an account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(20), nullable=False, server_default="cycle")
        )
        batch.add_column(
            sa.Column("rolls_back", sa.String(80), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("stop_reason", sa.Text))
        batch.drop_constraint("uq_runs_account_day", type_="unique")
        batch.create_unique_constraint(
            "uq_runs_account_day_kind", ["account", "run_date", "kind", "rolls_back"]
        )
    with op.batch_alter_table("plan_rows") as batch:
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("target_changes") as batch:
        batch.alter_column("new_target_roas", existing_type=sa.Float, nullable=True)
        batch.add_column(sa.Column("new_strategy", sa.String(40)))
        batch.add_column(sa.Column("new_target_cpa", sa.Float))
        batch.add_column(sa.Column("request_id", sa.String(200)))
        batch.create_unique_constraint(
            "uq_target_changes_run_campaign", ["run_id", "campaign_id"]
        )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("target_changes") as batch:
        batch.drop_constraint("uq_target_changes_run_campaign", type_="unique")
        batch.drop_column("request_id")
        batch.drop_column("new_target_cpa")
        batch.drop_column("new_strategy")
        batch.alter_column("new_target_roas", existing_type=sa.Float, nullable=False)
    with op.batch_alter_table("plan_rows") as batch:
        batch.drop_column("approved_at")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("uq_runs_account_day_kind", type_="unique")
        batch.create_unique_constraint("uq_runs_account_day", ["account", "run_date"])
        batch.drop_column("stop_reason")
        batch.drop_column("rolls_back")
        batch.drop_column("kind")
