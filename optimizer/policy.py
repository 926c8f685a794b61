"""Guardrails between a campaign's current target and its economic one.

Google's bidder needs time and volume to learn: the policy moves a target at
most one bounded step at a time, never more often than the market allows,
only with enough conversions, and not at all while something is frozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.schema import API_MAX_TARGET_ROAS, API_MIN_TARGET_ROAS, GuardrailSettings
from optimizer.economics import FLOOR_LABELS, EconomicTarget

#: Decimals of a tROAS sent to Google Ads (0.01 % of a 100 % target).
DIGITS = 4

TARGET_CPA = "TARGET_CPA"
TARGET_ROAS = "TARGET_ROAS"

MIGRATE = "migrate"
RAISE = "raise"
LOWER = "lower"
HOLD = "hold"

# Named reasons a campaign is held back; each appears in the plan's guardrail column.
KILL_SWITCH = "kill_switch"
STALE_DATA = "stale_data"
MODEL_GATE = "model_gate"
VALUE_JUMP = "value_jump"
IMPLAUSIBLE = "implausible_inputs"
LEARNING = "learning"
VOLUME = "volume"
NO_DATA = "no_data"
COOLDOWN = "cooldown"
NO_CHURN = "no_churn"
AT_TARGET = "at_target"
UNSUPPORTED = "unsupported_strategy"
STEP_LIMIT = "step_limit"
MARKET_FROZEN = "market_frozen"
OUT_OF_BOUNDS = "out_of_bounds"
BELOW_FLOOR = "below_floor"
ZERO_ROAS = "zero_roas"

#: Every named reason, for documentation and for checking plan files.
GUARDRAILS = (
    KILL_SWITCH,
    STALE_DATA,
    MODEL_GATE,
    VALUE_JUMP,
    IMPLAUSIBLE,
    MARKET_FROZEN,
    UNSUPPORTED,
    LEARNING,
    VOLUME,
    COOLDOWN,
    NO_DATA,
    ZERO_ROAS,
    OUT_OF_BOUNDS,
    BELOW_FLOOR,
    NO_CHURN,
    AT_TARGET,
    STEP_LIMIT,
)


@dataclass(frozen=True)
class CampaignSnapshot:
    """What the policy knows of one campaign today."""

    campaign_id: str
    strategy: str
    target_cpa: float | None
    target_roas: float | None
    observed_roas: float | None
    mean_value: float | None
    conversions_in_window: float
    learning: bool = False
    days_since_last_change: int | None = None
    campaign_type: str = "OTHER"

    @property
    def current_roas(self) -> float | None:
        """Today's target in tROAS terms (a tCPA is converted through mean value)."""
        if self.strategy == TARGET_ROAS and self.target_roas:
            return self.target_roas
        if self.strategy == TARGET_CPA and self.target_cpa and self.mean_value:
            return self.mean_value / self.target_cpa
        return None


