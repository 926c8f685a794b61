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

from config.schema import FinanceSettings
from connectors.contracts import member_of
from optimizer.plan import PlanRow
from optimizer.unit_economics import UnitEconomics

#: Days per month used for every month count of the report.
MONTH_DAYS = 365.25 / 12
#: Above this LTV/CAC is excellent (design brief; the unit economics use it).
EXCELLENT_LTV_TO_CAC = 5.0
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
    """LTV/CAC and payback of one market or segment (``scope``), per paying user."""

    scope: str
    key: str
    cac: float | None
    ltv_365: float | None
    ltv_horizon: float | None
    ratio_365: float | None
    ratio: float | None
    band: str
    payback_months: float | None

    @property
    def label(self) -> str:
        """``market FR`` or ``segment SMB``, for tables and charts."""
        return f"{self.scope} {self.key}"


@dataclass(frozen=True)
class BusinessRatios:
    """Rule of 40 and the budget ratios; ``None`` with a note when unknown."""

    marketing_share: float | None
    marketing_share_range: tuple[float, float]
    marketing_basis: str
    sm_months: float | None
    max_sm_months: float
    sm_basis: str
    growth_pct: float | None
    ebitda_margin_pct: float | None
    rule_of_40: float | None
    rule_of_40_threshold: float
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
    """Everything one report shows.

    ``held_back`` says why the run's plan may not be applied (a failed later
    start of its day, or a jump in its predicted values), shown as a warning
    above everything else; ``value_check`` is how the run's mean value per
    user compared with the last successful run; ``inputs_note`` says that a
    report made after the run read input files that have changed since.
    """

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
    held_back: str | None = None
    value_check: str | None = None
    inputs_note: str | None = None
    generated_at: dt.datetime = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0)
    )

    def headline(self) -> dict[str, Any]:
        """The figures a later report compares against (weekly view)."""
        return {
            "run_id": self.run_id,
            "run_date": self.run_date.isoformat(),
            "ratios": {r.label: r.ratio for r in self.ratios},
            "targets": {
                row.campaign_id: row.new_troas or row.current_roas_equivalent
                for row in self.plan
            },
        }


# Builders ---------------------------------------------------------------


def market_cac(
    economics: UnitEconomics, cac_max: Mapping[str, float]
) -> tuple[MarketCAC, ...]:
    """Each market's CAC per new paying user, from the unit economics, with its cap."""
    out = []
    for figure in economics.cac:
        if figure.scope != "market" or figure.key not in cac_max:
            continue
        out.append(
            MarketCAC(
                market=figure.key,
                cost=round(figure.cost, 2),
                activations=float(figure.activations),
                paying_share=figure.new_paying / figure.activations
                if figure.activations
                else None,
                cac=figure.cac,
                cac_max=float(cac_max[figure.key]),
            )
        )
    return tuple(out)


def unit_ratios(economics: UnitEconomics) -> tuple[UnitRatio, ...]:
    """LTV/CAC, its band and payback of every market and segment."""
    return tuple(
        UnitRatio(
            scope=f.scope,
            key=f.key,
            cac=f.cac,
            ltv_365=f.ltv_365,
            ltv_horizon=f.ltv_horizon,
            ratio_365=f.ltv365_to_cac,
            ratio=f.ltv_to_cac,
            band=f.band or "no figure",
            payback_months=f.payback_months,
        )
        for f in sorted(economics.ltv_cac, key=lambda f: (f.scope, f.key))
    )


