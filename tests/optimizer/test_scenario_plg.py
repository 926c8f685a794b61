"""The synthetic PLG scenario: seeded, multi-market, and carrying real signal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from optimizer.scenarios.plg import MARKETS, SEGMENTS, generate

from .conftest import PLG_RUN_DATE as RUN_DATE
from .conftest import PLGWorld


def test_the_same_seed_gives_the_same_tables() -> None:
    first = generate(RUN_DATE, seed=3, scale=0.1)
    second = generate(RUN_DATE, seed=3, scale=0.1)
    other = generate(RUN_DATE, seed=4, scale=0.1)

    for name in ("users", "revenue", "events", "campaign_stats", "truth"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert not first.revenue.equals(other.revenue)


def test_nothing_after_the_run_date_is_visible(plg_world: PLGWorld) -> None:
    inputs = plg_world.inputs
    assert inputs.revenue["occurred_at"].max() < plg_world.as_of
    assert inputs.events is not None
    assert inputs.events["occurred_at"].max() < plg_world.as_of
    assert inputs.campaign_stats["date"].max() == pd.Timestamp(
        RUN_DATE - dt.timedelta(days=1)
    )


def test_markets_segments_and_strategies(plg_world: PLGWorld) -> None:
    users, stats = plg_world.inputs.users, plg_world.inputs.campaign_stats

    assert set(users["country"]) == {m.code for m in MARKETS}
    assert set(users["segment"]) == {s.name for s in SEGMENTS}
    assert set(stats["bidding_strategy_type"]) == {"TARGET_CPA", "TARGET_ROAS"}
    assert stats["campaign_name"].str.startswith("UK | ").any()
    assert "synthetic" in plg_world.config.read_text()


def test_markets_cost_differently(plg_world: PLGWorld) -> None:
    """Cost per conversion over the stats: ES cheapest, US dearest."""
    stats = plg_world.inputs.campaign_stats.copy()
    stats["market"] = stats["campaign_name"].str[:2]
    totals = stats.groupby("market")[["cost", "conversions"]].sum()
    cpa = totals["cost"] / totals["conversions"]

    assert cpa["ES"] < cpa["FR"] < cpa["US"]
    assert cpa.idxmin() == "ES" and cpa.idxmax() == "US"


def test_segments_have_different_value_curves(plg_world: PLGWorld) -> None:
    """Realized 3-year over 1-year revenue per user grows more for 50+
    employees (low churn, seat expansion) than for freelancers."""
    users, revenue = plg_world.inputs.users, plg_world.inputs.revenue
    old = users[users["signup_at"] <= plg_world.as_of - pd.Timedelta(days=1095)]
    rev = revenue.merge(old[["user_id", "signup_at", "segment"]], on="user_id")
    age = (rev["occurred_at"] - rev["signup_at"]).dt.days
    year = rev[age < 365].groupby("segment")["amount"].sum()
    three = rev[age < 1095].groupby("segment")["amount"].sum()
    growth = three / year

    assert growth["50+ employees"] > growth["SMB"] > growth["freelancer"]


def test_early_product_events_carry_signal_about_value(plg_world: PLGWorld) -> None:
    """Among users with a full first year, those with more events in their
    first week spend more in that year: rank correlation well above zero."""
    users, revenue = plg_world.inputs.users, plg_world.inputs.revenue
    events = plg_world.inputs.events
    assert events is not None
    old = users[users["activated_at"] <= plg_world.as_of - pd.Timedelta(days=365)]
    start = events["user_id"].map(old.set_index("user_id")["activated_at"])
    early = events[(events["occurred_at"] - start) < pd.Timedelta(days=7)]
    counts = early.groupby("user_id").size().reindex(old["user_id"], fill_value=0)
    signup = revenue["user_id"].map(old.set_index("user_id")["signup_at"])
    first_year = revenue[(revenue["occurred_at"] - signup) < pd.Timedelta(days=365)]
    value = (
        first_year.groupby("user_id")["amount"]
        .sum()
        .reindex(old["user_id"], fill_value=0)
    )

    rho = np.corrcoef(counts.rank().to_numpy(), value.rank().to_numpy())[0, 1]
    assert rho > 0.2
