"""A lease: one holder at a time per name, on SQLite and PostgreSQL alike.

The lease is a row keyed by its name. Taking it is an insert (the primary
key refuses a second holder) or, when the row exists, a compare-and-set
update that succeeds only if the lease has expired; both are single
statements, atomic on either database. A holder that dies keeps the lease
until it expires, so the time to live must exceed the longest apply.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from optimizer.exceptions import LockBusyError
from optimizer.state import StateStore, leases

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


def new_holder() -> str:
    """An identity for this process's leases, readable in the table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(
    store: StateStore,
    name: str,
    holder: str,
    ttl: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Take the lease ``name`` for ``holder`` unless someone else holds it."""
    expires = now + ttl
    try:
        with store.engine.begin() as connection:
            connection.execute(
                leases.insert().values(
                    name=name, holder=holder, acquired_at=now, expires_at=expires
                )
            )
        return True
    except IntegrityError:
        pass
    with store.engine.begin() as connection:
        taken = connection.execute(
            leases.update()
            .where(
                leases.c.name == name,
                sa.or_(leases.c.expires_at <= now, leases.c.holder == holder),
            )
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
    return taken.rowcount == 1


def release(store: StateStore, name: str, holder: str) -> None:
    """Give the lease back, if ``holder`` still has it."""
    with store.engine.begin() as connection:
        connection.execute(
            leases.delete().where(leases.c.name == name, leases.c.holder == holder)
        )


def current_holder(store: StateStore, name: str) -> tuple[str, dt.datetime] | None:
    """Who holds ``name`` and until when, or ``None``."""
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
        ).first()
    return (row[0], row[1]) if row is not None else None


@contextmanager
def lease(
    store: StateStore,
    name: str,
    *,
    ttl: dt.timedelta,
    wait: dt.timedelta = dt.timedelta(0),
    clock: Clock = utc_now,
    poll_seconds: float = 0.2,
) -> Iterator[str]:
    """Hold the lease ``name`` for the block, waiting up to ``wait`` for it.

    Raises
    ------
    LockBusyError
        Another holder kept the lease for the whole wait.
    """
    holder = new_holder()
    deadline = time.monotonic() + wait.total_seconds()
    while not try_acquire(store, name, holder, ttl, clock()):
        if time.monotonic() >= deadline:
            other = current_holder(store, name)
            who = f"{other[0]} until {other[1]:%Y-%m-%d %H:%M:%S}" if other else "?"
            raise LockBusyError(f"{name} is held by {who}; nothing was applied")
        time.sleep(poll_seconds)
    logger.debug("lease %s taken by %s", name, holder)
    try:
        yield holder
    finally:
        release(store, name, holder)
