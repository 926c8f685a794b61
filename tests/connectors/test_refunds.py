"""Refunds: negative revenue rows kept while their user had paid as much.

A refund row lowers its user's net revenue from its own time on; one of more
than the user had paid by then is quarantined with the user and the amounts
named; a cent of rounding, or exchange rates that moved between payment and
refund, never quarantine a full refund.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connectors.refunds import (
    ROUNDING_SLACK,
    paying_users,
    settle_refunds,
)
from tests.connectors.conftest import REVENUE_CSV, Loader

START = pd.Timestamp("2026-02-01", tz="UTC")


def _quarantine(audit_file: str | None) -> pd.DataFrame:
    assert audit_file is not None
    return pd.read_csv(audit_file, dtype="string", keep_default_na=False)


def test_a_refund_row_is_kept_with_its_negative_amount(load: Loader) -> None:
    revenue = REVENUE_CSV + "u2,2026-02-10T00:00:00Z,-5,EUR,r2\n"

    inputs = load(tables={"revenue": revenue}, max_share=0)

    assert inputs.audits["revenue"].quarantined == 0
    net = inputs.revenue.groupby("user_id")["amount"].sum()
    assert net["u2"] == pytest.approx(15.0)
    assert inputs.revenue["amount"].min() == -5.0


def test_a_full_refund_nets_its_user_to_zero(load: Loader) -> None:
    revenue = REVENUE_CSV + "u3,2026-02-03T09:00:00Z,-30,EUR,r3\n"

    inputs = load(tables={"revenue": revenue}, max_share=0)

    net = inputs.revenue.groupby("user_id")["amount"].sum()
    assert net["u3"] == 0.0
    assert "u3" not in set(paying_users(inputs.revenue))
    assert {"u1", "u2", "u4"} <= set(paying_users(inputs.revenue))


def test_a_refund_of_more_than_was_paid_is_quarantined_naming_user_and_amounts(
    load: Loader,
) -> None:
    revenue = REVENUE_CSV + "u2,2026-02-10T00:00:00Z,-25,EUR,r2\n"

    inputs = load(tables={"revenue": revenue})

    audit = inputs.audits["revenue"]
    assert (audit.rows_in, audit.kept, audit.quarantined) == (5, 4, 1)
    bad = _quarantine(audit.file).iloc[0]
    assert (bad["quarantine_column"], bad["quarantine_value"]) == ("amount", "-25")
    assert bad["quarantine_line"] == "6"
    assert bad["quarantine_reason"] == (
        "is a refund of 25.00 EUR, more than user 'u2' had paid by then "
        "(20.00 EUR net before it); a refund is kept only up to what its user "
        "paid before it"
    )
    assert bad["order_id"] == "r2"


def test_a_refund_before_its_payment_is_quarantined(load: Loader) -> None:
    revenue = REVENUE_CSV + "u4,2026-02-03T23:59:59Z,-40,EUR,r4\n"

    inputs = load(tables={"revenue": revenue})

    reason = _quarantine(inputs.audits["revenue"].file).iloc[0]["quarantine_reason"]
    assert "user 'u4' had paid by then (0.00 EUR net before it)" in reason


def test_at_one_instant_the_payment_comes_before_its_refund(load: Loader) -> None:
    header, *rows = REVENUE_CSV.splitlines(keepends=True)
    refund_first = header + "u4,2026-02-04T00:00:00Z,-40,EUR,r4\n" + "".join(rows)

    inputs = load(tables={"revenue": refund_first}, max_share=0)

    assert inputs.revenue.groupby("user_id")["amount"].sum()["u4"] == 0.0


def test_a_refund_set_aside_does_not_count_against_later_ones(load: Loader) -> None:
    revenue = (
        REVENUE_CSV
        + "u4,2026-02-05T00:00:00Z,-50,EUR,r1\n"
        + "u4,2026-02-06T00:00:00Z,-30,EUR,r2\n"
    )

    inputs = load(tables={"revenue": revenue})

    assert inputs.audits["revenue"].quarantined == 1
    assert _quarantine(inputs.audits["revenue"].file)["order_id"].tolist() == ["r1"]
    assert inputs.revenue.groupby("user_id")["amount"].sum()["u4"] == 10.0


def test_a_cent_of_rounding_does_not_quarantine_a_full_refund(load: Loader) -> None:
    revenue = (
        REVENUE_CSV
        + "u1,2026-02-05T00:00:00Z,-3.50,EUR,r1\n"
        + "u1,2026-02-06T00:00:00Z,-3.50,EUR,r2\n"
        + "u1,2026-02-07T00:00:00Z,-3.51,EUR,r3\n"
    )

    inputs = load(tables={"revenue": revenue}, max_share=0)

    kept = inputs.revenue.set_index("order_id")["amount"]
    assert kept["r3"] == pytest.approx(-3.50)
    assert inputs.revenue.groupby("user_id")["amount"].sum()["u1"] == pytest.approx(
        0.0, abs=1e-12
    )


def test_a_foreign_refund_is_measured_in_its_own_currency(
    load: Loader, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.csv"
    fx.write_text(
        "currency,rate,date\nUSD,0.90,2026-01-01\nUSD,0.95,2026-02-15\n",
        encoding="utf-8",
    )
    revenue = REVENUE_CSV.replace(",20,EUR,o2", ",100,USD,o2") + (
        "u2,2026-02-20T00:00:00Z,-100,USD,r2\n"
        "u3,2026-02-10T00:00:00Z,100,USD,p3\n"
        "u3,2026-02-20T00:00:00Z,-130,USD,r3\n"
    )

    inputs = load(tables={"revenue": revenue}, fx={"source": fx})

    # 100 USD came in at 0.90 and went back at 0.95: the refund is the whole
    # payment back, not money u2 never paid, and it leaves u2 at zero.
    assert inputs.revenue.groupby("user_id")["amount"].sum()["u2"] == 0.0
    kept = inputs.revenue.set_index("order_id")["amount"]
    assert kept["r2"] == pytest.approx(-90.0)
    bad = _quarantine(inputs.audits["revenue"].file)
    assert bad["order_id"].tolist() == ["r3"]
    assert bad["quarantine_value"].tolist() == ["-130"]


def test_a_huge_refund_is_above_the_largest_amount_believed(load: Loader) -> None:
    revenue = REVENUE_CSV + "u2,2026-02-10T00:00:00Z,-20000000,EUR,r2\n"

    inputs = load(tables={"revenue": revenue})

    bad = _quarantine(inputs.audits["revenue"].file).iloc[0]
    assert "is above data.max_amount" in bad["quarantine_reason"]


# The running-net rule, for any history: payments in whole cents, refunds in
# cents that may overshoot, a few users, timestamps that may tie.
ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 6),
        st.integers(-6000, 6000).map(lambda cents: cents / 100),
    ),
    min_size=1,
    max_size=25,
)


def _frame(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([r[0] for r in rows], dtype="string[pyarrow]"),
            "occurred_at": [START + pd.Timedelta(hours=r[1]) for r in rows],
            "amount": [r[2] for r in rows],
        }
    )


def _in_rule_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows by user, time, payments before refunds, then source order."""
    return frame.assign(
        refund=frame["amount"] < 0, at=np.arange(len(frame))
    ).sort_values(["user_id", "occurred_at", "refund", "at"], kind="stable")


