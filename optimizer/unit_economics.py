"""Unit economics of the account: CAC, LTV, LTV/CAC, payback and company rules.

CAC is cost over new *paying* users. It is measured on a matched cohort: the
campaign cost of the stats days whose activations have had
``economics.paying_lag_days`` to start paying, over the users those days
brought who have paid and kept some of it (a user refunded in full does not
pay). Segments have no cost of their own; a campaign's cost is shared among
its segments by their share of its activations.

LTV is per paying customer, net of refunds, on the bidding basis (gross
margin when ``economics.gross_margin`` is set, revenue otherwise). At each
horizon it is *realized* when enough customers of the segment are old enough
to have lived it, and *predicted* otherwise (the model's ``pltv_<days>`` over
the last year's matured users, divided by how many of them pay).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from config.schema import FinanceSettings, Settings
from connectors.contracts import member_of
from connectors.files import Inputs
from connectors.refunds import paying_users
from optimizer.exceptions import PlanningError
from optimizer.planner import campaign_countries, market_of

HORIZONS = (365, 1095, 1825)
#: Paying customers a cohort needs before its realized LTV is trusted.
MIN_REALIZED_PAYERS = 30
#: LTV/CAC bands used by SaaS operators (design brief, "The ratios it enforces").
INSUFFICIENT = "insufficient"
SATISFACTORY = "satisfactory"
EXCELLENT = "excellent"
ACCOUNT = "all"


def ltv_cac_band(ratio: float) -> str:
    """Band of LTV/CAC: below 3 insufficient, 3 to 5 satisfactory, above excellent."""
    if ratio < 3:
        return INSUFFICIENT
    if ratio <= 5:
        return SATISFACTORY
    return EXCELLENT


@dataclass(frozen=True)
class CacFigure:
    """Cost over new paying users for one market, segment or campaign.

    ``cac`` is ``None`` when the cohort has no paying user yet.
    """

    scope: str
    key: str
    cost: float
    activations: int
    new_paying: int
    cac: float | None


@dataclass(frozen=True)
class LtvFigure:
    """LTV per paying customer of one group at one horizon.

    ``sample_size`` is the number of paying customers behind a realized
    figure, or of users whose predictions shaped a predicted one.
    """

    scope: str
    key: str
    horizon_days: int
    ltv: float | None
    source: str
    sample_size: int


@dataclass(frozen=True)
class LtvCacFigure:
    """LTV/CAC of one market or segment, its band and payback."""

    scope: str
    key: str
    cac: float | None
    ltv_365: float | None
    ltv_horizon: float | None
    ltv365_to_cac: float | None
    ltv_to_cac: float | None
    band: str | None
    payback_months: float | None


@dataclass(frozen=True)
class RuleOf40:
    """Growth % plus EBITDA margin %, against the threshold (default 40)."""

    growth_pct: float
    ebitda_margin_pct: float
    score: float
    threshold: float
    passes: bool
    source: str


@dataclass(frozen=True)
class BudgetCheck:
    """Marketing budget against the 15-20 % of expected new revenue it should be."""

    marketing_budget: float
    expected_new_revenue: float
    share: float | None
    share_min: float
    share_max: float
    status: str
    basis: str


@dataclass(frozen=True)
class SalesMarketingCheck:
    """Total sales and marketing cost against 12 months of the revenue it brings."""

    cost: float
    twelve_month_revenue: float
    months_of_revenue: float | None
    max_months: float
    passes: bool
    basis: str


@dataclass(frozen=True)
class UnitEconomics:
    """Every figure of :func:`compute_unit_economics`, in ``currency``."""

    currency: str
    value_basis: str
    ltv_horizon_days: int
    period_start: dt.date
    period_end: dt.date
    cac: tuple[CacFigure, ...]
    ltv: tuple[LtvFigure, ...]
    ltv_cac: tuple[LtvCacFigure, ...]
    rule_of_40: RuleOf40 | None
    budget: BudgetCheck | None
    sales_marketing: SalesMarketingCheck | None

    def cac_of(self, scope: str, key: str) -> CacFigure | None:
        """The CAC figure of one group, if measured."""
        return next((f for f in self.cac if f.scope == scope and f.key == key), None)

    def ltv_of(self, scope: str, key: str, horizon_days: int) -> LtvFigure | None:
        """The LTV figure of one group at one horizon, if measured."""
        return next(
            (
                f
                for f in self.ltv
                if f.scope == scope and f.key == key and f.horizon_days == horizon_days
            ),
            None,
        )


def compute_unit_economics(
    settings: Settings, inputs: Inputs, scores: pd.DataFrame, as_of: pd.Timestamp
) -> UnitEconomics:
    """Measure CAC, LTV, LTV/CAC, payback and the company-level rules.

    Parameters
    ----------
    settings
        The config (markets, economics, finance).
    inputs
        The canonical tables.
    scores
        The model's predictions per user (``pltv_365``, ``pltv_1095``,
        ``pltv_1825``).
    as_of
        Start of the day measured, UTC.

    Returns
    -------
    UnitEconomics

    Raises
    ------
    PlanningError
        The stats period is too short to leave a matured cohort, or the
        finance file is unreadable.
    """
    margin = settings.economics.gross_margin or 1.0
    lag = settings.economics.paying_lag_days
    users = _users(inputs, scores, as_of)
    campaigns = _campaign_markets(settings, inputs, users)
    start, end = _cohort_period(inputs.campaign_stats, as_of, lag)

    cohort = users[
        users["campaign_id"].notna()
        & (users["acquired_day"] >= start)
        & (users["acquired_day"] <= end)
    ]
    stats = inputs.campaign_stats
    stats = stats[(stats["date"] >= start) & (stats["date"] <= end)]
    cac = _cac_figures(stats, cohort, campaigns)

    ltv = _ltv_figures(users, inputs.revenue, as_of, margin, lag)
    horizon = settings.economics.ltv_horizon_days
    cac_by = {(f.scope, f.key): f.cac for f in cac}
    ltv_by = {(f.scope, f.key, f.horizon_days): f.ltv for f in ltv}
    ratios = tuple(
        _ratio(scope, key, cac_by.get((scope, key)), ltv_by, horizon)
        for scope, key in sorted(
            {(f.scope, f.key) for f in cac if f.scope != "campaign"}
        )
    )

    days = (end - start).days + 1
    annual = 365.0 / days
    ad_spend = float(stats["cost"].sum()) * annual
    new_paying = float(cohort["has_paid"].sum()) * annual
    revenue_365 = ltv_by.get(("account", ACCOUNT, 365))
    new_revenue = new_paying * (revenue_365 or 0.0) / margin
    finance = _finance_figures(settings.finance)
    return UnitEconomics(
        currency=settings.account.currency,
        value_basis="gross margin" if settings.economics.gross_margin else "revenue",
        ltv_horizon_days=horizon,
        period_start=start.date(),
        period_end=end.date(),
        cac=tuple(cac),
        ltv=tuple(ltv),
        ltv_cac=ratios,
        rule_of_40=_rule_of_40(settings.finance, finance),
        budget=_budget(settings.finance, finance, ad_spend, new_revenue),
        sales_marketing=_sales_marketing(
            settings.finance, finance, ad_spend, new_revenue
        ),
    )


def payback_months(cac: float, ltv: dict[int, float]) -> float | None:
    """Months of value needed to earn back ``cac``; ``None`` beyond five years.

    Value accrues linearly between the LTV points at 0, 12, 36 and 60
    months: a subscription earns about evenly within each stretch.
    """
    months = [0.0, 12.0, 36.0, 60.0]
    values = [
        0.0,
        ltv.get(365, math.nan),
        ltv.get(1095, math.nan),
        ltv.get(1825, math.nan),
    ]
    points = [(m, v) for m, v in zip(months, values, strict=True) if math.isfinite(v)]
    for (m0, v0), (m1, v1) in itertools.pairwise(points):
        if v1 >= cac and v1 > v0:
            return m0 + (m1 - m0) * max(cac - v0, 0.0) / (v1 - v0)
    return None


def _users(inputs: Inputs, scores: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    users = inputs.users[inputs.users["signup_at"] < as_of].merge(
        scores[["user_id", "pltv_365", "pltv_1095", "pltv_1825"]],
        on="user_id",
        how="left",
    )
    users["acquired_at"] = users["activated_at"].fillna(users["signup_at"])
    users["acquired_day"] = users["acquired_at"].dt.tz_localize(None).dt.normalize()
    revenue = inputs.revenue[inputs.revenue["occurred_at"] < as_of]
    users["has_paid"] = member_of(users["user_id"], paying_users(revenue))
    users["segment"] = users["segment"].fillna("(none)")
    return users


def _campaign_markets(
    settings: Settings, inputs: Inputs, users: pd.DataFrame
) -> dict[str, str]:
    names = inputs.campaign_stats.groupby("campaign_id")["campaign_name"].last()
    countries = campaign_countries(users)
    return {
        str(cid): market_of(settings, str(cid), str(n), countries)
        for cid, n in names.items()
    }


def _cohort_period(
    stats: pd.DataFrame, as_of: pd.Timestamp, lag: int
) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(stats["date"].min())
    end = min(
        pd.Timestamp(stats["date"].max()),
        as_of.tz_localize(None).normalize() - pd.Timedelta(days=lag + 1),
    )
    if end < start:
        raise PlanningError(
            f"campaign stats cover {start.date()} to {stats['date'].max():%Y-%m-%d}; "
            f"no day is {lag} days old (economics.paying_lag_days), so no cohort "
            "has had time to pay"
        )
    return start, end


def _cac_figures(
    stats: pd.DataFrame, cohort: pd.DataFrame, campaigns: dict[str, str]
) -> list[CacFigure]:
    cost = stats.groupby("campaign_id")["cost"].sum()
    # Counted once per campaign, then summed per market: filtering the cohort
    # once per campaign took seconds with thousands of campaigns.
    counted = cohort.groupby("campaign_id")["has_paid"].agg(["size", "sum"])
    sizes, paid = counted["size"].to_dict(), counted["sum"].to_dict()
    figures = []
    for cid in sorted(campaigns):
        spent = float(cost.get(cid, 0.0))
        activations, paying = int(sizes.get(cid, 0)), int(paid.get(cid, 0))
        figures.append(_cac_of("campaign", cid, spent, activations, paying))
    for market in sorted(set(campaigns.values())):
        ids = [c for c, m in campaigns.items() if m == market]
        activations = sum(int(sizes.get(c, 0)) for c in ids)
        paying = sum(int(paid.get(c, 0)) for c in ids)
        spent = float(cost.reindex(ids).sum())
        figures.append(_cac_of("market", market, spent, activations, paying))

    pairs = cohort.groupby(["campaign_id", "segment"]).size().rename("n").reset_index()
    pairs["share"] = pairs["n"] / pairs.groupby("campaign_id")["n"].transform("sum")
    pairs["cost"] = pairs["share"] * pairs["campaign_id"].map(cost).fillna(0.0)
    segment_cost = pairs.groupby("segment")["cost"].sum()
    for segment in sorted(cohort["segment"].unique()):
        mine = cohort[cohort["segment"] == segment]
        figures.append(
            _cac("segment", str(segment), float(segment_cost.get(segment, 0.0)), mine)
        )
    figures.append(_cac("account", ACCOUNT, float(cost.sum()), cohort))
    return figures


def _cac(scope: str, key: str, cost: float, cohort: pd.DataFrame) -> CacFigure:
    return _cac_of(scope, key, cost, len(cohort), int(cohort["has_paid"].sum()))


def _cac_of(
    scope: str, key: str, cost: float, activations: int, paying: int
) -> CacFigure:
    return CacFigure(
        scope=scope,
        key=key,
        cost=round(cost, 2),
        activations=activations,
        new_paying=paying,
        cac=cost / paying if paying else None,
    )


def _ltv_figures(
    users: pd.DataFrame,
    revenue: pd.DataFrame,
    as_of: pd.Timestamp,
    margin: float,
    lag: int,
) -> list[LtvFigure]:
    revenue = revenue[revenue["occurred_at"] < as_of]
    signup = revenue["user_id"].map(users.set_index("user_id")["signup_at"])
    age = (revenue["occurred_at"] - signup).dt.total_seconds() / 86400
    user_age = (as_of - users["signup_at"]).dt.total_seconds() / 86400
    recent = users[
        (users["acquired_at"] > as_of - pd.Timedelta(days=365))
        & (users["acquired_at"] <= as_of - pd.Timedelta(days=lag))
    ]
    groups = [("account", ACCOUNT, users.index)]
    for scope, column in (("segment", "segment"), ("market", "country")):
        for key, index in users.groupby(column).groups.items():
            groups.append((scope, str(key), index))

    figures = []
    for scope, key, index in groups:
        members = users.loc[index]
        realized: tuple[int, float] | None = None
        for horizon in HORIZONS:
            old = members[user_age.loc[index] >= horizon]
            inside = revenue[
                member_of(revenue["user_id"], old["user_id"]) & (age < horizon)
            ]
            payers = paying_users(inside).nunique()
            if payers >= MIN_REALIZED_PAYERS:
                ltv = float(inside["amount"].sum()) / payers * margin
                realized = (horizon, ltv)
                figures.append(LtvFigure(scope, key, horizon, ltv, "realized", payers))
                continue
            figures.append(
                _predicted_ltv(scope, key, horizon, members, recent, realized, margin)
            )
    return figures


def _predicted_ltv(
    scope: str,
    key: str,
    horizon: int,
    members: pd.DataFrame,
    recent: pd.DataFrame,
    realized: tuple[int, float] | None,
    margin: float,
) -> LtvFigure:
    """LTV at a horizon no cohort of the group has lived yet.

    Anchored on the longest realized horizon when there is one: its value
    grown by the model's predicted ratio between the two horizons over the
    group's users, so a model that is off in level does not move it. Without
    one, the model's value over the last year's matured users per payer.
    """
    if realized is not None:
        known, value = realized
        base = float(members[f"pltv_{known}"].sum())
        grown = float(members[f"pltv_{horizon}"].sum())
        if base > 0 and grown > 0:
            ltv = value * max(grown / base, 1.0)
            return LtvFigure(scope, key, horizon, ltv, "predicted", len(members))
    young = recent[recent.index.isin(members.index)]
    paying = int(young["has_paid"].sum())
    predicted = float(young[f"pltv_{horizon}"].sum())
    ltv_p = predicted / paying * margin if paying else None
    return LtvFigure(scope, key, horizon, ltv_p, "predicted", paying)


def _ratio(
    scope: str,
    key: str,
    cac: float | None,
    ltv: dict[tuple[str, str, int], float | None],
    horizon: int,
) -> LtvCacFigure:
    points = {h: v for h in HORIZONS if (v := ltv.get((scope, key, h))) is not None}
    year = points.get(365)
    long = points.get(horizon)
    ratio = long / cac if long is not None and cac else None
    return LtvCacFigure(
        scope=scope,
        key=key,
        cac=cac,
        ltv_365=year,
        ltv_horizon=long,
        ltv365_to_cac=year / cac if year is not None and cac else None,
        ltv_to_cac=ratio,
        band=ltv_cac_band(ratio) if ratio is not None else None,
        payback_months=payback_months(cac, points) if cac else None,
    )


@dataclass(frozen=True)
class _Finance:
    growth_pct: float | None
    ebitda_margin_pct: float | None
    marketing_budget: float | None
    sales_marketing_cost: float | None
    source: str


def _finance_figures(finance: FinanceSettings) -> _Finance:
    """Company figures: the config's keys, else the finance file's last two years."""
    growth, ebitda = finance.revenue_growth_pct, finance.ebitda_margin_pct
    budget, sm_cost = finance.marketing_budget, finance.sales_marketing_cost
    if finance.file is None:
        return _Finance(growth, ebitda, budget, sm_cost, "config")
    years = _read_finance_file(finance.file)
    last, before = years[-1], years[-2] if len(years) > 1 else None
    if growth is None and before is not None and before["revenue"] > 0:
        growth = (last["revenue"] / before["revenue"] - 1) * 100
    if ebitda is None and last["revenue"] > 0 and "ebitda" in last:
        ebitda = last["ebitda"] / last["revenue"] * 100
    budget = budget if budget is not None else last.get("marketing_budget")
    sm_cost = sm_cost if sm_cost is not None else last.get("sales_marketing_cost")
    return _Finance(growth, ebitda, budget, sm_cost, str(finance.file))


def _read_finance_file(path: Path) -> list[dict[str, float]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise PlanningError(f"{path}: cannot read the finance file: {exc}") from exc
    if not rows or "year" not in rows[0] or "revenue" not in rows[0]:
        raise PlanningError(
            f"{path}: the finance file needs a header with at least year and "
            "revenue (optionally ebitda, sales_marketing_cost, marketing_budget)"
        )
    parsed = []
    for number, row in enumerate(rows, start=2):
        values = {}
        for key, text in row.items():
            if text is None or text.strip() == "":
                continue
            try:
                values[key] = float(text)
            except ValueError:
                raise PlanningError(
                    f"{path}: line {number}, column {key}: {text!r} is not a number"
                ) from None
        parsed.append(values)
    return sorted(parsed, key=lambda r: r["year"])


def _rule_of_40(finance: FinanceSettings, figures: _Finance) -> RuleOf40 | None:
    if figures.growth_pct is None or figures.ebitda_margin_pct is None:
        return None
    score = figures.growth_pct + figures.ebitda_margin_pct
    return RuleOf40(
        growth_pct=figures.growth_pct,
        ebitda_margin_pct=figures.ebitda_margin_pct,
        score=score,
        threshold=finance.rule_of_40_threshold,
        passes=score >= finance.rule_of_40_threshold,
        source=figures.source,
    )


def _budget(
    finance: FinanceSettings, figures: _Finance, ad_spend: float, new_revenue: float
) -> BudgetCheck | None:
    budget = figures.marketing_budget
    basis = "marketing budget from " + figures.source
    if budget is None:
        budget, basis = ad_spend, "ad spend of the cohort period, annualized"
    expected = finance.expected_new_revenue
    if expected is None:
        expected = new_revenue
        basis += "; new revenue = new paying customers a year x 1-year revenue each"
    share = budget / expected if expected > 0 else None
    if share is None or share > finance.budget_share_max:
        status = "over"
    elif share < finance.budget_share_min:
        status = "under"
    else:
        status = "within"
    return BudgetCheck(
        marketing_budget=budget,
        expected_new_revenue=expected,
        share=share,
        share_min=finance.budget_share_min,
        share_max=finance.budget_share_max,
        status=status,
        basis=basis,
    )


def _sales_marketing(
    finance: FinanceSettings, figures: _Finance, ad_spend: float, new_revenue: float
) -> SalesMarketingCheck | None:
    cost = figures.sales_marketing_cost
    basis = "sales and marketing cost from " + figures.source
    if cost is None:
        cost, basis = ad_spend, "ad spend only (no sales_marketing_cost configured)"
    months = cost / (new_revenue / 12) if new_revenue > 0 else None
    return SalesMarketingCheck(
        cost=cost,
        twelve_month_revenue=new_revenue,
        months_of_revenue=months,
        max_months=finance.max_sales_marketing_months,
        passes=months is not None and months < finance.max_sales_marketing_months,
        basis=basis,
    )


__all__ = [
    "BudgetCheck",
    "CacFigure",
    "LtvCacFigure",
    "LtvFigure",
    "RuleOf40",
    "SalesMarketingCheck",
    "UnitEconomics",
    "compute_unit_economics",
    "ltv_cac_band",
    "payback_months",
]
