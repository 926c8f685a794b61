"""From scores and campaign stats to one plan row per campaign."""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd

from config.schema import Settings
from connectors.files import Inputs
from optimizer.economics import CampaignEconomics, Ratios, economic_target
from optimizer.exceptions import PlanningError
from optimizer.plan import PlanRow
from optimizer.policy import HOLD, CampaignSnapshot, Freezes, decide

_DAYS_PER_MONTH = 365.25 / 12


def plan_campaigns(
    settings: Settings,
    inputs: Inputs,
    scores: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    run_date: dt.date,
    last_changes: dict[str, dt.date],
) -> list[PlanRow]:
    """One plan row per campaign of the stats table, sorted by campaign id."""
    stats = inputs.campaign_stats
    users = inputs.users.merge(scores, on="user_id", how="inner")
    users["acquired_at"] = users["activated_at"].fillna(users["signup_at"])
    latest = stats.sort_values("date").groupby("campaign_id").tail(1)
    stale = _staleness(stats, run_date, settings)
    freezes = Freezes(kill_switch=settings.kill_switch, stale_data=stale)
    payback = _payback_share(inputs, as_of, settings.economics.payback_months)
    ratios = Ratios(
        settings.economics.min_ltv365_to_cac, settings.economics.target_ltv_to_cac
    )
    horizon = f"pltv_{settings.economics.ltv_horizon_days}"

    rows = []
    for campaign in latest.sort_values("campaign_id").itertuples(index=False):
        cid = str(campaign.campaign_id)
        market = _market_of(settings, cid, str(campaign.campaign_name), users)
        market_cfg = settings.markets[market]
        guard = settings.guardrails_for(market)
        lag_end = as_of - pd.Timedelta(days=guard.conversion_lag_days)
        start = lag_end - pd.Timedelta(days=guard.observation_window_days)
        mine = users[users["campaign_id"] == cid]
        window_users = mine[
            (mine["acquired_at"] >= start) & (mine["acquired_at"] < lag_end)
        ]
        in_window = stats[
            (stats["campaign_id"] == cid)
            & (stats["date"] >= start.tz_localize(None).normalize())
            & (stats["date"] < lag_end.tz_localize(None).normalize())
        ]
        volume_start = as_of - pd.Timedelta(days=guard.min_conversions_window_days)
        conversions = float(
            stats.loc[
                (stats["campaign_id"] == cid)
                & (stats["date"] >= volume_start.tz_localize(None).normalize()),
                "conversions",
            ].sum()
        )
        cost = float(in_window["cost"].sum())
        value_sum = float(window_users["value"].sum())
        mean_value = float(window_users["value"].mean()) if len(window_users) else None
        observed = value_sum / cost if cost > 0 and len(window_users) else None
        last = last_changes.get(cid)
        snapshot = CampaignSnapshot(
            campaign_id=cid,
            strategy=str(campaign.bidding_strategy_type),
            target_cpa=_number(campaign.target_cpa),
            target_roas=_number(campaign.target_roas),
            observed_roas=observed,
            mean_value=mean_value,
            conversions_in_window=conversions,
            learning=str(getattr(campaign, "bidding_strategy_status", ""))
            == "LEARNING",
            days_since_last_change=(run_date - last).days if last else None,
        )
        paying = settings.economics.paying_share or _paying_share(window_users, mine)
        if mean_value is None or paying is None:
            rows.append(
                _no_value_row(
                    snapshot, str(campaign.campaign_name), market, cost, conversions
                )
            )
            continue
        horizon_ratio = float(
            window_users[horizon].sum() / window_users["pltv_365"].sum()
        )
        economics = CampaignEconomics(
            mean_value=mean_value,
            ltv_horizon_ratio=max(horizon_ratio, 1.0),
            payback_share=payback,
            paying_share=paying,
            cac_max=market_cfg.cac_max,
        )
        target = economic_target(
            economics, ratios, market_cfg.troas_min, market_cfg.troas_max
        )
        decision = decide(
            snapshot, target, guard, market_cfg.troas_min, market_cfg.troas_max, freezes
        )
        current = snapshot.current_roas
        change = (
            (decision.new_target_roas / current - 1) * 100
            if decision.new_target_roas is not None and current
            else None
        )
        rows.append(
            PlanRow(
                campaign_id=cid,
                campaign_name=str(campaign.campaign_name),
                market=market,
                current_strategy=snapshot.strategy,
                current_target_cpa=snapshot.target_cpa,
                current_target_roas=snapshot.target_roas,
                current_roas_equivalent=_round(current),
                observed_roas=_round(observed),
                conversions_in_window=conversions,
                cost_in_window=round(cost, 2),
                mean_value=_round(mean_value),
                paying_share=_round(paying),
                floor_break_even=_round(target.floors["break_even"]),
                floor_ltv_cac=_round(target.floors["ltv_cac"]),
                floor_payback=_round(target.floors["payback"]),
                floor_cac_cap=_round(target.floors["cac_cap"]),
                economic_troas=_round(target.target_roas),
                binding_constraint=target.binding_constraint,
                action=decision.action,
                new_troas=_round(decision.new_target_roas),
                change_pct=_round(change, 2),
                guardrail=decision.guardrail,
                reason=decision.reason,
            )
        )
    return rows


