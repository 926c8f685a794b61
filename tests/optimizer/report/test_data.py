"""The report's figures on small tables whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pandas as pd
import pytest

from config.schema import FinanceSettings
from optimizer import unit_economics as ue
from optimizer.report import data as d

AS_OF = pd.Timestamp("2026-12-01", tz="UTC")


def _economics(**changes: object) -> ue.UnitEconomics:
    base = ue.UnitEconomics(
        currency="EUR",
        value_basis="revenue",
        ltv_horizon_days=1095,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 11, 1),
        cac=(
            ue.CacFigure("market", "FR", 3000.0, 100, 10, 300.0),
            ue.CacFigure("market", "XX", 10.0, 1, 0, None),
            ue.CacFigure("segment", "smb", 2000.0, 60, 8, 250.0),
            ue.CacFigure("account", "all", 3000.0, 100, 10, 300.0),
        ),
        ltv=(),
        ltv_cac=(
            ue.LtvCacFigure(
                "segment", "smb", 250.0, 400.0, 1000.0, 1.6, 4.0, "satisfactory", 7.5
            ),
            ue.LtvCacFigure(
                "market", "FR", 300.0, 240.0, 600.0, 0.8, 2.0, "insufficient", None
            ),
        ),
        rule_of_40=None,
        budget=None,
        sales_marketing=None,
    )
    return replace(base, **changes)


def test_market_cac_keeps_configured_markets_with_their_cap() -> None:
    (fr,) = d.market_cac(_economics(), {"FR": 260.0})

    assert (fr.market, fr.cost, fr.activations, fr.cac) == ("FR", 3000.0, 100, 300.0)
    assert fr.paying_share == pytest.approx(0.1)
    assert fr.cac_max == 260.0 and fr.over_cap


def test_unit_ratios_list_markets_then_segments() -> None:
    ratios = d.unit_ratios(_economics())

    assert [r.label for r in ratios] == ["market FR", "segment smb"]
    assert ratios[0].ratio == 2.0 and ratios[0].band == "insufficient"
    assert ratios[0].payback_months is None
    assert ratios[1].ratio_365 == 1.6 and ratios[1].payback_months == 7.5


def test_business_ratios_say_what_is_missing() -> None:
    finance = FinanceSettings()

    empty = d.business_ratios(_economics(), finance)
    full = d.business_ratios(
        _economics(
            rule_of_40=ue.RuleOf40(30.0, 15.0, 45.0, 40.0, True, "config"),
            budget=ue.BudgetCheck(180.0, 1000.0, 0.18, 0.15, 0.2, "within", "b"),
            sales_marketing=ue.SalesMarketingCheck(500.0, 1000.0, 6.0, 12.0, True, "s"),
        ),
        finance,
    )

    assert empty.rule_of_40 is None and empty.marketing_share is None
    assert len(empty.notes) == 3
    assert "finance.ebitda_margin_pct" in empty.notes[0]
    assert (full.rule_of_40, full.growth_pct, full.ebitda_margin_pct) == (45, 30, 15)
    assert full.marketing_share == 0.18 and full.sm_months == 6.0
    assert full.notes == ()


def test_model_quality_reads_the_flat_metrics() -> None:
    metrics = {
        "normalized_gini": 0.61,
        "model.normalized_gini": 0.61,
        "model.spearman": 0.5,
        "bgnbd.normalized_gini": 0.4,
        "model@30.normalized_gini": 0.7,
        "n_test": 1200.0,
        "decile.1.predicted": 5.0,
        "decile.1.actual": 4.0,
        "decile.2.predicted": 9.0,
        "decile.2.actual": 11.0,
    }

    quality = d.model_quality("v1", metrics)

    assert quality is not None
    assert quality.table == {
        "model": {"normalized_gini": 0.61, "spearman": 0.5},
        "bgnbd": {"normalized_gini": 0.4},
    }
    assert quality.gini == 0.61
    assert quality.deciles == ((5.0, 4.0), (9.0, 11.0))
    assert d.model_quality("v0", {}) is None


def test_target_history_orders_runs_by_date() -> None:
    late = [
        {
            "campaign_id": "1",
            "campaign_name": "A",
            "current_roas_equivalent": 2.0,
            "new_troas": 2.2,
            "economic_troas": 3.0,
            "action": "step",
        }
    ]
    early = [
        {
            "campaign_id": "1",
            "campaign_name": "A",
            "current_roas_equivalent": 1.8,
            "new_troas": 2.0,
            "economic_troas": 3.0,
            "action": "migrate",
        }
    ]

    (history,) = d.target_history(
        [(dt.date(2026, 12, 1), late), (dt.date(2026, 11, 24), early)]
    )

    assert [p.run_date.day for p in history.points] == [24, 1]
    assert [p.proposed for p in history.points] == [2.0, 2.2]


def test_risk_flags_name_the_group_and_both_figures() -> None:
    # 40 "solo" users bought once a year ago; 40 "smb" users bought then and
    # last week. Solo: 100 % churn and no repeat purchase against 50 % and
    # 50 % for the account; its baskets are 10 against smb's 40.
    signup = AS_OF - pd.Timedelta(days=365)
    users = pd.DataFrame(
        {
            "user_id": [f"s{i}" for i in range(40)] + [f"m{i}" for i in range(40)],
            "segment": ["solo"] * 40 + ["smb"] * 40,
            "campaign_id": ["1"] * 80,
            "signup_at": [signup] * 80,
        }
    )
    revenue = pd.DataFrame(
        {
            "user_id": [f"s{i}" for i in range(40)] + [f"m{i}" for i in range(40)] * 2,
            "occurred_at": [signup] * 80 + [AS_OF - pd.Timedelta(days=7)] * 40,
            "amount": [10.0] * 40 + [40.0] * 80,
        }
    )

    flags = d.risk_flags(users, revenue, AS_OF, {"1": "c1"})

    solo = {f.flag: f for f in flags if f.group == "solo"}
    assert set(solo) == {"high churn", "no repeat purchase", "low basket"}
    assert solo["high churn"].figure == 100.0
    assert solo["high churn"].account_figure == 50.0
    assert solo["no repeat purchase"].figure == 0.0
    assert solo["low basket"].figure == 10.0
    assert solo["low basket"].account_figure == pytest.approx(3600 / 120)
    assert not [f for f in flags if f.group in ("smb", "c1")]


def test_feed_counts_come_from_the_plan_file() -> None:
    document = {"run_id": "r", "feed": {"sent": 120, "skipped_duplicate": 3}}

    counts = d.feed_counts(document)

    assert counts is not None and counts.counts == {"sent": 120, "skipped_duplicate": 3}
    assert d.feed_counts({"run_id": "r", "feed": None}) is None
    assert d.feed_counts({"run_id": "r"}) is None
