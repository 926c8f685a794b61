"""The ``valuebid`` command."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from config import load_settings
from config.schema import Settings
from connectors.countries import country_hint, unknown_countries
from models.cli import model_app
from models.registry import ModelRegistry
from optimizer import days
from optimizer.apply import ApplyReport, Approval
from optimizer.commands import (
    approve_command,
    first_run_command,
    run_command,
    runs_command,
)
from optimizer.console import (
    EXPECTED_ERRORS,
    command_console,
    config_secrets,
    fail_cleanly,
)
from optimizer.cycle import CycleResult, require_model_inputs, run_cycle
from optimizer.economics_cli import case_app, economics_command
from optimizer.exceptions import OptimizerError
from optimizer.masking import mask_secrets
from optimizer.plan import PlanRow
from optimizer.planner import (
    PLACED_BY_DEFAULT,
    campaign_countries,
    placement,
    stale_stats,
)
from optimizer.plausibility import ACCEPT_FLAG as ACCEPT_ECONOMICS_FLAG
from optimizer.plausibility import PlausibilityCheck, check_plausibility
from optimizer.policy import IMPLAUSIBLE, STALE_DATA
from optimizer.state import (
    RERUN_FAILED,
    VALUE_HELD,
    RunRecord,
    StateStore,
    as_utc,
    missing_sqlite_file,
    state_url,
)
from optimizer.value_level import ACCEPT_FLAG, ValueCheck, ValueSummary

app = typer.Typer(
    name="valuebid",
    help=(
        "Value-based bidding for Google Ads: predict each new user's 1-year "
        "value, and move each campaign's target ROAS a safe step toward what "
        "its market's unit economics allow. Dry-run unless told to apply."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = command_console()
errors = command_console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="The YAML config file.", exists=False, dir_okay=False
    ),
]
RunDateOption = Annotated[
    dt.datetime | None,
    typer.Option(
        "--run-date",
        formats=["%Y-%m-%d"],
        help="Plan this day (YYYY-MM-DD, account time zone); default today.",
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Log every decision.")
]

#: The logger every module of the Google Ads client library logs under.
GOOGLE_ADS_LOGGER = "google.ads.googleads"

#: The suffixes ``valuebid report --out`` accepts: the report is one HTML page.
REPORT_SUFFIXES = (".html", ".htm")


@app.command()
def run(
    config: ConfigOption,
    run_date: RunDateOption = None,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Push the plan to Google Ads (default: dry run)."),
    ] = False,
    accept_value_level: Annotated[
        bool,
        typer.Option(
            ACCEPT_FLAG,
            help="Accept, for this run, a mean predicted value per user that "
            "moved by more than guardrails.max_value_jump since the last "
            "successful run; recorded on the run.",
        ),
    ] = False,
    accept_unusual_economics: Annotated[
        bool,
        typer.Option(
            ACCEPT_ECONOMICS_FLAG,
            help="Accept, for this run, revenue or cost more than "
            "guardrails.max_plausible_ltv_to_cac or max_plausible_cpa_to_cac "
            "times a market's CAC cap; recorded on the run.",
        ),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Run one daily cycle: read, check, score, plan, record.

    Exit status 1 on an error, and on a day held for a jump in the predicted
    values or for implausible inputs (every target holds, no value is sent),
    which cron must not take for a success.
    """
    _logging(verbose)
    with fail_cleanly(config):
        settings = load_settings(config)
        if run_date is not None:
            days.refuse_day_ahead(
                run_date.date(), settings.account.time_zone, "planned"
            )
        with console.status("Starting") as status:
            result = run_cycle(
                settings,
                run_date=run_date.date() if run_date else None,
                apply=apply,
                progress=lambda message: status.update(message),
                notify=_say_on_console,
                accept_value_level=accept_value_level,
                accept_unusual_economics=accept_unusual_economics,
            )
    _show_plan(result, config)
    if result.held:
        raise typer.Exit(code=1)


