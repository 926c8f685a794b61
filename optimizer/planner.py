"""From scores and campaign stats to one plan row per campaign.

Two halves: :func:`gather_facts` measures each campaign from the tables
(pandas), and :func:`plan_row` turns one campaign's facts into its plan row
with no other input, so the same facts always give the same row.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from config.schema import GuardrailSettings, MarketSettings, Settings
from connectors.contracts import index_of, member_of
from connectors.files import Inputs
from connectors.refunds import paying_users
from optimizer.economics import (
    BREAK_EVEN,
    CAC_CAP,
    LTV_CAC,
    PAYBACK,
    CampaignEconomics,
    Ratios,
    economic_target,
)
from optimizer.exceptions import PlanningError
from optimizer.plan import PlanRow
from optimizer.policy import (
    HOLD,
    NO_DATA,
    VOLUME,
    CampaignSnapshot,
    Decision,
    Freezes,
    decide,
    held_back,
)

logger = logging.getLogger(__name__)

DAYS_PER_MONTH = 365.25 / 12

#: Google Ads advertising channel types recognised in campaign names when the
#: stats carry no ``advertising_channel_type`` column.
_TYPE_WORDS = (
    ("PERFORMANCE_MAX", r"\bp(erformance)?[ _-]?max\b"),
    ("DEMAND_GEN", r"\bdemand[ _-]?gen\b"),
    ("SHOPPING", r"\bshopping\b"),
    ("VIDEO", r"\b(video|youtube)\b"),
    ("DISPLAY", r"\bdisplay\b"),
    ("SEARCH", r"\bsearch\b"),
)


@dataclass(frozen=True)
class CampaignFacts:
    """Everything measured about one campaign that its plan row depends on.

    Attributes
    ----------
    snapshot
        Strategy, current target, observed ROAS, volume and last change.
    campaign_name, market
        How the campaign is named and which market it belongs to.
    cost_in_window
        Cost over the observation window (lag days left out).
    economics
        The inputs of its floors; ``None`` when no activation of the window
        has a predicted value.
    """

    snapshot: CampaignSnapshot
    campaign_name: str
    market: str
    cost_in_window: float
    economics: CampaignEconomics | None


def plan_campaigns(
    settings: Settings,
    inputs: Inputs,
    scores: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    run_date: dt.date,
    last_changes: dict[str, dt.date],
    freezes: Freezes | None = None,
    model_version: str | None = None,
) -> list[PlanRow]:
    """One plan row per campaign of the stats table, sorted by campaign id.

    Parameters
    ----------
    settings
        The validated config.
    inputs
        The canonical tables.
    scores
        One row per user with ``pltv_365``, ``pltv_1095``, ``pltv_1825`` and
        ``value`` (the conversion value sent: 1-year revenue or margin); an
        optional ``paying_probability`` column is used as the paying share.
    as_of
        Start of the run day, UTC; data after it is not used.
    run_date
        The day planned, in the account's time zone.
    last_changes
        Date of each campaign's last applied target change (state store).
    freezes
        Account-wide freezes (kill switch, model gate, value jump) decided
        by the caller; the config's kill switch and stale data (per market,
        and per campaign whose stats stopped, see :func:`stale_stats`) are
        added here.
    model_version
        The model that scored the users, for the decision log.

    Returns
    -------
    list of PlanRow
    """
    facts = gather_facts(
        settings,
        inputs,
        scores,
        as_of=as_of,
        run_date=run_date,
        last_changes=last_changes,
    )
    base = freezes or Freezes()
    stale = stale_stats(
        inputs.campaign_stats,
        {fact.snapshot.campaign_id: fact.market for fact in facts},
        run_date,
        settings,
    )
    ratios = Ratios(
        settings.economics.min_ltv365_to_cac,
        settings.economics.target_ltv_to_cac,
        settings.economics.ltv_horizon_days,
        settings.economics.payback_months,
    )
    rows = []
    for fact in facts:
        market = fact.market
        campaign_freezes = Freezes(
            kill_switch=base.kill_switch or settings.kill_switch,
            stale_data=base.stale_data or stale.of(fact.snapshot.campaign_id, market),
            model_gate_failed=base.model_gate_failed,
            value_jump=base.value_jump,
            implausible=base.implausible,
            market_frozen=base.market_frozen,
        )
        row = plan_row(
            fact,
            settings.markets[market],
            settings.guardrails_for(market),
            ratios,
            campaign_freezes,
        )
        if row.action != HOLD:
            logger.info(
                "campaign %s: tROAS %s -> %s (%s), bound by %s, model %s",
                row.campaign_id,
                row.current_roas_equivalent,
                row.new_troas,
                row.action,
                row.binding_constraint,
                model_version or "unknown",
            )
        rows.append(row)
    return rows


def plan_row(
    facts: CampaignFacts,
    market: MarketSettings,
    guard: GuardrailSettings,
    ratios: Ratios,
    freezes: Freezes,
) -> PlanRow:
    """The plan row of one campaign: its floors, its target and today's step.

    Parameters
    ----------
    facts
        What was measured about the campaign.
    market
        Its market's benchmark and bounds.
    guard
        Its market's guardrails.
    ratios
        The business's ratios.
    freezes
        What holds every campaign of its market today.

    Returns
    -------
    PlanRow
    """
    snapshot = facts.snapshot
    rule = guard.volume_rule(snapshot.campaign_type)
    if facts.economics is None:
        return _no_value_row(
            facts, rule.conversions, held_back(snapshot, guard, freezes)
        )

    target = economic_target(
        facts.economics, ratios, market.troas_min, market.troas_max
    )
    decision = decide(
        snapshot, target, guard, market.troas_min, market.troas_max, freezes
    )
    current = snapshot.current_roas
    change = (
        (decision.new_target_roas / current - 1) * 100
        if decision.new_target_roas is not None and current
        else None
    )
    economics = facts.economics
    return PlanRow(
        campaign_id=snapshot.campaign_id,
        campaign_name=facts.campaign_name,
        market=facts.market,
        current_strategy=snapshot.strategy,
        current_target_cpa=snapshot.target_cpa,
        current_target_roas=snapshot.target_roas,
        current_roas_equivalent=_round(current),
        observed_roas=_round(snapshot.observed_roas),
        conversions_in_window=snapshot.conversions_in_window,
        cost_in_window=round(facts.cost_in_window, 2),
        mean_value=_round(economics.mean_value),
        paying_share=_round(economics.paying_share),
        floor_break_even=_round(target.floors[BREAK_EVEN]),
        floor_ltv_cac=_round(target.floors[LTV_CAC]),
        floor_payback=_round(target.floors[PAYBACK]),
        floor_cac_cap=_round(target.floors[CAC_CAP]),
        economic_troas=_round(target.target_roas),
        binding_constraint=target.binding_constraint,
        action=decision.action,
        new_troas=decision.new_target_roas,
        change_pct=_round(change, 2),
        guardrail=decision.guardrail,
        reason=decision.reason,
        campaign_type=snapshot.campaign_type,
        volume_required=rule.conversions,
        ltv_horizon_ratio=_round(economics.ltv_horizon_ratio),
        payback_share=_round(economics.payback_share),
        cac_max=_round(economics.cac_max, 2),
        cpa_cap=_round(economics.cpa_cap, 2),
        implied_cpa=_round(target.implied_cpa, 2),
        implied_cac=_round(target.implied_cac, 2),
        economics_met=target.economics_met,
        binding_reason=target.binding_reason,
    )


def gather_facts(
    settings: Settings,
    inputs: Inputs,
    scores: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    run_date: dt.date,
    last_changes: dict[str, dt.date],
) -> list[CampaignFacts]:
    """Measure every campaign of the stats table, sorted by campaign id.

    Each measure is one grouped pass over its table for all campaigns at
    once (each campaign's windows mapped onto its rows first), so the time
    grows with rows plus campaigns, not with their product.
    """
    stats = inputs.campaign_stats
    users = _scored_users(inputs, scores, as_of)
    latest = (
        stats.sort_values(["date", "campaign_id"])
        .groupby("campaign_id", observed=True)
        .tail(1)
        .sort_values("campaign_id")
    )
    if latest.empty:
        return []
    countries = campaign_countries(users)
    campaigns = _campaign_windows(settings, latest, countries, as_of)
    window = _window_measures(settings, users, campaigns)
    spend = _stats_measures(stats, campaigns)
    paying = _paying_measures(settings, users, campaigns, as_of)
    payback_base = _payback_share_within_year(
        inputs, as_of, settings.economics.payback_months
    )
    horizon = f"pltv_{settings.economics.ltv_horizon_days}"

    facts = []
    for plan, campaign in zip(
        campaigns.itertuples(), latest.itertuples(index=False), strict=True
    ):
        cid, market = str(plan.Index), str(plan.market)
        measured = window.get(cid)
        value_sum = measured.sums["value"] if measured is not None else 0.0
        has_value = measured is not None and value_sum > 0
        mean_value = measured.mean_value if measured is not None and has_value else None
        cost = spend.cost.get(cid, 0.0)
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
            conversions_in_window=spend.conversions.get(cid, 0.0),
            learning=status.upper().startswith("LEARNING"),
            days_since_last_change=(run_date - last).days if last else None,
            campaign_type=str(plan.kind),
        )
        economics = None
        share = paying.share(cid, market, measured)
        if measured is not None and mean_value is not None and share is not None:
            sums = measured.sums
            economics = CampaignEconomics(
                mean_value=mean_value,
                ltv_horizon_ratio=max(_ratio(sums[horizon], sums["pltv_365"]), 1.0),
                payback_share=_payback_share(
                    payback_base, sums, settings.economics.payback_months
                ),
                paying_share=share,
                cac_max=paying.cac_max.get(cid, measured.cac_max),
                market=market,
                currency=settings.account.currency,
            )
        facts.append(CampaignFacts(snapshot, str(plan.name), market, cost, economics))
    return facts


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 1.0


def _campaign_windows(
    settings: Settings,
    latest: pd.DataFrame,
    countries: Mapping[str, str],
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Per campaign: name, market, type and the bounds of its windows.

    ``start``/``lag_end`` bound the observation window of acquisitions (UTC),
    ``day_start``/``day_end`` the same window in stats days, and
    ``volume_day`` the first stats day counted towards the volume rule.
    """
    guards = {market: settings.guardrails_for(market) for market in settings.markets}
    windows: dict[tuple[str, str], dict[str, pd.Timestamp]] = {}
    records = []
    for campaign in latest.itertuples(index=False):
        cid = str(campaign.campaign_id)
        name = str(campaign.campaign_name)
        market = market_of(settings, cid, name, countries)
        kind = _campaign_type(campaign, name)
        if (market, kind) not in windows:
            windows[market, kind] = _windows(guards[market], kind, as_of)
        records.append(
            {"campaign_id": cid, "name": name, "market": market, "kind": kind}
            | windows[market, kind]
        )
    columns = ["name", "market", "kind", "start", "lag_end"]
    columns += ["day_start", "day_end", "volume_day"]
    ids = pd.Index(
        [record.pop("campaign_id") for record in records],
        dtype=pd.StringDtype("pyarrow"),
        name="campaign_id",
    )
    return pd.DataFrame.from_records(records, index=ids, columns=columns)


def _windows(
    guard: GuardrailSettings, kind: str, as_of: pd.Timestamp
) -> dict[str, pd.Timestamp]:
    """The window bounds of a campaign of type ``kind`` under ``guard``."""
    lag_end = as_of - pd.Timedelta(days=guard.conversion_lag_days)
    start = lag_end - pd.Timedelta(days=guard.observation_window_days)
    volume_start = as_of - pd.Timedelta(days=guard.volume_rule(kind).window_days)
    return {
        "start": start,
        "lag_end": lag_end,
        "day_start": _day(start),
        "day_end": _day(lag_end),
        "volume_day": _day(volume_start),
    }


class _Placed:
    """The rows of one table placed at their campaign's position in the plan.

    Every per-campaign figure is then a weighted count over those positions
    (``numpy.bincount``): one pass over the table for all campaigns.
    """

    def __init__(self, column: pd.Series, campaigns: pd.DataFrame) -> None:
        self.size = len(campaigns)
        self.rows = index_of(column, campaigns.index)
        self.known = self.rows >= 0
        self._safe = np.where(self.known, self.rows, 0)

    def of(self, values: np.ndarray) -> np.ndarray:
        """Each row's campaign's entry of ``values`` (any entry where it has none)."""
        return values[self._safe]

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Rows per campaign where ``mask`` holds."""
        chosen = mask & self.known
        return np.bincount(self.rows[chosen], minlength=self.size).astype("float64")

    def total(self, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sum of ``weights`` per campaign where ``mask`` holds; NaN is skipped."""
        chosen = mask & self.known & ~np.isnan(weights)
        return np.bincount(
            self.rows[chosen], weights=weights[chosen], minlength=self.size
        )

    def mean(self, weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean of ``weights`` per campaign where ``mask`` holds; NaN where none."""
        present = mask & ~np.isnan(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            means: np.ndarray = self.total(weights, present) / self.count(present)
        return means


def _naive(moments: pd.Series) -> np.ndarray:
    """Timestamps as naive UTC ``datetime64`` values, for fast comparisons."""
    if isinstance(moments.dtype, pd.DatetimeTZDtype):
        moments = moments.dt.tz_convert("UTC").dt.tz_localize(None)
    return moments.to_numpy(dtype="datetime64[ns]")


def _floats(column: pd.Series) -> np.ndarray:
    return np.asarray(column.to_numpy(dtype="float64", na_value=np.nan))


@dataclass(frozen=True)
class _WindowMeasures:
    """One campaign's activations in its observation window, summed.

    ``cac_max`` is their mean benchmark, used when none of the campaign's
    recent users has paid yet.
    """

    sums: dict[str, float]
    mean_value: float
    paying_probability: float | None
    cac_max: float


def _window_measures(
    settings: Settings, users: pd.DataFrame, campaigns: pd.DataFrame
) -> dict[str, _WindowMeasures]:
    """Per campaign with activations in its window, what they are worth."""
    placed = _Placed(users["campaign_id"], campaigns)
    acquired = _naive(users["acquired_at"])
    inside = (
        placed.known
        & (acquired >= placed.of(_naive(campaigns["start"])))
        & (acquired < placed.of(_naive(campaigns["lag_end"])))
    )
    columns = list(dict.fromkeys(["value", "pltv_365", "pltv_1095", "pltv_1825"]))
    horizon = f"pltv_{settings.economics.ltv_horizon_days}"
    if horizon not in columns:
        columns.append(horizon)
    sums = {c: placed.total(_floats(users[c]), inside) for c in columns}
    counts = placed.count(inside)
    mean_value = placed.mean(_floats(users["value"]), inside)
    caps = placed.mean(_user_caps(settings, users, campaigns, placed), inside)
    chance = (
        placed.mean(_floats(users["paying_probability"]), inside)
        if "paying_probability" in users
        else np.full(len(campaigns), np.nan)
    )
    ids = [str(cid) for cid in campaigns.index]
    measures = {}
    for at in np.flatnonzero(counts > 0).tolist():
        probability = float(chance[at])
        measures[ids[at]] = _WindowMeasures(
            sums={column: float(sums[column][at]) for column in columns},
            mean_value=float(mean_value[at]),
            paying_probability=None if np.isnan(probability) else probability,
            cac_max=float(caps[at]),
        )
    return measures


def _user_caps(
    settings: Settings,
    users: pd.DataFrame,
    campaigns: pd.DataFrame,
    placed: _Placed,
) -> np.ndarray:
    """Each user's CAC benchmark in the market of the campaign that acquired it
    (NaN for users of no planned campaign)."""
    markets = campaigns["market"].to_numpy()
    caps = np.full(len(users), np.nan)
    for code in pd.unique(markets):
        chosen = placed.known & (placed.of(markets) == code)
        if chosen.any():
            mine = users[chosen]
            caps[chosen] = user_cac_max(settings.markets[code], mine).to_numpy()
    return caps


@dataclass(frozen=True)
class _Spend:
    """Per campaign, cost in its observation window and conversions in its
    volume window."""

    cost: dict[str, float]
    conversions: dict[str, float]


def _stats_measures(stats: pd.DataFrame, campaigns: pd.DataFrame) -> _Spend:
    placed = _Placed(stats["campaign_id"], campaigns)
    day = _naive(stats["date"])
    in_window = (day >= placed.of(_naive(campaigns["day_start"]))) & (
        day < placed.of(_naive(campaigns["day_end"]))
    )
    in_volume = day >= placed.of(_naive(campaigns["volume_day"]))
    cost = placed.total(_floats(stats["cost"]), in_window)
    conversions = placed.total(_floats(stats["conversions"]), in_volume)
    ids = [str(cid) for cid in campaigns.index]
    return _Spend(
        cost=dict(zip(ids, cost.tolist(), strict=True)),
        conversions=dict(zip(ids, conversions.tolist(), strict=True)),
    )


@dataclass(frozen=True)
class _Paying:
    """Who pays among matured users acquired in the last year.

    ``by_campaign`` and ``by_country`` hold the paid share where some user
    was seen; ``cac_max`` the mean benchmark of each campaign's paying users.
    """

    configured: float | None
    by_campaign: dict[str, float]
    by_country: dict[str, float]
    overall: float | None
    cac_max: dict[str, float]

    def share(
        self, campaign_id: str, market: str, window: _WindowMeasures | None
    ) -> float | None:
        """Share of activations that pay: configured, predicted, else observed.

        Observed on the users acquired in the last year who have had
        ``paying_lag_days`` to start paying: the campaign's own, else its
        market's, else the account's.
        """
        if self.configured is not None:
            return self.configured
        chance = window.paying_probability if window is not None else None
        if chance is not None and chance > 0:
            return min(chance, 1.0)
        for share in (
            self.by_campaign.get(campaign_id),
            self.by_country.get(market),
            self.overall,
        ):
            if share is not None and share > 0:
                return share
        return None


def _paying_measures(
    settings: Settings,
    users: pd.DataFrame,
    campaigns: pd.DataFrame,
    as_of: pd.Timestamp,
) -> _Paying:
    lag = pd.Timedelta(days=settings.economics.paying_lag_days)
    recent = users[users["recent"] & (users["acquired_at"] <= as_of - lag)]
    placed = _Placed(recent["campaign_id"], campaigns)
    paid = recent["has_paid"].to_numpy(dtype=bool)
    every = np.ones(len(recent), dtype=bool)
    seen = placed.count(every)
    share = placed.total(paid.astype("float64"), every) / np.maximum(seen, 1)
    payers = placed.count(paid)
    caps = placed.total(_user_caps(settings, recent, campaigns, placed), paid)
    by_country = recent["has_paid"].groupby(recent["country"].to_numpy()).mean()
    ids = [str(cid) for cid in campaigns.index]
    return _Paying(
        configured=settings.economics.paying_share,
        by_campaign={ids[at]: float(share[at]) for at in np.flatnonzero(seen > 0)},
        by_country={str(k): float(v) for k, v in by_country.items()},
        overall=float(recent["has_paid"].mean()) if len(recent) else None,
        cac_max={
            ids[at]: float(caps[at] / payers[at]) for at in np.flatnonzero(payers > 0)
        },
    )


def _payback_share(base: float, sums: Mapping[str, float], months: int) -> float:
    """Value earned within ``months`` over 1-year value.

    Within the first year the measured curve of full-year users gives it;
    beyond, the campaign's own predicted 1-, 3- and 5-year values are
    interpolated.
    """
    if months <= 12:
        return base
    year = sums["pltv_365"]
    points = [1.0, _ratio(sums["pltv_1095"], year), _ratio(sums["pltv_1825"], year)]
    return float(np.interp(months * DAYS_PER_MONTH, [365.25, 1095.75, 1826.25], points))


def user_cac_max(market: MarketSettings, users: pd.DataFrame) -> pd.Series:
    """Each user's CAC benchmark: segment or product line, else the market's.

    Where both a segment and a product-line benchmark apply, the lower holds.
    """
    caps = pd.Series(market.cac_max, index=users.index, dtype="float64")
    if market.cac_max_by_segment and "segment" in users:
        by_segment = users["segment"].map(market.cac_max_by_segment).astype("float64")
        caps = by_segment.fillna(caps)
    if market.cac_max_by_product_line and "product_line" in users:
        by_line = users["product_line"].map(market.cac_max_by_product_line)
        lowest = np.minimum(caps.to_numpy(), by_line.astype("float64").fillna(np.inf))
        caps = pd.Series(lowest, index=users.index, dtype="float64")
    return caps


def _scored_users(
    inputs: Inputs, scores: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    users = _with_scores(inputs.users, scores)
    users["acquired_at"] = users["activated_at"].fillna(users["signup_at"])
    revenue = inputs.revenue[inputs.revenue["occurred_at"] < as_of]
    users["has_paid"] = member_of(users["user_id"], paying_users(revenue))
    recent = users["acquired_at"] > as_of - pd.Timedelta(days=365)
    users["recent"] = recent
    return users


def _with_scores(users: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The scored users, in table order, with their score columns.

    An inner join on ``user_id`` found in Arrow: pandas' merge turns Arrow
    string ids into Python objects, seconds per million users.
    """
    rows = index_of(users["user_id"], pd.Index(scores["user_id"]))
    scored = rows >= 0
    out = users[scored].reset_index(drop=True)
    taken = scores.drop(columns="user_id").take(rows[scored]).reset_index(drop=True)
    return pd.concat([out, taken], axis=1)


def _payback_share_within_year(
    inputs: Inputs, as_of: pd.Timestamp, months: int
) -> float:
    """Share of 1-year value earned in the first ``months``, from full-year users."""
    if months >= 12:
        return 1.0
    users = inputs.users
    full = users[users["signup_at"] <= as_of - pd.Timedelta(days=365)]
    signup = full.set_index("user_id")["signup_at"]
    rev = inputs.revenue[member_of(inputs.revenue["user_id"], signup.index)]
    days = (rev["occurred_at"] - rev["user_id"].map(signup)).dt.total_seconds() / 86400
    year = float(rev["amount"][days < 365].sum())
    early = float(rev["amount"][days < months * DAYS_PER_MONTH].sum())
    if year <= 0 or early <= 0:
        raise PlanningError(
            "no revenue in the first year of the users old enough to measure "
            "the payback curve; set economics.payback_months to 12 or more"
        )
    return early / year


def _campaign_type(campaign: object, name: str) -> str:
    """Google Ads channel type: the stats column when present, else the name."""
    given = getattr(campaign, "advertising_channel_type", None)
    if isinstance(given, str) and given.strip():
        return given.strip().upper()
    for kind, pattern in _TYPE_WORDS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return kind
    return "OTHER"


def _no_value_row(
    facts: CampaignFacts, volume_required: int, held: Decision | None
) -> PlanRow:
    snapshot = facts.snapshot
    guardrail: str | None = NO_DATA
    reason = (
        "Hold: no activated user of this campaign in the observation window "
        "has a predicted value (or none has paid yet), so there is no value "
        "to bid on."
    )
    if snapshot.conversions_in_window < volume_required:
        guardrail = VOLUME
        reason = (
            f"Hold: {snapshot.conversions_in_window:.0f} conversions; a "
            f"{snapshot.campaign_type.lower()} campaign needs {volume_required} "
            "before value-based bidding, and none of its recent activations "
            "has a predicted value yet."
        )
    if held is not None:
        guardrail, reason = held.guardrail, held.reason
    return PlanRow(
        campaign_id=snapshot.campaign_id,
        campaign_name=facts.campaign_name,
        market=facts.market,
        current_strategy=snapshot.strategy,
        current_target_cpa=snapshot.target_cpa,
        current_target_roas=snapshot.target_roas,
        current_roas_equivalent=_round(snapshot.current_roas),
        observed_roas=None,
        conversions_in_window=snapshot.conversions_in_window,
        cost_in_window=round(facts.cost_in_window, 2),
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
        guardrail=guardrail,
        reason=reason,
        campaign_type=snapshot.campaign_type,
        volume_required=volume_required,
    )


def campaign_countries(users: pd.DataFrame) -> dict[str, str]:
    """The most common country of each campaign's users, computed once."""
    known = users.dropna(subset=["campaign_id", "country"])
    if known.empty:
        return {}
    counts = (
        known.groupby(["campaign_id", "country"], observed=True)
        .size()
        .rename("users")
        .reset_index()
    )
    # Ties go to the first country in sort order, as Series.mode orders them.
    counts = counts.sort_values(
        ["campaign_id", "users", "country"], ascending=[True, False, True]
    )
    first = counts.drop_duplicates("campaign_id")
    return dict(
        zip(
            first["campaign_id"].astype(str),
            first["country"].astype(str),
            strict=True,
        )
    )


#: The rules that place a campaign in a market, in the order they are tried.
PLACED_BY_ID = "campaign_ids"
PLACED_BY_NAME = "campaign_name_pattern"
PLACED_BY_COUNTRY = "users' country"
PLACED_BY_DEFAULT = "default_market"


def placement(
    settings: Settings,
    campaign_id: str,
    name: str,
    countries: Mapping[str, str],
) -> tuple[str, str]:
    """The market of a campaign and the rule that placed it there.

    Tried in order: the market listing the campaign id, the market whose name
    pattern matches, the campaign's most common user country (``countries``,
    see :func:`campaign_countries`) when it is a market, and
    ``default_market``. A campaign id listed wins over name patterns, but two
    markets listing the same id, or two markets' patterns matching one name,
    are refused: which one is listed first must not decide a market's
    economics.

    Returns
    -------
    tuple of str
        The market code and one of :data:`PLACED_BY_ID`,
        :data:`PLACED_BY_NAME`, :data:`PLACED_BY_COUNTRY` and
        :data:`PLACED_BY_DEFAULT`.

    Raises
    ------
    PlanningError
        Two markets claim the campaign by the same rule, or no rule places it
        and there is no default market.
    """
    listing = [
        code
        for code, market in settings.markets.items()
        if campaign_id in market.campaign_ids
    ]
    if len(listing) > 1:
        raise PlanningError(
            f"campaign {campaign_id} ({name!r}) is listed in the campaign_ids of "
            f"markets {' and '.join(listing)}; a campaign belongs to one market: "
            "list it under one of them only"
        )
    if listing:
        return listing[0], PLACED_BY_ID
    matching = {
        code: market.campaign_name_pattern
        for code, market in settings.markets.items()
        if market.campaign_name_pattern is not None
        and re.search(market.campaign_name_pattern, name)
    }
    if len(matching) > 1:
        claims = " and ".join(
            f"{code} ({pattern!r})" for code, pattern in matching.items()
        )
        raise PlanningError(
            f"campaign {campaign_id} ({name!r}) matches the campaign_name_pattern "
            f"of markets {claims}; a campaign belongs to one market: make the "
            "patterns exclusive, or list the campaign under "
            "markets.<code>.campaign_ids, which wins over patterns"
        )
    if matching:
        return next(iter(matching)), PLACED_BY_NAME
    country = countries.get(campaign_id)
    if country is not None and country in settings.markets:
        return country, PLACED_BY_COUNTRY
    if settings.default_market is not None:
        return settings.default_market, PLACED_BY_DEFAULT
    raise PlanningError(
        f"campaign {campaign_id} ({name!r}) belongs to no market: list it under "
        "markets.<code>.campaign_ids, give the market a campaign_name_pattern, "
        "or set default_market"
    )


def market_of(
    settings: Settings,
    campaign_id: str,
    name: str,
    countries: Mapping[str, str],
) -> str:
    """The market of a campaign (see :func:`placement`).

    Raises
    ------
    PlanningError
        Two markets claim the campaign by the same rule, or no rule places it
        and there is no default market.
    """
    return placement(settings, campaign_id, name, countries)[0]


@dataclass(frozen=True)
class Staleness:
    """Campaign stats too old to act on, per market and per campaign.

    Attributes
    ----------
    markets
        The reason for each market whose newest stats are too old: every
        target of it is held.
    campaigns
        The reason for each campaign, in a market that is fresh, whose own
        stats stopped too long ago: only its target is held.
    """

    markets: dict[str, str]
    campaigns: dict[str, str]

    def of(self, campaign_id: str, market: str) -> str | None:
        """Why a campaign of ``market`` is held for stale stats, if it is."""
        return self.markets.get(market) or self.campaigns.get(campaign_id)


def stale_stats(
    stats: pd.DataFrame,
    markets: Mapping[str, str],
    run_date: dt.date,
    settings: Settings,
) -> Staleness:
    """Which markets and campaigns have campaign stats too old to act on.

    A market is judged on its own newest stats, so one market's export that
    stops is not hidden by another's that keeps coming. Within a fresh
    market, a campaign whose rows stopped is held on its own: its cost since
    is missing while its users still bring value, so its observed ROAS would
    read too high.

    Parameters
    ----------
    stats
        The checked campaign stats.
    markets
        The market of each campaign of ``stats`` (see :func:`placement`).
    run_date
        The day planned.
    settings
        The config (each market's ``guardrails.max_data_age_days``).

    Returns
    -------
    Staleness
        What a run of ``run_date`` would hold (``stale_data``); markets and
        campaigns absent are fresh.
    """
    return staleness(stats_ends(stats), markets, run_date, settings)


def stats_ends(stats: pd.DataFrame) -> dict[str, dt.date]:
    """The last day of each campaign's stats, by campaign id."""
    newest = stats.groupby("campaign_id", observed=True)["date"].max()
    return {str(cid): pd.Timestamp(day).date() for cid, day in newest.items()}


def staleness(
    ends: Mapping[str, dt.date],
    markets: Mapping[str, str],
    day: dt.date,
    settings: Settings,
) -> Staleness:
    """Which markets and campaigns are stale on ``day``, from their last days.

    The rule of :func:`stale_stats`, on the last day of each campaign's
    stats (see :func:`stats_ends`), so that a recorded plan is judged again
    by the same rule when it is pushed on a later day.

    Parameters
    ----------
    ends
        The last day of each campaign's stats.
    markets
        The market of each campaign. A market the config no longer has is
        judged on the account's ``guardrails.max_data_age_days``.
    day
        The day judged: the day planned, or the day a plan is pushed.
    settings
        The config (each market's ``guardrails.max_data_age_days``).

    Returns
    -------
    Staleness
        Markets and campaigns too old on ``day``; those absent are fresh.
    """
    if not ends:
        return Staleness({}, {})
    account_end = max(ends.values())
    stale_markets: dict[str, str] = {}
    stale_campaigns: dict[str, str] = {}
    codes = [*settings.markets]
    codes += sorted({m for m in markets.values() if m not in settings.markets})
    for market in codes:
        mine = {cid: end for cid, end in ends.items() if markets.get(cid) == market}
        if not mine:
            continue
        guard = (
            settings.guardrails_for(market)
            if market in settings.markets
            else settings.guardrails
        )
        allowed = guard.max_data_age_days
        limit = f"at most {allowed} allowed (guardrails.max_data_age_days)"
        market_end = max(mine.values())
        age = (day - market_end).days - 1
        if age > allowed:
            others = (
                f", while other markets' run to {account_end}"
                if account_end > market_end
                else ""
            )
            stale_markets[market] = (
                f"campaign stats of market {market} end on {market_end}, "
                f"{age} day(s) before yesterday{others}; {limit}"
            )
            continue
        for cid, end in sorted(mine.items()):
            age = (day - end).days - 1
            if age > allowed:
                stale_campaigns[cid] = (
                    f"campaign stats of campaign {cid} end on {end}, {age} "
                    f"day(s) before yesterday, while market {market}'s run to "
                    f"{market_end}: its cost since is missing while its users "
                    f"still count as value, so its ROAS would read too high; "
                    f"{limit}"
                )
    return Staleness(stale_markets, stale_campaigns)


def _day(moment: pd.Timestamp) -> pd.Timestamp:
    return moment.tz_localize(None).normalize()


def _number(value: object) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)
