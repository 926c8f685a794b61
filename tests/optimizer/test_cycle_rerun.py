"""A rerun of a day that fails before re-planning it, on the bundled demo.

The operator runs the day, then replaces an input with one that fails its
checks and runs the day again: the failure is recorded on the day's run, the
earlier plan is held back until a run of the day succeeds, and a plan already
approved stays as it was.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from config import load_settings
from connectors.exceptions import InputError
from optimizer.apply import CampaignTarget, apply_run, approve
from optimizer.cli import app
from optimizer.cycle import record_failed_start, run_cycle
from optimizer.days import account_today
from optimizer.demo import CAMPAIGNS, DEMO_TIME_ZONE, build_demo
from optimizer.exceptions import SupersededPlanError
from optimizer.masking import MAX_STORED_ERROR
from optimizer.state import RunRecord, StateStore, missing_sqlite_file, state_url
from tests.optimizer.conftest import RUN_DATE as RECORDED_DAY
from tests.optimizer.conftest import make_settings, record_plan
from tests.optimizer.fakes import MemoryAccount

RUN_DATE = dt.date(2026, 12, 4)
RUN_ID = "20261204-cdnow-replay--demo"
runner = CliRunner()


def _drop_cost_column(directory: Path) -> None:
    stats = directory / "data" / "campaign_stats.csv"
    frame = pd.read_csv(stats, dtype="string", keep_default_na=False)
    frame.drop(columns="cost").to_csv(stats, index=False)


def _make_most_revenue_negative(directory: Path) -> None:
    revenue = directory / "data" / "revenue.csv.gz"
    with gzip.open(revenue, "rt", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
    frame.loc[:4999, "amount"] = "-1"
    with gzip.open(revenue, "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)


def _add_a_campaign_of_no_market(directory: Path) -> None:
    stats = directory / "data" / "campaign_stats.csv"
    frame = pd.read_csv(stats, dtype="string", keep_default_na=False)
    moved = frame["campaign_id"] == "1005"
    frame.loc[moved, "campaign_id"] = "1009"
    frame.loc[moved, "campaign_name"] = "CA | Search | Competitors"
    frame.to_csv(stats, index=False)


#: Ways a replaced input fails: what breaks it, what the error says, its type.
BREAKS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "contract": (_drop_cost_column, "lacks required column(s) cost", "ContractError"),
    "quarantine": (
        _make_most_revenue_negative,
        "column 'amount', line 2: value '-1'",
        "ContractError",
    ),
    "planning": (
        _add_a_campaign_of_no_market,
        "campaign 1009 ('CA | Search | Competitors') belongs to no market",
        "PlanningError",
    ),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's files and a model trained on them, once for the module."""
    directory = tmp_path_factory.mktemp("trained")
    files = build_demo(directory, RUN_DATE)
    run_cycle(load_settings(files.config), run_date=RUN_DATE)
    return directory


@pytest.fixture
def config(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained demo with no run recorded yet."""
    for name in ("data", "model"):
        shutil.copytree(trained / name, tmp_path / name)
    shutil.copy(trained / "valuebid.yaml", tmp_path / "valuebid.yaml")
    return tmp_path / "valuebid.yaml"


def _restore_inputs(trained: Path, config: Path) -> None:
    shutil.rmtree(config.parent / "data")
    shutil.copytree(trained / "data", config.parent / "data")


def _valuebid(*args: str, config: Path) -> Result:
    # Wide enough that no table cell of the runs view folds, the value per
    # user column and a failure naming every column of a table included.
    return runner.invoke(app, [*args, "--config", str(config)], env={"COLUMNS": "500"})


def _run_day(config: Path) -> Result:
    return _valuebid("run", "--run-date", RUN_DATE.isoformat(), config=config)


def _error(result: Result) -> str:
    """The error paragraph the command printed."""
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    return line


def _day_run(config: Path) -> tuple[RunRecord, list[tuple[str, str, bool]]]:
    settings = load_settings(config)
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        record = store.get_run(RUN_ID)
        assert record is not None
        plan = [
            (s.row.campaign_id, s.row.action, s.approved_at is not None)
            for s in store.stored_plan(RUN_ID)
        ]
    finally:
        store.dispose()
    return record, plan


def _recorded_runs(config: Path) -> list[str]:
    settings = load_settings(config)
    url = state_url(settings.state.directory, settings.state.url)
    if missing_sqlite_file(url) is not None:
        return []
    store = StateStore(url)
    try:
        return [r.run_id for r in store.list_runs()]
    finally:
        store.dispose()


def _account() -> MemoryAccount:
    return MemoryAccount(
        {
            c.campaign_id: CampaignTarget(
                c.campaign_id, "TARGET_CPA", None, c.cost_per_acquisition
            )
            for c in CAMPAIGNS
        }
    )


def _apply_day(config: Path, account: MemoryAccount, approving: bool) -> list[str]:
    """Approve (all) and apply the day's plan as `valuebid approve` does."""
    settings = load_settings(config)
    moment = dt.datetime.combine(RUN_DATE, dt.time(9), ZoneInfo(DEMO_TIME_ZONE))
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        if approving:
            # Approved now, so after any failed start the tests recorded.
            approve(store, RUN_ID)
        report = apply_run(store, RUN_ID, account, settings, clock=lambda: moment)
    finally:
        store.dispose()
    return sorted(report.pushed)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BREAKS))
