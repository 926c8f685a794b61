"""The planner's campaign measurements written one campaign at a time.

The planner measures all campaigns at once with grouped table operations; this
module measures each campaign on its own, the plain way, so tests can check
that both agree on any world.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from config.schema import MarketSettings, Settings
from connectors.files import Inputs
from optimizer.economics import CampaignEconomics
from optimizer.planner import (
    DAYS_PER_MONTH,
    CampaignFacts,
    _campaign_type,
    _day,
    _number,
    _payback_share_within_year,
    _scored_users,
    campaign_countries,
    market_of,
    user_cac_max,
)
from optimizer.policy import CampaignSnapshot


def reference_gather_facts(
    settings: Settings,
    inputs: Inputs,
    scores: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    run_date: dt.date,
    last_changes: dict[str, dt.date],
) -> list[CampaignFacts]:
    """Every campaign measured one at a time, straight from the definitions."""
    stats = inputs.campaign_stats
    users = _scored_users(inputs, scores, as_of)
    latest = stats.sort_values(["date", "campaign_id"]).groupby("campaign_id").tail(1)
    payback_base = _payback_share_within_year(
        inputs, as_of, settings.economics.payback_months
    )
    horizon = f"pltv_{settings.economics.ltv_horizon_days}"
    matured = users[
        users["acquired_at"]
        <= as_of - pd.Timedelta(days=settings.economics.paying_lag_days)
    ]
    # Grouped once: filtering the whole table per campaign made planning
    # 10,000 campaigns grow with campaigns x users (benchmarks/stages.py).
    users_of = _Groups(users, "campaign_id")
    stats_of = _Groups(stats, "campaign_id")
    recent = _Recent(matured[matured["recent"]])
    countries = campaign_countries(users)

    facts = []
    for campaign in latest.sort_values("campaign_id").itertuples(index=False):
        cid = str(campaign.campaign_id)
        name = str(campaign.campaign_name)
        market = market_of(settings, cid, name, countries)
        market_cfg = settings.markets[market]
        guard = settings.guardrails_for(market)
        kind = _campaign_type(campaign, name)
        rule = guard.volume_rule(kind)

        lag_end = as_of - pd.Timedelta(days=guard.conversion_lag_days)
        start = lag_end - pd.Timedelta(days=guard.observation_window_days)
        mine = users_of.get(cid)
        window_users = mine[
            (mine["acquired_at"] >= start) & (mine["acquired_at"] < lag_end)
        ]
        own = stats_of.get(cid)
        in_window = own[(own["date"] >= _day(start)) & (own["date"] < _day(lag_end))]
        volume_start = as_of - pd.Timedelta(days=rule.window_days)
        conversions = float(
            own.loc[own["date"] >= _day(volume_start), "conversions"].sum()
        )
        cost = float(in_window["cost"].sum())
        value_sum = float(window_users["value"].sum())
        has_value = len(window_users) > 0 and value_sum > 0
        mean_value = float(window_users["value"].mean()) if has_value else None
        observed = value_sum / cost if cost > 0 and has_value else None
        last = last_changes.get(cid)
        status = str(getattr(campaign, "bidding_strategy_status", "") or "")
        snapshot = CampaignSnapshot(
            campaign_id=cid,
            strategy=str(campaign.bidding_strategy_type),
            target_cpa=_number(campaign.target_cpa),
            target_roas=_number(campaign.target_roas),
            observed_roas=observed,
            mean_value=mean_value,
            conversions_in_window=conversions,
            learning=status.upper().startswith("LEARNING"),
            days_since_last_change=(run_date - last).days if last else None,
            campaign_type=kind,
        )

        economics = None
        paying = _paying_share(settings, recent, cid, market, window_users)
        if mean_value is not None and paying is not None:
            economics = CampaignEconomics(
                mean_value=mean_value,
                ltv_horizon_ratio=max(
                    float(window_users[horizon].sum() / window_users["pltv_365"].sum()),
                    1.0,
                ),
                payback_share=_payback_share(
                    payback_base, window_users, settings.economics.payback_months
                ),
                paying_share=paying,
                cac_max=_blended_cac_max(
                    market_cfg, _paying_users(recent, cid, window_users)
                ),
                market=market,
                currency=settings.account.currency,
            )
        facts.append(CampaignFacts(snapshot, name, market, cost, economics))
    return facts


def _blended_cac_max(market: MarketSettings, paying: pd.DataFrame) -> float:
    """Benchmark per paying customer, weighted by who actually pays.

    With segment benchmarks the most an activation may cost is
    ``sum_s w_s * p_s * CAC_s``; dividing by ``p = sum_s w_s * p_s`` gives the
    mean benchmark over paying customers.
    """
    if paying.empty:
        return market.cac_max
    return float(user_cac_max(market, paying).mean())


class _Groups:
    """The rows of a table per value of one column, found without a scan."""

    def __init__(self, frame: pd.DataFrame, column: str) -> None:
        self._frame = frame
        self._rows = frame.groupby(column, sort=False, observed=True).indices

    def get(self, key: str) -> pd.DataFrame:
        """The rows whose column equals ``key``, in table order (none: empty)."""
        rows = self._rows.get(key)
        if rows is None:
            return self._frame.iloc[:0]
        return self._frame.take(np.asarray(rows))


@dataclass
class _Recent:
    """Matured users acquired in the last year, whole and by campaign and country."""

    users: pd.DataFrame
    by_campaign: _Groups = field(init=False)
    by_country: _Groups = field(init=False)

    def __post_init__(self) -> None:
        self.by_campaign = _Groups(self.users, "campaign_id")
        self.by_country = _Groups(self.users, "country")


def _paying_users(
    recent: _Recent, campaign_id: str, window_users: pd.DataFrame
) -> pd.DataFrame:
    mine = recent.by_campaign.get(campaign_id)
    paid = mine[mine["has_paid"]]
    return paid if len(paid) else window_users


def _paying_share(
    settings: Settings,
    recent: _Recent,
    campaign_id: str,
    market: str,
    window_users: pd.DataFrame,
) -> float | None:
    """Share of activations that pay: configured, predicted, else observed.

    Observed on the users acquired in the last year who have had
    ``paying_lag_days`` to start paying: the campaign's own, else its
    market's, else the account's.
    """
    if settings.economics.paying_share is not None:
        return settings.economics.paying_share
    if "paying_probability" in window_users and len(window_users):
        predicted = float(window_users["paying_probability"].mean())
        if predicted > 0:
            return min(predicted, 1.0)
    for group in (
        recent.by_campaign.get(campaign_id),
        recent.by_country.get(market),
        recent.users,
    ):
        if len(group):
            share = float(group["has_paid"].mean())
            if share > 0:
                return share
    return None


def _payback_share(base: float, window_users: pd.DataFrame, months: int) -> float:
    """Value earned within ``months`` over 1-year value.

    Within the first year the measured curve of full-year users gives it;
    beyond, the campaign's own predicted 1-, 3- and 5-year values are
    interpolated.
    """
    if months <= 12:
        return base
    year = float(window_users["pltv_365"].sum())
    points = [
        1.0,
        float(window_users["pltv_1095"].sum()) / year,
        float(window_users["pltv_1825"].sum()) / year,
    ]
    return float(np.interp(months * DAYS_PER_MONTH, [365.25, 1095.75, 1826.25], points))
