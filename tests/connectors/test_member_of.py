"""``member_of`` and ``index_of`` answer as ``isin`` and ``get_indexer`` do,
whatever the string storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.contracts import index_of, member_of

ids = st.lists(st.one_of(st.none(), st.sampled_from(list("abcdefg"))), max_size=30)


@settings(max_examples=200, deadline=None)
@given(values=ids, allowed=ids, storage=st.sampled_from(["pyarrow", "python"]))
def test_membership_matches_isin_and_missing_is_never_a_member(
    values: list[str | None], allowed: list[str | None], storage: str
) -> None:
    column = pd.Series(values, dtype=pd.StringDtype(storage))
    known = pd.Series(allowed, dtype=pd.StringDtype(storage))
    want = np.array(
        [v is not None and v in {a for a in allowed if a is not None} for v in values],
        dtype=bool,
    )

    assert member_of(column, known).tolist() == want.tolist()
    assert member_of(column, pd.Index(known)).tolist() == want.tolist()
    assert member_of(column.astype(object), known.astype(object)).tolist() == (
        want.tolist()
    )


def test_numbers_go_through_isin() -> None:
    got = member_of(pd.Series([1.0, 2.0, np.nan]), pd.Series([2.0, np.nan]))
    assert got.tolist() == [False, True, False]


@settings(max_examples=200, deadline=None)
@given(
    values=ids,
    keys=st.sets(st.sampled_from(list("abcdefgh")), max_size=8),
    storage=st.sampled_from(["pyarrow", "python"]),
)
def test_positions_match_get_indexer(
    values: list[str | None], keys: set[str], storage: str
) -> None:
    column = pd.Series(values, dtype=pd.StringDtype(storage))
    index = pd.Index(sorted(keys), dtype=pd.StringDtype(storage))
    want = [sorted(keys).index(v) if v in keys else -1 for v in values]

    assert index_of(column, index).tolist() == want
    assert index_of(column.astype(object), index.astype(object)).tolist() == want
