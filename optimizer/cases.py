"""Business cases: what extra spend in a market buys, and what a hire must bring.

Both read the account's measured unit economics (:mod:`optimizer.unit_economics`)
and the company rules of the config's ``finance`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.schema import Settings
from optimizer.exceptions import PlanningError
from optimizer.unit_economics import (
    ACCOUNT,
    LtvFigure,
    UnitEconomics,
    ltv_cac_band,
    payback_months,
)


@dataclass(frozen=True)
class BudgetLanding:
    """Where a scope's marketing budget ratio lands once a spend is added.

    The rule (DESIGN.md, "The ratios it enforces") keeps marketing spend at
    ``share_min`` to ``share_max`` of expected new revenue. ``before`` is the
    ratio today; ``after`` adds the spend to the marketing spend and its
    first-year revenue to the expected new revenue.

    Attributes
    ----------
    scope
        ``account``, or the market's code.
    spend_before, revenue_before
        A year's marketing spend and expected new revenue today.
    share_before, share_after
        Spend over new revenue, before and with the case; ``None`` without
        new revenue.
    status
        Where ``share_after`` lands: ``under``, ``within`` or ``over`` the band.
    basis
        Where the figures come from, in words.
    """

    scope: str
    spend_before: float
    revenue_before: float
    share_before: float | None
    share_after: float | None
    share_min: float
    share_max: float
    status: str
    basis: str


@dataclass(frozen=True)
class SpendCase:
    """What spending ``amount`` in ``market`` is expected to return.

    Attributes
    ----------
    cac, cac_source
        Cost per new paying customer used, and where it comes from
        (``observed`` in the cohort, or the market's ``benchmark``).
    customers
        New paying customers expected: ``amount / cac``.
    value_1y, value_3y
        Their value at 1 and 3 years (on the bidding basis).
    revenue_1y
        Their revenue in the first year (the budget rule is on revenue).
    account_budget, market_budget
        Where the account's and the market's marketing budget ratios land
        with this spend added to their current spend.
    market_spend_year
        The market's ad spend of a year at its current rate (the cohort
        period's, annualized); 0 when it has no observed spend.
    spend_multiple
        ``amount`` over ``market_spend_year``; ``None`` when that is 0.
    beyond_observed
        The amount is more than :data:`EXTRAPOLATION_MULTIPLE` times the
        market's spend of a year (or the market has none): the linear
        extrapolation at today's CAC is then unlikely to hold.
    """

    market: str
    amount: float
    currency: str
    cac: float
    cac_source: str
    customers: float
    value_1y: float
    value_3y: float
    revenue_1y: float
    payback_months: float | None
    ltv_to_cac: float
    band: str
    account_budget: BudgetLanding | None
    market_budget: BudgetLanding
    market_spend_year: float
    spend_multiple: float | None
    beyond_observed: bool


@dataclass(frozen=True)
class HireCase:
    """The ARR a hire must bring to pay back its cost in the configured period.

    ``arr_required = cost * 12 / (payback_months * gross_margin)``: the
    margin of that ARR over the payback period equals the cost.
    """

    cost: float
    currency: str
    payback_months: int
    gross_margin: float
    arr_required: float
    customers_required: float | None


#: Largest spend a case is computed for, in the account currency.
MAX_AMOUNT = 1e12

#: A spend case is a linear extrapolation at today's CAC; past this multiple
#: of the market's spend of a year, CAC rises as the cheapest demand is
#: bought first, so the case says it is outside what was observed.
EXTRAPOLATION_MULTIPLE = 2.0


def spend_case(
    settings: Settings, economics: UnitEconomics, market: str, amount: float
) -> SpendCase:
    """Expected customers, value, payback and budget fit of extra spend.

    Parameters
    ----------
    settings
        The config (markets, economics, finance).
    economics
        The account's measured unit economics.
    market
        A market code of the config.
    amount
        Spend in the account currency.

    Returns
    -------
    SpendCase

    Raises
    ------
    PlanningError
        The market is not configured, the amount is not positive, or the
        market has no measured 1-year or 3-year LTV.
    """
    if market not in settings.markets:
        raise PlanningError(
            f"market {market!r} is not in the config; known: {sorted(settings.markets)}"
        )
    if not math.isfinite(amount) or amount <= 0:
        raise PlanningError(f"spend amount must be positive, got {amount!r}")
    if amount > MAX_AMOUNT:
        # Past this the products below overflow to inf and the budget share
        # reads as 0 %, which would call any spend affordable.
        raise PlanningError(
            f"spend amount {amount:g} is beyond any marketing budget "
            f"(at most {MAX_AMOUNT:g}); check the units"
        )

    observed = economics.cac_of("market", market)
    if observed is not None and observed.cac is not None:
        cac, source = observed.cac, "observed"
    else:
        cac, source = settings.markets[market].cac_max, "benchmark"
    ltv: dict[int, float] = {}
    for horizon in (365, 1095, 1825):
        figure = _ltv(economics, market, horizon)
        if figure is not None and figure.ltv:
            ltv[horizon] = figure.ltv
    if 365 not in ltv or 1095 not in ltv:
        raise PlanningError(
            f"market {market} has no measured 1-year and 3-year LTV; it needs "
            "paying customers in its history"
        )

    customers = amount / cac
    margin = settings.economics.gross_margin or 1.0
    revenue_1y = customers * ltv[365] / margin
    horizon_ltv = ltv.get(settings.economics.ltv_horizon_days, ltv[1095])
    ratio = horizon_ltv / cac
    market_spend, market_revenue = _market_year(settings, economics, market)
    market_budget = _landing(
        settings,
        market,
        market_spend,
        market_revenue,
        amount,
        revenue_1y,
        "the market's ad spend of the cohort period, annualized; new revenue = "
        "its new paying customers a year x 1-year revenue each",
    )
    account_budget = None
    if economics.budget is not None:
        account_budget = _landing(
            settings,
            "account",
            economics.budget.marketing_budget,
            economics.budget.expected_new_revenue,
            amount,
            revenue_1y,
            economics.budget.basis,
        )
    multiple = amount / market_spend if market_spend > 0 else None
    return SpendCase(
        market=market,
        amount=amount,
        currency=economics.currency,
        cac=cac,
        cac_source=source,
        customers=customers,
        value_1y=customers * ltv[365],
        value_3y=customers * ltv[1095],
        revenue_1y=revenue_1y,
        payback_months=payback_months(cac, ltv),
        ltv_to_cac=ratio,
        band=ltv_cac_band(ratio),
        account_budget=account_budget,
        market_budget=market_budget,
        market_spend_year=market_spend,
        spend_multiple=multiple,
        beyond_observed=multiple is None or multiple > EXTRAPOLATION_MULTIPLE,
    )


def hire_case(
    settings: Settings, cost: float, economics: UnitEconomics | None = None
) -> HireCase:
    """The ARR a hire costing ``cost`` a year must bring to pay back in time.

    Parameters
    ----------
    settings
        The config; ``finance.hire_payback_months`` and
        ``economics.gross_margin`` (1 when unset) are used.
    cost
        The hire's fully loaded yearly cost, account currency.
    economics
        When given, the ARR is also expressed in new paying customers at the
        account's 1-year revenue per customer.

    Returns
    -------
    HireCase

    Raises
    ------
    PlanningError
        The cost is not positive.
    """
    if not math.isfinite(cost) or cost <= 0:
        raise PlanningError(f"hire cost must be positive, got {cost!r}")
    months = settings.finance.hire_payback_months
    margin = settings.economics.gross_margin or 1.0
    arr = cost * 12 / (months * margin)
    customers = None
    if economics is not None:
        year = economics.ltv_of("account", ACCOUNT, 365)
        if year is not None and year.ltv:
            customers = arr / (year.ltv / margin)
    return HireCase(
        cost=cost,
        currency=settings.account.currency,
        payback_months=months,
        gross_margin=margin,
        arr_required=arr,
        customers_required=customers,
    )


def _ltv(economics: UnitEconomics, market: str, horizon: int) -> LtvFigure | None:
    """The market's LTV at ``horizon``, else the account's."""
    figure = economics.ltv_of("market", market, horizon)
    if figure is None or figure.ltv is None:
        figure = economics.ltv_of("account", ACCOUNT, horizon)
    return figure


def _market_year(
    settings: Settings, economics: UnitEconomics, market: str
) -> tuple[float, float]:
    """The market's ad spend and new revenue of a year at the cohort's rate."""
    days = (economics.period_end - economics.period_start).days + 1
    annual = 365.0 / days
    observed = economics.cac_of("market", market)
    if observed is None:
        return 0.0, 0.0
    year = _ltv(economics, market, 365)
    margin = settings.economics.gross_margin or 1.0
    revenue_each = (year.ltv or 0.0) / margin if year is not None else 0.0
    return observed.cost * annual, observed.new_paying * annual * revenue_each


def _landing(
    settings: Settings,
    scope: str,
    spend: float,
    revenue: float,
    amount: float,
    revenue_1y: float,
    basis: str,
) -> BudgetLanding:
    """Where ``scope``'s budget ratio lands once ``amount`` is added."""
    finance = settings.finance
    before = spend / revenue if revenue > 0 else None
    total = revenue + revenue_1y
    after = (spend + amount) / total if total > 0 else None
    if after is None or after > finance.budget_share_max:
        status = "over"
    elif after < finance.budget_share_min:
        status = "under"
    else:
        status = "within"
    return BudgetLanding(
        scope=scope,
        spend_before=spend,
        revenue_before=revenue,
        share_before=before,
        share_after=after,
        share_min=finance.budget_share_min,
        share_max=finance.budget_share_max,
        status=status,
        basis=basis,
    )
