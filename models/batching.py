"""Split the tables of many users into batches of whole users.

Scoring a user needs only that user's rows, so a large account can be scored
a batch at a time: the features and trees of one batch are in memory at
once, not those of every user.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from connectors.contracts import index_of

#: Users scored together; a million users' features take about 1.5 GB.
BATCH_USERS = 1_000_000


def user_batches(
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    events: pd.DataFrame | None,
    size: int = BATCH_USERS,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]]:
    """Yield ``(users, revenue, events)`` of consecutive batches of ``size`` users.

    Rows keep their order within a batch; rows of users not in ``users``
    belong to no batch. One batch is the tables themselves, not copies.

    Parameters
    ----------
    users
        One row per user, with ``user_id``.
    revenue, events
        Rows with ``user_id``; ``events`` may be ``None``.
    size
        Users per batch, at least 1.

    Yields
    ------
    tuple of pandas.DataFrame
        A batch's users, revenue and events (``None`` when ``events`` is).
    """
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    if len(users) <= size:
        yield users, revenue, events
        return
    ids = pd.Index(users["user_id"])
    count = -(-len(users) // size)
    parts = [_rows_by_batch(table, ids, size, count) for table in (revenue, events)]
    for batch in range(count):
        rows = [part[batch] if part is not None else None for part in parts]
        money = rows[0]
        assert money is not None
        yield users.iloc[batch * size : (batch + 1) * size], money, rows[1]


def _rows_by_batch(
    table: pd.DataFrame | None, ids: pd.Index, size: int, count: int
) -> list[pd.DataFrame] | None:
    """The rows of ``table`` in each batch, found with one lookup and one sort."""
    if table is None:
        return None
    batch = index_of(table["user_id"], ids) // size
    batch[batch < 0] = count
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(count + 1))
    return [table.take(order[bounds[k] : bounds[k + 1]]) for k in range(count)]
