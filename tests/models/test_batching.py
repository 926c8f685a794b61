"""Scoring in batches of users gives exactly the scores of one pass."""

from __future__ import annotations

import pandas as pd
import pytest

from models.batching import user_batches


@pytest.mark.parametrize("size", [1, 7, 50])
def test_batched_scores_equal_one_pass(fitted, tables, as_of, size: int) -> None:
    users, revenue, events = tables
    # Shuffled, so a batch mixes old users, young ones and ones not signed up.
    mixed = users.sample(frac=1.0, random_state=3).head(120)
    when = as_of - pd.Timedelta(days=300)

    whole = fitted.predict(mixed, revenue, when, events, batch_users=10**9)
    batched = fitted.predict(mixed, revenue, when, events, batch_users=size)

    assert len(whole) > 0
    pd.testing.assert_frame_equal(batched, whole)


def test_every_row_of_a_known_user_lands_in_its_users_batch(tables) -> None:
    users, revenue, events = tables
    users = users.head(40)
    stranger = revenue.head(1).assign(user_id="nobody")
    revenue = pd.concat([revenue, stranger], ignore_index=True)

    batches = list(user_batches(users, revenue, events, size=15))

    assert [len(b[0]) for b in batches] == [15, 15, 10]
    for batch_users, batch_revenue, batch_events in batches:
        mine = set(batch_users["user_id"])
        assert set(batch_revenue["user_id"]) <= mine
        assert batch_events is not None and set(batch_events["user_id"]) <= mine
    known = revenue[revenue["user_id"].isin(users["user_id"])]
    assert sum(len(b[1]) for b in batches) == len(known)


def test_a_batch_size_below_one_is_refused(tables) -> None:
    users, revenue, events = tables
    with pytest.raises(ValueError, match="at least 1"):
        next(user_batches(users, revenue, events, size=0))
