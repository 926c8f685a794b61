"""Each guardrail, and the named reason it gives when it holds a campaign back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from config import ConfigError
from config.loader import settings_from_mapping
from config.schema import GuardrailSettings, VolumeRule
from optimizer.economics import CampaignEconomics, Ratios, economic_target
from optimizer.policy import (
    AT_TARGET,
    BELOW_FLOOR,
    COOLDOWN,
    HOLD,
    IMPLAUSIBLE,
    KILL_SWITCH,
    LEARNING,
    LOWER,
    MARKET_FROZEN,
    MIGRATE,
    MODEL_GATE,
    NO_CHURN,
    NO_DATA,
    OUT_OF_BOUNDS,
    RAISE,
    STALE_DATA,
    STEP_LIMIT,
    TARGET_CPA,
    TARGET_ROAS,
    UNSUPPORTED,
    VALUE_JUMP,
    VOLUME,
    ZERO_ROAS,
    CampaignSnapshot,
    Freezes,
    decide,
)

GUARD = GuardrailSettings()
# CAC floor 100 / (250 * 0.5) = 0.8, LTV/CAC 3 / 1.5 = 2.0: the target is 2.0.
TARGET = economic_target(
    CampaignEconomics(100.0, 1.5, 1.0, 0.5, 250.0, "FR", "EUR"), Ratios(), 0.5, 20.0
)


def _roas(**changes: object) -> CampaignSnapshot:
    base = CampaignSnapshot(
        campaign_id="1",
        strategy=TARGET_ROAS,
        target_cpa=None,
        target_roas=3.0,
        observed_roas=2.5,
        mean_value=100.0,
        conversions_in_window=40,
        campaign_type="SEARCH",
    )
    return replace(base, **changes)


def _cpa(**changes: object) -> CampaignSnapshot:
    tcpa: dict[str, object] = {"target_cpa": 50.0, "target_roas": None}
    return _roas(strategy=TARGET_CPA, **(tcpa | changes))


def _decide(
    campaign: CampaignSnapshot,
    guard: GuardrailSettings = GUARD,
    freezes: Freezes | None = None,
) -> tuple[str, float | None, str | None, str]:
    d = decide(campaign, TARGET, guard, 0.5, 20.0, freezes or Freezes())
    return d.action, d.new_target_roas, d.guardrail, d.reason


def test_economic_target_of_the_fixture_is_two() -> None:
    assert TARGET.target_roas == pytest.approx(2.0)


def test_migration_starts_at_the_observed_roas() -> None:
    """tCPA 55 on a mean value of 100 is tROAS 1.82; observed ROAS 1.9 lies
    toward the target 2.0 within one 15 % step, so the first tROAS is 1.9."""
    action, new, guard, reason = _decide(_cpa(target_cpa=55.0, observed_roas=1.9))

    assert (action, new, guard) == (MIGRATE, 1.9, None)
    assert "observed ROAS 1.90" in reason


def test_migration_is_limited_to_one_step_from_the_tcpa_equivalent() -> None:
    """Observed 3.0 against an equivalent of 1.67 (tCPA 60), toward the target
    2.0: at most 1.6667 * 1.15 = 1.9167, rounded inward to 1.9166."""
    action, new, guard, _ = _decide(_cpa(target_cpa=60.0, observed_roas=3.0))

    assert (action, guard) == (MIGRATE, STEP_LIMIT)
    assert new == 1.9166


@pytest.mark.parametrize("observed", [2.1, 3.0])
def test_a_switch_does_not_start_away_from_the_target(observed: float) -> None:
    """tCPA 40 is tROAS 2.5, above the target 2.0; an observed ROAS above 2.5
    would start the switch away from the target only to walk back: it
    switches at 2.5. With the target at the equivalent (tCPA 50, 2.0), an
    observed ROAS on either side above it switches at 2.0 as well."""
    away = _decide(_cpa(target_cpa=40.0, observed_roas=observed + 0.5))
    at_target = _decide(_cpa(observed_roas=observed))

    assert away[:3] == (MIGRATE, 2.5, None)
    assert (
        f"tROAS 2.50, today's equivalent, rather than the campaign's observed "
        f"ROAS {observed + 0.5:.2f}: that lies on the other side of today's "
        "equivalent from the economic target 2.00"
    ) in away[3]
    assert "second learning period" in away[3]
    assert at_target[:3] == (MIGRATE, 2.0, None)


def test_a_switch_toward_the_target_still_starts_at_the_observed_roas() -> None:
    """tCPA 40 is tROAS 2.5 and the target 2.0: observed 2.2 lies between, so
    the first tROAS is 2.2, a first step toward the target."""
    assert _decide(_cpa(target_cpa=40.0, observed_roas=2.2))[:3] == (
        MIGRATE,
        2.2,
        None,
    )


@pytest.mark.parametrize("observed", [2.05, 2.09])
def test_a_switch_stops_at_the_target_the_observed_roas_lies_beyond(
    observed: float,
) -> None:
    """tCPA 55 is tROAS 1.82 and the target 2.0 above it; an observed ROAS
    beyond the target, within one 15 % step (up to 2.09), would start the
    switch past the target only for later steps to walk it back: it
    switches at 2.0."""
    action, new, guard, reason = _decide(_cpa(target_cpa=55.0, observed_roas=observed))

    assert (action, new, guard) == (MIGRATE, 2.0, None)
    assert "to tROAS 2.00, at the economic target 2.00 set by LTV/CAC" in reason
    assert f"observed ROAS {observed:.2f}: that lies beyond the target" in reason


def test_a_switch_reason_shows_the_decimals_that_tell_the_targets_apart() -> None:
    """tCPA 50.10 is tROAS 1.99601, the switch goes to 2.0: at two decimals
    both read 2.00, as if nothing moved."""
    reason = _decide(_cpa(target_cpa=50.1, observed_roas=2.05))[3]

    assert reason.startswith("Switch tCPA 50.10 (= tROAS 1.996) to tROAS 2.000, ")


def test_a_switch_toward_a_target_beyond_one_step_stops_at_the_step() -> None:
    """tCPA 60 is tROAS 1.67; target 2.0 and observed 3.0 beyond it: the
    first tROAS is one step up, 1.9166, still short of the target."""
    action, new, guard, reason = _decide(_cpa(target_cpa=60.0, observed_roas=3.0))

    assert (action, new, guard) == (MIGRATE, 1.9166, STEP_LIMIT)
    assert "one step toward the economic target 2.00" in reason


def test_a_switch_at_the_equivalent_keeps_inside_the_market_bounds() -> None:
    """tCPA 4.8 is tROAS 20.83, over the market's maximum 20 by less than a
    step: the switch is at 20, the hard bound, never at the observed 25."""
    campaign = _cpa(target_cpa=4.8, observed_roas=25.0)
    high = economic_target(
        CampaignEconomics(100.0, 1.0, 1.0, 1.0, 250.0, "FR", "EUR"),
        Ratios(),
        0.5,
        20.0,
    )
    decision = decide(campaign, high, GUARD, 0.5, 20.0, Freezes())

    assert (decision.action, decision.new_target_roas) == (MIGRATE, 20.0)
    assert "brought inside the market's bounds from 20.83" in decision.reason


def test_migration_without_an_observed_roas_holds() -> None:
    assert _decide(_cpa(observed_roas=None))[2] == NO_DATA


@pytest.mark.parametrize("observed", [0.0, 4.6e-6, 0.0099])
def test_conversions_with_next_to_no_value_plan_no_troas(observed: float) -> None:
    """Cost in micros gives an observed ROAS of about 5e-6, shown as 0.00:
    no switch at today's tCPA equivalent, and no step of a tROAS either."""
    for campaign in (_cpa(observed_roas=observed), _roas(observed_roas=observed)):
        action, new, guard, reason = _decide(campaign)

        assert (action, new, guard) == (HOLD, None, ZERO_ROAS)
        assert "40 conversions and their cost in the window" in reason
        assert "no tROAS is planned" in reason


