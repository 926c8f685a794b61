"""The daily cycle: pull, check, score, decide, record.

A run that fails before it records its plan still leaves a trace: the day's
run, when there is one, records the failed start, and a plan it had not yet
approved or pushed is held back until a run of the day succeeds.

A run whose predicted values jumped from the last successful run (see
:mod:`optimizer.value_level`), or whose inputs are off by orders of
magnitude from the config's CAC caps (see :mod:`optimizer.plausibility`), is
recorded with every target held and sends no value: nothing of that day
reaches Google.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from config.schema import Settings
from connectors.files import Inputs, load_inputs
from connectors.google_ads import GoogleAdsSession
from connectors.value_feed import ValueSink
from models.evaluation import labelled_users
from models.frames import prepare_users
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.alerts import alert_failure, alerts_from
from optimizer.apply import (
    ApplyReport,
    TargetWriter,
    apply_run,
    ensure_writer,
    registry_gate,
)
from optimizer.days import account_today, start_of_day
from optimizer.exceptions import OptimizerError, PlanningError, StateError
from optimizer.google_ads_writer import connect_writer, read_api_stats
from optimizer.masking import without_secrets
from optimizer.plan import PlanRow, mark_plan_held, write_plan
from optimizer.planner import plan_campaigns, stats_ends
from optimizer.plausibility import PlausibilityCheck, check_plausibility
from optimizer.policy import HOLD, IMPLAUSIBLE, VALUE_JUMP, Freezes
from optimizer.state import (
    RERUN_FAILED,
    VALUE_HELD,
    RunRecord,
    StateStore,
    held_back_reason,
    missing_sqlite_file,
    plan_folder,
    state_url,
)
from optimizer.value_feed import feed_values
from optimizer.value_level import (
    ValueCheck,
    ValueSummary,
    check_value_level,
    summarize_values,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CycleResult:
    """What one run of the cycle produced."""

    run: RunRecord
    rows: list[PlanRow]
    plan_dir: Path
    model_version: str
    scores: pd.DataFrame
    applied: ApplyReport | None = None
    report: Path | None = None
    report_error: str | None = None
    value_summary: ValueSummary | None = None
    value_check: ValueCheck | None = None
    plausibility: PlausibilityCheck | None = None

    @property
    def held(self) -> bool:
        """Whether the day's targets and values were held for their values:
        a jump from the last successful run, or implausible inputs."""
        return (self.value_check is not None and self.value_check.held) or (
            self.plausibility is not None and self.plausibility.held
        )


def run_cycle(
    settings: Settings,
    *,
    run_date: dt.date | None = None,
    apply: bool = False,
    progress: Progress | None = None,
    notify: Progress | None = None,
    inputs: Inputs | None = None,
    writer: TargetWriter | None = None,
    google_ads: GoogleAdsSession | None = None,
    model: PLTVModel | None = None,
    accept_value_level: bool = False,
    value_sink: ValueSink | None = None,
    accept_unusual_economics: bool = False,
) -> CycleResult:
    """Run one daily cycle and record it.

    Parameters
    ----------
    settings
        The validated config.
    run_date
        The day being planned, in the account's time zone; today by default.
        Data up to the start of that day is used.
    apply
        Push the plan to Google Ads. Dry-run (``False``) writes the plan only.
    progress
        Called with a short message as each step starts; a terminal shows it
        only while the step runs.
    notify
        Called with a line worth keeping in the output: that no model was
        current and one is trained, then its gate's verdict. Logged at INFO
        when ``None``.
    inputs
        Already-loaded inputs; read from ``settings.data`` when ``None``.
    writer
        The account's targets, needed to apply (``apply`` or auto mode).
    model
        The model to score with; the registry's current one (or one trained
        now) when ``None``. A model that failed its gate holds every target.
    google_ads
        An open Google Ads session for reading stats and applying; opened from
        the config's ``google_ads`` section when needed and ``None``.
    accept_value_level
        Accept a mean value per user that moved by more than
        ``guardrails.max_value_jump`` from the last successful run; recorded
        on the run, which then becomes the level later runs compare with.
        Without it such a run holds every target and sends no value.
    value_sink
        Where the feed sends values when applying; built from the config's
        ``feed:`` section when ``None``.
    accept_unusual_economics
        Accept, for this run, revenue or cost beyond
        ``guardrails.max_plausible_ltv_to_cac`` or
        ``guardrails.max_plausible_cpa_to_cac`` times the markets' CAC caps
        (see :mod:`optimizer.plausibility`); recorded on the run. Without it
        such a run holds every target and sends no value.

    Returns
    -------
    CycleResult
        The run record, the plan rows, where the plan was written, the model
        version, the scores, and the figures of the values and their check.

    Raises
    ------
    connectors.exceptions.InputError
        An input is missing or breaks its contract; no plan is written.
    PlanningError
        The plan cannot be made (e.g. a campaign maps to no market), or
        applying is asked for without an account to apply to.
    Exception
        Any error is raised unchanged, after one alert naming the account,
        the day and the error, secrets removed (see :func:`without_secrets`;
        a stop has alerted already). Any error before the plan is recorded is
        recorded on the day's run when the day already has one (see
        :func:`record_failed_start`): a plan recorded earlier that day is
        then held back until a run of the day succeeds, unless approved or
        pushed already. A first run of the day that fails records nothing.
    optimizer.exceptions.ApplyStopped
        A stop (kill switch, stale data, model gate) held the apply back;
        the plan is recorded.
    """
    run_date = run_date or account_today(settings.account.time_zone)
    try:
        return _run_day(
            settings,
            run_date,
            apply=apply,
            say=progress or (lambda message: None),
            notify=notify,
            inputs=inputs,
            writer=writer,
            google_ads=google_ads,
            model=model,
            accept_value_level=accept_value_level,
            value_sink=value_sink,
            accept_unusual_economics=accept_unusual_economics,
        )
    except Exception as exc:
        _alert_failed_run(settings, run_date, exc)
        raise


def _run_day(
    settings: Settings,
    run_date: dt.date,
    *,
    apply: bool,
    say: Progress,
    notify: Progress | None,
    inputs: Inputs | None,
    writer: TargetWriter | None,
    google_ads: GoogleAdsSession | None,
    model: PLTVModel | None,
    accept_value_level: bool,
    value_sink: ValueSink | None,
    accept_unusual_economics: bool,
) -> CycleResult:
    """The cycle of ``run_date``; :func:`run_cycle` alerts on what it raises."""
    apply = apply or settings.operations.apply_mode == "auto"
    if apply:
        # Before the day's start is recorded: a missing account or a refused
        # login says nothing about the inputs, so a plan recorded earlier
        # that day must not be held back for it.
        writer = ensure_writer(writer or connect_writer(settings, google_ads))
    try:
        day = _plan_day(
            settings,
            run_date,
            apply=apply,
            say=say,
            notify=notify,
            inputs=inputs,
            writer=writer,
            google_ads=google_ads,
            model=model,
            accept_value_level=accept_value_level,
            value_sink=value_sink,
            accept_unusual_economics=accept_unusual_economics,
        )
    except Exception as exc:
        record_failed_start(settings, run_date, exc)
        raise
    record = day.record
    report = None
    if day.held and apply:
        logger.info("run %s holds every target: nothing is applied", record.run_id)
    elif day.writer is not None and apply:
        say("Applying the plan")
        store = StateStore(state_url(settings.state.directory, settings.state.url))
        try:
            report = apply_run(
                store,
                record.run_id,
                day.writer,
                settings,
                model_gate=registry_gate(settings.model.directory),
                alerts=alerts_from(settings.operations.alerts),
            )
            record = store.get_run(record.run_id) or record
        finally:
            store.dispose()
    logger.info(
        "run %s planned %d campaigns (%d changes) with model %s",
        record.run_id,
        len(day.rows),
        sum(row.action != HOLD for row in day.rows),
        day.model.version,
    )
    say("Writing the report")
    page, page_error = _write_report(
        settings, record, day.rows, day.inputs, day.scores, day.model
    )
    return CycleResult(
        record,
        day.rows,
        day.plan_dir,
        day.model.version,
        day.scores,
        report,
        report=page,
        report_error=page_error,
        value_summary=day.values,
        value_check=day.check,
        plausibility=day.plausibility,
    )


@dataclass(frozen=True)
class _PlannedDay:
    record: RunRecord
    rows: list[PlanRow]
    plan_dir: Path
    inputs: Inputs
    scores: pd.DataFrame
    model: PLTVModel
    writer: TargetWriter | None
    values: ValueSummary
    check: ValueCheck
    plausibility: PlausibilityCheck

    @property
    def held(self) -> bool:
        return self.check.held or self.plausibility.held


def _plan_day(
    settings: Settings,
    run_date: dt.date,
    *,
    apply: bool,
    say: Progress,
    notify: Progress | None,
    inputs: Inputs | None,
    writer: TargetWriter | None,
    google_ads: GoogleAdsSession | None,
    model: PLTVModel | None,
    accept_value_level: bool,
    value_sink: ValueSink | None,
    accept_unusual_economics: bool,
) -> _PlannedDay:
    """Everything up to the recorded plan: what a failed start never reaches."""
    started = dt.datetime.now(dt.UTC)
    as_of = start_of_day(run_date, settings.account.time_zone)

    if inputs is None:
        api_stats = None
        if settings.data.campaign_stats is None:
            say("Reading campaign stats from Google Ads")
            api_stats = read_api_stats(settings, run_date, google_ads)
        say("Reading and checking inputs")
        inputs = load_inputs(
            settings.data,
            currency=settings.account.currency,
            now=max(pd.Timestamp(started), as_of),
            time_zone=settings.account.time_zone,
            state_dir=settings.state.directory,
            run_label=f"{run_date:%Y-%m-%d}",
            campaign_stats=api_stats,
        )

    plausibility = check_plausibility(
        settings,
        inputs,
        as_of,
        run_date=run_date,
        accept=accept_unusual_economics,
        config=settings.source,
    )

    say("Loading or training the pLTV model")
    model = model or current_model(settings, inputs, as_of, notify)
    require_model_inputs(model, inputs, settings)
    gate_failure = model_gate_failure(model)

    say("Scoring users")
    users_source = settings.data.users.describe()
    scores = model.predict(
        inputs.users,
        inputs.revenue,
        as_of,
        inputs.events,
        warn=lambda line: logger.warning("%s: %s", users_source, line),
    )
    margin = settings.economics.gross_margin or 1.0
    scores["value"] = scores["pltv_365"] * margin

    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        values = summarize_values(settings, inputs, scores, as_of)
        check = check_value_level(
            values,
            store.value_baseline(settings.account.name, run_date),
            factor=settings.guardrails.max_value_jump,
            run_date=run_date,
            accept=accept_value_level,
            config=settings.source,
        )
        holds = []
        if check.held:
            holds.append(f"{VALUE_JUMP}: {check.reason}; {check.hint}")
        if plausibility.held:
            holds.append(f"{IMPLAUSIBLE}: {plausibility.reason}; {plausibility.hint}")
        hold = " | ".join(holds) or None
        if hold is not None:
            alerts_from(settings.operations.alerts).send(
                f"valuebid run of {run_date} for {settings.account.name} holds "
                f"every target and sends no value: {hold}"
            )

        feed_report = None
        if settings.feed is not None:
            sending = apply and hold is None
            say(
                "Sending activation values" if sending else "Planning activation values"
            )
            # Data stop at the start of the run day, so the feed's clock does too.
            feed_report = feed_values(
                settings,
                now=as_of.to_pydatetime(),
                send=sending,
                inputs=inputs,
                scores=scores,
                sink=value_sink,
                value_check=check,
            )

        say("Planning targets")
        rows = plan_campaigns(
            settings,
            inputs,
            scores,
            as_of=as_of,
            run_date=run_date,
            last_changes=store.last_change_dates(),
            freezes=Freezes(
                model_gate_failed=gate_failure,
                value_jump=check.reason if check.held else None,
                implausible=plausibility.reason if plausibility.held else None,
            ),
            model_version=model.version,
        )
        plan_dir = settings.state.directory / "runs" / f"{run_date:%Y-%m-%d}"
        meta: dict[str, Any] = {
            "account": settings.account.name,
            "run_date": run_date.isoformat(),
            "currency": settings.account.currency,
            "mode": "apply" if apply else "dry_run",
            "model_version": model.version,
            "feed": feed_report.as_dict() if feed_report is not None else None,
            "value_summary": values.as_dict(),
            "value_check": check.as_dict(),
            "plausibility": plausibility.as_dict(),
        }
        say("Recording the run")
        with store.transaction() as connection:
            record = store.record_run(
                connection,
                account=settings.account.name,
                run_date=run_date,
                mode=meta["mode"],
                inputs={
                    "fingerprints": inputs.fingerprints,
                    "rows": inputs.row_counts(),
                    "quarantine": inputs.quarantine_record(),
                    "data_through": _data_through(inputs),
                    "data_through_by_campaign": _data_through_by_campaign(inputs),
                    "plausibility": plausibility.as_dict(),
                },
                model_version=model.version,
                plan_dir=str(plan_dir.resolve()),
                rows=rows,
                started_at=started,
                value_summary=values.as_dict(),
                value_check=check.as_dict(),
                hold_reason=hold,
            )
            # A second start of a day whose plan was approved or pushed keeps
            # that plan: what is applied is what was reviewed.
            rows = [s.row for s in store.stored_plan(record.run_id, connection)]
            write_plan(
                rows,
                plan_dir,
                {"run_id": record.run_id, **meta},
                held_reason=held_back_reason(record),
            )
    finally:
        store.dispose()
    return _PlannedDay(
        record,
        rows,
        plan_dir,
        inputs,
        scores,
        model,
        writer,
        values,
        check,
        plausibility,
    )


def _alert_failed_run(settings: Settings, run_date: dt.date, error: Exception) -> None:
    """Tell the alert webhook, once, that the run of ``run_date`` failed."""
    try:
        sink = alerts_from(settings.operations.alerts)
    except ValueError as exc:
        logger.error("failure alert not sent: %s", exc)
        return
    text = without_secrets(
        f"valuebid run of {run_date} for {settings.account.name} failed: "
        f"{type(error).__name__}: {error}",
        settings,
    )
    alert_failure(sink, error, text)


def record_failed_start(
    settings: Settings, run_date: dt.date, error: BaseException
) -> RunRecord | None:
    """Record on the day's run that a start failed before recording its plan.

    The day's earlier plan, unless approved or pushed already, is then held
    back (``rerun_failed``, or still ``value_held`` when its values jumped)
    until a start of the day succeeds; see
    :meth:`optimizer.state.StateStore.record_failed_attempt`. Its plan files
    are rewritten with the held-back mark and the reason. A day with no run
    yet gets none, and no state database is created for it. Recording never
    hides ``error``: when the store or the files cannot be written, that is
    logged.

    Parameters
    ----------
    settings
        The config of the failed start.
    run_date
        The day it was planning.
    error
        Why it failed; stored as its type and message, secrets removed (see
        :func:`without_secrets`).

    Returns
    -------
    RunRecord or None
        The day's run as now recorded, or ``None`` when nothing was recorded.
    """
    url = state_url(settings.state.directory, settings.state.url)
    if missing_sqlite_file(url) is not None:
        return None
    text = without_secrets(f"{type(error).__name__}: {error}", settings)
    try:
        store = StateStore(url)
        try:
            with store.transaction() as connection:
                record = store.record_failed_attempt(
                    connection,
                    account=settings.account.name,
                    run_date=run_date,
                    error=text,
                    when=dt.datetime.now(dt.UTC),
                )
        finally:
            store.dispose()
    except StateError as exc:
        logger.error("the failed run of %s could not be recorded: %s", run_date, exc)
        return None
    if record is None:
        return None
    if record.status == RERUN_FAILED:
        logger.warning(
            "run %s: this run of the day failed, so the plan recorded earlier is "
            "held back (not approved or applied) until a run of the day succeeds",
            record.run_id,
        )
        _mark_files_held(record, settings.state.directory)
    elif record.status == VALUE_HELD:
        logger.warning(
            "run %s: this run of the day failed; the day stays held for its "
            "values until a run of it passes the value check or accepts the "
            "new level",
            record.run_id,
        )
    else:
        logger.warning(
            "run %s: this run of the day failed; the plan kept is the one "
            "approved or pushed (status %s), and its changes not applied yet "
            "wait for a run of the day that succeeds or a new approval",
            record.run_id,
            record.status,
        )
    return record


def _mark_files_held(record: RunRecord, state_directory: Path) -> None:
    """Mark a run's plan files held back; a failure is logged, never raised."""
    folder = plan_folder(record, state_directory)
    if folder is None:
        return
    try:
        mark_plan_held(folder, held_back_reason(record))
    except (OSError, ValueError, TypeError) as exc:
        logger.error(
            "run %s: its plan files could not be marked held back: %s",
            record.run_id,
            exc,
        )


