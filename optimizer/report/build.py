"""Assemble a :class:`ReportData` from a run and its inputs, and write it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from config.schema import Settings
from connectors.files import Inputs, load_inputs
from connectors.sources import FileSource
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.commands import first_run_command, run_command
from optimizer.days import start_of_day
from optimizer.exceptions import ReportError
from optimizer.plan import PlanRow, read_plan
from optimizer.report import data as d
from optimizer.report.html import render_html
from optimizer.state import (
    CYCLE,
    VALUE_HELD,
    RunRecord,
    StateStore,
    held_back_reason,
    plan_folder,
    state_url,
)
from optimizer.unit_economics import compute_unit_economics
from optimizer.value_level import ValueCheck

logger = logging.getLogger(__name__)

Period = Literal["day", "week"]
REPORT_FILE = "report.html"
HEADLINE_FILE = "report.json"


def assemble(
    settings: Settings,
    run: RunRecord,
    plan: list[PlanRow],
    inputs: Inputs,
    scores: pd.DataFrame,
    *,
    history: list[tuple[dt.date, list[dict[str, Any]]]],
    metrics: dict[str, float],
) -> d.ReportData:
    """Compute every section of the report of one run.

    Parameters
    ----------
    settings
        The validated config the run used.
    run
        The run record; its ``plan_dir`` holds the plan files.
    plan
        The run's plan rows.
    inputs
        The canonical tables the run read.
    scores
        Per-user ``pltv_365``, ``pltv_1095`` and ``pltv_1825`` at the run's date.
    history
        Every recorded run's date and plan rows, for the target history.
    metrics
        The model's flat holdout metrics (may be empty).

    Returns
    -------
    ReportData
    """
    as_of = start_of_day(run.run_date, settings.account.time_zone)
    margin = settings.economics.gross_margin or 1.0
    economics = settings.economics
    unit = compute_unit_economics(settings, inputs, scores, as_of)
    segments = d.segment_curves(inputs.users, inputs.revenue, scores, as_of, margin)
    channel_of = {row.campaign_id: row.campaign_name for row in plan}

    return d.ReportData(
        account=settings.account.name,
        run_id=run.run_id,
        run_date=run.run_date,
        currency=settings.account.currency,
        mode=run.mode,
        model_version=run.model_version or "",
        horizon_days=economics.ltv_horizon_days,
        target_ltv_to_cac=economics.target_ltv_to_cac,
        min_ltv365_to_cac=economics.min_ltv365_to_cac,
        payback_limit_months=float(economics.payback_months),
        plan=tuple(plan),
        plan_file=_shown_path(
            _folder(run, settings) / "plan.json", settings.state.directory
        ),
        segments=segments,
        markets=d.market_cac(
            unit, {code: m.cac_max for code, m in settings.markets.items()}
        ),
        ratios=d.unit_ratios(unit),
        business=d.business_ratios(unit, settings.finance),
        history=d.target_history(history),
        quality=d.model_quality(run.model_version or "", metrics),
        risks=d.risk_flags(inputs.users, inputs.revenue, as_of, channel_of),
        feed=d.feed_counts(_plan_document(run, settings)),
        held_back=hold_notice(run, config=settings.source),
        value_check=_value_check(run),
    )


def hold_notice(run: RunRecord, *, config: Path | None = None) -> str | None:
    """The warning a held-back run's report opens with; ``None`` for the others.

    The command to run the day again names ``config``, the file the report
    was built from, or a placeholder when it is not known.
    """
    reason = held_back_reason(run)
    if reason is None:
        return None
    if run.status == VALUE_HELD:
        return (
            "Every target of this run holds and none of its values is sent to "
            f"Google. {reason}."
        )
    return (
        f"This plan is held back: it may not be approved or applied. {reason}. "
        "Fix what that run reported, then run "
        f"`{run_command(config, run.run_date)}` again to re-plan the day."
    )


def _value_check(run: RunRecord) -> str | None:
    check = ValueCheck.from_dict(run.value_check)
    return check.reason if check is not None else None


def _folder(run: RunRecord, settings: Settings) -> Path:
    return plan_folder(run, settings.state.directory) or Path()


def _plan_document(run: RunRecord, settings: Settings) -> dict[str, Any]:
    path = _folder(run, settings) / "plan.json"
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"run {run.run_id}: cannot read {path}: {exc}") from exc
    return document


def _shown_path(path: Path, state_directory: Path) -> str:
    """``path`` from the folder holding the state directory, when inside it."""
    try:
        return str(path.relative_to(state_directory.parent))
    except ValueError:
        return str(path)


def write_report(report: d.ReportData, path: Path, *, period: Period = "day") -> Path:
    """Write the report page to ``path`` (its folder is created).

    The page is written beside ``path`` and renamed over it, as the plan
    files are: a write that fails or is killed leaves the previous report
    whole, never a truncated page.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, render_html(report, period=period))
    logger.info("report of run %s written to %s", report.run_id, path)
    return path


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_run_report(report: d.ReportData, directory: Path) -> Path:
    """Write a run's report and its headline figures into its plan folder.

    The headline (``report.json``) is what the weekly view of a later run
    compares against.
    """
    path = write_report(report, directory / REPORT_FILE)
    _write_atomically(
        directory / HEADLINE_FILE,
        json.dumps(report.headline(), indent=2, allow_nan=False) + "\n",
    )
    return path


