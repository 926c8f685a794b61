"""Properties of the plan over generated campaigns, markets and guardrails.

Whatever the inputs: no target outside the API's and the market's bounds, no
step beyond the limit, a campaign at its economic target inside its market's
CAC cap (through the paying share) and its 1-year ratio, targets that never
rise when the CAC cap rises, no lower target for a campaign whose observed
ROAS is under its economic target, no switch from tCPA past the economic
target, and the same plan from the same inputs.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from config.schema import (
    API_MAX_TARGET_ROAS,
    API_MIN_TARGET_ROAS,
    GuardrailSettings,
    MarketSettings,
)
from optimizer.economics import (
    MARKET_MAX,
    CampaignEconomics,
    Ratios,
    economic_target,
)
from optimizer.planner import CampaignFacts, plan_row
from optimizer.policy import (
    DIGITS,
    MIGRATE,
    TARGET_CPA,
    TARGET_ROAS,
    CampaignSnapshot,
    Freezes,
)

TOL = 1e-9

World = tuple[CampaignFacts, MarketSettings, GuardrailSettings, Ratios, Freezes]

positive = st.floats(min_value=0.01, max_value=10_000, allow_nan=False)


@st.composite
def markets(draw: st.DrawFn) -> MarketSettings:
    low = draw(st.floats(min_value=API_MIN_TARGET_ROAS, max_value=50))
    high = draw(st.floats(min_value=low, max_value=API_MAX_TARGET_ROAS))
    return MarketSettings(
        cac_max=draw(st.floats(min_value=1, max_value=20_000)),
        troas_min=low,
        troas_max=high,
    )


@st.composite
def guards(draw: st.DrawFn) -> GuardrailSettings:
    return GuardrailSettings(
        max_step=draw(st.floats(min_value=0.01, max_value=1.0)),
        no_change_threshold=draw(st.floats(min_value=0.0, max_value=0.1)),
        min_days_between_changes=draw(st.integers(0, 14)),
    )


@st.composite
def ratios(draw: st.DrawFn) -> Ratios:
    return Ratios(
        min_ltv365_to_cac=draw(st.floats(min_value=0.1, max_value=5)),
        target_ltv_to_cac=draw(st.floats(min_value=0.5, max_value=10)),
        ltv_horizon_days=draw(st.sampled_from([1095, 1825])),
        payback_months=draw(st.integers(1, 60)),
    )


@st.composite
def facts(draw: st.DrawFn, market: MarketSettings) -> CampaignFacts:
    strategy = draw(st.sampled_from([TARGET_CPA, TARGET_ROAS]))
    mean_value = draw(positive)
    snapshot = CampaignSnapshot(
        campaign_id="c1",
        strategy=strategy,
        target_cpa=draw(positive) if strategy == TARGET_CPA else None,
        target_roas=(
            draw(
                st.floats(min_value=API_MIN_TARGET_ROAS, max_value=API_MAX_TARGET_ROAS)
            )
            if strategy == TARGET_ROAS
            else None
        ),
        observed_roas=draw(
            st.none() | st.floats(min_value=0.001, max_value=2_000, allow_nan=False)
        ),
        mean_value=mean_value,
        conversions_in_window=draw(st.integers(0, 300)),
        learning=draw(st.booleans()),
        days_since_last_change=draw(st.none() | st.integers(0, 30)),
        campaign_type=draw(st.sampled_from(["SEARCH", "DISPLAY", "VIDEO", "OTHER"])),
    )
    economics = CampaignEconomics(
        mean_value=mean_value,
        ltv_horizon_ratio=draw(st.floats(min_value=1.0, max_value=10.0)),
        payback_share=draw(st.floats(min_value=0.05, max_value=5.0)),
        paying_share=draw(st.floats(min_value=0.001, max_value=1.0)),
        cac_max=market.cac_max,
        market="FR",
        currency="EUR",
    )
    return CampaignFacts(snapshot, "FR | Search | Generic", "FR", 1000.0, economics)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    market = draw(markets())
    freezes = draw(
        st.sampled_from([Freezes(), Freezes(), Freezes(), Freezes(kill_switch=True)])
    )
    return draw(facts(market)), market, draw(guards()), draw(ratios()), freezes


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_new_targets_stay_inside_api_and_market_bounds(world: World) -> None:
    fact, market, guard, ratio, freezes = world
    row = plan_row(fact, market, guard, ratio, freezes)

    assert row.economic_troas is not None
    if row.new_troas is not None:
        assert API_MIN_TARGET_ROAS <= row.new_troas <= API_MAX_TARGET_ROAS
        assert market.troas_min <= row.new_troas <= market.troas_max


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_no_step_is_larger_than_the_limit(world: World) -> None:
    fact, market, guard, ratio, freezes = world
    row = plan_row(fact, market, guard, ratio, freezes)

    current = fact.snapshot.current_roas
    if row.new_troas is not None:
        assert current is not None
        assert abs(row.new_troas / current - 1) <= guard.max_step + TOL


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_at_its_economic_target_a_campaign_respects_cap_and_ratio(
    world: World,
) -> None:
    """Implied CPA = mean(v) / tROAS is at most CAC_max * p, and
    LTV_365 / CAC = (mean(v) / p) / (CPA / p) = tROAS is at least k1, unless
    the market's maximum is what holds the target (and the row says so)."""
    fact, market, _, ratio, _ = world
    assert fact.economics is not None
    target = economic_target(fact.economics, ratio, market.troas_min, market.troas_max)

    if not target.economics_met:
        assert target.binding_constraint == MARKET_MAX
        return
    economics = fact.economics
    assert target.implied_cpa <= economics.cac_max * economics.paying_share * (1 + TOL)
    assert target.implied_cac <= economics.cac_max * (1 + TOL)
    ltv_365_per_payer = economics.mean_value / economics.paying_share
    ratio_365 = ltv_365_per_payer / target.implied_cac
    assert ratio_365 >= ratio.min_ltv365_to_cac * (1 - TOL)


