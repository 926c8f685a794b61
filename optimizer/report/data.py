"""What the report shows, as typed records, and how they are computed.

Everything the HTML and the terminal summary print comes from a
:class:`ReportData`. The builders below compute it from the run's tables
(users, revenue, campaign stats), the model's scores (``pltv_365``,
``pltv_1095``, ``pltv_1825`` per user), the plan rows and the state store,
so a richer source (fitted LTV curves with their own bands, the unit
economics of a market, the value feed's ledger) replaces one builder without
touching the template.

Money is in ``ReportData.currency``; values are revenue times the configured
gross margin, the same unit the bids are made in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.plan import PlanRow

#: Days per month used for every month count of the report.
MONTH_DAYS = 365.25 / 12
#: The design brief's LTV/CAC bands: below the target is insufficient,
#: target to 5 satisfactory, above 5 excellent.
EXCELLENT_LTV_TO_CAC = 5.0
#: Marketing budget as a share of expected new revenue (design brief).
MARKETING_SHARE_RANGE = (0.15, 0.20)
#: Sales and marketing should cost less than this many months of the revenue
#: it brings (design brief).
MAX_SM_MONTHS = 12.0
RULE_OF_40 = 40.0
#: A month of the realized curve is drawn once this many users have lived it.
MIN_MONTH_SUPPORT = 50
#: z of a two-sided 90 % normal interval.
Z90 = 1.645
HORIZONS_MONTHS = (12, 36, 60)
CURVE_MONTHS = 60


@dataclass(frozen=True)
class CurvePoint:
    """Mean cumulative value per user at ``months`` since sign-up, with a band."""

    months: float
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SegmentLTV:
    """The LTV curve of one segment.

    ``realized`` is measured on the users old enough to have lived each
    month; ``predicted`` is the model's mean at 1, 3 and 5 years for the
    users whose first year is not complete yet.
    """

    segment: str
    users: int
    predicted_users: int
    realized: tuple[CurvePoint, ...]
    predicted: tuple[CurvePoint, ...]


@dataclass(frozen=True)
class MarketCAC:
    """Acquisition cost of one market in the plan's observation window."""

    market: str
    cost: float
    activations: float
    paying_share: float | None
    cac: float | None
    cac_max: float

    @property
    def over_cap(self) -> bool:
        """Whether a paying customer costs more than the market allows."""
        return self.cac is not None and self.cac > self.cac_max


@dataclass(frozen=True)
class UnitRatio:
    """LTV/CAC and payback of the users one market acquired in one segment."""

    market: str
    segment: str
    users: int
    cost: float
    ltv_365: float
    ltv_horizon: float
    ratio_365: float | None
    ratio: float | None
    low: float | None
    high: float | None
    band: str
    payback_months: float | None


@dataclass(frozen=True)
class BusinessRatios:
    """Rule of 40 and the budget ratios; ``None`` with a note when unknown."""

    spend: float
    expected_new_revenue: float
    marketing_share: float | None
    sm_months: float | None
    growth_pct: float | None
    growth_basis: str
    ebitda_margin_pct: float | None
    rule_of_40: float | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class TargetPoint:
    """One run's view of a campaign's target."""

    run_date: dt.date
    current: float | None
    proposed: float | None
    economic: float | None
    action: str


@dataclass(frozen=True)
class CampaignHistory:
    """Targets of one campaign across the recorded runs, oldest first."""

    campaign_id: str
    campaign_name: str
    points: tuple[TargetPoint, ...]


@dataclass(frozen=True)
class ModelQuality:
    """Holdout quality of the model in use, from its metrics.

    ``table`` maps who (``model`` or a baseline) to metric name to value.
    """

    version: str
    table: dict[str, dict[str, float]]
    deciles: tuple[tuple[float, float], ...] = ()

    @property
    def gini(self) -> float | None:
        """The model's normalized Gini on the holdout, when measured."""
        return self.table.get("model", {}).get("normalized_gini")


@dataclass(frozen=True)
class RiskFlag:
    """A segment or channel doing worse than the account on one signal."""

    kind: str
    group: str
    flag: str
    figure: float
    account_figure: float
    unit: str
    users: int


@dataclass(frozen=True)
class FeedCounts:
    """What the value feed sent, by status."""

    counts: dict[str, int]