@dataclass(frozen=True)
class Freezes:
    """Reasons to change nothing today: account-wide, in one market or for one
    campaign."""

    kill_switch: bool = False
    stale_data: str | None = None
    model_gate_failed: str | None = None
    value_jump: str | None = None
    implausible: str | None = None
    market_frozen: bool = False


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one campaign."""

    action: str
    new_target_roas: float | None
    guardrail: str | None
    reason: str


def decide(
    campaign: CampaignSnapshot,
    economic: EconomicTarget,
    guardrails: GuardrailSettings,
    troas_min: float,
    troas_max: float,
    freezes: Freezes,
) -> Decision:
    """Choose today's tROAS for one campaign.

    Parameters
    ----------
    campaign
        Its strategy, current target, observed ROAS and recent volume.
    economic
        The target its market's economics allow (see
        :func:`optimizer.economics.economic_target`).
    guardrails
        The market's step size, cooldown, volume minimum by campaign type,
        churn threshold and freeze.
    troas_min, troas_max
        The market's bounds.
    freezes
        Kill switch, stale data, model gate, value jump, implausible inputs
        and market freeze.

    Returns
    -------
    Decision
        The action, the new target (``None`` when nothing is sent), the
        guardrail that held or shaped it, and a one-line reason.

    Notes
    -----
    The floors bound tROAS on the premise that the bidder earns its target:
    the implied cost per activation is ``mean(v) / tROAS``. A campaign whose
    observed ROAS is under its economic target already pays more than that
    per activation, so a lower target would let the bidder pay more still.
    Such a campaign is never made more aggressive: its tROAS is held (or
    raised toward the target), and on tCPA it switches no lower than today's
    equivalent. Without an observed ROAS a target is not lowered either, as
    a tCPA campaign without one is not switched.

    References
    ----------
    Google Ads Help, "About Target ROAS bidding" and "Target ROAS bidding for
    Display": change targets gradually (about 20 % at a time) and let the
    bidder learn for a few conversion cycles between changes.
    """
    held = held_back(campaign, guardrails, freezes)
    if held is None:
        held = _without_values(campaign)
    if held is not None:
        return held

    current = campaign.current_roas
    if current is None:
        return Decision(
            HOLD,
            None,
            NO_DATA,
            "Hold on tCPA: without a target CPA and a mean predicted value "
            "there is no tROAS equivalent to start from.",
        )
    goal = economic.target_roas
    goal_text = (
        f"economic target {goal:.2f} set by {FLOOR_LABELS[economic.binding_constraint]}"
    )
    step = guardrails.max_step
    low = max(troas_min, API_MIN_TARGET_ROAS, current * (1 - step))
    high = min(troas_max, API_MAX_TARGET_ROAS, current * (1 + step))
    if low > high:
        return Decision(
            HOLD,
            None,
            OUT_OF_BOUNDS,
            f"Hold: today's tROAS {current:.2f} is more than one "
            f"{step:.0%} step outside the market's bounds "
            f"[{troas_min:.2f}, {troas_max:.2f}]; move it inside by hand or "
            "widen the bounds.",
        )

    if campaign.strategy == TARGET_CPA:
        return _migrate(campaign, current, low, high, goal, goal_text)

    new = _settle(goal, low, high)
    if new < current:
        unearned = _unearned_lowering(campaign, current, goal, goal_text)
        if unearned is not None:
            return unearned
    change = new / current - 1
    if abs(change) < guardrails.no_change_threshold:
        guard = AT_TARGET if new == round(goal, DIGITS) else NO_CHURN
        return Decision(
            HOLD,
            None,
            guard,
            f"Hold tROAS {current:.2f}: a {change:+.1%} change is under the "
            f"{guardrails.no_change_threshold:.0%} threshold ({goal_text}).",
        )
    shaped = STEP_LIMIT if new != round(goal, DIGITS) else None
    verb = "Raise" if new > current else "Lower"
    why = ""
    if new < current and campaign.observed_roas is not None:
        why = (
            f"; its observed ROAS {campaign.observed_roas:.2f} already meets "
            "that target, so today's target asks more than the economics need"
        )
    return Decision(
        RAISE if new > current else LOWER,
        new,
        shaped,
        f"{verb} tROAS {current:.2f} to {new:.2f} ({change:+.1%}"
        f"{', one step' if shaped else ''}) toward the {goal_text}{why}.",
    )


def _without_values(campaign: CampaignSnapshot) -> Decision | None:
    """The hold of a campaign whose conversions came with next to no value.

    Cost and conversions with an observed ROAS under the lowest target
    Google Ads accepts mean the values, or the cost, are not usable: no
    tROAS can start from that ROAS or be judged by it.
    """
    observed = campaign.observed_roas
    if (
        observed is None
        or campaign.conversions_in_window <= 0
        or observed >= API_MIN_TARGET_ROAS
    ):
        return None
    return Decision(
        HOLD,
        None,
        ZERO_ROAS,
        f"Hold: {campaign.conversions_in_window:.0f} conversions and their "
        f"cost in the window, but an observed ROAS of {observed:.2g}, under "
        f"the lowest tROAS Google Ads accepts ({API_MIN_TARGET_ROAS:g}): the "
        "values or the cost are not usable (cost in micros, values missing?), "
        "so no tROAS is planned.",
    )


def _unearned_lowering(
    campaign: CampaignSnapshot, current: float, goal: float, goal_text: str
) -> Decision | None:
    """The hold of a lowering the campaign's observed ROAS does not justify."""
    observed = campaign.observed_roas
    if observed is None or not math.isfinite(observed) or observed <= 0:
        return Decision(
            HOLD,
            None,
            NO_DATA,
            f"Hold tROAS {current:.2f}: no cost or predicted value in the "
            "observation window to show the campaign earns its "
            f"{goal_text}; it is lowered only once it does.",
        )
    if observed < goal:
        return Decision(
            HOLD,
            None,
            BELOW_FLOOR,
            f"Hold tROAS {current:.2f}: the campaign's observed ROAS "
            f"{observed:.2f} is under its {goal_text}, so at today's bids it "
            "already falls short of that rule; a lower tROAS would let Google "
            "bid more.",
        )
    return None