app.command("economics")(economics_command)
app.add_typer(case_app, name="case")
app.add_typer(model_app, name="model")


@app.command()
def demo(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Folder for the demo's data, model and state."),
    ] = Path("valuebid-demo"),
    run_date: RunDateOption = None,
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help="cdnow: real CDNOW customers, US campaigns. plg: a synthetic "
            "product-led SaaS in FR, DE, ES, UK and US.",
        ),
    ] = "cdnow",
    verbose: VerboseOption = False,
) -> None:
    """Run the daily cycle on a bundled demo (default: real CDNOW customers)."""
    from optimizer.demo import DEMO_TIME_ZONE, build_demo
    from optimizer.scenarios.plg import TIME_ZONE, build_plg

    if scenario not in ("cdnow", "plg"):
        errors.print(
            f"[red]error:[/red] --scenario must be cdnow or plg, not {scenario!r}"
        )
        raise typer.Exit(code=2)
    _logging(verbose)
    # The day the demo's account is in, as every later command names it.
    zone = TIME_ZONE if scenario == "plg" else DEMO_TIME_ZONE
    day = run_date.date() if run_date else days.account_today(zone)
    build = build_plg if scenario == "plg" else build_demo
    with fail_cleanly(), console.status("Building the demo data") as status:
        files = build(directory, day)
        settings = load_settings(files.config)
        result = run_cycle(
            settings,
            run_date=day,
            progress=lambda message: status.update(message),
            notify=_say_on_console,
        )
    if scenario == "plg":
        console.print(
            "[bold]Demo:[/bold] every user, payment, event, campaign and cost is "
            "[bold]synthetic[/bold] (seeded PLG scenario); see optimizer/scenarios."
        )
    else:
        console.print(
            "[bold]Demo:[/bold] the users and purchases are real (CDNOW, 1997-98, "
            "dates shifted); the campaigns and their "
            "[bold]costs are illustrative[/bold]."
        )
    _show_plan(result, files.config)
    truth = files.truth.join(
        result.scores.set_index("user_id")[["pltv_365", "age_days"]], how="inner"
    )
    # Not the value check's "new users" (activated in its shorter window):
    # every user whose first year the demo hides.
    console.print(
        f"Hidden truth for the {len(truth):,} users who signed up in the last "
        f"{int(truth['age_days'].max()) + 1:,} days: predicted 1-year value "
        f"{truth['pltv_365'].sum():,.0f} {settings.account.currency}, actually "
        f"spent in their first year {truth['actual_365'].sum():,.0f} "
        f"{settings.account.currency} "
        f"({truth['pltv_365'].sum() / truth['actual_365'].sum() - 1:+.1%})."
    )
    if scenario == "plg":
        console.print(f"Unit economics: valuebid economics --config {files.config}")
    console.print(f"Config to rerun it: valuebid run --config {files.config}")


