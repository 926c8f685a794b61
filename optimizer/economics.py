"""The economic tROAS target: every ratio of the business as a floor on tROAS.

The conversion value sent for an activation is its predicted 1-year value v,
so a campaign's ROAS is ``sum(v) / cost`` and its implied cost per activation
is ``mean(v) / tROAS``. Each rule of the unit economics becomes a lower bound
on tROAS; the largest binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.schema import API_MAX_TARGET_ROAS, API_MIN_TARGET_ROAS

BREAK_EVEN = "break_even"
LTV_CAC = "ltv_cac"
PAYBACK = "payback"
CAC_CAP = "cac_cap"
MARKET_MIN = "market_min"
MARKET_MAX = "market_max"

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
        Share of the 1-year value earned within the payback period.
    paying_share
        Share of activations that become paying customers, in (0, 1].
    cac_max
        The market's CAC benchmark per paying customer, account currency.
    """

    mean_value: float
    ltv_horizon_ratio: float
    payback_share: float
    paying_share: float
    cac_max: float


@dataclass(frozen=True)
class Ratios:
    """The ratios the business requires (see the ``economics`` config)."""

    min_ltv365_to_cac: float = 1.0
    target_ltv_to_cac: float = 3.0


@dataclass(frozen=True)
class EconomicTarget:
    """Each floor, the target they imply and which one binds."""

    floors: dict[str, float]
    target_roas: float
    binding_constraint: str


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
        The required LTV_365/CAC and the LTV/CAC target on the long horizon.
    troas_min, troas_max
        The market's bounds; the API's [0.01, 1000] applies on top.

    Returns
    -------
    EconomicTarget
        Floors by name, the target (largest floor inside the bounds) and the
        binding constraint's name.

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
    floors = {
        BREAK_EVEN: ratios.min_ltv365_to_cac,
        LTV_CAC: ratios.target_ltv_to_cac / inputs.ltv_horizon_ratio,
        PAYBACK: 1.0 / inputs.payback_share,
        CAC_CAP: inputs.mean_value / (inputs.cac_max * inputs.paying_share),
    }
    for name, value in floors.items():
        if not math.isfinite(value) or value <= 0:
            msg = f"floor {name} is {value}; check the campaign's inputs {inputs}"
            raise ValueError(msg)
    binding = max(floors, key=lambda name: floors[name])
    target = floors[binding]
    low = max(troas_min, API_MIN_TARGET_ROAS)
    high = min(troas_max, API_MAX_TARGET_ROAS)
    if target > high:
        target, binding = high, MARKET_MAX
    elif target < low:
        target, binding = low, MARKET_MIN
    return EconomicTarget(floors=floors, target_roas=target, binding_constraint=binding)
