"""A fresh PostgreSQL database per test, on the server at 127.0.0.1:5432.

Where no server answers, the tests that need one skip with the reason; in CI
(``CI=true``) they fail instead, so a missing server never passes silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

ADMIN_URL = os.environ.get(
    "VALUEBID_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of an empty database that is dropped after the test."""
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = f"no PostgreSQL server at {ADMIN_URL}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have PostgreSQL: {reason}")
        pytest.skip(reason)
    name = f"valuebid_test_{uuid.uuid4().hex[:12]}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'create database "{name}"'))
    url = sa.make_url(ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = :name and pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f'drop database if exists "{name}"'))
        engine.dispose()