def report_for_run(
    settings: Settings,
    *,
    run_id: str | None = None,
    period: Period = "day",
    inputs: Inputs | None = None,
    scores: pd.DataFrame | None = None,
    metrics: dict[str, float] | None = None,
) -> d.ReportData:
    """The report of a recorded run (the newest when ``run_id`` is ``None``).

    Inputs are read from the config and users are scored with the current
    model when not given.

    Raises
    ------
    ReportError
        No run is recorded, the run is unknown, or its plan file is missing.
    """
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        runs = _cycle_runs(store, settings)
        run = _pick(runs, run_id, settings)
        history = [(r.run_date, store.plan_of(r.run_id)) for r in runs]
    finally:
        store.dispose()
    plan_dir = _folder(run, settings)
    if not (plan_dir / "plan.json").exists():
        raise ReportError(
            f"run {run.run_id}: its plan file {plan_dir / 'plan.json'} is missing"
        )
    plan = read_plan(plan_dir)

    changed: list[str] = []
    if inputs is None:
        # No state folder: a report reads without writing quarantine files
        # or moving the incremental caches the next run starts from.
        inputs = load_inputs(
            settings.data,
            currency=settings.account.currency,
            time_zone=settings.account.time_zone,
        )
        changed = changed_files(settings, run, inputs)
    if scores is None or metrics is None:
        scores, metrics = _score(settings, run, inputs)
    report = assemble(
        settings, run, plan, inputs, scores, history=history, metrics=metrics
    )
    if changed:
        report = replace(report, inputs_note=_inputs_note(changed))
        logger.warning("report of run %s: %s", run.run_id, report.inputs_note)
    if period == "week":
        previous = _week_before(runs, run, settings.state.directory)
        as_of = start_of_day(run.run_date, settings.account.time_zone)
        report = replace(
            report,
            week=d.week_change(report, previous, inputs.campaign_stats, as_of),
        )
    return report


def changed_files(settings: Settings, run: RunRecord, inputs: Inputs) -> list[str]:
    """The file-sourced tables whose files differ from those the run read.

    A file's fingerprint is its bytes, so a difference is a real change. A
    SQL source's is not compared: an incremental run hashes only the rows
    new that day, so the two would differ with nothing changed.
    """
    recorded = run.inputs.get("fingerprints") or {}
    return [
        name
        for name, source in settings.data.sources().items()
        if isinstance(source, FileSource)
        and name in recorded
        and recorded[name] != inputs.fingerprints.get(name)
    ]


def _inputs_note(tables: list[str]) -> str:
    return (
        f"The {', '.join(tables)} file(s) changed since this run read them: its "
        "figures are recomputed from the files as they are now, counting only "
        "rows up to the run's day; its plan is shown as the run made it"
    )


def _cycle_runs(store: StateStore, settings: Settings) -> list[RunRecord]:
    """Daily cycle runs that wrote a plan, newest first (rollbacks left out)."""
    return [
        run
        for run in store.list_runs()
        if run.kind == CYCLE
        and run.plan_dir
        and (_folder(run, settings) / "plan.json").exists()
    ]


def _pick(runs: list[RunRecord], run_id: str | None, settings: Settings) -> RunRecord:
    if not runs:
        raise ReportError(
            f"no run recorded in the state store of {settings.state.directory}: "
            f"run `{first_run_command(settings.source)}` first"
        )
    if run_id is None:
        return runs[0]
    for run in runs:
        if run.run_id == run_id:
            return run
    known = ", ".join(r.run_id for r in runs[:5])
    raise ReportError(f"--run {run_id!r} is not a recorded run (newest: {known})")


#: The week view compares with the newest run from 7 to this many days
#: before; an older one would not say what moved this week.
WEEK_LOOKBACK_DAYS = 14


def _week_before(
    runs: list[RunRecord], run: RunRecord, state_directory: Path
) -> dict[str, Any] | None:
    """Headline of the newest run 7 to ``WEEK_LOOKBACK_DAYS`` days before ``run``."""
    latest = run.run_date - dt.timedelta(days=7)
    earliest = run.run_date - dt.timedelta(days=WEEK_LOOKBACK_DAYS)
    for earlier in runs:
        if earliest <= earlier.run_date <= latest and earlier.plan_dir:
            folder = plan_folder(earlier, state_directory) or Path()
            path = folder / HEADLINE_FILE
            if path.exists():
                loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return loaded
            return {"run_id": earlier.run_id, "run_date": earlier.run_date.isoformat()}
    return None


def _score(
    settings: Settings, run: RunRecord, inputs: Inputs
) -> tuple[pd.DataFrame, dict[str, float]]:
    registry = ModelRegistry(settings.model.directory)
    # The run's own model first: a model that failed its gate is still the
    # one the cycle scored with when no earlier model had passed.
    if run.model_version and run.model_version in registry.versions():
        model = PLTVModel.load(settings.model.directory / run.model_version)
    else:
        current = registry.current()
        if current is None:
            raise ReportError(
                f"run {run.run_id}: its model {run.model_version!r} is not in "
                f"{settings.model.directory} and no model is current there"
            )
        logger.warning(
            "run %s used model %s, no longer stored; scoring with the current %s",
            run.run_id,
            run.model_version,
            current.version,
        )
        model = current
    as_of = start_of_day(run.run_date, settings.account.time_zone)
    scores = model.predict(inputs.users, inputs.revenue, as_of, inputs.events)
    return scores, dict(model.metrics)


def report_after_run(
    settings: Settings,
    run: RunRecord,
    plan: list[PlanRow],
    inputs: Inputs,
    scores: pd.DataFrame,
    metrics: dict[str, float],
) -> Path:
    """Write the report of a run that was just recorded into its plan folder."""
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        history = [
            (r.run_date, store.plan_of(r.run_id)) for r in _cycle_runs(store, settings)
        ]
    finally:
        store.dispose()
    report = assemble(
        settings, run, plan, inputs, scores, history=history, metrics=metrics
    )
    return write_run_report(report, _folder(run, settings))