def _no_value_row(
    snapshot: CampaignSnapshot, name: str, market: str, cost: float, conversions: float
) -> PlanRow:
    return PlanRow(
        campaign_id=snapshot.campaign_id,
        campaign_name=name,
        market=market,
        current_strategy=snapshot.strategy,
        current_target_cpa=snapshot.target_cpa,
        current_target_roas=snapshot.target_roas,
        current_roas_equivalent=None,
        observed_roas=None,
        conversions_in_window=conversions,
        cost_in_window=round(cost, 2),
        mean_value=None,
        paying_share=None,
        floor_break_even=None,
        floor_ltv_cac=None,
        floor_payback=None,
        floor_cac_cap=None,
        economic_troas=None,
        binding_constraint=None,
        action=HOLD,
        new_troas=None,
        change_pct=None,
        guardrail="no_data",
        reason="Hold: no activated users attributed to this campaign in the "
        "observation window, so there is no value to bid on yet.",
    )


def _market_of(
    settings: Settings, campaign_id: str, name: str, users: pd.DataFrame
) -> str:
    for code, market in settings.markets.items():
        if campaign_id in market.campaign_ids:
            return code
    for code, market in settings.markets.items():
        pattern = market.campaign_name_pattern
        if pattern is not None and re.search(pattern, name):
            return code
    countries = users.loc[users["campaign_id"] == campaign_id, "country"]
    if not countries.empty:
        code = str(countries.mode().iloc[0])
        if code in settings.markets:
            return code
    if settings.default_market is not None:
        return settings.default_market
    raise PlanningError(
        f"campaign {campaign_id} ({name!r}) belongs to no market: list it under "
        "markets.<code>.campaign_ids, give the market a campaign_name_pattern, "
        "or set default_market"
    )


def _staleness(
    stats: pd.DataFrame, run_date: dt.date, settings: Settings
) -> str | None:
    newest = pd.Timestamp(stats["date"].max()).date()
    age = (run_date - newest).days - 1
    allowed = settings.guardrails.max_data_age_days
    if age > allowed:
        return (
            f"campaign stats end on {newest}, {age} day(s) before yesterday; "
            f"at most {allowed} allowed"
        )
    return None


def _payback_share(inputs: Inputs, as_of: pd.Timestamp, months: int) -> float:
    """Share of 1-year value earned in the first ``months``, from full-year users."""
    if months >= 12:
        return 1.0
    users = inputs.users
    full = users[users["signup_at"] <= as_of - pd.Timedelta(days=365)]
    signup = full.set_index("user_id")["signup_at"]
    rev = inputs.revenue[inputs.revenue["user_id"].isin(signup.index)]
    days = (rev["occurred_at"] - rev["user_id"].map(signup)).dt.total_seconds() / 86400
    year = float(rev["amount"][days < 365].sum())
    early = float(rev["amount"][days < months * _DAYS_PER_MONTH].sum())
    if year <= 0 or early <= 0:
        raise PlanningError(
            "no revenue in the first year of the users old enough to measure "
            "the payback curve; set economics.payback_months to 12 or more"
        )
    return early / year


def _paying_share(
    window_users: pd.DataFrame, campaign_users: pd.DataFrame
) -> float | None:
    for group in (window_users, campaign_users):
        if len(group):
            share = float((group["pltv_365"] > 0).mean())
            if share > 0:
                return share
    return None


def _number(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)
