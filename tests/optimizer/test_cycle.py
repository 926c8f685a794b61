"""The daily cycle on the bundled CDNOW replay: plan invariants and reruns."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from config import load_settings
from models.registry import ModelRegistry
from optimizer.cli import app
from optimizer.cycle import CycleResult, run_cycle
from optimizer.demo import CAMPAIGNS, DemoFiles, build_demo
from optimizer.policy import HOLD, MIGRATE
from optimizer.state import StateStore, state_url
from tests.fakes.token_endpoint import closed_token_uri
from tests.support.datasets import write_dataset

RUN_DATE = dt.date(2026, 12, 4)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoFiles, CycleResult]:
    directory = tmp_path_factory.mktemp("demo")
    files = build_demo(directory, RUN_DATE)
    result = run_cycle(load_settings(files.config), run_date=RUN_DATE)
    return files, result


def test_every_scenario_campaign_has_a_full_row(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    _, result = demo
    assert [row.campaign_id for row in result.rows] == [
        c.campaign_id for c in CAMPAIGNS
    ]
    for row in result.rows:
        floors = (
            row.floor_break_even,
            row.floor_ltv_cac,
            row.floor_payback,
            row.floor_cac_cap,
        )
        assert all(f is not None and f > 0 for f in floors), row
        assert row.binding_constraint is not None
        assert row.economic_troas == pytest.approx(
            max(f for f in floors if f), rel=1e-3
        )
        assert row.reason


def test_new_targets_respect_step_and_market_bounds(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    files, result = demo
    settings = load_settings(files.config)
    market = settings.markets["US"]
    step = settings.guardrails.max_step
    changed = [row for row in result.rows if row.new_troas is not None]
    assert changed, "the demo should move at least one campaign"
    for row in changed:
        assert row.current_roas_equivalent is not None
        assert market.troas_min <= row.new_troas <= market.troas_max
        ratio = row.new_troas / row.current_roas_equivalent
        assert 1 - step - 1e-9 <= ratio <= 1 + step + 1e-9, row


def test_low_volume_campaign_is_held_with_its_reason(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    _, result = demo
    by_id = {row.campaign_id: row for row in result.rows}
    competitors = by_id["1005"]
    assert competitors.action == HOLD
    assert competitors.guardrail == "volume"
    assert competitors.conversions_in_window < 15
    assert "needed for value-based bidding" in competitors.reason
    assert {row.action for row in result.rows} >= {MIGRATE}


def test_plan_files_match_the_rows(demo: tuple[DemoFiles, CycleResult]) -> None:
    _, result = demo
    document = json.loads((result.plan_dir / "plan.json").read_text())
    assert document["run_id"] == result.run.run_id
    assert document["mode"] == "dry_run"
    assert [c["campaign_id"] for c in document["campaigns"]] == [
        r.campaign_id for r in result.rows
    ]
    csv_lines = (result.plan_dir / "plan.csv").read_text().strip().splitlines()
    assert len(csv_lines) == len(result.rows) + 1
    assert csv_lines[0].startswith("campaign_id,campaign_name,market,")


def test_the_run_records_the_last_stats_day_of_each_campaign(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    """What the apply judges each market's and campaign's freshness on."""
    _, result = demo
    ends = result.run.inputs["data_through_by_campaign"]

    assert sorted(ends) == sorted(row.campaign_id for row in result.rows)
    assert max(ends.values()) == result.run.inputs["data_through"]


def test_predictions_are_close_to_what_new_users_really_spent(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    """The replay hides each new user's real first year; the sum should be near.

    Provenance: CDNOW (Fader and Hardie 2001), the quarter of customers the demo
    replays as new users; their actual purchases within 365 days of sign-up.
    """
    files, result = demo
    scores = result.scores.set_index("user_id")["pltv_365"]
    truth = files.truth.join(scores, how="inner")
    assert len(truth) == len(files.truth)
    error = truth["pltv_365"].sum() / truth["actual_365"].sum() - 1
    assert abs(error) < 0.15


def test_rerunning_a_day_updates_the_run_in_place(
    demo: tuple[DemoFiles, CycleResult],
) -> None:
    files, first = demo
    settings = load_settings(files.config)
    second = run_cycle(settings, run_date=RUN_DATE)
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        runs = store.list_runs()
        assert [run.run_id for run in runs] == [first.run.run_id]
        assert runs[0].attempts == 2
        assert len(store.plan_of(first.run.run_id)) == len(first.rows)
    finally:
        store.dispose()
    assert second.rows == first.rows
    assert second.model_version == first.model_version
    assert len(list(settings.model.directory.glob("*/metadata.json"))) == 1


def test_apply_with_a_failing_login_exits_non_zero_and_writes_nothing(
    tmp_path: Path,
) -> None:
    data = write_dataset(tmp_path)
    config = yaml.safe_load(data.config.read_text(encoding="utf-8"))
    config["google_ads"] = {
        "customer_ids": ["1234567890"],
        "endpoint": "127.0.0.1:9",
        "token_uri": closed_token_uri(),
        "retry": {"max_attempts": 1},
    }
    data.config.write_text(yaml.safe_dump(config), encoding="utf-8")
    secrets = {
        "GOOGLE_ADS_DEVELOPER_TOKEN": "dt-secret-7171",
        "GOOGLE_ADS_CLIENT_ID": "client-id.apps",
        "GOOGLE_ADS_CLIENT_SECRET": "cs-secret-7272",
        "GOOGLE_ADS_REFRESH_TOKEN": "rt-secret-7373",
    }

    result = CliRunner().invoke(
        app, ["run", "--apply", "--config", str(data.config)], env=secrets
    )

    assert result.exit_code == 1
    assert "error: login to the Google Ads API failed" in result.stderr
    assert "Traceback" not in result.output
    assert not any(
        secrets[name] in result.output
        for name in ("GOOGLE_ADS_CLIENT_SECRET", "GOOGLE_ADS_REFRESH_TOKEN")
    )
    assert secrets["GOOGLE_ADS_DEVELOPER_TOKEN"] not in result.output
    assert not (tmp_path / "state" / "runs").exists()


def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    text = data.revenue.read_text(encoding="utf-8").replace(
        "49.00,USD,o2", "-60,USD,o2"
    )
    data.revenue.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(data.config)])
    assert result.exit_code == 1
    assert "column 'amount', line 3" in result.stderr
    assert "'-60'" in result.stderr
    assert not (tmp_path / "state" / "state.db").exists()
    assert not (tmp_path / "state" / "runs").exists()
    assert not (tmp_path / "model").exists()
    # The refused rows stay on disk with their reasons, for whoever fixes them.
    (day,) = (tmp_path / "state" / "quarantine").iterdir()
    assert "more than user 'u1' had paid by then" in (day / "revenue.csv").read_text(
        encoding="utf-8"
    )


def test_config_error_exits_non_zero(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    data.config.write_text(
        data.config.read_text().replace("cac_max: 80.0", "cac_max: lots"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", "--config", str(data.config)])
    assert result.exit_code == 1
    assert "markets.US.cac_max" in result.stderr
    assert "'lots'" in result.stderr


def test_check_command_reports_row_counts(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    result = CliRunner().invoke(app, ["check", "--config", str(data.config)])
    assert result.exit_code == 0, result.output
    assert "3 users" in result.output


def test_demo_command_says_costs_are_illustrative(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--dir", str(tmp_path), "--run-date", "2026-12-04"]
    )
    assert result.exit_code == 0, result.output
    assert "illustrative" in result.output
    assert (tmp_path / "state" / "runs" / "2026-12-04" / "plan.csv").exists()
    said = " ".join(result.output.split())
    assert re.search(
        r"Hidden truth for the [\d,]+ users who signed up in the last [\d,]+ days",
        said,
    ), said

    # The first run trains a model, which takes minutes on a large account:
    # one line says so before and one gives the verdict after, in the output
    # even when it is not a terminal (a cron log) and the spinner shows nothing.
    registry = ModelRegistry(load_settings(tmp_path / "valuebid.yaml").model.directory)
    model = registry.current()
    assert model is not None
    lines = [line for line in result.output.splitlines() if "pLTV model" in line]
    assert lines == [
        f"no current pLTV model in {registry.root}: training one on "
        f"{model.metadata['n_labelled']:,} labelled users; this can take minutes",
        f"trained pLTV model {model.version}: quality gate passed, it is now the "
        "current model",
    ]


def test_a_model_that_failed_its_gate_holds_every_target(
    demo: tuple[DemoFiles, CycleResult], tmp_path: Path
) -> None:
    files, first = demo
    settings = load_settings(files.config)
    refused = ModelRegistry(settings.model.directory).current()
    assert refused is not None
    refused.gate_failures = ["mean gini below the baseline (set by this test)"]
    moved = settings.model_copy(
        update={"state": settings.state.model_copy(update={"directory": tmp_path})}
    )

    result = run_cycle(moved, run_date=RUN_DATE, model=refused)

    assert any(row.new_troas is not None for row in first.rows)
    for row in result.rows:
        assert row.action == HOLD
        assert row.new_troas is None
        assert row.guardrail == "model_gate", row
        assert "failed its quality gate" in row.reason
