"""The economic tROAS target: every ratio of the business as a floor on tROAS.

The conversion value sent for an activation is its predicted 1-year value v,
so a campaign's ROAS is ``sum(v) / cost`` and its implied cost per activation
is ``mean(v) / tROAS``. Each rule of the unit economics becomes a lower bound
on tROAS; the largest binds, inside the market's and the API's bounds.

Mind the unit: a conversion is an activation, while a CAC benchmark is per
new *paying* customer. With a share p of activations that pay, the most an
activation may cost is ``CAC_max * p``. The ratio floors need no such care,
since v and LTV both scale with p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.schema import API_MAX_TARGET_ROAS, API_MIN_TARGET_ROAS
from optimizer.exceptions import PlanningError

BREAK_EVEN = "break_even"
LTV_CAC = "ltv_cac"
PAYBACK = "payback"
CAC_CAP = "cac_cap"
MARKET_MIN = "market_min"
MARKET_MAX = "market_max"

FLOORS = (BREAK_EVEN, LTV_CAC, PAYBACK, CAC_CAP)

FLOOR_LABELS = {
    BREAK_EVEN: "1-year break-even",
    LTV_CAC: "LTV/CAC target",
    PAYBACK: "payback period",
    CAC_CAP: "market CAC cap",
    MARKET_MIN: "market minimum tROAS",
    MARKET_MAX: "market maximum tROAS",
}


@dataclass(frozen=True)
class CampaignEconomics:
    """What the floors of one campaign are computed from.

    Attributes
    ----------
    mean_value
        Mean predicted 1-year value (revenue or margin) per activation,
        account currency.
    ltv_horizon_ratio
        LTV on the long horizon over LTV at 365 days (>= 1).
    payback_share
        Value earned within the payback period over the 1-year value (above 1
        when the period is longer than a year).
    paying_share
        Share of activations that become paying customers, in (0, 1].
    cac_max
        The market's CAC benchmark per paying customer, account currency
        (blended over the campaign's segments when they have their own).
    market
        The market's code, for explanations.
    currency
        The account currency, for explanations.
    """

    mean_value: float
    ltv_horizon_ratio: float
    payback_share: float
    paying_share: float
    cac_max: float
    market: str = ""
    currency: str = ""

    @property
    def cpa_cap(self) -> float:
        """Most one activation may cost under the market's CAC benchmark."""
        return self.cac_max * self.paying_share


@dataclass(frozen=True)
class Ratios:
    """The ratios the business requires (see the ``economics`` config)."""

    min_ltv365_to_cac: float = 1.0
    target_ltv_to_cac: float = 3.0
    ltv_horizon_days: int = 1095
    payback_months: int = 12


@dataclass(frozen=True)
class EconomicTarget:
    """Each floor, the target they imply, which one binds, and why.

    Attributes
    ----------
    floors
        The four floors by name (see :data:`FLOORS`).
    target_roas
        The largest floor, moved inside the market's and the API's bounds.
    binding_constraint
        The floor that sets the target, or ``market_min``/``market_max`` when
        a bound does.
    reasons
        One sentence per floor, with its arithmetic.
    binding_reason
        The sentence a marketer reads first: what sets the target and why.
    economics_met
        False when the market's maximum holds the target below a floor, so
        spending at the target breaks one of the business's rules.
    implied_cpa
        Cost per activation the bidder aims at, ``mean_value / target_roas``.
    implied_cac
        The same per paying customer, ``implied_cpa / paying_share``.
    """

    floors: dict[str, float]
    target_roas: float
    binding_constraint: str
    reasons: dict[str, str]
    binding_reason: str
    economics_met: bool
    implied_cpa: float
    implied_cac: float


def economic_target(
    inputs: CampaignEconomics,
    ratios: Ratios,
    troas_min: float,
    troas_max: float,
) -> EconomicTarget:
    """Compute the economic tROAS target of one campaign.

    Parameters
    ----------
    inputs
        The campaign's value, horizon ratio, payback share, paying share and
        its market's CAC benchmark.
    ratios
        The required LTV_365/CAC, the LTV/CAC target on the long horizon and
        the payback period.
    troas_min, troas_max
        The market's bounds; the API's [0.01, 1000] applies on top.

    Returns
    -------
    EconomicTarget
        Floors by name, the target (largest floor inside the bounds), the
        binding constraint's name and the reasons.

    Raises
    ------
    PlanningError
        An input makes a floor undefined (zero or negative value, share or
        benchmark); the message names the campaign's inputs.

    Notes
    -----
    With v the predicted 1-year value of an activation, p the share of
    activations that pay and CAC_max the market's benchmark per paying
    customer (see the design brief, "tROAS math"):

    - break-even: tROAS >= k1
    - LTV/CAC: tROAS >= r * LTV_365 / LTV_H
    - payback: tROAS >= LTV_365 / (value earned in the first P months)
    - CAC cap: tROAS >= mean(v) / (CAC_max * p)
    """
    _check(inputs)
    floors = {
        BREAK_EVEN: ratios.min_ltv365_to_cac,
        LTV_CAC: ratios.target_ltv_to_cac / inputs.ltv_horizon_ratio,
        PAYBACK: 1.0 / inputs.payback_share,
        CAC_CAP: inputs.mean_value / inputs.cpa_cap,
    }
    for name, value in floors.items():
        if not math.isfinite(value) or value <= 0:
            raise PlanningError(
                f"floor {name} is {value}; check the campaign's inputs {inputs}"
            )

    binding = max(FLOORS, key=lambda name: floors[name])
    target = floors[binding]
    low = max(troas_min, API_MIN_TARGET_ROAS)
    high = min(troas_max, API_MAX_TARGET_ROAS)
    met = True
    if target > high:
        target, binding, met = high, MARKET_MAX, False
    elif target < low:
        target, binding = low, MARKET_MIN

    reasons = explain_floors(inputs, ratios, floors)
    cpa = inputs.mean_value / target
    return EconomicTarget(
        floors=floors,
        target_roas=target,
        binding_constraint=binding,
        reasons=reasons,
        binding_reason=_binding_reason(binding, target, floors, reasons),
        economics_met=met,
        implied_cpa=cpa,
        implied_cac=cpa / inputs.paying_share,
    )


def explain_floors(
    inputs: CampaignEconomics, ratios: Ratios, floors: dict[str, float]
) -> dict[str, str]:
    """One sentence per floor, with the arithmetic that produced it."""
    money = inputs.currency
    years = ratios.ltv_horizon_days / 365
    return {
        BREAK_EVEN: (
            f"1-year break-even: predicted 1-year value must be at least "
            f"{ratios.min_ltv365_to_cac:.2f}x the cost, so tROAS >= "
            f"{floors[BREAK_EVEN]:.2f}."
        ),
        LTV_CAC: (
            f"LTV/CAC target {ratios.target_ltv_to_cac:.1f} over {years:.0f} "
            f"years: value grows {inputs.ltv_horizon_ratio:.2f}x from year 1 to "
            f"year {years:.0f}, so tROAS >= {ratios.target_ltv_to_cac:.2f} / "
            f"{inputs.ltv_horizon_ratio:.2f} = {floors[LTV_CAC]:.2f}."
        ),
        PAYBACK: (
            f"Payback within {ratios.payback_months} months: "
            f"{inputs.payback_share:.0%} of the 1-year value arrives in that "
            f"time, so tROAS >= 1 / {inputs.payback_share:.2f} = "
            f"{floors[PAYBACK]:.2f}."
        ),
        CAC_CAP: (
            f"{inputs.market} CAC cap {inputs.cac_max:,.2f} {money} per paying "
            f"customer: {inputs.paying_share:.0%} of activations pay, so at "
            f"most {inputs.cpa_cap:,.2f} {money} per activation; a mean value "
            f"of {inputs.mean_value:,.2f} {money} gives tROAS >= "
            f"{inputs.mean_value:,.2f} / {inputs.cpa_cap:,.2f} = "
            f"{floors[CAC_CAP]:.2f}."
        ).strip(),
    }


def _binding_reason(
    binding: str, target: float, floors: dict[str, float], reasons: dict[str, str]
) -> str:
    highest = max(FLOORS, key=lambda name: floors[name])
    if binding == MARKET_MAX:
        return (
            f"Economics not met: the {FLOOR_LABELS[highest]} asks for tROAS "
            f"{floors[highest]:.2f} but the market allows at most {target:.2f}; "
            f"spending at {target:.2f} breaks that rule ({reasons[highest]})"
        )
    if binding == MARKET_MIN:
        return (
            f"Every floor is under the market minimum: tROAS {target:.2f} "
            f"(highest floor {floors[highest]:.2f}, the {FLOOR_LABELS[highest]})."
        )
    return f"Set by the {FLOOR_LABELS[binding]}. {reasons[binding]}"


def _check(inputs: CampaignEconomics) -> None:
    checks = {
        "mean_value": inputs.mean_value,
        "ltv_horizon_ratio": inputs.ltv_horizon_ratio,
        "payback_share": inputs.payback_share,
        "paying_share": inputs.paying_share,
        "cac_max": inputs.cac_max,
    }
    for name, value in checks.items():
        if not math.isfinite(value) or value <= 0:
            raise PlanningError(
                f"campaign economics: {name} must be a positive number, got "
                f"{value!r} (market {inputs.market or '?'})"
            )
    if inputs.paying_share > 1:
        raise PlanningError(
            f"campaign economics: paying_share must be at most 1, got "
            f"{inputs.paying_share!r} (market {inputs.market or '?'})"
        )