def test_the_lowest_roas_google_accepts_still_plans() -> None:
    assert _decide(_cpa(observed_roas=0.01))[0] == MIGRATE


def test_a_step_is_at_most_the_market_limit() -> None:
    """3.0 toward 2.0 with a 15 % limit: 3.0 * 0.85 = 2.55; with 40 %: 2.0."""
    assert _decide(_roas())[:3] == (LOWER, 2.55, STEP_LIMIT)
    wide = GUARD.model_copy(update={"max_step": 0.4})
    assert _decide(_roas(), wide)[:3] == (LOWER, 2.0, None)


def test_raising_toward_the_target() -> None:
    action, new, _, reason = _decide(_roas(target_roas=1.8))

    assert (action, new) == (RAISE, 2.0)
    assert "Raise tROAS 1.80 to 2.00" in reason


def test_changes_under_the_threshold_are_not_sent() -> None:
    """2.03 to 2.0 is -1.5 %, under 2 %: at target. 2.5 with the step
    limit at 1 % would move 1 %, under 2 %: no churn."""
    assert _decide(_roas(target_roas=2.03))[:3] == (HOLD, None, AT_TARGET)
    tiny = GUARD.model_copy(update={"max_step": 0.01})
    assert _decide(_roas(target_roas=2.5), tiny)[:3] == (HOLD, None, NO_CHURN)


def test_cooldown_counts_days_since_the_last_applied_change() -> None:
    held = _decide(_roas(days_since_last_change=6))
    assert held[2] == COOLDOWN
    assert "7 days must pass" in held[3]
    assert _decide(_roas(days_since_last_change=7))[0] == LOWER