def _data_through(inputs: Inputs) -> str:
    """The last day of the account's campaign stats; the apply's stale-data
    stop judges a run recorded without the days of each campaign on it."""
    return pd.Timestamp(inputs.campaign_stats["date"].max()).date().isoformat()


def _data_through_by_campaign(inputs: Inputs) -> dict[str, str]:
    """The last day of each campaign's stats: the apply judges each market's
    and each campaign's freshness again on the day it pushes."""
    return {
        cid: day.isoformat() for cid, day in stats_ends(inputs.campaign_stats).items()
    }


def _write_report(
    settings: Settings,
    record: RunRecord,
    rows: list[PlanRow],
    inputs: Inputs,
    scores: pd.DataFrame,
    model: PLTVModel,
) -> tuple[Path | None, str | None]:
    """The run's report; a failure is reported, the recorded plan stands."""
    from optimizer.report.build import report_after_run

    try:
        path = report_after_run(
            settings, record, rows, inputs, scores, dict(model.metrics)
        )
    except (OSError, OptimizerError) as exc:
        logger.warning("run %s: report not written: %s", record.run_id, exc)
        return None, str(exc)
    return path, None


def model_gate_failure(model: PLTVModel) -> str | None:
    """Why ``model`` may not move targets, or ``None`` when it passed its gate.

    With no model current yet, the cycle still scores with a freshly trained
    model that failed its gate, so the plan shows values, but every target
    holds until a model passes.
    """
    failures = getattr(model, "gate_failures", [])
    if not failures:
        return None
    return (
        f"the pLTV model {model.version} failed its quality gate "
        f"({'; '.join(failures)}); targets hold until a model passes"
    )