def test_a_failed_rerun_is_recorded_and_holds_the_days_plan_back(
    trained: Path, config: Path, kind: str
) -> None:
    break_input, says, error_type = BREAKS[kind]
    # The same broken input on a day with no run yet: the error as it is.
    break_input(config.parent)
    before_any_run = _run_day(config)
    assert before_any_run.exit_code == 1
    assert says in _error(before_any_run)
    assert _recorded_runs(config) == []
    _restore_inputs(trained, config)
    assert _run_day(config).exit_code == 0, "the first run of the day plans"
    planned, plan = _day_run(config)
    assert planned.status == "planned"

    break_input(config.parent)
    rerun = _run_day(config)

    assert rerun.exit_code == 1
    assert _error(rerun) == _error(before_any_run)
    held, plan_after = _day_run(config)
    assert (held.status, held.attempts) == ("rerun_failed", 2)
    assert held.failed_attempt_error is not None
    assert held.failed_attempt_error.startswith(f"{error_type}: ")
    assert says in held.failed_attempt_error
    assert plan_after == plan
    listed = _valuebid("runs", config=config)
    assert listed.exit_code == 0, listed.output
    assert "rerun_failed" in listed.stdout
    assert f"a later run failed at {held.failed_attempt_at:%Y-%m-%d %H:%M}" in (
        listed.stdout
    )
    assert f"{error_type}: " in listed.stdout
    assert says in listed.stdout
    shown = _valuebid("plan", "show", config=config)
    assert "This plan is held back" in shown.stdout
    refused = _valuebid("approve", RUN_ID, config=config)
    assert refused.exit_code == 1
    assert f"run {RUN_ID} cannot be approved" in _error(refused)
    assert says in _error(refused)
    assert "Fix what that run reported" in _error(refused)
    again = f"valuebid run --config {shlex.quote(str(config))} --run-date 2026-12-04"
    assert f"`{again}` again" in _error(refused)
    assert f"`{again}` again to re-plan the day" in shown.stdout
    assert [approved for _, _, approved in _day_run(config)[1] if approved] == []


def test_a_day_not_begun_is_neither_planned_nor_measured(config: Path) -> None:
    tomorrow = (account_today(DEMO_TIME_ZONE) + dt.timedelta(days=1)).isoformat()

    planned = _valuebid("run", "--run-date", tomorrow, "--apply", config=config)
    measured = _valuebid("economics", "--run-date", tomorrow, config=config)

    for result, what in ((planned, "planned"), (measured, "measured")):
        assert result.exit_code == 1
        assert f"--run-date {tomorrow} has not begun" in _error(result)
        assert f"a day is {what} with the data up to its start" in _error(result)
    assert _recorded_runs(config) == []


def test_an_apply_with_no_account_to_apply_to_leaves_the_days_plan_alone(
    config: Path,
) -> None:
    assert _run_day(config).exit_code == 0
    planned, plan = _day_run(config)

    refused = _valuebid(
        "run", "--run-date", RUN_DATE.isoformat(), "--apply", config=config
    )

    assert refused.exit_code == 1
    assert "google_ads: section" in _error(refused)
    assert "held back" not in refused.output
    after, plan_after = _day_run(config)
    assert (after.status, after.attempts) == (planned.status, planned.attempts)
    assert after.failed_attempt_error is None
    assert plan_after == plan
    assert _valuebid("approve", RUN_ID, config=config).exit_code != 0
    assert (
        "since been replaced" not in _valuebid("approve", RUN_ID, config=config).output
    )