@app.command()
def report(
    config: ConfigOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Where to write the HTML report (.html or .htm)."
        ),
    ] = Path("report.html"),
    period: Annotated[
        str,
        typer.Option(
            "--period", help="day, or week to add what moved since last week."
        ),
    ] = "day",
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id; the newest run by default.")
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Write the unit-economics report of a run as one self-contained HTML file."""
    from optimizer.report import report_for_run, summary_lines, write_report

    _logging(verbose)
    if period not in ("day", "week"):
        errors.print(f"[red]error:[/red] --period {period!r}: use day or week")
        raise typer.Exit(code=2)
    if out.suffix.lower() not in REPORT_SUFFIXES:
        # The report is an HTML page: a .pdf or .png holding HTML opens in
        # no viewer, so the name is refused rather than changed behind the
        # user's back.
        errors.print(
            f"[red]error:[/red] --out {out}: the report is one HTML page; name "
            f"it with a .html or .htm suffix (e.g. {out.with_suffix('.html')})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=2)
    with fail_cleanly(config):
        settings = load_settings(config)
        with console.status("Gathering the figures of the run"):
            data = report_for_run(
                settings,
                run_id=run_id,
                period="week" if period == "week" else "day",
            )
        path = write_report(data, out, period="week" if period == "week" else "day")
    for line in summary_lines(data):
        console.print(line, highlight=False)
    console.print(f"Report written to {path}", soft_wrap=True, highlight=False)


@app.command()
def check(config: ConfigOption) -> None:
    """Validate a config file, its credential files and inputs; nothing is sent."""
    from connectors.files import load_inputs
    from connectors.google_ads import check_credentials_file
    from connectors.value_feed import check_credentials

    with fail_cleanly(config):
        settings = load_settings(config)
        if settings.google_ads is not None:
            check_credentials_file(settings.google_ads)
        if settings.feed is not None:
            check_credentials(settings.feed)
        inputs = load_inputs(
            settings.data,
            currency=settings.account.currency,
            time_zone=settings.account.time_zone,
        )
        placed = _placed_campaigns(settings, inputs.campaign_stats, inputs.users)
        # The model a run would score with: a column or table it learnt from
        # that the inputs lack stops the run, so it fails the check too.
        model = ModelRegistry(settings.model.directory).current()
        if model is not None:
            require_model_inputs(model, inputs, settings)
    defaulted = sorted(
        f"{cid} ({name!r})"
        for cid, (name, _, rule) in placed.items()
        if rule == PLACED_BY_DEFAULT
    )
    counts = ", ".join(f"{n:,} {name}" for name, n in inputs.row_counts().items())
    console.print(f"[green]OK[/green] {config}: {counts}", soft_wrap=True)
    if defaulted:
        shown = ", ".join(defaulted[:5]) + (
            f" and {len(defaulted) - 5:,} more" if len(defaulted) > 5 else ""
        )
        console.print(
            f"[yellow]campaign_stats[/yellow]: {len(defaulted):,} campaign(s) fall "
            f"to default_market {settings.default_market}: no campaign id, name "
            f"pattern or users' country places them: {shown}",
            soft_wrap=True,
            highlight=False,
        )
    for code, users in unknown_countries(inputs.users["country"]).items():
        console.print(
            f"[yellow]users[/yellow]: country {code!r} of {users:,} user(s) is not "
            f"an ISO 3166 alpha-2 code{country_hint(code)}: no market matches it",
            soft_wrap=True,
            highlight=False,
        )
    refunds = int(inputs.revenue["amount"].lt(0).sum())
    if refunds:
        console.print(
            f"revenue: {refunds:,} refund(s) kept, each netted into its user's "
            "revenue from its own time on",
            soft_wrap=True,
            highlight=False,
        )
    for name, audit in inputs.audits.items():
        if audit.quarantined:
            console.print(
                f"[yellow]{name}[/yellow]: {audit.quarantined:,} of "
                f"{audit.rows_in:,} row(s) would be set aside: {audit.bad:,} bad "
                f"(quarantined), {audit.duplicates:,} exact repeat(s) of a "
                "row kept"
            )
    today = days.account_today(settings.account.time_zone)
    plausible = check_plausibility(
        settings,
        inputs,
        days.start_of_day(today, settings.account.time_zone),
        run_date=today,
        config=config,
        log=False,
    )
    if plausible.held:
        console.print(
            f"[yellow]inputs[/yellow]: a run today would hold every target and "
            f"send no value ({IMPLAUSIBLE}): {plausible.reason}. To go on: "
            f"{plausible.hint}.",
            soft_wrap=True,
            highlight=False,
        )
    markets = {cid: market for cid, (_, market, _) in placed.items()}
    stale = stale_stats(inputs.campaign_stats, markets, today, settings)
    for market, reason in stale.markets.items():
        console.print(
            f"[yellow]campaign_stats[/yellow]: {reason}: a run today would hold "
            f"every target of market {market} (stale_data)",
            soft_wrap=True,
            highlight=False,
        )
    for cid, reason in stale.campaigns.items():
        name = placed[cid][0]
        console.print(
            f"[yellow]campaign_stats[/yellow]: {reason}: a run today would hold "
            f"campaign {cid} ({name!r}) of market {markets[cid]} (stale_data)",
            soft_wrap=True,
            highlight=False,
        )


def _placed_campaigns(
    settings: Settings, stats: pd.DataFrame, users: pd.DataFrame
) -> dict[str, tuple[str, str, str]]:
    """Each campaign's name, market and the rule that placed it there.

    Raises
    ------
    PlanningError
        A campaign two markets claim by the same rule, or that no rule places
        with no default market: a run would stop.
    """
    countries = campaign_countries(users)
    latest = stats.sort_values("date").drop_duplicates("campaign_id", keep="last")
    placed = {}
    for cid, name in zip(latest["campaign_id"], latest["campaign_name"], strict=True):
        market, rule = placement(settings, str(cid), str(name), countries)
        placed[str(cid)] = (str(name), market, rule)
    return placed


@app.command()
def feed(
    config: ConfigOption,
    send: Annotated[
        bool,
        typer.Option("--send", help="Upload values to Google (default: dry run)."),
    ] = False,
    verbose: VerboseOption = False,
) -> None:
    """Send each activated user's predicted value to Google once (dry run default).

    Exit status 1 on an error, and on a day held for a jump in the predicted
    values, with or without --send (nothing is sent), as `valuebid run` on
    that day.
    """
    from optimizer.value_feed import feed_values, prepare_feed

    _logging(verbose)
    now = days.utc_now()
    with fail_cleanly(config):
        settings = load_settings(config)
        prepared = prepare_feed(settings, now=now, notify=_say_on_console)
        if prepared.check.held and not send:
            # Nothing is due while the day is held: say that and why, only,
            # and fail as the held run of the day did and --send would.
            _show_value_check(prepared.check, "--send would send nothing")
            raise typer.Exit(code=1)
        if not prepared.check.held:
            _show_value_check(prepared.check)
        report = feed_values(
            settings,
            now=now,
            send=send,
            inputs=prepared.inputs,
            scores=prepared.scores,
            value_check=prepared.check,
        )
    table = Table(title=f"Value feed {report.run_id} ({report.mode}, {report.sink})")
    table.add_column("decision or outcome")
    table.add_column("conversions", justify="right")
    for key, count in report.as_dict().items():
        table.add_row(key, f"{count:,}")
    console.print(table)
    figures = report.value_figures()
    money = settings.account.currency
    if figures.count:
        console.print(
            f"Values {'sent or due' if send else 'it would send'} ({money}): "
            f"{figures.count:,} conversions, total {figures.total:,.2f}, mean "
            f"{figures.mean:,.2f}, median {figures.median:,.2f}, max "
            f"{figures.largest:,.2f}",
            soft_wrap=True,
            highlight=False,
        )
    else:
        console.print("No value is due.", highlight=False)
    if not send:
        console.print(f"{len(report.planned):,} due; rerun with --send to upload.")


# Operations: scheduling, approval, history and undo.

plan_app = typer.Typer(help="Read recorded plans.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@app.command()
def schedule(config: ConfigOption, verbose: VerboseOption = False) -> None:
    """Run the daily cycle, value feed and retraining on schedule until stopped."""
    from optimizer.scheduler import run_scheduler

    _logging(verbose, default=logging.INFO)
    with fail_cleanly(config):
        run_scheduler(config)


@app.command()
def runs(config: ConfigOption) -> None:
    """List recorded runs, newest first, with their outcomes."""
    with fail_cleanly(config), _store(config) as (settings, store):
        records = store.list_runs()
        counts = {r.run_id: store.changes_of(r.run_id) for r in records}
        currency = settings.account.currency
    # Runs recorded before values were checked have no figures to show.
    checked = any(r.value_check for r in records)
    table = Table(title="Runs")
    table.add_column("run", no_wrap=True)
    headers = ["kind", "day", "status", "mode", "tries", "applied"]
    for header in [*headers, *(["value/user"] if checked else []), "why"]:
        table.add_column(header, overflow="fold")
    for record in records:
        changes = counts[record.run_id].values()
        applied = sum(c.status == "applied" for c in changes)
        check = ValueCheck.from_dict(record.value_check)
        value = [check.describe(currency) if check is not None else "-"]
        table.add_row(
            record.run_id,
            record.kind + (f" of {record.rolls_back}" if record.rolls_back else ""),
            record.run_date.isoformat(),
            record.status,
            record.mode,
            str(record.attempts),
            _applied(applied, len(changes)),
            *(value if checked else []),
            "; ".join(filter(None, (record.stop_reason, _failed_start(record)))),
        )
    console.print(table)
    if any(r.status == RERUN_FAILED for r in records):
        console.print(
            f"{RERUN_FAILED}: a later run of that day failed before re-planning "
            "it, so its plan is neither approved nor applied; fix what it "
            "reported and run the day again.",
            highlight=False,
        )
    if any(r.status == VALUE_HELD for r in records):
        console.print(
            f"{VALUE_HELD}: the mean predicted value per user moved by more than "
            "guardrails.max_value_jump since the last successful run, or "
            f"({IMPLAUSIBLE}) revenue or cost was implausible for the markets' "
            "CAC caps, so every target held and no value was sent; fix the "
            "inputs and run the day again, or accept the new level with "
            f"`{first_run_command(config)} --run-date DAY {ACCEPT_FLAG}` (the "
            f"inputs with {ACCEPT_ECONOMICS_FLAG}).",
            highlight=False,
        )


@plan_app.command("show")
def plan_show(
    config: ConfigOption,
    run_id: Annotated[
        str | None, typer.Argument(help="The run; the latest cycle by default.")
    ] = None,
) -> None:
    """Show a run's plan, what was approved and what was applied."""
    with fail_cleanly(config), _store(config) as (settings, store):
        if run_id is None:
            latest = store.latest_run(settings.account.name)
            if latest is None:
                raise OptimizerError(
                    f"no run recorded yet: `{first_run_command(config)}` makes one"
                )
            run_id = latest.run_id
        record = store.get_run(run_id)
        if record is None:
            raise OptimizerError(
                f"no run {run_id!r} (`{runs_command(config)}` lists them)"
            )
        rows = store.stored_plan(run_id)
        changes = store.changes_of(run_id)
    table = Table(title=f"Plan {run_id} ({record.status})")
    for header in ("campaign", "action", "now", "new", "change", "approved", "pushed"):
        table.add_column(header, overflow="fold")
    for stored in rows:
        row = stored.row
        change = changes.get(row.campaign_id)
        table.add_row(
            f"{row.campaign_id} {row.campaign_name}",
            row.action,
            _current(row),
            _fmt(row.new_troas),
            "-" if row.change_pct is None else f"{row.change_pct:+.1f}%",
            "yes" if stored.approved_at else "-",
            change.status if change else "-",
        )
    console.print(table)
    summary = ValueSummary.from_dict(record.value_summary)
    if summary is not None:
        console.print(f"[bold]Values:[/bold] {summary.describe()}", highlight=False)
    check = ValueCheck.from_dict(record.value_check)
    if check is not None:
        console.print(f"[bold]Value check:[/bold] {check.reason}", highlight=False)
    if record.status == VALUE_HELD:
        console.print(
            f"[bold]Held:[/bold] {record.stop_reason or 'no reason recorded'}",
            highlight=False,
        )
    elif record.stop_reason:
        console.print(f"[bold]Stopped:[/bold] {record.stop_reason}", highlight=False)
    failed = _failed_start(record)
    if failed:
        console.print(f"[bold]Failed:[/bold] {failed}", highlight=False)
    if failed and record.status not in (RERUN_FAILED, VALUE_HELD):
        console.print(
            "This plan is kept as approved or pushed, but its changes not "
            "applied yet are not pushed until a run of the day succeeds "
            f"(`{run_command(config, record.run_date)}`) or they are approved "
            f"again (`{approve_command(config, record.run_id)}`).",
            highlight=False,
        )
    if record.status == RERUN_FAILED:
        console.print(
            "This plan is held back: fix what that run reported, then run "
            f"`{run_command(config, record.run_date)}` again to re-plan the day.",
            highlight=False,
        )
    if record.status == VALUE_HELD:
        console.print(
            "This plan is held back: every target holds and no value of the "
            "day is sent. Fix the inputs and run "
            f"`{run_command(config, record.run_date)}` again, or, if the new "
            f"level is real, add {ACCEPT_FLAG} to that command.",
            highlight=False,
        )


