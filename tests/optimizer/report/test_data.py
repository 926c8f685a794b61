"""The report's figures on small tables whose answers are worked out by hand."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from optimizer.plan import PlanRow
from optimizer.report import data as d

AS_OF = pd.Timestamp("2026-12-01", tz="UTC")


def _plan_row(cid: str, market: str, paying: float | None) -> PlanRow:
    return PlanRow(
        campaign_id=cid,
        campaign_name=f"c{cid}",
        market=market,
        current_strategy="TARGET_CPA",
        current_target_cpa=20.0,
        current_target_roas=None,
        current_roas_equivalent=2.0,
        observed_roas=2.0,
        conversions_in_window=10.0,
        cost_in_window=100.0,
        mean_value=40.0,
        paying_share=paying,
        floor_break_even=1.0,
        floor_ltv_cac=1.5,
        floor_payback=1.0,
        floor_cac_cap=1.2,
        economic_troas=1.5,
        binding_constraint="ltv_cac",
        action="migrate",
        new_troas=2.0,
        change_pct=0.0,
        guardrail=None,
        reason="because",
    )


def _stats(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": pd.Timestamp(day),
                "campaign_id": cid,
                "cost": cost,
                "conversions": conv,
            }
            for day, cid, cost, conv in rows
        ]
    )


def test_market_cac_divides_cost_by_paying_activations() -> None:
    # FR: 300 spent on 10 + 20 activations, half and a quarter of them pay:
    # 5 + 5 = 10 payers, CAC 30 against a cap of 25. A day outside the window
    # is left out.
    stats = _stats(
        [
            ("2026-11-20", "1", 100.0, 10.0),
            ("2026-11-21", "2", 200.0, 20.0),
            ("2026-10-01", "1", 999.0, 99.0),
        ]
    )
    plan = [_plan_row("1", "FR", 0.5), _plan_row("2", "FR", 0.25)]
    window = d.Window(AS_OF - pd.Timedelta(days=28), AS_OF)

    (fr,) = d.market_cac(stats, plan, window, {"FR": 25.0})

    assert fr.cost == 300.0
    assert fr.activations == 30.0
    assert fr.paying_share == pytest.approx(10 / 30)
    assert fr.cac == pytest.approx(30.0)
    assert fr.over_cap


def test_band_follows_the_design_thresholds() -> None:
    assert d.ltv_cac_band(2.99, 3.0) == "insufficient"
    assert d.ltv_cac_band(3.0, 3.0) == "satisfactory"
    assert d.ltv_cac_band(5.0, 3.0) == "satisfactory"
    assert d.ltv_cac_band(5.01, 3.0) == "excellent"
    assert d.ltv_cac_band(None, 3.0) == "no cost"


def _segment(realized: dict[int, float], predicted: dict[int, float]) -> d.SegmentLTV:
    return d.SegmentLTV(
        segment="smb",
        users=100,
        predicted_users=10,
        realized=tuple(d.CurvePoint(float(m), v, v, v) for m, v in realized.items()),
        predicted=tuple(d.CurvePoint(float(m), v, v, v) for m, v in predicted.items()),
    )


def test_payback_interpolates_the_scaled_curve() -> None:
    # Realized shape: half the year's value in month 1, all of it by month 12.
    # Scaled to a predicted year of 100: 50 at month 1, 100 at month 12, so a
    # cost of 75 is earned back half-way between months 1 and 12.
    curve = _segment({0: 0.0, 1: 10.0, 12: 20.0}, {12: 100.0, 36: 200.0})

    assert d.payback_months(curve, 100.0, 75.0) == pytest.approx(6.5)
    # 150 needs half of the second and third years: 12 + 12 = 24 months.
    assert d.payback_months(curve, 100.0, 150.0) == pytest.approx(24.0)
    assert d.payback_months(curve, 100.0, 500.0) is None
    assert d.payback_months(None, 100.0, 50.0) is None


def test_unit_ratios_weigh_value_against_allocated_cost() -> None:
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "signup_at": pd.to_datetime(["2026-11-10"] * 4, utc=True),
            "activated_at": pd.to_datetime(
                ["2026-11-10"] * 3 + ["2026-01-01"], utc=True
            ),
            "segment": ["smb", "smb", "solo", "smb"],
            "campaign_id": ["1", "1", "1", "1"],
        }
    )
    scores = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "pltv_365": [30.0, 10.0, 5.0, 99.0],
            "pltv_1095": [90.0, 30.0, 6.0, 99.0],
            "pltv_1825": [100.0, 40.0, 7.0, 99.0],
        }
    )
    window = d.Window(AS_OF - pd.Timedelta(days=28), AS_OF)

    acquired = d.window_users(users, scores, window, {"1": "FR"}, {"1": 60.0})
    ratios = {r.segment: r for r in d.unit_ratios(acquired, [], 1095, 3.0, 1.0)}

    # d is outside the window; a, b, c share 60 equally (20 each).
    assert sorted(acquired["user_id"]) == ["a", "b", "c"]
    assert ratios["smb"].cost == 40.0
    assert ratios["smb"].ratio == pytest.approx(120 / 40)
    assert ratios["smb"].ratio_365 == pytest.approx(40 / 40)
    assert ratios["smb"].band == "satisfactory"
    assert ratios["solo"].ratio == pytest.approx(6 / 20)
    assert ratios["solo"].band == "insufficient"
    assert ratios["smb"].low is not None and ratios["smb"].low < 3.0


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


def test_business_ratios_without_ebitda_leave_rule_of_40_unknown() -> None:
    stats = _stats([("2026-11-25", "1", 150.0, 3.0)])
    users = pd.DataFrame(
        {
            "user_id": ["a", "b"],
            "signup_at": pd.to_datetime(["2026-11-25", "2024-01-01"], utc=True),
            "activated_at": pd.to_datetime(["2026-11-25", "2024-01-01"], utc=True),
        }
    )
    scores = pd.DataFrame({"user_id": ["a", "b"], "pltv_365": [1000.0, 50.0]})
    # Growth: 150 in the last quarter against 100 in the same quarter a year
    # before; the first purchase only makes the data reach back 15 months.
    revenue = pd.DataFrame(
        {
            "user_id": ["b", "b", "b"],
            "occurred_at": pd.to_datetime(
                ["2025-08-01", "2025-10-01", "2026-10-01"], utc=True
            ),
            "amount": [1.0, 100.0, 150.0],
        }
    )

    ratios = d.business_ratios(stats, users, revenue, scores, AS_OF, None)
    with_margin = d.business_ratios(stats, users, revenue, scores, AS_OF, 0.1)

    assert ratios.marketing_share == pytest.approx(0.15)
    assert ratios.sm_months == pytest.approx(150 / (1000 / 12))
    assert ratios.growth_pct == pytest.approx(50.0)
    assert ratios.rule_of_40 is None
    assert with_margin.rule_of_40 == pytest.approx(60.0)


def test_feed_counts_come_from_the_plan_file() -> None:
    document = {"run_id": "r", "feed": {"sent": 120, "skipped_duplicate": 3}}

    counts = d.feed_counts(document)

    assert counts is not None and counts.counts == {"sent": 120, "skipped_duplicate": 3}
    assert d.feed_counts({"run_id": "r", "feed": None}) is None
    assert d.feed_counts({"run_id": "r"}) is None
