"""Value level: the figures of the values each run scored, and their check.

``runs`` gains ``value_summary`` (how many new users and all users were
scored, their total and mean value, the revenue read) and ``value_check``
(how the mean value per user compared with the last successful run). Both
are empty on the runs recorded before, which were never compared: the first
run after the upgrade has nothing to compare with and says so.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("value_summary", sa.JSON))
        batch.add_column(sa.Column("value_check", sa.JSON))


def downgrade() -> None:
    # The older code knows no value_held status: such a run becomes stopped,
    # its reason already in stop_reason, and holds every target in its plan.
    op.execute("update runs set status = 'stopped' where status = 'value_held'")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("value_check")
        batch.drop_column("value_summary")
