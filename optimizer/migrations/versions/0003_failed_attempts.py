"""Failed attempts: when and why the latest start of a day failed.

``runs`` gains ``failed_attempt_at`` and ``failed_attempt_error``, both
empty on the runs recorded before: none of them is known to have been
followed by a failed start.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("failed_attempt_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("failed_attempt_error", sa.Text))


def downgrade() -> None:
    # A held-back run keeps its status, and its reason moves to the stop
    # reason, which the older schema shows; the older code does not refuse it.
    op.execute(
        "update runs set stop_reason = failed_attempt_error "
        "where status = 'rerun_failed'"
    )
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("failed_attempt_error")
        batch.drop_column("failed_attempt_at")