@dataclass(frozen=True)
class WeekChange:
    """What moved between last week's run and this one."""

    previous_run: str | None
    previous_date: dt.date | None
    targets: tuple[tuple[str, float | None, float | None], ...]
    ratios: tuple[tuple[str, float | None, float | None], ...]
    spend: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows."""

    account: str
    run_id: str
    run_date: dt.date
    currency: str
    mode: str
    model_version: str
    horizon_days: int
    target_ltv_to_cac: float
    min_ltv365_to_cac: float
    payback_limit_months: float
    plan: tuple[PlanRow, ...]
    plan_file: str
    segments: tuple[SegmentLTV, ...]
    markets: tuple[MarketCAC, ...]
    ratios: tuple[UnitRatio, ...]
    business: BusinessRatios
    history: tuple[CampaignHistory, ...]
    quality: ModelQuality | None
    risks: tuple[RiskFlag, ...]
    feed: FeedCounts | None
    week: WeekChange | None = None
    generated_at: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0)
    )

    def headline(self) -> dict[str, Any]:
        """The figures a later report compares against (weekly view)."""
        return {
            "run_id": self.run_id,
            "run_date": self.run_date.isoformat(),
            "ratios": {f"{r.market}/{r.segment}": r.ratio for r in self.ratios},
            "targets": {
                row.campaign_id: row.new_troas or row.current_roas_equivalent
                for row in self.plan
            },
        }


# Builders ---------------------------------------------------------------


def feed_counts(plan_document: Mapping[str, Any]) -> FeedCounts | None:
    """The value feed's counts a run recorded in its plan file, if it ran one.

    The cycle records them under the plan's ``feed`` key as a mapping of
    count name (sent, skipped, failed...) to number.
    """
    recorded = plan_document.get("feed")
    if not isinstance(recorded, Mapping) or not recorded:
        return None
    return FeedCounts(
        counts={
            str(name): int(value)
            for name, value in recorded.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    )


def segment_curves(
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    scores: pd.DataFrame,
    as_of: pd.Timestamp,
    margin: float,
) -> tuple[SegmentLTV, ...]:
    """Realized and predicted LTV curves per segment.

    The realized value at month m is the mean, over the users signed up at
    least m months before ``as_of``, of what each spent in its first m
    months; its band is a 90 % normal interval of that mean. The predicted
    points are the mean ``pltv_*`` of the users younger than a year, with the
    same kind of interval over users.
    """
    signup = users.set_index("user_id")["signup_at"]
    segment = users.set_index("user_id")["segment"].astype("string").fillna("(none)")
    ages = ((as_of - signup).dt.total_seconds() / 86400.0).to_numpy()
    position = pd.Series(np.arange(len(signup)), index=signup.index)

    rev = revenue[revenue["user_id"].isin(signup.index)]
    days = (rev["occurred_at"] - rev["user_id"].map(signup)).dt.total_seconds()
    month = np.floor(days.to_numpy() / 86400.0 / MONTH_DAYS).astype("int64")
    keep = (month >= 0) & (month < CURVE_MONTHS)
    monthly = np.zeros((len(signup), CURVE_MONTHS))
    rows = position.loc[rev["user_id"].to_numpy()[keep]].to_numpy()
    np.add.at(monthly, (rows, month[keep]), rev["amount"].to_numpy(float)[keep])
    cumulative = np.cumsum(monthly, axis=1) * margin

    scored = scores.set_index("user_id")
    out = []
    for name in sorted(segment.unique()):
        mine = (segment == name).to_numpy()
        realized = [CurvePoint(0.0, 0.0, 0.0, 0.0)]
        for m in range(1, CURVE_MONTHS + 1):
            lived = mine & (ages >= m * MONTH_DAYS)
            if lived.sum() < MIN_MONTH_SUPPORT:
                break
            realized.append(_mean_point(float(m), cumulative[lived, m - 1]))
        young = segment.index[mine & (ages < 365.0)]
        predicted = scored.reindex(young).dropna(subset=["pltv_365"])
        points = tuple(
            _mean_point(float(months), predicted[f"pltv_{days}"].to_numpy() * margin)
            for months, days in zip(HORIZONS_MONTHS, (365, 1095, 1825), strict=True)
            if len(predicted)
        )
        out.append(
            SegmentLTV(
                segment=str(name),
                users=int(mine.sum()),
                predicted_users=len(predicted),
                realized=tuple(realized),
                predicted=points,
            )
        )
    return tuple(out)


def _mean_point(months: float, values: np.ndarray) -> CurvePoint:
    mean = float(values.mean())
    half = (
        Z90 * float(values.std(ddof=1)) / math.sqrt(len(values))
        if len(values) > 1
        else 0.0
    )
    return CurvePoint(months, mean, max(mean - half, 0.0), mean + half)


@dataclass(frozen=True)
class Window:
    """The plan's observation window: ``[start, end)`` in UTC."""

    start: pd.Timestamp
    end: pd.Timestamp

    def days(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The window as naive calendar days, the unit of campaign stats."""
        return (
            self.start.tz_localize(None).normalize(),
            self.end.tz_localize(None).normalize(),
        )


def window_users(
    users: pd.DataFrame,
    scores: pd.DataFrame,
    window: Window,
    market_of: Mapping[str, str],
    campaign_cost: Mapping[str, float],
) -> pd.DataFrame:
    """Users acquired in the window, with their market and share of its cost.

    Each user carries an equal share of its campaign's cost in the window
    (``cost``), so LTV/CAC of any group is ``sum(ltv) / sum(cost)``.
    """
    acquired = users["activated_at"].fillna(users["signup_at"])
    inside = users[(acquired >= window.start) & (acquired < window.end)].copy()
    inside["campaign_id"] = inside["campaign_id"].astype("string")
    inside = inside[inside["campaign_id"].isin(list(market_of))]
    inside = inside.merge(scores, on="user_id", how="inner")
    inside["market"] = inside["campaign_id"].map(dict(market_of))
    per_campaign = inside.groupby("campaign_id")["user_id"].transform("size")
    inside["cost"] = inside["campaign_id"].map(dict(campaign_cost)) / per_campaign
    inside["segment"] = inside["segment"].astype("string").fillna("(none)")
    return inside


def market_cac(
    stats: pd.DataFrame,
    plan: Sequence[PlanRow],
    window: Window,
    cac_max: Mapping[str, float],
) -> tuple[MarketCAC, ...]:
    """Cost per paying customer of each market over the window, against its cap.

    Activations come from the campaign stats; the share of them that pay is
    each campaign's ``paying_share`` from the plan, weighted by activations.
    """
    first, last = window.days()
    inside = stats[(stats["date"] >= first) & (stats["date"] < last)]
    market_of = {row.campaign_id: row.market for row in plan}
    paying = {row.campaign_id: row.paying_share for row in plan}
    by_campaign = inside.groupby(inside["campaign_id"].astype("string"))[
        ["cost", "conversions"]
    ].sum()
    out = []
    for market in sorted(set(market_of.values())):
        ids = [
            c for c, m in market_of.items() if m == market and c in by_campaign.index
        ]
        cost = float(by_campaign.loc[ids, "cost"].sum()) if ids else 0.0
        conversions = float(by_campaign.loc[ids, "conversions"].sum()) if ids else 0.0
        conversions_of = by_campaign["conversions"].astype(float).to_dict()
        payers = sum(float(conversions_of[c]) * (paying[c] or 0.0) for c in ids)
        share = payers / conversions if conversions > 0 else None
        out.append(
            MarketCAC(
                market=market,
                cost=round(cost, 2),
                activations=conversions,
                paying_share=share,
                cac=cost / payers if payers > 0 else None,
                cac_max=float(cac_max[market]),
            )
        )
    return tuple(out)


def unit_ratios(
    acquired: pd.DataFrame,
    segments: Sequence[SegmentLTV],
    horizon_days: int,
    target: float,
    margin: float,
) -> tuple[UnitRatio, ...]:
    """LTV/CAC with a 90 % interval, its band, and payback, per market and segment."""
    curves = {s.segment: s for s in segments}
    horizon = f"pltv_{horizon_days}"
    out = []
    for (market, segment), group in acquired.groupby(["market", "segment"]):
        cost = float(group["cost"].sum())
        ltv_h = group[horizon].to_numpy(float) * margin
        ltv_1 = group["pltv_365"].to_numpy(float) * margin
        ratio = float(ltv_h.sum() / cost) if cost > 0 else None
        low = high = None
        if ratio is not None and len(group) > 1:
            half = Z90 * float(ltv_h.std(ddof=1)) * math.sqrt(len(group)) / cost
            low, high = max(ratio - half, 0.0), ratio + half
        per_user_cost = cost / len(group)
        out.append(
            UnitRatio(
                market=str(market),
                segment=str(segment),
                users=len(group),
                cost=round(cost, 2),
                ltv_365=float(ltv_1.mean()),
                ltv_horizon=float(ltv_h.mean()),
                ratio_365=float(ltv_1.sum() / cost) if cost > 0 else None,
                ratio=ratio,
                low=low,
                high=high,
                band=ltv_cac_band(ratio, target),
                payback_months=payback_months(
                    curves.get(str(segment)), float(ltv_1.mean()), per_user_cost
                ),
            )
        )
    return tuple(out)


def ltv_cac_band(ratio: float | None, target: float) -> str:
    """The design brief's verdict on an LTV/CAC ratio."""
    if ratio is None:
        return "no cost"
    if ratio < target:
        return "insufficient"
    if ratio <= EXCELLENT_LTV_TO_CAC:
        return "satisfactory"
    return "excellent"


def payback_months(
    curve: SegmentLTV | None, ltv_365: float, cost_per_user: float
) -> float | None:
    """Months until a user's cumulative value covers what acquiring it cost.

    The segment's realized curve gives the shape of the first months, scaled
    so month 12 equals the group's predicted 1-year value; the predicted 3-
    and 5-year points extend it. ``None`` means not within 5 years.
    """
    if curve is None or cost_per_user <= 0 or ltv_365 <= 0:
        return None
    shape = {p.months: p.value for p in curve.realized}
    year = shape.get(12.0)
    months, values = [0.0], [0.0]
    if year and year > 0:
        for m in range(1, 13):
            if float(m) in shape:
                months.append(float(m))
                values.append(shape[float(m)] / year * ltv_365)
    if months[-1] < 12:
        months.append(12.0)
        values.append(ltv_365)
    predicted = {p.months: p.value for p in curve.predicted}
    base = predicted.get(12.0)
    for later in (36.0, 60.0):
        if base and later in predicted:
            months.append(later)
            values.append(predicted[later] / base * ltv_365)
    for index in range(1, len(months)):
        if values[index] >= cost_per_user:
            v0, v1 = values[index - 1], values[index]
            m0, m1 = months[index - 1], months[index]
            share = (cost_per_user - v0) / (v1 - v0) if v1 > v0 else 1.0
            return round(m0 + share * (m1 - m0), 1)
    return None


def business_ratios(
    stats: pd.DataFrame,
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    scores: pd.DataFrame,
    as_of: pd.Timestamp,
    ebitda_margin: float | None,
    days: int = 30,
) -> BusinessRatios:
    """Budget ratios of the last ``days`` days, revenue growth and Rule of 40.

    Expected new revenue is the predicted 1-year revenue of the users
    acquired in those days. Growth compares the last 12 months of revenue
    with the 12 before when the data reaches that far, else the last quarter
    with the same quarter a year earlier.
    """
    naive = as_of.tz_localize(None).normalize()
    recent = stats[stats["date"] >= naive - pd.Timedelta(days=days)]
    spend = float(recent["cost"].sum())
    acquired = users["activated_at"].fillna(users["signup_at"])
    new = users.loc[acquired >= as_of - pd.Timedelta(days=days), "user_id"]
    expected = float(scores.loc[scores["user_id"].isin(new), "pltv_365"].sum())
    notes = [
        "Spend is the ad spend of the campaign stats; other sales and marketing "
        "costs are not in the inputs."
    ]
    growth, basis = _growth(revenue, as_of)
    margin_pct = None if ebitda_margin is None else ebitda_margin * 100
    if margin_pct is None:
        notes.append(
            "Rule of 40 needs the EBITDA margin: set report.ebitda_margin in the "
            "config."
        )
    rule = None if growth is None or margin_pct is None else growth + margin_pct
    return BusinessRatios(
        spend=round(spend, 2),
        expected_new_revenue=round(expected, 2),
        marketing_share=spend / expected if expected > 0 else None,
        sm_months=spend / (expected / 12) if expected > 0 else None,
        growth_pct=growth,
        growth_basis=basis,
        ebitda_margin_pct=margin_pct,
        rule_of_40=rule,
        notes=tuple(notes),
    )


def _growth(revenue: pd.DataFrame, as_of: pd.Timestamp) -> tuple[float | None, str]:
    first = revenue["occurred_at"].min()
    for span, label in (
        (365, "last 12 months vs the 12 before"),
        (91, "last quarter vs the same quarter a year before"),
    ):
        if pd.isna(first) or first > as_of - pd.Timedelta(days=365 + span):
            continue
        now = _revenue_between(revenue, as_of - pd.Timedelta(days=span), as_of)
        before = _revenue_between(
            revenue,
            as_of - pd.Timedelta(days=365 + span),
            as_of - pd.Timedelta(days=365),
        )
        if before > 0:
            return (now / before - 1) * 100, label
    return None, "less than 15 months of revenue"


def _revenue_between(
    revenue: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> float:
    inside = (revenue["occurred_at"] >= start) & (revenue["occurred_at"] < end)
    return float(revenue.loc[inside, "amount"].sum())


def target_history(
    runs: Sequence[tuple[dt.date, Sequence[Mapping[str, Any]]]],
) -> tuple[CampaignHistory, ...]:
    """Each campaign's current, proposed and economic target run by run.

    ``runs`` holds each run's date and its recorded plan rows.
    """
    points: dict[str, list[TargetPoint]] = {}
    names: dict[str, str] = {}
    for run_date, rows in sorted(runs, key=lambda item: item[0]):
        for row in rows:
            cid = str(row["campaign_id"])
            names[cid] = str(row.get("campaign_name", cid))
            points.setdefault(cid, []).append(
                TargetPoint(
                    run_date=run_date,
                    current=row.get("current_roas_equivalent"),
                    proposed=row.get("new_troas"),
                    economic=row.get("economic_troas"),
                    action=str(row.get("action", "")),
                )
            )
    return tuple(
        CampaignHistory(cid, names[cid], tuple(points[cid])) for cid in sorted(points)
    )


def model_quality(version: str, metrics: Mapping[str, float]) -> ModelQuality | None:
    """The model-vs-baselines table from a model's flat metrics mapping.

    Keys ``<who>.<metric>`` fill the table; unprefixed keys are the model's
    own; per-age keys (``<who>@<age>.<metric>``) and counts are left out.
    ``decile.<k>.predicted`` / ``decile.<k>.actual`` feed the calibration
    chart when the model recorded them.
    """
    table: dict[str, dict[str, float]] = {}
    deciles: dict[int, dict[str, float]] = {}
    for key, value in metrics.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        parts = key.split(".")
        if parts[0] == "decile" and len(parts) == 3 and parts[1].isdigit():
            deciles.setdefault(int(parts[1]), {})[parts[2]] = float(value)
        elif len(parts) == 2 and "@" not in parts[0]:
            table.setdefault(parts[0], {})[parts[1]] = float(value)
        elif len(parts) == 1 and not key.startswith("n_"):
            table.setdefault("model", {}).setdefault(key, float(value))
    if not table and not deciles:
        return None
    calibration = tuple(
        (d["predicted"], d["actual"])
        for _, d in sorted(deciles.items())
        if "predicted" in d and "actual" in d
    )
    return ModelQuality(version=version, table=table, deciles=calibration)


#: A group is flagged when it is worse than the account by this much.
CHURN_MARGIN_POINTS = 10.0
REPEAT_MARGIN_POINTS = 10.0
BASKET_SHARE = 0.75
#: Users must be this old (days) for churn and repeat purchase to be judged.
MATURE_DAYS = 180
CHURN_SILENCE_DAYS = 90
MIN_FLAG_USERS = 30


def risk_flags(
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    as_of: pd.Timestamp,
    channel_of: Mapping[str, str],
) -> tuple[RiskFlag, ...]:
    """Segments and channels doing clearly worse than the whole account.

    Three signals, each with the group's figure and the account's:

    - high churn: share of users at least 180 days old who bought nothing in
      the last 90 days, 10 points or more above the account;
    - no repeat purchase: share of those users who bought twice or more,
      10 points or more below the account (or zero);
    - low basket: mean order amount at most 75 % of the account's.
    """
    facts = _user_facts(users, revenue, as_of)
    facts["channel"] = facts["campaign_id"].map(dict(channel_of)).fillna("(none)")
    mature = facts[facts["age_days"] >= MATURE_DAYS]
    account_churn = _churn(mature)
    account_repeat = _repeat(mature)
    account_basket = _basket(facts)
    flags = []
    for kind in ("segment", "channel"):
        for group, rows in facts.groupby(kind):
            old = mature[mature[kind] == group]
            if len(old) >= MIN_FLAG_USERS:
                churn = _churn(old)
                if churn >= account_churn + CHURN_MARGIN_POINTS:
                    flags.append(
                        RiskFlag(
                            kind,
                            str(group),
                            "high churn",
                            churn,
                            account_churn,
                            "%",
                            len(old),
                        )
                    )
                repeat = _repeat(old)
                if repeat == 0 or repeat <= account_repeat - REPEAT_MARGIN_POINTS:
                    flags.append(
                        RiskFlag(
                            kind,
                            str(group),
                            "no repeat purchase",
                            repeat,
                            account_repeat,
                            "%",
                            len(old),
                        )
                    )
            basket = _basket(rows)
            if len(rows) >= MIN_FLAG_USERS and basket <= BASKET_SHARE * account_basket:
                flags.append(
                    RiskFlag(
                        kind,
                        str(group),
                        "low basket",
                        basket,
                        account_basket,
                        "currency",
                        len(rows),
                    )
                )
    return tuple(flags)


def _user_facts(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    facts = users[["user_id", "segment", "campaign_id", "signup_at"]].copy()
    facts = facts[facts["signup_at"] <= as_of]
    facts["segment"] = facts["segment"].astype("string").fillna("(none)")
    facts["campaign_id"] = facts["campaign_id"].astype("string")
    facts["age_days"] = (as_of - facts["signup_at"]).dt.total_seconds() / 86400.0
    seen = revenue[revenue["occurred_at"] < as_of].groupby("user_id")
    facts = facts.set_index("user_id")
    facts["orders"] = seen.size().reindex(facts.index, fill_value=0)
    facts["amount"] = seen["amount"].sum().reindex(facts.index, fill_value=0.0)
    last = seen["occurred_at"].max().reindex(facts.index)
    facts["silent_days"] = ((as_of - last).dt.total_seconds() / 86400.0).fillna(
        facts["age_days"]
    )
    return facts.reset_index()


def _churn(rows: pd.DataFrame) -> float:
    return (
        float((rows["silent_days"] >= CHURN_SILENCE_DAYS).mean() * 100)
        if len(rows)
        else 0.0
    )


def _repeat(rows: pd.DataFrame) -> float:
    return float((rows["orders"] >= 2).mean() * 100) if len(rows) else 0.0


def _basket(rows: pd.DataFrame) -> float:
    orders = float(rows["orders"].sum())
    return float(rows["amount"].sum()) / orders if orders > 0 else 0.0


def week_change(
    current: ReportData,
    previous: Mapping[str, Any] | None,
    stats: pd.DataFrame,
    as_of: pd.Timestamp,
) -> WeekChange:
    """Targets, LTV/CAC and spend now against last week's report.

    ``previous`` is the headline of the report of the run a week earlier (see
    :meth:`ReportData.headline`); spend comes from the campaign stats, this
    week's seven days against the seven before.
    """
    before = previous or {}
    old_targets: Mapping[str, Any] = before.get("targets", {})
    old_ratios: Mapping[str, Any] = before.get("ratios", {})
    now = current.headline()
    targets = tuple(
        (cid, old_targets.get(cid), value) for cid, value in now["targets"].items()
    )
    ratios = tuple(
        (key, old_ratios.get(key), value) for key, value in now["ratios"].items()
    )
    end = as_of.tz_localize(None).normalize()
    week = pd.Timedelta(days=7)
    names = {row.campaign_id: row.campaign_name for row in current.plan}
    spend = []
    for cid in sorted(names):
        mine = stats[stats["campaign_id"].astype("string") == cid]
        this = mine[(mine["date"] >= end - week) & (mine["date"] < end)]["cost"].sum()
        last = mine[(mine["date"] >= end - 2 * week) & (mine["date"] < end - week)][
            "cost"
        ].sum()
        spend.append((cid, float(last), float(this)))
    previous_date = before.get("run_date")
    return WeekChange(
        previous_run=before.get("run_id"),
        previous_date=dt.date.fromisoformat(previous_date) if previous_date else None,
        targets=targets,
        ratios=ratios,
        spend=tuple(spend),
    )