def require_model_inputs(model: PLTVModel, inputs: Inputs, settings: Settings) -> None:
    """Refuse to score with a model whose features the inputs lack.

    Without the events table every user would score as having done none of
    the events the model counts, and the values would drop for no reason
    the plan shows. Without an extra users column the model learnt, the
    features cannot be built at all.

    Raises
    ------
    PlanningError
        The users table lacks an extra column ``model`` was trained with, or
        the config has no ``data.events`` but ``model`` was trained with
        product events.
    """
    missing = model.missing_user_columns(inputs.users)
    if missing:
        raise PlanningError(
            f"the pLTV model {model.version} was trained with the users "
            f"column(s) {', '.join(missing)}, which data.users "
            f"({settings.data.users.describe()}) lacks. Restore them to that "
            "table, or point model.directory to a new folder (now "
            f"{settings.model.directory}) so that the next run trains a model "
            "without them."
        )
    if inputs.events is not None or not model.event_features:
        return
    raise PlanningError(
        f"the pLTV model {model.version} was trained with product events and "
        f"uses the features {', '.join(model.event_features)}, but the config's "
        "data: section has no events table. Add the events table it was "
        "trained with as data.events, or point model.directory to a new "
        f"folder (now {settings.model.directory}) so that the next run trains "
        "a model without events."
    )