@pytest.mark.slow
def test_a_fixed_rerun_replans_the_day_which_can_then_be_approved(
    trained: Path, config: Path
) -> None:
    assert _run_day(config).exit_code == 0
    _drop_cost_column(config.parent)
    assert _run_day(config).exit_code == 1
    _restore_inputs(trained, config)

    fixed = _run_day(config)

    assert fixed.exit_code == 0, fixed.output
    record, plan = _day_run(config)
    assert (record.status, record.attempts) == ("planned", 3)
    assert (record.failed_attempt_at, record.failed_attempt_error) == (None, None)
    assert "rerun_failed" not in _valuebid("runs", config=config).stdout
    changed = sorted(cid for cid, action, _ in plan if action != "hold")
    assert changed
    account = _account()
    assert _apply_day(config, account, approving=True) == changed
    assert sorted(account.pushes) == changed


@pytest.mark.slow
def test_an_approved_day_keeps_its_plan_after_a_failed_rerun(
    config: Path,
) -> None:
    assert _run_day(config).exit_code == 0
    settings = load_settings(config)
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        approve(store, RUN_ID, ["1001"])
    finally:
        store.dispose()
    approved, plan = _day_run(config)
    plan_file = config.parent / "state" / "runs" / "2026-12-04" / "plan.json"
    written = plan_file.read_text(encoding="utf-8")
    _add_a_campaign_of_no_market(config.parent)

    rerun = _run_day(config)

    assert rerun.exit_code == 1
    assert "belongs to no market" in _error(rerun)
    kept, plan_after = _day_run(config)
    assert (kept.status, kept.attempts) == ("planned", approved.attempts + 1)
    assert kept.failed_attempt_error is not None
    assert "belongs to no market" in kept.failed_attempt_error
    assert plan_after == plan
    assert ("1001", "migrate", True) in plan_after
    assert plan_file.read_text(encoding="utf-8") == written
    listed = _valuebid("runs", config=config).stdout
    assert "a later run failed at" in listed
    assert "rerun_failed" not in listed
    shown = _valuebid("plan", "show", RUN_ID, config=config).stdout
    assert (
        "This plan is kept as approved or pushed, but its changes not applied "
        "yet are not pushed until a run of the day succeeds"
    ) in shown
    account = _account()
    with pytest.raises(SupersededPlanError, match=r"campaign\(s\) 1001 are not"):
        _apply_day(config, account, approving=False)
    assert account.pushes == []
    # Approved again after the failure, the plan is pushed as it was made.
    changed = sorted(cid for cid, action, _ in plan if action != "hold")
    assert _apply_day(config, account, approving=True) == changed
    assert sorted(account.pushes) == changed


def test_a_stored_failure_names_no_secret(tmp_path: Path) -> None:
    hook = "https://hooks.example.com/services/T0AAA/B0BBB/hook-s3cret"
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'state' / 'state.db'}",
        alerts={"webhook_url": hook},
    )
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        record_plan(store)
    finally:
        store.dispose()
    error = InputError(
        f"users: cannot read postgresql://valuebid:pg-s3cret@127.0.0.1:5432/crm "
        f"(alerting {hook} failed too) " + "x" * 3000
    )

    record = record_failed_start(settings, RECORDED_DAY, error)

    assert record is not None
    stored = record.failed_attempt_error
    assert stored is not None
    assert stored.startswith(
        "InputError: users: cannot read postgresql://valuebid:***@127.0.0.1:5432/crm "
        "(alerting *** failed too) xxx"
    )
    assert "s3cret" not in stored
    assert len(stored) == MAX_STORED_ERROR
    assert record.status == "rerun_failed"


def _revenue_in_cents(directory: Path) -> None:
    revenue = directory / "data" / "revenue.csv.gz"
    with gzip.open(revenue, "rt", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
    frame["amount"] = (frame["amount"].astype(float) * 100).map("{:.2f}".format)
    with gzip.open(revenue, "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)


@pytest.mark.slow
def test_revenue_exported_in_cents_holds_the_next_day(config: Path) -> None:
    day_before = (RUN_DATE - dt.timedelta(days=1)).isoformat()
    assert _valuebid("run", "--run-date", day_before, config=config).exit_code == 0
    _revenue_in_cents(config.parent)

    held = _run_day(config)

    assert held.exit_code == 1
    assert "held: every target holds and no value is sent" in held.stderr
    record, plan = _day_run(config)
    assert record.status == "value_held"
    assert {action for _, action, _ in plan} == {"hold"}
    check = record.value_check
    assert check is not None
    assert (check["status"], check["basis"]) == ("held", "new")
    assert check["ratio"] > 3
    assert check["baseline_run"] == f"{day_before.replace('-', '')}-cdnow-replay--demo"
    refused = _valuebid("approve", RUN_ID, config=config)
    assert refused.exit_code == 1
    assert f"run {RUN_ID} cannot be approved" in _error(refused)
