"""The plausibility guardrail: inputs off by orders of magnitude hold the day.

A first run has no earlier level to compare its values with, so these run
on a fresh state: the bundled demos as they are (plausible), and a small
synthetic PLG account (seeded; ``optimizer/scenarios/plg.py``) with its
revenue in cents or its cost in micros.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

from config import load_settings
from config.schema import Settings
from connectors.files import Inputs, load_inputs
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.apply import CampaignTarget
from optimizer.cli import app
from optimizer.cycle import CycleResult, run_cycle
from optimizer.days import start_of_day
from optimizer.demo import build_demo
from optimizer.plausibility import (
    CPA_TO_CAC,
    HELD,
    LTV_TO_CAC,
    PASSED,
    check_plausibility,
)
from optimizer.policy import HOLD, IMPLAUSIBLE
from optimizer.scenarios.plg import build_plg
from optimizer.state import VALUE_HELD
from optimizer.value_level import FIRST
from tests.optimizer.fakes import MemoryAccount, RecordingSink
from tests.support.datasets import write_dataset

ZONE = "Europe/Paris"
#: The feed's clock is the real one, so the account ends yesterday.
TODAY = dt.datetime.now(ZoneInfo(ZONE)).date()


@dataclasses.dataclass(frozen=True)
class World:
    """A small PLG account ending yesterday, and a model registered on it."""

    directory: Path
    inputs: Inputs
    model: PLTVModel

    def scaled(self, table: str, column: str, factor: float) -> Inputs:
        """The same tables with one column times ``factor``."""
        frame = getattr(self.inputs, table)
        scaled = frame.assign(**{column: frame[column] * factor})
        return dataclasses.replace(self.inputs, **{table: scaled})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("plausibility")
    files = build_plg(directory, TODAY, seed=11, scale=0.1)
    settings = load_settings(files.config)
    inputs = load_inputs(settings.data, currency=settings.account.currency)
    as_of = start_of_day(TODAY, ZONE)
    model = PLTVModel(ages=(0, 7, 30, 90), loss="relative").fit(
        inputs.users, inputs.revenue, as_of, inputs.events
    )
    # About the inputs, not the model: a small model fitted in seconds is
    # declared to have passed its gate, so targets may move.
    model.gate_failures = []
    assert ModelRegistry(settings.model.directory).register(model)
    return World(directory, inputs, model)


def _config(world: World, home: Path, *, mode: str = "auto") -> Path:
    """The account's config on copies of its tables, with its own state.

    A copy without the feed section, whose credentials ``check`` would
    read, is written next to it as ``no-feed.yaml``.
    """
    shutil.copytree(world.directory / "data", home / "data")
    raw = yaml.safe_load((world.directory / "valuebid.yaml").read_text())
    raw["data"] = {k: str(home / v) for k, v in raw["data"].items()}
    raw["model"] = {"directory": str(world.directory / "model")}
    raw["state"] = {"directory": str(home / "state")}
    # The small account has too few conversions for Google's minimums.
    raw["guardrails"] = {
        "min_volume": {
            "SEARCH": {"conversions": 1, "window_days": 30},
            "OTHER": {"conversions": 1, "window_days": 45},
        }
    }
    raw["feed"] = {
        "sink": "conversion_upload",
        "customer_id": "123-456-7890",
        "conversion_action_id": "42",
    }
    raw["operations"] = {"lock_wait_seconds": 0, "apply_mode": mode}
    path = home / "valuebid.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    del raw["feed"]
    (home / "no-feed.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _first_run(
    world: World, settings: Settings, inputs: Inputs
) -> tuple[CycleResult, MemoryAccount, RecordingSink]:
    stats = world.inputs.campaign_stats.sort_values("date")
    latest = stats.groupby("campaign_id", observed=True).tail(1)
    account = MemoryAccount(
        {
            str(row.campaign_id): CampaignTarget(
                str(row.campaign_id),
                str(row.bidding_strategy_type),
                None if pd.isna(row.target_roas) else float(row.target_roas),
                None if pd.isna(row.target_cpa) else float(row.target_cpa),
            )
            for row in latest.itertuples()
        }
    )
    sink = RecordingSink()
    result = run_cycle(
        settings,
        run_date=TODAY,
        apply=True,
        inputs=inputs,
        model=world.model,
        writer=account,
        value_sink=sink,
    )
    return result, account, sink


def test_the_demo_and_the_scenario_inputs_are_plausible(
    world: World, tmp_path: Path
) -> None:
    demo = load_settings(build_demo(tmp_path, TODAY).config)
    cdnow = load_inputs(demo.data, currency=demo.account.currency)
    plg = load_settings(world.directory / "valuebid.yaml")

    for settings, inputs in ((demo, cdnow), (plg, world.inputs)):
        as_of = start_of_day(TODAY, settings.account.time_zone)
        check = check_plausibility(settings, inputs, as_of, run_date=TODAY)

        assert (check.status, check.signals) == (PASSED, ())


def test_an_account_without_a_first_year_over_is_not_judged_on_it(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_dataset(tmp_path).config)
    inputs = load_inputs(settings.data, currency=settings.account.currency)
    as_of = start_of_day(TODAY, settings.account.time_zone)

    check = check_plausibility(settings, inputs, as_of, run_date=TODAY)

    assert (check.status, check.signals) == (PASSED, ())


def test_revenue_in_cents_holds_a_first_run(world: World, tmp_path: Path) -> None:
    settings = load_settings(_config(world, tmp_path))
    cents = world.scaled("revenue", "amount", 100)

    held, account, sink = _first_run(world, settings, cents)

    assert held.held
    assert held.value_check is not None and held.value_check.status == FIRST
    check = held.plausibility
    assert check is not None and check.status == HELD
    assert {s.figure for s in check.signals} == {LTV_TO_CAC}
    assert {s.market for s in check.signals} == set(settings.markets)
    assert all(s.ratio > 50 for s in check.signals)
    assert "revenue exported in cents rather than currency units?" in check.reason
    assert "guardrails.max_plausible_ltv_to_cac" in check.reason
    assert f"--run-date {TODAY} --accept-unusual-economics`" in check.hint
    assert (account.pushes, sink.sent) == ([], [])
    assert {(row.action, row.guardrail) for row in held.rows} == {(HOLD, IMPLAUSIBLE)}
    record = held.run
    assert record.status == VALUE_HELD
    assert record.stop_reason is not None
    assert record.stop_reason.startswith(f"{IMPLAUSIBLE}: the inputs are implausible")
    assert record.inputs["plausibility"]["status"] == HELD
    document = json.loads((held.plan_dir / "plan.json").read_text())
    assert document["held_reason"] == record.stop_reason
    assert document["plausibility"]["status"] == HELD


def test_cost_in_micros_holds_a_first_run(world: World, tmp_path: Path) -> None:
    settings = load_settings(_config(world, tmp_path))
    micros = world.scaled("campaign_stats", "cost", 1_000_000)

    held, account, sink = _first_run(world, settings, micros)

    check = held.plausibility
    assert held.held and check is not None and check.status == HELD
    assert {s.figure for s in check.signals} == {CPA_TO_CAC}
    assert all(s.ratio > 10_000 for s in check.signals)
    assert "campaign cost exported in micros rather than currency units?" in (
        check.reason
    )
    assert (account.pushes, sink.sent) == ([], [])
    assert all(row.new_troas is None for row in held.rows)
    assert {row.guardrail for row in held.rows} == {IMPLAUSIBLE}
    assert held.run.status == VALUE_HELD


def _valuebid(*args: str, config: Path) -> Result:
    return CliRunner().invoke(
        app, [*args, "--config", str(config)], env={"COLUMNS": "400"}
    )


def test_the_commands_name_the_cents_and_how_to_go_on(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(world, tmp_path, mode="approval")
    revenue = tmp_path / "data" / "revenue.parquet"
    table = pd.read_parquet(revenue)
    table.assign(amount=table["amount"] * 100).to_parquet(revenue, index=False)
    cause = "revenue exported in cents rather than currency units?"
    accept = f"--run-date {TODAY} --accept-unusual-economics`"

    with caplog.at_level(logging.WARNING, logger="optimizer.plausibility"):
        check = _valuebid("check", config=tmp_path / "no-feed.yaml")
    # check prints the finding itself: a logged copy would show it twice.
    assert not [r for r in caplog.records if r.name == "optimizer.plausibility"]
    feed = _valuebid("feed", config=config)
    run = _valuebid("run", config=config)

    assert check.exit_code == 0, check.output
    said = " ".join(check.stdout.split())
    assert "a run today would hold every target and send no value" in said
    assert cause in said and accept in said
    assert feed.exit_code == 1, feed.output
    assert "held: --send would send nothing: the inputs are implausible" in (
        " ".join(feed.stderr.split())
    )
    assert run.exit_code == 1, run.output
    held = " ".join(run.stderr.split())
    assert f"held: every target holds and no value is sent ({IMPLAUSIBLE})" in held
    assert cause in held and accept in held
    listed = " ".join(_valuebid("runs", config=config).stdout.split())
    assert f"or ({IMPLAUSIBLE}) revenue or cost was implausible" in listed

    accepted = _valuebid("run", "--accept-unusual-economics", config=config)

    assert accepted.exit_code == 0, accepted.output
    assert "accepted for this run with --accept-unusual-economics" in (
        " ".join(accepted.stdout.split())
    )
    after = _valuebid("feed", config=config)
    assert after.exit_code == 0, after.output


@pytest.mark.parametrize(
    ("table", "column", "factor", "cause", "limit"),
    [
        (
            "revenue.parquet",
            "amount",
            100,
            "revenue exported in cents rather than currency units?",
            "guardrails.max_plausible_ltv_to_cac",
        ),
        (
            "campaign_stats.csv",
            "cost",
            1_000_000,
            "campaign cost exported in micros rather than currency units?",
            "guardrails.max_plausible_cpa_to_cac",
        ),
    ],
)
def test_economics_warns_on_implausible_inputs_and_still_reports(
    world: World,
    tmp_path: Path,
    table: str,
    column: str,
    factor: float,
    cause: str,
    limit: str,
) -> None:
    """The report is printed, after the same sentence ``check`` gives: the
    market, the figure, its cap, the limit and the likely cause."""
    config = _config(world, tmp_path)
    plain = _valuebid("economics", config=config)
    path = tmp_path / "data" / table
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        frame.assign(**{column: frame[column] * factor}).to_parquet(path, index=False)
    else:
        frame = pd.read_csv(path)
        frame.assign(**{column: frame[column] * factor}).to_csv(path, index=False)

    scaled = _valuebid("economics", config=config)
    case = _valuebid(
        "case", "spend", "--market", "FR", "--amount", "1000", config=config
    )

    assert plain.exit_code == 0, plain.output
    assert "implausible" not in plain.output
    assert scaled.exit_code == 0, scaled.output
    warned = " ".join(scaled.stderr.split())
    assert "warning: the inputs are implausible for the config's CAC caps" in warned
    assert cause in warned and limit in warned
    assert "market FR:" in warned or "market DE:" in warned
    assert "The tables below are measured on these inputs" in warned
    assert f"holds every target and sends no value ({IMPLAUSIBLE})" in warned
    assert "CAC: cost over new paying users" in scaled.stdout
    assert case.exit_code == 0, case.output
    assert cause in " ".join(case.stderr.split())
    assert "This case is measured on these inputs" in " ".join(case.stderr.split())
    assert "Spend 1,000 EUR in FR" in case.stdout
