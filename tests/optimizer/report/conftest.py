"""The demo, run on three days a week apart, as the report's real-data fixture."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import load_settings
from config.schema import Settings
from connectors.files import Inputs, load_inputs
from optimizer.cycle import CycleResult, run_cycle
from optimizer.demo import build_demo
from tests.optimizer.report.browser import chromium_path

#: The day the demo is built for; fixed so every figure is reproducible.
DEMO_DAY = dt.date(2026, 12, 4)
RUN_DAYS = (DEMO_DAY - dt.timedelta(days=14), DEMO_DAY - dt.timedelta(days=7), DEMO_DAY)


@dataclass(frozen=True)
class DemoRuns:
    """The demo's config, settings, inputs and the results of its three runs."""

    config: Path
    settings: Settings
    inputs: Inputs
    results: tuple[CycleResult, ...]

    @property
    def last(self) -> CycleResult:
        return self.results[-1]


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> DemoRuns:
    """The CDNOW demo run two weeks ago, last week and today, each with its report."""
    directory = tmp_path_factory.mktemp("report-demo")
    files = build_demo(directory, DEMO_DAY)
    settings = load_settings(files.config)
    inputs = load_inputs(settings.data, currency=settings.account.currency)
    results = tuple(
        run_cycle(settings, run_date=day, inputs=inputs) for day in RUN_DAYS
    )
    return DemoRuns(files.config, settings, inputs, results)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system Chromium; skips locally when absent, fails in CI."""
    path = chromium_path()
    if path is None:
        reason = (
            "the system chromium is not installed (apt-get install -y chromium, "
            "or tests/support/install_chromium.sh)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path
