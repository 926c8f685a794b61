"""Worked examples of the economic target: each floor binding in turn.

Every expected value is computed by hand in the test's docstring from the
formulas of the design brief ("tROAS math").
"""

from __future__ import annotations

import pytest

from optimizer.economics import (
    BREAK_EVEN,
    CAC_CAP,
    LTV_CAC,
    MARKET_MAX,
    MARKET_MIN,
    PAYBACK,
    CampaignEconomics,
    Ratios,
    economic_target,
)
from optimizer.exceptions import PlanningError


def _inputs(**changes: float) -> CampaignEconomics:
    base = {
        "mean_value": 100.0,
        "ltv_horizon_ratio": 3.0,
        "payback_share": 1.0,
        "paying_share": 0.5,
        "cac_max": 250.0,
    }
    base.update(changes)
    return CampaignEconomics(market="FR", currency="EUR", **base)


def test_break_even_binds() -> None:
    """k1 = 1.2 required.

    floors: break-even 1.2; LTV/CAC 3 / 3.0 = 1.0; payback 1 / 1.0 = 1.0;
    CAC cap 100 / (250 * 0.5) = 0.8. Largest: 1.2 (break-even).
    Implied CPA 100 / 1.2 = 83.33; implied CAC 83.33 / 0.5 = 166.67.
    """
    target = economic_target(_inputs(), Ratios(min_ltv365_to_cac=1.2), 0.5, 20.0)

    assert target.floors == pytest.approx(
        {BREAK_EVEN: 1.2, LTV_CAC: 1.0, PAYBACK: 1.0, CAC_CAP: 0.8}
    )
    assert target.binding_constraint == BREAK_EVEN
    assert target.target_roas == pytest.approx(1.2)
    assert target.implied_cpa == pytest.approx(83.3333, rel=1e-4)
    assert target.implied_cac == pytest.approx(166.6667, rel=1e-4)
    assert target.economics_met
    assert "1-year break-even" in target.binding_reason


def test_ltv_cac_binds() -> None:
    """LTV/CAC target 3 over 3 years, value doubling from year 1 to year 3.

    floors: break-even 1.0; LTV/CAC 3 / 2.0 = 1.5; payback 1.0;
    CAC cap 100 / (250 * 0.5) = 0.8. Largest: 1.5 (LTV/CAC).
    """
    target = economic_target(_inputs(ltv_horizon_ratio=2.0), Ratios(), 0.5, 20.0)

    assert target.floors[LTV_CAC] == pytest.approx(1.5)
    assert target.binding_constraint == LTV_CAC
    assert target.target_roas == pytest.approx(1.5)
    assert "3.00 / 2.00 = 1.50" in target.binding_reason


def test_payback_binds() -> None:
    """Payback in 6 months, 40 % of the 1-year value earned by then.

    floors: break-even 1.0; LTV/CAC 3 / 2.4 = 1.25; payback 1 / 0.4 = 2.5;
    CAC cap 0.8. Largest: 2.5 (payback).
    """
    target = economic_target(
        _inputs(ltv_horizon_ratio=2.4, payback_share=0.4),
        Ratios(payback_months=6),
        0.5,
        20.0,
    )

    assert target.floors[LTV_CAC] == pytest.approx(1.25)
    assert target.floors[PAYBACK] == pytest.approx(2.5)
    assert target.binding_constraint == PAYBACK
    assert target.target_roas == pytest.approx(2.5)
    assert "Payback within 6 months" in target.binding_reason


def test_cac_cap_binds_through_the_paying_share() -> None:
    """CAC cap 300 per paying customer, a quarter of activations pay.

    The most an activation may cost is 300 * 0.25 = 75; with a mean
    predicted value of 120 per activation the floor is 120 / 75 = 1.6.
    Other floors: break-even 1.0, LTV/CAC 3 / 2.4 = 1.25, payback 1.0.
    At the target the implied CPA is 120 / 1.6 = 75 (the cap) and the
    implied CAC is 75 / 0.25 = 300 (the benchmark).
    """
    target = economic_target(
        _inputs(
            mean_value=120.0, ltv_horizon_ratio=2.4, paying_share=0.25, cac_max=300.0
        ),
        Ratios(),
        0.5,
        20.0,
    )

    assert target.floors[CAC_CAP] == pytest.approx(1.6)
    assert target.binding_constraint == CAC_CAP
    assert target.implied_cpa == pytest.approx(75.0)
    assert target.implied_cac == pytest.approx(300.0)
    assert "at most 75.00 EUR per activation" in target.binding_reason


def test_forgetting_the_unit_would_set_a_four_times_lower_floor() -> None:
    """The same campaign read as if every activation paid (p = 1).

    120 / (300 * 1) = 0.4 instead of 120 / (300 * 0.25) = 1.6: the cap must
    be applied per activation, through p.
    """
    per_payer = economic_target(
        _inputs(mean_value=120.0, paying_share=1.0, cac_max=300.0), Ratios(), 0.01, 20
    )
    per_activation = economic_target(
        _inputs(mean_value=120.0, paying_share=0.25, cac_max=300.0), Ratios(), 0.01, 20
    )

    assert per_payer.floors[CAC_CAP] == pytest.approx(0.4)
    assert per_activation.floors[CAC_CAP] == pytest.approx(4 * 0.4)


def test_market_maximum_holds_the_target_and_says_economics_are_not_met() -> None:
    """CAC floor 600 / (100 * 0.2) = 30 is above the market's maximum 20.

    The target is 20; at 20 the implied CPA is 600 / 20 = 30, above the
    cap of 100 * 0.2 = 20 per activation, so the row must say so.
    """
    target = economic_target(
        _inputs(mean_value=600.0, paying_share=0.2, cac_max=100.0), Ratios(), 0.5, 20.0
    )

    assert target.floors[CAC_CAP] == pytest.approx(30.0)
    assert target.binding_constraint == MARKET_MAX
    assert target.target_roas == 20.0
    assert not target.economics_met
    assert target.implied_cpa == pytest.approx(30.0)
    assert "Economics not met" in target.binding_reason


def test_market_minimum_lifts_a_target_all_floors_leave_low() -> None:
    """k1 = 0.3, LTV/CAC 3 / 10 = 0.3, payback over 24 months earning twice
    the 1-year value 1 / 2 = 0.5, CAC cap 10 / (1000 * 1) = 0.01. Largest is
    0.5, under the market minimum 0.6, so the target is 0.6.
    """
    target = economic_target(
        _inputs(
            mean_value=10.0,
            ltv_horizon_ratio=10.0,
            payback_share=2.0,
            paying_share=1.0,
            cac_max=1000.0,
        ),
        Ratios(min_ltv365_to_cac=0.3, payback_months=24),
        0.6,
        20.0,
    )

    assert target.floors[PAYBACK] == pytest.approx(0.5)
    assert target.binding_constraint == MARKET_MIN
    assert target.target_roas == 0.6
    assert target.economics_met


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mean_value", 0.0),
        ("paying_share", 0.0),
        ("paying_share", 1.5),
        ("cac_max", -1.0),
        ("payback_share", float("nan")),
    ],
)
def test_undefined_floors_are_refused_with_the_field_named(
    field: str, value: float
) -> None:
    with pytest.raises(PlanningError, match=field):
        economic_target(_inputs(**{field: value}), Ratios(), 0.5, 20.0)