def _show_approval(run_id: str, approval: Approval, config: Path) -> None:
    """Say what an approval did, and which earlier approvals still wait."""
    if approval.changed:
        named = [
            *approval.approved,
            *(f"{cid} (approved again)" for cid in approval.renewed),
        ]
        console.print(
            f"{len(approval.changed)} change(s) of run {run_id} approved: "
            f"{', '.join(named)}",
            highlight=False,
        )
    else:
        console.print(
            f"no change of run {run_id} approved: the ones asked for were "
            "approved already",
            highlight=False,
        )
    if approval.awaiting_renewal:
        failed = (
            f" at {approval.failed_at:%Y-%m-%d %H:%M} UTC"
            if approval.failed_at is not None
            else ""
        )
        console.print(
            "Still waiting to be approved again: campaign(s) "
            f"{', '.join(approval.awaiting_renewal)}, approved before a later "
            f"`valuebid run` of this day failed{failed} and not applied yet. "
            "Apply refuses to push this run until they are approved again; to "
            "approve every change of the run again, run "
            f"`{approve_command(config, run_id)}` without --campaign.",
            highlight=False,
        )


@app.command()
def approve(
    config: ConfigOption,
    run_id: Annotated[str, typer.Argument(help="The run whose plan is approved.")],
    campaign: Annotated[
        list[str] | None,
        typer.Option("--campaign", help="Approve only this campaign (repeatable)."),
    ] = None,
    verbose: VerboseOption = False,
) -> None:
    """Approve a run's changes (all, or the campaigns named), then apply them."""
    from optimizer import apply as applying
    from optimizer.alerts import alerts_from
    from optimizer.google_ads_writer import connect_writer

    _logging(verbose)
    with fail_cleanly(config), _store(config) as (settings, store):
        # Every refusal known before the push (a held plan, no account or a
        # refused login, the kill switch, a stale plan, the model gate) comes
        # before anything is recorded.
        shown: list[Approval] = []

        def said(approval: Approval) -> None:
            _show_approval(run_id, approval, config)
            shown.append(approval)

        try:
            report = applying.approve_and_apply(
                store,
                run_id,
                campaign or None,
                settings,
                lambda: connect_writer(settings),
                model_gate=applying.registry_gate(settings.model.directory),
                alerts=alerts_from(settings.operations.alerts),
                config=config,
                approved=said,
            )
        except EXPECTED_ERRORS:
            if shown:
                errors.print(
                    "The approvals stay recorded; once the error is fixed, "
                    f"`{approve_command(config, run_id)}` pushes what was not "
                    "applied, each change once.",
                    highlight=False,
                    soft_wrap=True,
                )
            raise
    console.print(
        f"run {run_id} {report.status}: {len(report.applied)} applied, "
        f"{len(report.rejected)} rejected, {len(report.drifted)} changed elsewhere"
        f"{_withheld_count(report)}"
    )
    _show_withheld(report)