def current_model(
    settings: Settings,
    inputs: Inputs,
    as_of: pd.Timestamp,
    notify: Progress | None = None,
) -> PLTVModel:
    """The registered current model, or one trained now when there is none.

    Training can take minutes on a large account, so it is announced with
    one line before (how many users it learns from) and one after (the
    version, the quality gate's verdict, whether it became current), given
    to ``notify``; logged at INFO when ``notify`` is None.
    """
    tell = notify or (lambda line: logger.info("%s", line))
    registry = ModelRegistry(settings.model.directory)
    model = registry.current()
    if model is not None:
        return model

    tell(
        f"no current pLTV model in {settings.model.directory}: training one on "
        f"{_training_users(settings, inputs, as_of)}; this can take minutes"
    )
    trained = PLTVModel(max_train_users=settings.model.max_train_users).fit(
        inputs.users, inputs.revenue, as_of, inputs.events
    )
    if registry.register(trained):
        tell(
            f"trained pLTV model {trained.version}: quality gate passed, it is "
            "now the current model"
        )
    else:
        tell(
            f"trained pLTV model {trained.version}: quality gate FAILED "
            f"({'; '.join(trained.gate_failures)}); kept in the registry but "
            "not made current, and every target holds until a model passes"
        )
    return trained


def _training_users(settings: Settings, inputs: Inputs, as_of: pd.Timestamp) -> str:
    """How many labelled users a training at ``as_of`` learns from, in words."""
    users = prepare_users(inputs.users)
    labelled = len(labelled_users(users.loc[users["signup_at"] <= as_of], as_of))
    limit = settings.model.max_train_users
    if limit is not None and labelled > limit:
        return f"a random {limit:,} of {labelled:,} labelled users"
    return f"{labelled:,} labelled users"