@pytest.mark.parametrize(
    ("kind", "conversions", "held"),
    [
        ("SEARCH", 14, True),
        ("SEARCH", 15, False),
        ("DISPLAY", 19, True),
        ("DISPLAY", 20, False),
        ("VIDEO", 19, True),
    ],
)
def test_volume_minimum_depends_on_the_campaign_type(
    kind: str, conversions: int, held: bool
) -> None:
    """Search needs 15 conversions (in 30 days), other types 20 (in 45)."""
    action, _, guard, reason = _decide(
        _roas(campaign_type=kind, conversions_in_window=conversions)
    )
    assert (guard == VOLUME) is held
    if held:
        assert action == HOLD
        assert str(GUARD.volume_rule(kind).conversions) in reason


def test_volume_rules_are_configurable() -> None:
    strict = GUARD.model_copy(
        update={
            "min_volume": {
                **GUARD.min_volume,
                "SEARCH": VolumeRule(conversions=50, window_days=30),
            }
        }
    )
    assert _decide(_roas(conversions_in_window=40), strict)[2] == VOLUME


@pytest.mark.parametrize(
    ("freezes", "reason"),
    [
        (Freezes(kill_switch=True), KILL_SWITCH),
        (Freezes(stale_data="stats end 5 days ago"), STALE_DATA),
        (Freezes(model_gate_failed="model failed its gate"), MODEL_GATE),
        (Freezes(value_jump="values 34x those of the last run"), VALUE_JUMP),
        (Freezes(implausible="revenue 153x the CAC cap"), IMPLAUSIBLE),
        (Freezes(market_frozen=True), MARKET_FROZEN),
    ],
)
def test_freezes_hold_everything(freezes: Freezes, reason: str) -> None:
    assert _decide(_roas(), freezes=freezes)[:3] == (HOLD, None, reason)
    assert _decide(_cpa(), freezes=freezes)[:3] == (HOLD, None, reason)


def test_a_learning_strategy_is_left_alone() -> None:
    assert _decide(_roas(learning=True))[2] == LEARNING


def test_a_market_frozen_in_the_config_holds() -> None:
    frozen = GUARD.model_copy(update={"frozen": True})
    assert _decide(_roas(), frozen)[2] == MARKET_FROZEN


def test_strategies_without_a_target_are_not_touched() -> None:
    assert _decide(_roas(strategy="MAXIMIZE_CONVERSIONS"))[2] == UNSUPPORTED
    assert _decide(_roas(target_roas=None))[2] == UNSUPPORTED


def test_a_target_more_than_one_step_outside_the_bounds_is_held() -> None:
    """Today 30 in a market capped at 20: one 15 % step reaches 25.5 at
    best, still outside; moving to 20 would be a 33 % jump."""
    action, new, guard, reason = _decide(_roas(target_roas=30.0))

    assert (action, new, guard) == (HOLD, None, OUT_OF_BOUNDS)
    assert "by hand" in reason


def test_a_target_one_step_outside_the_bounds_comes_back_inside() -> None:
    """Today 22 in a market capped at 20: 22 * 0.85 = 18.7 is reachable."""
    action, new, _, _ = _decide(_roas(target_roas=22.0))

    assert action == LOWER
    assert new == pytest.approx(18.7)


def _config(**guardrails: object) -> dict[str, object]:
    return {
        "account": {"name": "t", "currency": "EUR"},
        "data": {"users": "u.csv", "revenue": "r.csv", "campaign_stats": "s.csv"},
        "markets": {
            "FR": {"cac_max": 100.0},
            "DE": {
                "cac_max": 100.0,
                "guardrails": {
                    "min_volume": {"DISPLAY": {"conversions": 30, "window_days": 60}},
                    "frozen": True,
                },
            },
        },
        "guardrails": guardrails,
    }


def test_market_volume_rules_merge_over_the_defaults(tmp_path: Path) -> None:
    settings = settings_from_mapping(_config(), source="t", base_dir=tmp_path)

    de = settings.guardrails_for("DE")
    assert de.volume_rule("DISPLAY") == VolumeRule(conversions=30, window_days=60)
    assert de.volume_rule("SEARCH") == VolumeRule(conversions=15, window_days=30)
    assert de.volume_rule("VIDEO") == VolumeRule(conversions=20, window_days=45)
    assert de.frozen and not settings.guardrails_for("FR").frozen
    assert settings.guardrails_for("FR").volume_rule("DISPLAY").conversions == 20


def test_volume_rules_need_a_fallback(tmp_path: Path) -> None:
    raw = _config(min_volume={"SEARCH": {"conversions": 15, "window_days": 30}})
    with pytest.raises(ConfigError, match=r"guardrails.min_volume: needs an OTHER"):
        settings_from_mapping(raw, source="t", base_dir=tmp_path)