def _migrate(
    campaign: CampaignSnapshot,
    current: float,
    low: float,
    high: float,
    goal: float,
    goal_text: str,
) -> Decision:
    """First tROAS of a tCPA campaign: its own observed ROAS, within one step.

    The observed ROAS is taken only between today's equivalent and the
    economic target: one on the far side of the equivalent from the target
    starts at the equivalent, and one beyond the target starts at the target,
    since a first step away from the target, or past it, that later steps
    walk back would cost the bidder two learning periods. A campaign under
    its economic target switches no lower than today's equivalent, and stays
    on tCPA when the bounds allow nothing that high.
    """
    observed = campaign.observed_roas
    if observed is None or not math.isfinite(observed) or observed <= 0:
        return Decision(
            HOLD,
            None,
            NO_DATA,
            "Hold on tCPA: no cost or predicted value in the observation "
            "window to start tROAS from.",
        )
    if observed < goal and observed < current:
        return _migrate_below_floor(campaign, observed, current, low, high, goal_text)
    if goal <= current < observed:
        return _migrate_at_equivalent(campaign, observed, current, low, high, goal_text)
    if current < goal < observed:
        return _migrate_at_target(
            campaign, observed, current, low, high, goal, goal_text
        )
    new = _settle(observed, low, high)
    shaped = STEP_LIMIT if new != round(observed, DIGITS) else None
    return Decision(
        MIGRATE,
        new,
        shaped,
        f"{_switch(campaign, current, new)}, the campaign's observed ROAS "
        f"{observed:.2f}"
        f"{' limited to one step and the bounds' if shaped else ''}, so the "
        f"bidder is not shocked; later steps walk toward the {goal_text}.",
    )


def _switch(campaign: CampaignSnapshot, today: float, new: float) -> str:
    """``Switch tCPA ... (= tROAS today) to tROAS new``, the two tROAS values
    with the fewest decimals (2 or more) that tell them apart: a switch from
    1.6451 to 1.6544 would read 1.65 to 1.65 at two."""
    shown = (f"{today:.2f}", f"{new:.2f}")
    for places in range(2, DIGITS + 1):
        finer = (f"{today:.{places}f}", f"{new:.{places}f}")
        if finer[0] != finer[1]:
            shown = finer
            break
    return (
        f"Switch tCPA {campaign.target_cpa:.2f} (= tROAS {shown[0]}) to tROAS "
        f"{shown[1]}"
    )


def _migrate_at_equivalent(
    campaign: CampaignSnapshot,
    observed: float,
    current: float,
    low: float,
    high: float,
    goal_text: str,
) -> Decision:
    """Switch at today's tCPA equivalent: the observed ROAS lies beyond it,
    away from the economic target (at or under the equivalent)."""
    scale = 10**DIGITS
    # Down to the decimals sent, toward the target, never past today's
    # equivalent away from it; the inner round drops float noise.
    start = math.floor(round(current * scale, 6)) / scale
    new = _settle(start, low, high)
    bounded = (
        f", brought inside the market's bounds from {start:.2f}" if new != start else ""
    )
    return Decision(
        MIGRATE,
        new,
        None,
        f"{_switch(campaign, current, new)}, today's equivalent{bounded}, "
        f"rather than the campaign's observed ROAS {observed:.2f}: that lies "
        f"on the other side of today's equivalent from the {goal_text}, so "
        "starting there would move the target away from it only for later "
        "steps to walk it back, costing the bidder a second learning period; "
        "later steps walk toward that target.",
    )


def _migrate_at_target(
    campaign: CampaignSnapshot,
    observed: float,
    current: float,
    low: float,
    high: float,
    goal: float,
    goal_text: str,
) -> Decision:
    """Switch toward the economic target, no further: the observed ROAS lies
    beyond it, on the same side of today's equivalent."""
    new = _settle(goal, low, high)
    shaped = STEP_LIMIT if new != round(goal, DIGITS) else None
    where = "one step toward" if shaped else "at"
    return Decision(
        MIGRATE,
        new,
        shaped,
        f"{_switch(campaign, current, new)}, {where} the {goal_text}, rather "
        f"than the campaign's observed ROAS {observed:.2f}: that lies beyond "
        "the target, so starting there would overshoot it only for later "
        "steps to walk it back, costing the bidder a second learning period.",
    )