@app.command()
def rollback(
    config: ConfigOption,
    run_id: Annotated[str, typer.Argument(help="The run whose changes are undone.")],
    verbose: VerboseOption = False,
) -> None:
    """Restore the strategies and targets a run changed, as a run of its own."""
    from optimizer import apply as applying
    from optimizer.alerts import alerts_from
    from optimizer.google_ads_writer import connect_writer

    _logging(verbose)
    with fail_cleanly(config), _store(config) as (settings, store):
        applying.ensure_rollbackable(store, run_id, config=config)
        report = applying.rollback_run(
            store,
            run_id,
            applying.ensure_writer(connect_writer(settings)),
            settings,
            alerts=alerts_from(settings.operations.alerts),
        )
    console.print(
        f"run {report.run_id} {report.status}: {len(report.applied)} restored, "
        f"{len(report.drifted)} changed elsewhere and left alone"
    )


@contextmanager
def _store(config: Path) -> Iterator[tuple[Settings, StateStore]]:
    """The state of recorded runs; a missing SQLite file is refused, not made."""
    settings = load_settings(config)
    url = state_url(settings.state.directory, settings.state.url)
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise OptimizerError(
            f"no run recorded yet: there is no state database at "
            f"{missing}; `{first_run_command(config)}` makes one"
        )
    store = StateStore(url)
    try:
        yield settings, store
    finally:
        store.dispose()


