"""Schema revisions of the state store, applied when a store is opened.

A database made before revisions were tracked (it has the ``runs`` table but
no version row) is marked as the first revision, then upgraded like any
other. The upgrade runs in one transaction under a lock, so two processes
opening the same store at once upgrade it once.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

#: The revision of the schema the foundation created without version tracking.
BASELINE = "0001"

# An arbitrary constant that names the upgrade lock among PostgreSQL's
# advisory locks; any other user of advisory locks on the database must
# avoid it.
_PG_LOCK_KEY = 7_451_220_301


def alembic_config(connection: Connection | None = None) -> Config:
    """The revision scripts' configuration, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", "optimizer:migrations")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` when it has none)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``, keeping every row."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("select pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
            )
        before = MigrationContext.configure(connection).get_current_revision()
        config = alembic_config(connection)
        if before is None and sa.inspect(connection).has_table("runs"):
            logger.info("state store predates revisions: marking it %s", BASELINE)
            command.stamp(config, BASELINE)
            before = BASELINE
        command.upgrade(config, revision)
        after = MigrationContext.configure(connection).get_current_revision()
    if after != before:
        logger.info("state store schema upgraded from %s to %s", before, after)