@settings(max_examples=200, deadline=None)
@given(ROWS)
def test_no_kept_refund_takes_a_users_net_below_zero(
    rows: list[tuple[str, int, float]],
) -> None:
    frame = _frame(rows)

    settled = settle_refunds(frame)

    ordered = _in_rule_order(frame.assign(kept=settled.amount))
    ordered = ordered[~settled.overdrawn[ordered["at"].to_numpy()]]
    running = ordered.groupby("user_id")["kept"].cumsum()
    assert (running >= -1e-9).all()


@settings(max_examples=200, deadline=None)
@given(ROWS)
@example([("a", 0, 10.0), ("a", 1, -10.01), ("a", 1, -0.01)])
def test_a_refund_is_set_aside_only_when_it_overdraws_by_more_than_a_cent(
    rows: list[tuple[str, int, float]],
) -> None:
    frame = _frame(rows)

    settled = settle_refunds(frame)

    amount = frame["amount"].to_numpy()
    assert not settled.overdrawn[amount >= 0].any()
    assert (settled.amount[amount >= 0] == amount[amount >= 0]).all()
    changed = settled.amount != amount
    assert (changed == settled.reduced).all()
    assert (np.abs(settled.amount - amount)[changed] <= ROUNDING_SLACK + 1e-9).all()
    nets: dict[str, float] = {}
    for at in _in_rule_order(frame)["at"]:
        user = str(frame["user_id"].iloc[at])
        before = nets.get(user, 0.0)
        if settled.overdrawn[at]:
            assert before + amount[at] < -ROUNDING_SLACK
            assert settled.net_before[at] == pytest.approx(before)
            continue
        nets[user] = before + settled.amount[at]


@settings(max_examples=100, deadline=None)
@given(ROWS, st.data())
def test_the_outcome_does_not_depend_on_the_order_of_rows_at_distinct_times(
    rows: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    frame = _frame([(user, at, amount) for at, (user, _, amount) in enumerate(rows)])
    order = data.draw(st.permutations(range(len(frame))))
    shuffled = frame.iloc[list(order)].reset_index(drop=True)

    one = settle_refunds(frame)
    two = settle_refunds(shuffled)

    assert (one.overdrawn[list(order)] == two.overdrawn).all()
    assert (one.amount[list(order)] == two.amount).all()