def _migrate_below_floor(
    campaign: CampaignSnapshot,
    observed: float,
    current: float,
    low: float,
    high: float,
    goal_text: str,
) -> Decision:
    """Switch at today's tCPA equivalent: the observed ROAS is under the target."""
    scale = 10**DIGITS
    # Up to the decimals sent, so the switch is no step down; the inner round
    # drops float noise (0.07 * 10**4 is 700.0000000000001, not 700).
    start = math.ceil(round(current * scale, 6)) / scale
    new = _settle(start, low, high)
    if new < start:
        return Decision(
            HOLD,
            None,
            BELOW_FLOOR,
            f"Hold on tCPA {campaign.target_cpa:.2f} (= tROAS {current:.2f}): "
            f"the campaign's observed ROAS {observed:.2f} is under its "
            f"{goal_text}, and the market's bounds allow no tROAS as high as "
            "today's equivalent; a lower one would let Google bid more.",
        )
    return Decision(
        MIGRATE,
        new,
        BELOW_FLOOR,
        f"{_switch(campaign, current, new)}, today's equivalent rather than the "
        f"campaign's observed ROAS {observed:.2f}: that is under its {goal_text}, and "
        "starting lower would let Google bid more; later steps walk toward "
        "that target, never down while the observed ROAS stays under it.",
    )


def held_back(
    campaign: CampaignSnapshot, guardrails: GuardrailSettings, freezes: Freezes
) -> Decision | None:
    """The hold that applies before any target is computed, if one does.

    Freezes first (kill switch, stale data, model gate, a jump in the
    predicted values, implausible inputs, market), then the
    campaign's own state: unsupported strategy, learning, volume, cooldown.
    """
    if freezes.kill_switch:
        return Decision(HOLD, None, KILL_SWITCH, "Hold: the kill switch is set.")
    if freezes.stale_data is not None:
        return Decision(HOLD, None, STALE_DATA, f"Hold: {freezes.stale_data}")
    if freezes.model_gate_failed is not None:
        return Decision(HOLD, None, MODEL_GATE, f"Hold: {freezes.model_gate_failed}")
    if freezes.value_jump is not None:
        return Decision(HOLD, None, VALUE_JUMP, f"Hold: {freezes.value_jump}")
    if freezes.implausible is not None:
        return Decision(HOLD, None, IMPLAUSIBLE, f"Hold: {freezes.implausible}")
    if freezes.market_frozen or guardrails.frozen:
        return Decision(
            HOLD, None, MARKET_FROZEN, "Hold: this market is frozen in the config."
        )
    if campaign.strategy not in (TARGET_CPA, TARGET_ROAS) or (
        campaign.strategy == TARGET_ROAS and campaign.current_roas is None
    ):
        return Decision(
            HOLD,
            None,
            UNSUPPORTED,
            f"Hold: strategy {campaign.strategy} has no target to move; "
            "switch it to tCPA or tROAS by hand first.",
        )
    if campaign.learning:
        return Decision(
            HOLD, None, LEARNING, "Hold: the bidding strategy is still learning."
        )
    rule = guardrails.volume_rule(campaign.campaign_type)
    if campaign.conversions_in_window < rule.conversions:
        return Decision(
            HOLD,
            None,
            VOLUME,
            f"Hold: {campaign.conversions_in_window:.0f} conversions in "
            f"{rule.window_days} days, {rule.conversions} needed for "
            f"value-based bidding on a {campaign.campaign_type.lower()} campaign.",
        )
    last = campaign.days_since_last_change
    if last is not None and last < guardrails.min_days_between_changes:
        return Decision(
            HOLD,
            None,
            COOLDOWN,
            f"Hold: target changed {last} day(s) ago; "
            f"{guardrails.min_days_between_changes} days must pass between changes.",
        )
    return None


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _settle(value: float, low: float, high: float) -> float:
    """``value`` within [low, high], rounded inward to the decimals sent."""
    scale = 10**DIGITS
    inner_low = math.ceil(low * scale) / scale
    inner_high = math.floor(high * scale) / scale
    if inner_low <= inner_high:
        value = _clamp(round(value, DIGITS), inner_low, inner_high)
    return _clamp(value, low, high)