def _show_plan(result: CycleResult, config: Path) -> None:
    table = Table(title=f"Plan {result.run.run_id} ({result.run.mode})")
    for header in ("campaign", "mkt", "now", "observed", "economic", "binding"):
        table.add_column(header, overflow="fold")
    table.add_column("new", justify="right")
    table.add_column("change", justify="right")
    for row in result.rows:
        table.add_row(
            f"{row.campaign_id} {row.campaign_name}",
            row.market,
            _current(row),
            _fmt(row.observed_roas),
            _fmt(row.economic_troas),
            row.binding_constraint or "-",
            _fmt(row.new_troas) if row.new_troas is not None else row.action,
            "-" if row.change_pct is None else f"{row.change_pct:+.1f}%",
        )
    console.print(table)
    for row in result.rows:
        console.print(f"[bold]{row.campaign_id}[/bold] {row.reason}", highlight=False)
        if row.binding_reason:
            console.print(f"  [dim]{row.binding_reason}[/dim]", highlight=False)
    console.print(f"Plan written to {result.plan_dir}/plan.json and plan.csv")
    if result.value_summary is not None:
        console.print(
            f"Values: {result.value_summary.describe()}",
            soft_wrap=True,
            highlight=False,
        )
    if result.value_check is not None:
        _show_value_check(result.value_check)
    if result.plausibility is not None:
        _show_plausibility(result.plausibility)
    applied = result.applied
    if applied is not None:
        console.print(
            f"Apply {applied.status}: {len(applied.applied)} applied, "
            f"{len(applied.rejected)} rejected, {len(applied.drifted)} changed "
            f"elsewhere{_withheld_count(applied)}",
            soft_wrap=True,
        )
        _show_withheld(applied)
        if applied.awaiting_approval:
            console.print(
                f"{len(applied.awaiting_approval)} change(s) await approval: "
                f"{approve_command(config, result.run.run_id)}",
                soft_wrap=True,
                highlight=False,
            )
    if result.report is not None:
        console.print(
            f"Report written to {result.report}", soft_wrap=True, highlight=False
        )
    if result.report_error:
        # The error may quote what a library or a server gave back.
        shown = escape(mask_secrets(result.report_error, config_secrets(config)))
        errors.print(
            f"[yellow]report not written:[/yellow] {shown}",
            highlight=False,
            soft_wrap=True,
        )


