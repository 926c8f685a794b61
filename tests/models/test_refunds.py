"""Refunds in the model's features: money is net, purchases are payments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files import load_inputs
from connectors.sources import DataSettings
from models.exceptions import InputDataError
from models.features import FeatureSchema, build_features, training_snapshots
from models.frames import prepare_revenue, prepare_users

SIGNUP = pd.Timestamp("2026-01-01T00:00:00Z")

USERS_CSV = """user_id,signup_at,activated_at,country,segment,campaign_id
u1,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,FR,smb,c1
u2,2026-01-01T00:00:00Z,,FR,smb,c1
"""

STATS_CSV = """date,campaign_id,campaign_name,cost,conversions,conversion_value,\
bidding_strategy_type,target_cpa,target_roas
2026-02-01,c1,Search FR,100,5,200,TARGET_CPA,20,
"""


def _users() -> pd.DataFrame:
    return prepare_users(
        pd.DataFrame(
            {
                "user_id": ["u1", "u2"],
                "signup_at": [SIGNUP, SIGNUP],
                "country": ["FR", "FR"],
                "segment": ["smb", "smb"],
                "campaign_id": ["c1", "c1"],
            }
        )
    )


def _features(
    users: pd.DataFrame, revenue: pd.DataFrame, ages: list[int]
) -> pd.DataFrame:
    snapshots = training_snapshots(users.iloc[:1], ages)
    return build_features(
        snapshots,
        users,
        prepare_revenue(revenue, users),
        pd.DataFrame(columns=["user_id", "event", "days", "value"]),
        FeatureSchema(),
    ).set_index(snapshots["age_days"])


def test_a_refund_read_from_a_file_lowers_revenue_from_its_own_time_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "users.csv").write_text(USERS_CSV, encoding="utf-8")
    (tmp_path / "stats.csv").write_text(STATS_CSV, encoding="utf-8")
    (tmp_path / "revenue.csv").write_text(
        "user_id,occurred_at,amount,currency,order_id\n"
        "u1,2026-01-02T00:00:00Z,100,EUR,in_1\n"
        "u1,2026-01-11T00:00:00Z,-40,EUR,re_1\n",
        encoding="utf-8",
    )
    data = DataSettings.model_validate(
        {
            "users": tmp_path / "users.csv",
            "revenue": tmp_path / "revenue.csv",
            "campaign_stats": tmp_path / "stats.csv",
            "quarantine": {"max_share": 0},
        }
    )
    inputs = load_inputs(data, currency="EUR", now=pd.Timestamp("2026-03-01T00:00:00Z"))
    users = prepare_users(inputs.users)

    features = _features(users, inputs.revenue, [5, 9, 10, 15])

    assert features["revenue_to_date"].tolist() == [100.0, 100.0, 60.0, 60.0]
    assert features["orders_to_date"].tolist() == [1.0] * 4


def test_a_full_refund_leaves_nothing_and_is_no_purchase() -> None:
    users = _users()
    revenue = pd.DataFrame(
        {
            "user_id": ["u1", "u1"],
            "occurred_at": [
                SIGNUP + pd.Timedelta(days=1),
                SIGNUP + pd.Timedelta(days=3),
            ],
            "amount": [100.0, -100.0],
        }
    )

    row = _features(users, revenue, [10]).iloc[0]

    assert row["revenue_to_date"] == 0.0
    assert row["orders_to_date"] == 1.0
    assert row["purchase_days_to_date"] == 1.0
    assert row["last_purchase_day"] == 1.0
    assert row["days_since_last_purchase"] == 9.0
    assert row["max_order"] == 0.0
    assert row["mean_order"] == 0.0
    assert row["revenue_last_30d"] == 0.0
    assert row["orders_last_30d"] == 1.0


def test_a_refund_of_more_than_was_paid_is_refused() -> None:
    users = _users()
    revenue = pd.DataFrame(
        {
            "user_id": ["u2", "u2"],
            "occurred_at": [
                SIGNUP + pd.Timedelta(days=1),
                SIGNUP + pd.Timedelta(days=2),
            ],
            "amount": [10.0, -25.0],
        }
    )

    with pytest.raises(InputDataError, match=r"refund.*user_id='u2'.*net of 10\.00"):
        prepare_revenue(revenue, users)


# Histories that keep the running-net rule: each refund takes back part of
# what the user holds at its time (payments first at a tie).
STEPS = st.lists(
    st.tuples(
        st.floats(0.0, 200.0, allow_nan=False),
        st.booleans(),
        st.integers(1, 10000).map(lambda cents: cents / 100),
        st.floats(0.0, 1.0),
    ),
    min_size=1,
    max_size=12,
)


def _history(steps: list[tuple[float, bool, float, float]]) -> pd.DataFrame:
    rows: list[tuple[float, float]] = []
    for day, is_refund, paid, share in sorted(steps, key=lambda step: step[0]):
        held = sum(amount for at, amount in rows if at <= day)
        if is_refund and held > 0:
            rows.append((day, -round(held * share, 2)))
        else:
            rows.append((day, paid))
    return pd.DataFrame(
        {
            "user_id": "u1",
            "occurred_at": [SIGNUP + pd.Timedelta(days=day) for day, _ in rows],
            "amount": [amount for _, amount in rows],
        }
    )


@settings(max_examples=60, deadline=None)
@given(STEPS, st.lists(st.integers(0, 220), min_size=1, max_size=4, unique=True))
def test_money_features_are_net_and_counts_are_payments_known_by_the_cutoff(
    steps: list[tuple[float, bool, float, float]], ages: list[int]
) -> None:
    revenue = _history(steps)

    features = _features(_users(), revenue, ages)

    days = (revenue["occurred_at"] - SIGNUP).dt.total_seconds() / 86400
    amount = revenue["amount"]
    for age in ages:
        known = (days <= age).to_numpy()
        paid = known & (amount >= 0).to_numpy()
        row = features.loc[age]
        assert row["revenue_to_date"] == pytest.approx(amount[known].sum(), abs=1e-6)
        assert row["revenue_to_date"] >= -1e-9
        assert row["orders_to_date"] == paid.sum()
        assert row["purchase_days_to_date"] == np.floor(days[paid]).nunique()
        if paid.any():
            assert row["last_purchase_day"] == np.floor(days[paid].max())
        recent = known & (days > age - 30).to_numpy()
        assert row["revenue_last_30d"] == pytest.approx(amount[recent].sum(), abs=1e-6)
