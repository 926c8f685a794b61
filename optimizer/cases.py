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
    budget_share, fits_budget, budget_basis
        Marketing spend over expected new revenue with this spend included,
        whether it stays at or under the configured maximum, and on what.
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
    budget_share: float | None
    fits_budget: bool
    budget_basis: str


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
    share, fits, basis = _budget_fit(settings, economics, amount, revenue_1y)
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
        budget_share=share,
        fits_budget=fits,
        budget_basis=basis,
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


def _budget_fit(
    settings: Settings, economics: UnitEconomics, amount: float, revenue_1y: float
) -> tuple[float | None, bool, str]:
    """Marketing spend over new revenue, this case included, against the maximum."""
    finance = settings.finance
    budget = economics.budget
    if budget is not None and finance.marketing_budget is not None:
        spend = budget.marketing_budget + amount
        revenue = budget.expected_new_revenue + revenue_1y
        basis = (
            "the marketing budget plus this spend, over expected new revenue "
            "plus the first-year revenue of this spend"
        )
    else:
        spend, revenue = amount, revenue_1y
        basis = "this spend over the first-year revenue it brings"
    share = spend / revenue if revenue > 0 else None
    fits = share is not None and share <= finance.budget_share_max
    return share, fits, basis