def _show_value_check(
    check: ValueCheck, held: str = "every target holds and no value is sent"
) -> None:
    """The value-level check in one line; a held check on stderr, with its hint."""
    if check.held:
        errors.print(
            f"[red]held:[/red] {held}: {check.reason}. To go on: {check.hint}.",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"Value check: {check.reason}", soft_wrap=True, highlight=False)


def _show_plausibility(check: PlausibilityCheck) -> None:
    """The plausibility check when it found something; a hold on stderr."""
    if check.held:
        errors.print(
            "[red]held:[/red] every target holds and no value is sent "
            f"({IMPLAUSIBLE}): {check.reason}. To go on: {check.hint}.",
            highlight=False,
            soft_wrap=True,
        )
    elif check.signals:
        console.print(f"Input check: {check.reason}", soft_wrap=True, highlight=False)


def _withheld_count(report: ApplyReport) -> str:
    """``, N withheld (stale data)`` when the apply withheld any change."""
    if not report.withheld:
        return ""
    return f", {len(report.withheld)} withheld ({STALE_DATA})"


def _show_withheld(report: ApplyReport) -> None:
    """Each change withheld for stale data, and why, on stderr."""
    for cid, reason in sorted(report.withheld.items()):
        errors.print(
            f"[yellow]withheld:[/yellow] campaign {cid} ({STALE_DATA}): {reason}",
            highlight=False,
            soft_wrap=True,
        )