@settings(max_examples=400, deadline=None)
@given(worlds(), st.floats(min_value=1.0, max_value=100.0))
def test_raising_the_cac_cap_never_raises_targets(
    world: World,
    factor: float,
) -> None:
    fact, market, guard, ratio, freezes = world
    assert fact.economics is not None
    looser_market = market.model_copy(update={"cac_max": market.cac_max * factor})
    looser = replace(
        fact, economics=replace(fact.economics, cac_max=looser_market.cac_max)
    )

    before = plan_row(fact, market, guard, ratio, freezes)
    after = plan_row(looser, looser_market, guard, ratio, freezes)

    assert before.economic_troas is not None and after.economic_troas is not None
    assert after.economic_troas <= before.economic_troas
    current = fact.snapshot.current_roas
    planned_before = before.new_troas if before.new_troas is not None else current
    planned_after = after.new_troas if after.new_troas is not None else current
    if planned_before is not None and planned_after is not None:
        assert planned_after <= planned_before


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_planning_twice_gives_the_same_row(world: World) -> None:
    fact, market, guard, ratio, freezes = world
    assert plan_row(fact, market, guard, ratio, freezes) == plan_row(
        fact, market, guard, ratio, freezes
    )


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_a_campaign_under_its_economic_target_is_never_made_more_aggressive(
    world: World,
) -> None:
    """Observed ROAS under the economic target, or none observed: whatever
    is sent is no lower than today's target in tROAS terms."""
    fact, market, guard, ratio, freezes = world
    assert fact.economics is not None
    target = economic_target(fact.economics, ratio, market.troas_min, market.troas_max)
    row = plan_row(fact, market, guard, ratio, freezes)

    observed = fact.snapshot.observed_roas
    current = fact.snapshot.current_roas
    if row.new_troas is None or current is None:
        return
    if observed is None or observed < target.target_roas:
        assert row.new_troas >= current - TOL


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_a_switch_from_tcpa_never_starts_past_the_economic_target(
    world: World,
) -> None:
    """The first tROAS lies on today's equivalent's side of the economic
    target (as recorded, to the decimals sent), whatever the observed ROAS.

    Both are rounded to the decimals sent on their own: a target the bounds
    cut at 1.96875 is recorded 1.9688, while the tROAS sent inside the bounds
    is 1.9687. One unit of the last decimal is that rounding, not a step past
    the target.
    """
    fact, market, guard, ratio, freezes = world
    row = plan_row(fact, market, guard, ratio, freezes)

    current = fact.snapshot.current_roas
    if row.action != MIGRATE or row.economic_troas is None or current is None:
        return
    assert row.new_troas is not None
    rounding = 10**-DIGITS + TOL
    if current < row.economic_troas:
        assert row.new_troas <= row.economic_troas + rounding
    elif current > row.economic_troas:
        assert row.new_troas >= row.economic_troas - rounding
