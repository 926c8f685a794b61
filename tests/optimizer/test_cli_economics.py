"""The economics and case commands, run as a user would."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from optimizer.cli import app

from .conftest import PLGWorld

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_economics_prints_every_table(plg_world: PLGWorld) -> None:
    code, out = _run(
        "economics", "--config", str(plg_world.config), "--run-date", "2026-12-01"
    )

    assert code == 0, out
    for text in (
        "CAC: cost over new paying users",
        "LTV per paying customer",
        "LTV/CAC",
        "Rule of 40: growth 46.0 %",
        "Marketing budget",
        "Sales and marketing",
        "freelancer",
        "50+",
    ):
        assert text in out


def test_case_spend(plg_world: PLGWorld) -> None:
    code, out = _run(
        "case",
        "spend",
        "--config",
        str(plg_world.config),
        "--market",
        "de",
        "--amount",
        "50000",
        "--run-date",
        "2026-12-01",
    )

    assert code == 0, out
    assert "Spend 50,000 EUR in DE" in out
    assert "new paying customers" in out
    assert "budget rule, account" in out and "budget rule, DE" in out
    assert "linear extrapolation at the current CAC" in out
    assert "far beyond" not in out


def test_case_spend_far_beyond_the_market_says_by_how_much(
    plg_world: PLGWorld,
) -> None:
    code, out = _run(
        "case",
        "spend",
        "--config",
        str(plg_world.config),
        "--market",
        "DE",
        "--amount",
        "1e12",
        "--run-date",
        "2026-12-01",
    )

    assert code == 0, out
    assert "far beyond what was observed" in out
    assert "x the ad spend of a year in DE" in out
    assert ": fits" not in out


def test_case_hire(plg_world: PLGWorld) -> None:
    """100k a year, 12 months, 80 % margin: 100,000 * 12 / (12 * 0.8) = 125,000."""
    code, out = _run(
        "case",
        "hire",
        "--config",
        str(plg_world.config),
        "--cost",
        "100000",
        "--run-date",
        "2026-12-01",
    )

    assert code == 0, out
    assert "125,000 EUR of new ARR" in out


def test_case_spend_in_an_unknown_market_fails_cleanly(plg_world: PLGWorld) -> None:
    code, out = _run(
        "case",
        "spend",
        "--config",
        str(plg_world.config),
        "--market",
        "IT",
        "--amount",
        "1000",
        "--run-date",
        "2026-12-01",
    )

    assert code == 1
    assert "market 'IT' is not in the config" in out


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["plg", "cdnow"])
def test_demo_scenarios_run_end_to_end(
    tmp_path_factory: pytest.TempPathFactory, scenario: str
) -> None:
    directory = tmp_path_factory.mktemp(scenario)
    code, out = _run(
        "demo",
        "--scenario",
        scenario,
        "--dir",
        str(directory),
        "--run-date",
        "2026-12-01",
    )

    assert code == 0, out
    assert "Plan written to" in out
    assert ("synthetic" in out) is (scenario == "plg")