def _applied(applied: int, changes: int) -> str:
    """Changes applied of those pushed; ``-`` when nothing was pushed.

    A run only planned (a dry run, or changes awaiting approval) pushed
    nothing, which ``0/0`` would show as an apply where everything failed.
    """
    return f"{applied}/{changes}" if changes else "-"


def _failed_start(record: RunRecord) -> str | None:
    """The run's failed later start, as the runs and plan views say it."""
    if record.failed_attempt_error is None:
        return None
    when = (
        f" at {as_utc(record.failed_attempt_at):%Y-%m-%d %H:%M} UTC"
        if record.failed_attempt_at is not None
        else ""
    )
    return f"a later run failed{when}: {record.failed_attempt_error}"


def _current(row: PlanRow) -> str:
    if row.current_strategy == "TARGET_CPA" and row.current_target_cpa is not None:
        return f"tCPA {row.current_target_cpa:.2f}"
    if row.current_target_roas is not None:
        return f"tROAS {row.current_target_roas:.2f}"
    return row.current_strategy


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _say_on_console(line: str) -> None:
    """Print a line that stays in the output, on a terminal as in a cron log.

    The progress spinner shows nothing when the output is not a terminal.
    """
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def _logging(verbose: bool, default: int = logging.WARNING) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else default,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # The schema library narrates every store it opens; the store logs the
    # upgrades it makes itself, so its steps show only with --verbose.
    logging.getLogger("alembic").setLevel(
        logging.NOTSET if verbose else logging.WARNING
    )
    # Google's clients cut their loggers off from the root one unless told
    # otherwise; their warnings (a failed Google Ads call, quoting what the
    # server answered) then reach stderr unformatted, past the masking of
    # secrets. A level is what tells them, and propagation is restored in
    # case one of them got there first.
    google = logging.getLogger("google")
    google.setLevel(logging.INFO if verbose else logging.WARNING)
    google.propagate = True
    # The Google Ads library logs a summary of every request, at INFO, and
    # of every failed one, at WARNING; the connector reports each failure
    # and retry itself, with its request id, so the library's lines show
    # only with --verbose.
    logging.getLogger(GOOGLE_ADS_LOGGER).setLevel(
        logging.NOTSET if verbose else logging.ERROR
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``valuebid`` console command."""
    app(args=list(argv) if argv is not None else sys.argv[1:], prog_name="valuebid")
