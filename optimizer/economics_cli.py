"""The ``valuebid economics`` and ``valuebid case`` commands, and their tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from config import Settings, load_settings
from connectors.files import Inputs, load_inputs
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.cases import HireCase, SpendCase, hire_case, spend_case
from optimizer.console import command_console, fail_cleanly
from optimizer.days import account_today, refuse_day_ahead, start_of_day
from optimizer.plausibility import (
    Signal,
    describe_signals,
    implausible_signals,
    limit_keys,
)
from optimizer.policy import IMPLAUSIBLE
from optimizer.unit_economics import UnitEconomics, compute_unit_economics

console = command_console()
errors = command_console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The YAML config file.", dir_okay=False)
]
RunDateOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--run-date",
        formats=["%Y-%m-%d"],
        help="Measure as of the start of this day (account time zone); default today.",
    ),
]

case_app = typer.Typer(
    help="Business cases: what extra spend buys, what a hire must bring.",
    no_args_is_help=True,
)


def economics_command(config: ConfigOption, run_date: RunDateOption = None) -> None:
    """Print CAC, LTV at 1/3/5 years, LTV/CAC bands, payback and company rules.

    Inputs off by orders of magnitude from the config's CAC caps (revenue in
    cents, cost in micros) are warned about before the tables, as ``valuebid
    check`` does; the tables are printed all the same.
    """
    with fail_cleanly(config):
        settings = load_settings(config)
        with console.status("Measuring unit economics"):
            measured = measure(settings, run_date.date() if run_date else None)
    warn_implausible(settings, measured.implausible, "The tables below are")
    show_economics(measured.economics)


@case_app.command("spend")
def spend_command(
    config: ConfigOption,
    market: Annotated[
        str, typer.Option("--market", "-m", help="Market code, e.g. FR.")
    ],
    amount: Annotated[float, typer.Option("--amount", help="Spend, account currency.")],
    run_date: RunDateOption = None,
) -> None:
    """Customers, 1- and 3-year value, payback and budget fit of extra spend."""
    with fail_cleanly(config):
        settings = load_settings(config)
        with console.status("Measuring unit economics"):
            measured = measure(settings, run_date.date() if run_date else None)
        case = spend_case(settings, measured.economics, market.upper(), amount)
    warn_implausible(settings, measured.implausible, "This case is")
    show_spend_case(case)


@case_app.command("hire")
def hire_command(
    config: ConfigOption,
    cost: Annotated[float, typer.Option("--cost", help="Yearly cost of the hire.")],
    run_date: RunDateOption = None,
) -> None:
    """The ARR a hire must bring to pay back within the configured period."""
    with fail_cleanly(config):
        settings = load_settings(config)
        with console.status("Measuring unit economics"):
            measured = measure(settings, run_date.date() if run_date else None)
        case = hire_case(settings, cost, measured.economics)
    warn_implausible(settings, measured.implausible, "This case is")
    show_hire_case(case)


@dataclass(frozen=True)
class Measured:
    """The unit economics, and the inputs' figures beyond their plausible limits.

    ``implausible`` holds what the daily cycle's plausibility guardrail
    would hold the day for (see :mod:`optimizer.plausibility`); empty when
    the inputs are within the limits.
    """

    economics: UnitEconomics
    implausible: tuple[Signal, ...] = ()


def measure(settings: Settings, run_date: dt.date | None) -> Measured:
    """Read the inputs, score them with the current model and measure.

    Read-only: with no current model one is trained in memory and not
    registered, so measuring never changes what the daily cycle uses. The
    inputs are set against the markets' CAC caps as a cycle run sets them.
    """
    zone = settings.account.time_zone
    if run_date is not None:
        refuse_day_ahead(run_date, zone, "measured")
    as_of = start_of_day(run_date or account_today(zone), zone)
    inputs = _inputs(settings, as_of)
    model = ModelRegistry(settings.model.directory).current()
    if model is None:
        model = PLTVModel(max_train_users=settings.model.max_train_users).fit(
            inputs.users, inputs.revenue, as_of, inputs.events
        )
    scores = model.predict(inputs.users, inputs.revenue, as_of, inputs.events)
    return Measured(
        compute_unit_economics(settings, inputs, scores, as_of),
        implausible_signals(settings, inputs, as_of),
    )


def warn_implausible(
    settings: Settings, signals: tuple[Signal, ...], subject: str
) -> None:
    """Warn on stderr that figures rest on implausible inputs, if they do.

    The same sentence as ``valuebid check`` and a held run give (market,
    figure, cap, ratio, limit, likely cause), then what it means for the
    figures and what to do. Nothing is refused: the figures are a report.

    Parameters
    ----------
    settings
        The config (account currency, observation window).
    signals
        The figures beyond their limits; nothing is printed when empty.
    subject
        The start of the sentence about the figures shown, e.g. "The tables
        below are".
    """
    if not signals:
        return
    found = describe_signals(settings, signals)
    # The likely cause ends the sentence as a question.
    stop = "" if found.endswith("?") else "."
    errors.print(
        f"[yellow]warning:[/yellow] {found}{stop} "
        f"{subject} measured on these inputs, so likely off by orders of "
        "magnitude. Check the exports' units; if "
        f"the figures are real, raise {limit_keys(signals)} in the config. "
        "Until then a daily run on these inputs holds every target and sends "
        f"no value ({IMPLAUSIBLE}).",
        highlight=False,
        soft_wrap=True,
    )


def show_economics(economics: UnitEconomics) -> None:
    """Print the unit economics as tables."""
    money = economics.currency
    console.print(
        f"[bold]Unit economics[/bold] ({money}, LTV on {economics.value_basis}); "
        f"CAC cohort {economics.period_start} to {economics.period_end}"
    )
    cac = Table(title="CAC: cost over new paying users")
    for header in ("scope", "key", "cost", "activations", "new paying", "CAC"):
        cac.add_column(
            header, justify="left" if header in ("scope", "key") else "right"
        )
    for figure in economics.cac:
        cac.add_row(
            figure.scope,
            figure.key,
            f"{figure.cost:,.0f}",
            f"{figure.activations:,}",
            f"{figure.new_paying:,}",
            _money(figure.cac),
        )
    console.print(cac)

    ltv = Table(title="LTV per paying customer (r = realized, p = predicted)")
    for header in ("scope", "key", "1 year", "3 years", "5 years"):
        ltv.add_column(
            header, justify="left" if header in ("scope", "key") else "right"
        )
    keys = sorted({(f.scope, f.key) for f in economics.ltv})
    for scope, key in keys:
        cells = []
        for horizon in (365, 1095, 1825):
            point = economics.ltv_of(scope, key, horizon)
            if point is None or point.ltv is None:
                cells.append("-")
            else:
                cells.append(f"{point.ltv:,.0f} {point.source[0]}")
        ltv.add_row(scope, key, *cells)
    console.print(ltv)

    years = economics.ltv_horizon_days // 365
    ratios = Table(title=f"LTV/CAC ({years}-year LTV) and payback")
    for header in ("scope", "key", "CAC", "LTV_365/CAC", "LTV/CAC", "band", "payback"):
        ratios.add_column(
            header, justify="left" if header in ("scope", "key", "band") else "right"
        )
    for row in economics.ltv_cac:
        ratios.add_row(
            row.scope,
            row.key,
            _money(row.cac),
            _ratio(row.ltv365_to_cac),
            _ratio(row.ltv_to_cac),
            row.band or "-",
            "-" if row.payback_months is None else f"{row.payback_months:.1f} mo",
        )
    console.print(ratios)
    _show_company(economics)


def _show_company(economics: UnitEconomics) -> None:
    money = economics.currency
    rule = economics.rule_of_40
    if rule is None:
        console.print(
            "Rule of 40: set finance.revenue_growth_pct and ebitda_margin_pct."
        )
    else:
        console.print(
            f"Rule of 40: growth {rule.growth_pct:.1f} % + EBITDA margin "
            f"{rule.ebitda_margin_pct:.1f} % = {rule.score:.1f} "
            f"({'meets' if rule.passes else 'below'} {rule.threshold:.0f}; "
            f"from {rule.source})"
        )
    budget = economics.budget
    if budget is not None:
        share = "-" if budget.share is None else f"{budget.share:.1%}"
        console.print(
            f"Marketing budget {budget.marketing_budget:,.0f} {money} is {share} of "
            f"expected new revenue {budget.expected_new_revenue:,.0f} {money}: "
            f"{budget.status} the {budget.share_min:.0%}-{budget.share_max:.0%} band "
            f"({budget.basis})."
        )
    sm = economics.sales_marketing
    if sm is not None:
        months = "-" if sm.months_of_revenue is None else f"{sm.months_of_revenue:.1f}"
        console.print(
            f"Sales and marketing {sm.cost:,.0f} {money} = {months} months of the "
            f"revenue it generates (must be under {sm.max_months:.0f}): "
            f"{'OK' if sm.passes else 'too high'} ({sm.basis})."
        )


def show_spend_case(case: SpendCase) -> None:
    """Print a spend case."""
    money = case.currency
    table = Table(title=f"Spend {case.amount:,.0f} {money} in {case.market}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("CAC used", f"{case.cac:,.2f} {money} ({case.cac_source})"),
        ("new paying customers", f"{case.customers:,.1f}"),
        ("their 1-year value", f"{case.value_1y:,.0f} {money}"),
        ("their 3-year value", f"{case.value_3y:,.0f} {money}"),
        (
            "payback",
            "-" if case.payback_months is None else f"{case.payback_months:.1f} months",
        ),
        ("LTV/CAC", f"{case.ltv_to_cac:.2f} ({case.band})"),
    ]
    budgets = [case.account_budget, case.market_budget]
    for landing in filter(None, budgets):
        rows.append(
            (
                f"budget rule, {landing.scope}",
                f"{_share(landing.share_before)} -> {_share(landing.share_after)} "
                f"of new revenue: {landing.status} the {landing.share_min:.0%}-"
                f"{landing.share_max:.0%} band",
            )
        )
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for landing in filter(None, budgets):
        console.print(
            f"Budget rule, {landing.scope}: {landing.spend_before:,.0f} {money} "
            f"of marketing spend a year over {landing.revenue_before:,.0f} {money} "
            "of expected new revenue, then with this spend and its customers' "
            f"first-year revenue added ({landing.basis}).",
            highlight=False,
        )
    console.print(
        f"Customers and values are a linear extrapolation at the current CAC "
        f"of {case.market}: each {money} buys as many customers as one did in "
        "the cohort period.",
        highlight=False,
    )
    if case.beyond_observed:
        if case.spend_multiple is None:
            seen = f"{case.market} has no observed ad spend to compare it with"
        else:
            seen = (
                f"it is {case.spend_multiple:,.1f}x the ad spend of a year in "
                f"{case.market} at its current rate "
                f"({case.market_spend_year:,.0f} {money})"
            )
        errors.print(
            f"[yellow]warning:[/yellow] {case.amount:,.0f} {money} is far "
            f"beyond what was observed: {seen}. CAC rises as spend grows, so "
            "expect fewer customers than this case shows.",
            highlight=False,
            soft_wrap=True,
        )


def show_hire_case(case: HireCase) -> None:
    """Print a hire case."""
    money = case.currency
    console.print(
        f"A hire costing {case.cost:,.0f} {money} a year must bring "
        f"[bold]{case.arr_required:,.0f} {money} of new ARR[/bold] to pay back "
        f"within {case.payback_months} months at a {case.gross_margin:.0%} gross "
        "margin."
    )
    if case.customers_required is not None:
        console.print(
            f"That is about {case.customers_required:,.1f} new paying customers at "
            "the account's first-year revenue per customer."
        )


def _inputs(settings: Settings, as_of: pd.Timestamp) -> Inputs:
    # No state folder: measuring writes no cache and no quarantine file.
    return load_inputs(
        settings.data,
        currency=settings.account.currency,
        now=max(pd.Timestamp.now(tz="UTC"), as_of),
        time_zone=settings.account.time_zone,
    )


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
