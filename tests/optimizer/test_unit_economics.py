"""Unit economics and business cases on a small world whose figures are
computed by hand in each docstring."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from config import Settings
from config.loader import settings_from_mapping
from connectors.files import Inputs
from optimizer.cases import hire_case, spend_case
from optimizer.exceptions import PlanningError
from optimizer.unit_economics import (
    EXCELLENT,
    INSUFFICIENT,
    SATISFACTORY,
    UnitEconomics,
    compute_unit_economics,
    ltv_cac_band,
    payback_months,
)

AS_OF = pd.Timestamp("2026-12-01T00:00:00Z")
UTC = "UTC"


def _settings(tmp_path: Path, **finance: Any) -> Settings:
    raw: dict[str, Any] = {
        "account": {"name": "hand", "currency": "EUR"},
        "data": {"users": "u.csv", "revenue": "r.csv", "campaign_stats": "s.csv"},
        "markets": {
            "FR": {"cac_max": 200.0, "campaign_name_pattern": "^FR"},
            "DE": {"cac_max": 300.0, "campaign_name_pattern": "^DE"},
            "ES": {"cac_max": 250.0, "campaign_name_pattern": "^ES"},
        },
        "economics": {"paying_lag_days": 10},
        "finance": finance,
    }
    return settings_from_mapping(raw, source="test", base_dir=tmp_path)


def _world() -> tuple[Inputs, pd.DataFrame]:
    """40 old FR freelancers (signed up 2021-06-01) each paid 100 on day 10,
    50 on day 400 and 25 on day 1200: realized LTV 100 / 150 / 175.

    Recent cohort, acquired 2026-10-02:
    campaign 1 (FR): a freelancer paid, b freelancer not, c SMB paid, d SMB not;
    campaign 2 (DE): e SMB paid, f freelancer not.
    Predicted pltv_365: a 30, b 10, c 500, d 100, e 300, f 20; 3 years twice
    that, 5 years three times.
    """
    old_signup = pd.Timestamp("2021-06-01T12:00:00Z")
    recent = pd.Timestamp("2026-10-02T12:00:00Z")
    rows = [(f"o{i}", old_signup, "FR", "freelancer", None) for i in range(40)] + [
        ("a", recent, "FR", "freelancer", "1"),
        ("b", recent, "FR", "freelancer", "1"),
        ("c", recent, "FR", "SMB", "1"),
        ("d", recent, "FR", "SMB", "1"),
        ("e", recent, "DE", "SMB", "2"),
        ("f", recent, "DE", "freelancer", "2"),
    ]
    users = pd.DataFrame(
        rows, columns=["user_id", "signup_at", "country", "segment", "campaign_id"]
    )
    users["activated_at"] = users["signup_at"]
    users["gclid"] = None
    revenue_rows = []
    for i in range(40):
        for day, amount in ((10, 100.0), (400, 50.0), (1200, 25.0)):
            revenue_rows.append((f"o{i}", old_signup + pd.Timedelta(days=day), amount))
    for user, amount in (("a", 10.0), ("c", 50.0), ("e", 50.0)):
        revenue_rows.append((user, recent + pd.Timedelta(days=18), amount))
    revenue = pd.DataFrame(revenue_rows, columns=["user_id", "occurred_at", "amount"])
    revenue["currency"] = "EUR"
    revenue["order_id"] = [f"o-{i}" for i in range(len(revenue))]
    days = pd.date_range("2026-10-01", "2026-10-10")
    stats = pd.DataFrame(
        [
            (day, cid, name, cost, 1.0, 0.0, "TARGET_CPA", 50.0, None)
            for day in days
            for cid, name, cost in (
                ("1", "FR | Search", 100.0),
                ("2", "DE | Search", 50.0),
            )
        ],
        columns=[
            "date",
            "campaign_id",
            "campaign_name",
            "cost",
            "conversions",
            "conversion_value",
            "bidding_strategy_type",
            "target_cpa",
            "target_roas",
        ],
    )
    pltv = {"a": 30.0, "b": 10.0, "c": 500.0, "d": 100.0, "e": 300.0, "f": 20.0}
    scores = pd.DataFrame({"user_id": users["user_id"]})
    scores["pltv_365"] = scores["user_id"].map(pltv).fillna(175.0)
    scores["pltv_1095"] = scores["pltv_365"] * 2
    scores["pltv_1825"] = scores["pltv_365"] * 3
    return Inputs(users, revenue, stats), scores


@pytest.fixture
def economics(tmp_path: Path) -> UnitEconomics:
    inputs, scores = _world()
    settings = _settings(
        tmp_path,
        marketing_budget=2000.0,
        expected_new_revenue=12000.0,
        sales_marketing_cost=9000.0,
        revenue_growth_pct=30.0,
        ebitda_margin_pct=15.0,
    )
    return compute_unit_economics(settings, inputs, scores, AS_OF)


def test_cac_per_market_segment_and_campaign(economics: UnitEconomics) -> None:
    """Costs over 2026-10-01..10: campaign 1 (FR) 10 x 100 = 1000, campaign 2
    (DE) 10 x 50 = 500. Paying: FR a, c -> 1000 / 2 = 500; DE e -> 500 / 1.
    Segments share each campaign's cost by activations: freelancer
    1000 * 2/4 + 500 * 1/2 = 750 over 1 payer (a); SMB 500 + 250 = 750 over
    2 payers (c, e) = 375. Account 1500 / 3 = 500."""
    expected = {
        ("campaign", "1"): (1000.0, 2, 500.0),
        ("campaign", "2"): (500.0, 1, 500.0),
        ("market", "FR"): (1000.0, 2, 500.0),
        ("market", "DE"): (500.0, 1, 500.0),
        ("segment", "freelancer"): (750.0, 1, 750.0),
        ("segment", "SMB"): (750.0, 2, 375.0),
        ("account", "all"): (1500.0, 3, 500.0),
    }
    for (scope, key), (cost, paying, cac) in expected.items():
        figure = economics.cac_of(scope, key)
        assert figure is not None, (scope, key)
        assert (figure.cost, figure.new_paying) == (cost, paying)
        assert figure.cac == pytest.approx(cac)


def test_ltv_is_realized_where_lived_and_predicted_otherwise(
    economics: UnitEconomics,
) -> None:
    """Freelancers: 40 old payers -> realized 100 / 150 / 175.
    SMB: no old customer -> predicted over the matured recent SMB users
    (c, d, e): 365 days (500 + 100 + 300) / 2 payers = 450; 3 years 900;
    5 years 1350. DE (e, f): (300 + 20) / 1 = 320, 640, 960."""
    cases = {
        ("segment", "freelancer"): ((100, 150, 175), "realized"),
        ("segment", "SMB"): ((450, 900, 1350), "predicted"),
        ("market", "FR"): ((100, 150, 175), "realized"),
        ("market", "DE"): ((320, 640, 960), "predicted"),
    }
    for (scope, key), (values, source) in cases.items():
        for horizon, value in zip((365, 1095, 1825), values, strict=True):
            figure = economics.ltv_of(scope, key, horizon)
            assert figure is not None
            assert figure.ltv == pytest.approx(value), (scope, key, horizon)
            assert figure.source == source


def test_ltv_cac_bands_and_payback(economics: UnitEconomics) -> None:
    """DE: 640 / 500 = 1.28, insufficient; payback between 12 (320) and 36
    months (640): 12 + 24 * (500 - 320) / 320 = 25.5. SMB: 900 / 375 = 2.4;
    payback 12 * 375 / 450 = 10 months. FR never earns 500 back in 5 years."""
    rows = {(r.scope, r.key): r for r in economics.ltv_cac}

    de = rows[("market", "DE")]
    assert de.ltv_to_cac == pytest.approx(1.28)
    assert de.band == INSUFFICIENT
    assert de.payback_months == pytest.approx(25.5)
    smb = rows[("segment", "SMB")]
    assert smb.ltv_to_cac == pytest.approx(2.4)
    assert smb.payback_months == pytest.approx(10.0)
    assert rows[("market", "FR")].payback_months is None


@pytest.mark.parametrize(
    ("ratio", "band"),
    [
        (0.5, INSUFFICIENT),
        (2.99, INSUFFICIENT),
        (3.0, SATISFACTORY),
        (5.0, SATISFACTORY),
        (5.01, EXCELLENT),
    ],
)
def test_bands(ratio: float, band: str) -> None:
    assert ltv_cac_band(ratio) == band


def test_payback_inside_the_first_year() -> None:
    """1-year LTV 1200 earned evenly: a CAC of 300 is back in 3 months."""
    assert payback_months(300.0, {365: 1200.0}) == pytest.approx(3.0)
    assert payback_months(1300.0, {365: 1200.0}) is None


def test_company_rules_from_config(economics: UnitEconomics) -> None:
    """Rule of 40: 30 + 15 = 45, passes. Budget 2000 / 12000 = 16.7 %,
    within 15-20 %. New paying customers a year 3 * 365 / 10 = 109.5, each
    bringing 100 in year one: 10,950; S&M 9000 is 9000 / (10950 / 12) =
    9.86 months of it, under 12."""
    assert economics.rule_of_40 is not None
    assert economics.rule_of_40.score == 45.0 and economics.rule_of_40.passes
    assert economics.budget is not None
    assert economics.budget.share == pytest.approx(2000 / 12000)
    assert economics.budget.status == "within"
    sm = economics.sales_marketing
    assert sm is not None
    assert sm.twelve_month_revenue == pytest.approx(10950.0)
    assert sm.months_of_revenue == pytest.approx(9000 / (10950 / 12))
    assert sm.passes


def test_company_rules_derived_when_not_configured(tmp_path: Path) -> None:
    """Without a budget, the ad spend 1500 over 10 days annualizes to 54,750,
    5.0 times the 10,950 of new revenue: over the band. No growth figures:
    no Rule of 40."""
    inputs, scores = _world()
    economics = compute_unit_economics(_settings(tmp_path), inputs, scores, AS_OF)

    assert economics.rule_of_40 is None
    assert economics.budget is not None
    assert economics.budget.marketing_budget == pytest.approx(54750.0)
    assert economics.budget.share == pytest.approx(5.0)
    assert economics.budget.status == "over"


def test_rule_of_40_from_a_finance_file(tmp_path: Path) -> None:
    """Revenue 1.0M -> 1.3M is 30 % growth; EBITDA 130k / 1.3M = 10 %: 40."""
    (tmp_path / "finance.csv").write_text(
        "year,revenue,ebitda\n2025,1300000,130000\n2024,1000000,50000\n"
    )
    inputs, scores = _world()
    settings = _settings(tmp_path, file="finance.csv")
    rule = compute_unit_economics(settings, inputs, scores, AS_OF).rule_of_40

    assert rule is not None
    assert rule.growth_pct == pytest.approx(30.0)
    assert rule.ebitda_margin_pct == pytest.approx(10.0)
    assert rule.passes
    assert rule.source.endswith("finance.csv")


def test_a_broken_finance_file_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "finance.csv").write_text("year,revenue\n2025,lots\n")
    inputs, scores = _world()
    with pytest.raises(PlanningError, match=r"line 2, column revenue: 'lots'"):
        compute_unit_economics(
            _settings(tmp_path, file="finance.csv"), inputs, scores, AS_OF
        )


def test_spend_case_at_the_observed_cac(
    tmp_path: Path, economics: UnitEconomics
) -> None:
    """1000 in FR at the observed CAC 500: 2 customers, 1-year value
    2 * 100 = 200, 3-year 300; LTV/CAC 150 / 500 = 0.3. Budget:
    (2000 + 1000) / (12000 + 200) = 24.6 %, over the 20 % maximum."""
    settings = _settings(
        tmp_path, marketing_budget=2000.0, expected_new_revenue=12000.0
    )
    case = spend_case(settings, economics, "FR", 1000.0)

    assert (case.cac, case.cac_source) == (500.0, "observed")
    assert case.customers == pytest.approx(2.0)
    assert (case.value_1y, case.value_3y) == (
        pytest.approx(200.0),
        pytest.approx(300.0),
    )
    assert case.band == INSUFFICIENT
    assert case.payback_months is None
    assert case.account_budget is not None
    assert case.account_budget.share_before == pytest.approx(2000 / 12000)
    assert case.account_budget.share_after == pytest.approx(3000 / 12200)
    assert case.account_budget.status == "over"


def test_spend_case_falls_back_to_the_benchmark(
    tmp_path: Path, economics: UnitEconomics
) -> None:
    """ES has no campaign: its benchmark 250 gives 4 customers for 1000, at
    the account's LTV 100 / 150: 1-year value 400. ES spends nothing
    today, so its ratio is 1000 / 400 = 250 % of the revenue it brings."""
    case = spend_case(_settings(tmp_path), economics, "ES", 1000.0)

    assert (case.cac, case.cac_source) == (250.0, "benchmark")
    assert case.value_1y == pytest.approx(400.0)
    assert case.market_budget.share_before is None
    assert case.market_budget.share_after == pytest.approx(2.5)
    assert case.spend_multiple is None
    assert case.beyond_observed


def test_spend_case_lands_the_current_budget_ratio_against_the_band(
    tmp_path: Path,
) -> None:
    """No marketing budget configured: the account's is its ad spend of
    2026-10-01..10 annualized, 1500 x 36.5 = 54,750, over the 250,000 of
    expected new revenue configured: 21.9 %, over the 15-20 % band. 1000 more
    in FR (CAC 500, 2 customers, 1-year revenue 200 at LTV 100) lands it at
    55,750 / 250,200 = 22.3 %, still over; 100,000 more (200 customers,
    20,000 of revenue) at 154,750 / 270,000 = 57.3 %. FR alone: 1000 x 36.5
    = 36,500 over 2 x 36.5 x 100 = 7,300 today, 500 %."""
    inputs, scores = _world()
    settings = _settings(tmp_path, expected_new_revenue=250_000.0)
    economics = compute_unit_economics(settings, inputs, scores, AS_OF)

    small = spend_case(settings, economics, "FR", 1000.0)
    large = spend_case(settings, economics, "FR", 100_000.0)

    assert small.account_budget is not None and large.account_budget is not None
    assert small.account_budget.share_before == pytest.approx(54_750 / 250_000)
    assert small.account_budget.share_after == pytest.approx(55_750 / 250_200)
    assert large.account_budget.share_after == pytest.approx(154_750 / 270_000)
    assert small.account_budget.status == large.account_budget.status == "over"
    assert small.market_budget.scope == "FR"
    assert small.market_budget.share_before == pytest.approx(36_500 / 7_300)


def test_spend_case_far_beyond_the_observed_spend_says_by_how_much(
    economics: UnitEconomics, tmp_path: Path
) -> None:
    """DE spent 500 in 10 days: 18,250 a year. 1e12 is 54.8 million times
    that; 10,000 is 0.55 times, within what the extrapolation can bear."""
    settings = _settings(tmp_path)

    huge = spend_case(settings, economics, "DE", 1e12)
    modest = spend_case(settings, economics, "DE", 10_000.0)

    assert huge.market_spend_year == pytest.approx(18_250.0)
    assert huge.spend_multiple == pytest.approx(1e12 / 18_250)
    assert huge.beyond_observed
    assert modest.spend_multiple == pytest.approx(10_000 / 18_250)
    assert not modest.beyond_observed


def test_spend_case_refuses_unknown_markets_and_bad_amounts(
    tmp_path: Path, economics: UnitEconomics
) -> None:
    with pytest.raises(PlanningError, match="'IT' is not in the config"):
        spend_case(_settings(tmp_path), economics, "IT", 1000.0)
    with pytest.raises(PlanningError, match="positive"):
        spend_case(_settings(tmp_path), economics, "FR", -5.0)
    with pytest.raises(PlanningError, match="beyond any marketing budget"):
        spend_case(_settings(tmp_path), economics, "FR", 1e308)


def test_hire_case(tmp_path: Path, economics: UnitEconomics) -> None:
    """100k a year, paid back in 12 months on revenue: 100k of ARR, i.e.
    100,000 / 100 = 1000 customers. With an 80 % margin and 6 months:
    100,000 * 12 / (6 * 0.8) = 250,000."""
    case = hire_case(_settings(tmp_path), 100_000.0, economics)
    assert case.arr_required == pytest.approx(100_000.0)
    assert case.customers_required == pytest.approx(1000.0)

    raw = _settings(tmp_path, hire_payback_months=6).model_dump(mode="json")
    raw["economics"]["gross_margin"] = 0.8
    settings = settings_from_mapping(raw, source="t", base_dir=tmp_path)
    assert hire_case(settings, 100_000.0).arr_required == pytest.approx(250_000.0)
    assert math.isclose(hire_case(settings, 1.0).gross_margin, 0.8)
