"""Make the README's report screenshots: the demo, three weekly runs, in Chromium.

Run from the repository root::

    python -m tests.optimizer.report.make_screenshots docs/

For each scenario (the CDNOW replay and the synthetic PLG company) it builds
the demo in a temporary folder, runs the daily cycle two weeks ago, a week
ago and on the demo day, writes the weekly report of the last run and saves
a full-page PNG of it as ``report-<scenario>.png``, and the daily report
down to the payback charts as ``report-<scenario>-top.png``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config import load_settings
from connectors.files import load_inputs
from optimizer.cycle import run_cycle
from optimizer.demo import build_demo
from optimizer.report import report_for_run, write_report
from optimizer.scenarios.plg import build_plg
from tests.optimizer.report.browser import chromium_path, headless_chromium
from tests.optimizer.report.conftest import DEMO_DAY, RUN_DAYS

logger = logging.getLogger(__name__)


Builder = Callable[[Path, dt.date], Any]
SCENARIOS: dict[str, Builder] = {"cdnow": build_demo, "plg": build_plg}


def scenario_report(build: Builder, directory: Path) -> tuple[Path, Path]:
    """The daily and weekly reports of a demo's last run, under ``directory``."""
    files = build(directory, DEMO_DAY)
    settings = load_settings(files.config)
    inputs = load_inputs(settings.data, currency=settings.account.currency)
    for day in RUN_DAYS:
        run_cycle(settings, run_date=day, inputs=inputs)
    report = report_for_run(settings, period="week", inputs=inputs)
    week = write_report(report, directory / "report-week.html", period="week")
    day = write_report(report, directory / "report-day.html")
    return day, week


def screenshot(day_page: Path, week_page: Path, png: Path, top_png: Path) -> None:
    """The weekly page in full, and the daily one down to the payback charts."""
    executable = chromium_path()
    if executable is None:
        raise SystemExit("the system chromium is not installed")
    with headless_chromium(executable) as page:
        page.open(week_page.as_uri())
        page.screenshot(png)
        page.open(day_page.as_uri())
        page.screenshot_of("#payback", top_png)


def main(argv: list[str]) -> None:
    """Write the CDNOW screenshots into the folder given as the only argument."""
    out = Path(argv[0] if argv else "docs")
    out.mkdir(parents=True, exist_ok=True)
    for name, build in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as work:
            day, week = scenario_report(build, Path(work))
            screenshot(
                day, week, out / f"report-{name}.png", out / f"report-{name}-top.png"
            )
    logger.info(
        "screenshots written to %s (demo day %s)", out, dt.date.isoformat(DEMO_DAY)
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