def test_a_campaign_under_its_target_is_not_lowered() -> None:
    """tROAS 3.0 toward the target 2.0 would lower it to 2.55, but the
    campaign returns 1.5: already short of the target, it is held."""
    action, new, guard, reason = _decide(_roas(observed_roas=1.5))

    assert (action, new, guard) == (HOLD, None, BELOW_FLOOR)
    assert "observed ROAS 1.50 is under its economic target 2.00" in reason
    assert "would let Google bid more" in reason


def test_a_campaign_at_its_target_may_be_lowered() -> None:
    """Observed exactly 2.0 meets the target 2.0: the step down is safe, and
    the reason says so."""
    action, new, guard, reason = _decide(_roas(observed_roas=2.0))

    assert (action, new, guard) == (LOWER, 2.55, STEP_LIMIT)
    assert "observed ROAS 2.00 already meets that target" in reason


def test_a_campaign_under_its_target_is_still_raised_toward_it() -> None:
    """tROAS 1.5 under the target 2.0, observed 1.2: raising is never more
    aggressive, so the step up to 1.5 * 1.15 = 1.725 goes through."""
    action, new, guard, _ = _decide(_roas(target_roas=1.5, observed_roas=1.2))

    assert (action, guard) == (RAISE, STEP_LIMIT)
    assert new == pytest.approx(1.725)


def test_without_an_observed_roas_a_target_is_raised_but_not_lowered() -> None:
    """No cost in the window: nothing shows the campaign earns its target,
    so a step down holds as a switch from tCPA would; a step up goes."""
    action, new, guard, reason = _decide(_roas(observed_roas=None))
    assert (action, new, guard) == (HOLD, None, NO_DATA)
    assert "lowered only once it does" in reason

    assert _decide(_roas(target_roas=1.8, observed_roas=None))[:2] == (RAISE, 2.0)


def test_too_few_conversions_hold_before_the_observed_roas_is_judged() -> None:
    """14 Search conversions: the volume rule holds first, whatever the
    observed ROAS, as for any campaign with too little data."""
    held = _decide(_roas(observed_roas=1.5, conversions_in_window=14))

    assert held[:3] == (HOLD, None, VOLUME)


def test_a_tcpa_campaign_under_its_target_switches_at_todays_equivalent() -> None:
    """tCPA 50 on a mean value of 100 is tROAS 2.0; observed 1.8 is under the
    target 2.0, so the switch keeps 2.0 instead of starting lower at 1.8."""
    action, new, guard, reason = _decide(_cpa(observed_roas=1.8))

    assert (action, new, guard) == (MIGRATE, 2.0, BELOW_FLOOR)
    assert "today's equivalent rather than the campaign's observed ROAS 1.80" in (
        reason
    )


def test_a_tcpa_campaign_under_its_target_above_its_equivalent_switches_at_it() -> None:
    """tCPA 60 is tROAS 1.67; observed 1.8 is under the target 2.0 but above
    the equivalent, so the switch at 1.8 is already a step up."""
    action, new, guard, _ = _decide(_cpa(target_cpa=60.0, observed_roas=1.8))

    assert (action, new, guard) == (MIGRATE, 1.8, None)


def test_a_tcpa_switch_the_bounds_would_force_down_is_held() -> None:
    """Market capped at 1.9, equivalent 2.0, observed 1.5: every tROAS the
    market allows is under today's equivalent, so the campaign stays on tCPA."""
    capped = economic_target(
        CampaignEconomics(100.0, 1.5, 1.0, 0.5, 250.0, "FR", "EUR"),
        Ratios(),
        0.5,
        1.9,
    )
    decision = decide(_cpa(observed_roas=1.5), capped, GUARD, 0.5, 1.9, Freezes())

    assert (decision.action, decision.new_target_roas) == (HOLD, None)
    assert decision.guardrail == BELOW_FLOOR
    assert "Hold on tCPA 50.00 (= tROAS 2.00)" in decision.reason


def test_a_tcpa_equivalent_with_float_noise_is_sent_as_is() -> None:
    """tCPA 100 / 0.07 on a mean value of 100 is tROAS 0.07 up to float noise;
    the switch sends 0.07, not 0.0701, and is not held as a step down."""
    low_target = economic_target(
        CampaignEconomics(100.0, 1.5, 1.0, 1.0, 1.0, "FR", "EUR"),
        Ratios(),
        0.01,
        1000.0,
    )
    campaign = _cpa(target_cpa=100.0 / 0.07, observed_roas=0.05)
    decision = decide(campaign, low_target, GUARD, 0.01, 1000.0, Freezes())

    assert (decision.action, decision.guardrail) == (MIGRATE, BELOW_FLOOR)
    assert decision.new_target_roas == 0.07
