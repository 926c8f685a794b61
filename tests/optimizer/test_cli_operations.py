"""The runs, plan show, approve and rollback commands on a recorded run."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from optimizer.apply import ApplyReport, Approval
from optimizer.cli import _show_approval, _show_withheld, _withheld_count, app
from optimizer.state import StateStore
from tests.fakes.token_endpoint import closed_token_uri
from tests.optimizer.conftest import PLAN, RUN_DATE, ZONE, record_plan

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "valuebid.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "account": {"name": "Acme FR", "time_zone": ZONE, "currency": "EUR"},
                "data": {
                    "users": "users.csv",
                    "revenue": "revenue.csv",
                    "campaign_stats": "stats.csv",
                },
                "markets": {"FR": {"cac_max": 120.0}},
                "state": {"directory": "state"},
            }
        ),
        encoding="utf-8",
    )
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    record_plan(store)
    store.dispose()
    return path


def test_runs_lists_the_history(config: Path) -> None:
    result = runner.invoke(app, ["runs", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "20261116-acme-fr" in result.output
    assert "planned" in result.output


@pytest.mark.parametrize(
    "command", [["runs"], ["plan", "show"], ["rollback", "some-run"]]
)
def test_before_any_run_nothing_is_created(config: Path, command: list[str]) -> None:
    state = config.parent / "state"
    for file in state.iterdir():
        file.unlink()

    result = runner.invoke(app, [*command, "--config", str(config)])

    assert result.exit_code == 1
    assert "no run recorded yet" in result.output
    assert f"`valuebid run --config {config}` makes one" in result.output
    assert list(state.iterdir()) == []


def test_plan_show_defaults_to_the_latest_run(config: Path) -> None:
    result = runner.invoke(app, ["plan", "show", "--config", str(config)])
    assert result.exit_code == 0, result.output
    for campaign in ("101", "102", "103", "104"):
        assert campaign in result.output
    assert "+15.0%" in result.output


def test_a_plan_row_stays_on_one_line_when_the_output_is_not_a_terminal(
    config: Path,
) -> None:
    command = ["plan", "show", "--config", str(config)]

    piped = runner.invoke(app, command, env={"COLUMNS": None})
    narrow = runner.invoke(app, command, env={"COLUMNS": "60"})

    assert piped.exit_code == 0, piped.output
    row = next(line for line in piped.output.splitlines() if "migrate" in line)
    assert "101 FR | Search | 101" in row
    assert "tCPA 41.00" in row and "1.93" in row
    # A width the user set is kept, even when it breaks rows.
    assert narrow.exit_code == 0, narrow.output
    assert max(map(len, narrow.output.splitlines())) <= 60


def test_plan_show_tells_the_command_with_the_config_it_was_given(
    config: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "value bid" / "acme.yaml"
    moved.parent.mkdir()
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["state"]["directory"] = str(tmp_path / "state")
    moved.write_text(yaml.safe_dump(raw), encoding="utf-8")
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    with store.transaction() as connection:
        store.record_failed_attempt(
            connection,
            account="Acme FR",
            run_date=RUN_DATE,
            error="InputError: users.csv is missing",
            when=dt.datetime(2026, 11, 16, 10, 5, tzinfo=dt.UTC),
        )
    store.dispose()

    result = runner.invoke(
        app, ["plan", "show", "--config", str(moved)], env={"COLUMNS": "400"}
    )

    assert result.exit_code == 0, result.output
    assert (
        f"`valuebid run --config '{moved}' --run-date {RUN_DATE}` again to "
        "re-plan the day" in result.output
    )
    assert "FILE" not in result.output


@pytest.mark.parametrize(
    "command", [["plan", "show", "nope"], ["approve", "nope"], ["rollback", "nope"]]
)
def test_an_unknown_run_is_named_with_the_command_that_lists_the_runs(
    config: Path, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, "--config", str(config)])

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "no run 'nope'" in said
    assert f"(`valuebid runs --config {shlex.quote(str(config))}` lists them)" in said


def test_approve_without_an_account_records_nothing(
    config: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        ["approve", "20261116-acme-fr", "--campaign", "102", "--config", str(config)],
    )

    assert result.exit_code == 1
    assert "approved" not in result.output
    assert "needs a Google Ads account" in result.output
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    approved = [
        s.row.campaign_id
        for s in store.stored_plan("20261116-acme-fr")
        if s.approved_at
    ]
    store.dispose()
    assert approved == []


def test_approve_with_a_failing_login_is_one_error_and_records_nothing(
    config: Path, tmp_path: Path
) -> None:
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["google_ads"] = {
        "customer_ids": ["1234567890"],
        "endpoint": "127.0.0.1:9",
        "token_uri": closed_token_uri(),
        "retry": {"max_attempts": 1},
    }
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    secrets = {
        "GOOGLE_ADS_DEVELOPER_TOKEN": "dt-secret-8181",
        "GOOGLE_ADS_CLIENT_ID": "client-id.apps",
        "GOOGLE_ADS_CLIENT_SECRET": "cs-secret-8282",
        "GOOGLE_ADS_REFRESH_TOKEN": "rt-secret-8383",
    }

    result = runner.invoke(
        app,
        ["approve", "20261116-acme-fr", "--campaign", "102", "--config", str(config)],
        env=secrets,
    )

    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: login to the Google Ads API failed" in result.output
    assert "google_ads.token_uri" in result.output
    assert "Traceback" not in result.output and "approved" not in result.output
    assert not any(
        secrets[f"GOOGLE_ADS_{k}"] in result.output
        for k in ("DEVELOPER_TOKEN", "CLIENT_SECRET", "REFRESH_TOKEN")
    )
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    approved = [s for s in store.stored_plan("20261116-acme-fr") if s.approved_at]
    store.dispose()
    assert approved == []


def test_rollback_of_a_run_that_pushed_nothing_says_so_before_any_account(
    config: Path,
) -> None:
    # The config has no google_ads section: the run's own record answers.
    result = runner.invoke(
        app, ["rollback", "20261116-acme-fr", "--config", str(config)]
    )

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "applied no change to Google Ads: nothing to roll back" in said
    assert "Google Ads account" not in said


def test_runs_shows_no_apply_count_for_a_run_nothing_was_pushed_for(
    config: Path, tmp_path: Path
) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    with store.transaction() as connection:
        store.record_run(
            connection,
            account="Acme FR",
            run_date=RUN_DATE + dt.timedelta(days=1),
            mode="dry_run",
            inputs={},
            model_version="pltv-test",
            plan_dir="/nonexistent",
            rows=PLAN,
            started_at=dt.datetime.now(dt.UTC),
        )
    store.dispose()

    result = runner.invoke(
        app, ["runs", "--config", str(config)], env={"COLUMNS": "200"}
    )

    assert result.exit_code == 0, result.output
    assert "0/0" not in result.output
    rows = [line.split("│") for line in result.output.splitlines() if "acme-fr" in line]
    headers = next(
        line.split("┃") for line in result.output.splitlines() if "applied" in line
    )
    applied = [h.strip() for h in headers].index("applied")
    assert {(r[5].strip(), r[applied].strip()) for r in rows} == {
        ("dry_run", "-"),
        ("apply", "-"),
    }


def test_approve_says_what_it_approved_and_which_approvals_still_wait(
    capsys: pytest.CaptureFixture[str],
) -> None:
    approval = Approval(
        approved=["1001"],
        renewed=[],
        awaiting_renewal=["1002", "1003"],
        failed_at=dt.datetime(2026, 11, 16, 10, 5, tzinfo=dt.UTC),
    )

    _show_approval("20261116-acme-fr", approval, Path("/srv/value bid/acme.yaml"))

    said = " ".join(capsys.readouterr().out.split())
    assert "1 change(s) of run 20261116-acme-fr approved: 1001" in said
    assert "Still waiting to be approved again: campaign(s) 1002, 1003" in said
    assert "failed at 2026-11-16 10:05 UTC" in said
    assert "Apply refuses to push this run until they are approved again" in said
    # The config named is the one given, quoted so the command can be pasted.
    assert (
        "`valuebid approve 20261116-acme-fr --config '/srv/value bid/acme.yaml'` "
        "without --campaign" in said
    )


def test_approve_names_renewed_approvals_and_says_when_nothing_was_left_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = Path("valuebid.yaml")
    _show_approval(
        "r", Approval(approved=["101"], renewed=["102"], awaiting_renewal=[]), config
    )
    _show_approval("r", Approval(approved=[], renewed=[], awaiting_renewal=[]), config)

    said = capsys.readouterr().out.splitlines()
    assert said == [
        "2 change(s) of run r approved: 101, 102 (approved again)",
        "no change of run r approved: the ones asked for were approved already",
    ]


def test_an_apply_names_each_change_withheld_for_stale_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reason = "campaign stats of market DE end on 2026-11-13, 3 day(s) before yesterday"
    report = ApplyReport("r", applied=["101"], withheld={"201": reason})

    _show_withheld(report)

    said = " ".join(capsys.readouterr().err.split())
    assert f"withheld: campaign 201 (stale_data): {reason}" in said
    assert _withheld_count(report) == ", 1 withheld (stale_data)"
    assert _withheld_count(ApplyReport("r", applied=["101"])) == ""


def test_runs_piped_stays_readable_and_wraps_a_long_reason(
    config: Path, tmp_path: Path
) -> None:
    reason = "stale_data: " + " ".join(["campaign stats end too early"] * 8)
    store = StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")
    with store.transaction() as connection:
        store.set_status(connection, "20261116-acme-fr", "stopped", reason)
    store.dispose()

    piped = runner.invoke(app, ["runs", "--config", str(config)], env={"COLUMNS": None})

    assert piped.exit_code == 0, piped.output
    # Readable in a pager or a log: at most 120 columns.
    assert max(map(len, piped.output.splitlines())) <= 120
    cells = "".join(
        line.split("│")[-2].strip()
        for line in piped.output.splitlines()
        if line.count("│") > 2
    )
    assert reason.replace(" ", "") in cells.replace(" ", "")