def business_ratios(
    economics: UnitEconomics, finance: FinanceSettings
) -> BusinessRatios:
    """Rule of 40 and the budget rules, as the unit economics measured them."""
    notes = []
    rule, budget, sm = economics.rule_of_40, economics.budget, economics.sales_marketing
    if rule is None:
        notes.append(
            "Rule of 40 needs the company's growth and EBITDA margin: set "
            "finance.revenue_growth_pct and finance.ebitda_margin_pct (or "
            "finance.file) in the config."
        )
    if budget is None:
        notes.append("The budget share needs finance.marketing_budget in the config.")
    if sm is None:
        notes.append(
            "Sales and marketing in months of revenue needs "
            "finance.sales_marketing_cost in the config."
        )
    return BusinessRatios(
        marketing_share=budget.share if budget else None,
        marketing_share_range=(finance.budget_share_min, finance.budget_share_max),
        marketing_basis=budget.basis if budget else "",
        sm_months=sm.months_of_revenue if sm else None,
        max_sm_months=finance.max_sales_marketing_months,
        sm_basis=sm.basis if sm else "",
        growth_pct=rule.growth_pct if rule else finance.revenue_growth_pct,
        ebitda_margin_pct=rule.ebitda_margin_pct if rule else finance.ebitda_margin_pct,
        rule_of_40=rule.score if rule else None,
        rule_of_40_threshold=finance.rule_of_40_threshold,
        notes=tuple(notes),
    )


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
    months, net of refunds; its band is a 90 % normal interval of that mean.
    The predicted points are the mean ``pltv_*`` of the users younger than a
    year, with the same kind of interval over users.
    """
    signup = users.set_index("user_id")["signup_at"]
    segment = users.set_index("user_id")["segment"].astype("string").fillna("(none)")
    ages = ((as_of - signup).dt.total_seconds() / 86400.0).to_numpy()
    position = pd.Series(np.arange(len(signup)), index=signup.index)

    rev = revenue[member_of(revenue["user_id"], signup.index)]
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
    - low basket: mean order amount (net of refunds, over payments) at most
      75 % of the account's.

    A refund is not an order: orders and the last purchase are payments.
    """
    facts = _user_facts(users, revenue, as_of)
    facts["channel"] = facts["campaign_id"].map(dict(channel_of)).fillna("(none)")
    facts["mature"] = facts["age_days"] >= MATURE_DAYS
    facts["churned"] = facts["mature"] & (facts["silent_days"] >= CHURN_SILENCE_DAYS)
    facts["repeated"] = facts["mature"] & (facts["orders"] >= 2)
    mature = facts[facts["mature"]]
    account_churn = _churn(mature)
    account_repeat = _repeat(mature)
    account_basket = _basket(facts)
    flags = []
    for kind in ("segment", "channel"):
        # One grouped pass per kind: a channel per campaign makes thousands
        # of groups, and filtering the table once per group took a minute.
        groups = facts.groupby(kind, sort=True)[
            ["mature", "churned", "repeated", "orders", "amount"]
        ].sum()
        groups["users"] = facts.groupby(kind, sort=True).size()
        for group, row in groups.iterrows():
            old = int(row["mature"])
            if old >= MIN_FLAG_USERS:
                churn = float(row["churned"]) / old * 100
                if churn >= account_churn + CHURN_MARGIN_POINTS:
                    flags.append(
                        RiskFlag(
                            kind,
                            str(group),
                            "high churn",
                            churn,
                            account_churn,
                            "%",
                            old,
                        )
                    )
                repeat = float(row["repeated"]) / old * 100
                if repeat == 0 or repeat <= account_repeat - REPEAT_MARGIN_POINTS:
                    flags.append(
                        RiskFlag(
                            kind,
                            str(group),
                            "no repeat purchase",
                            repeat,
                            account_repeat,
                            "%",
                            old,
                        )
                    )
            orders = float(row["orders"])
            basket = float(row["amount"]) / orders if orders > 0 else 0.0
            count = int(row["users"])
            if count >= MIN_FLAG_USERS and basket <= BASKET_SHARE * account_basket:
                flags.append(
                    RiskFlag(
                        kind,
                        str(group),
                        "low basket",
                        basket,
                        account_basket,
                        "currency",
                        count,
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
    known = revenue[revenue["occurred_at"] < as_of]
    seen = known.groupby("user_id")
    # Orders and the last one are payments; the amount is net of refunds.
    payments = known[known["amount"].ge(0).to_numpy()].groupby("user_id")
    facts = facts.set_index("user_id")
    facts["orders"] = payments.size().reindex(facts.index, fill_value=0)
    facts["amount"] = seen["amount"].sum().reindex(facts.index, fill_value=0.0)
    last = payments["occurred_at"].max().reindex(facts.index)
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
