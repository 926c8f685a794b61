"""Make the README's report screenshots: the demo, three weekly runs, in Chromium.

Run from the repository root::

    python -m tests.optimizer.report.make_screenshots docs/

It builds the CDNOW demo in a temporary folder, runs the daily cycle two
weeks ago, a week ago and on the demo day, writes the weekly report of the
last run and saves a full-page PNG of it as ``report-cdnow.png`` and its
top, down to the payback charts, as ``report-cdnow-top.png``.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import tempfile
from pathlib import Path

from config import load_settings
from connectors.files import load_inputs
from optimizer.cycle import run_cycle
from optimizer.demo import build_demo
from optimizer.report import report_for_run, write_report
from tests.optimizer.report.browser import chromium_path, headless_chromium
from tests.optimizer.report.conftest import DEMO_DAY, RUN_DAYS

logger = logging.getLogger(__name__)


def cdnow_report(directory: Path) -> Path:
    """The weekly report of the demo's last run, written under ``directory``."""
    files = build_demo(directory, DEMO_DAY)
    settings = load_settings(files.config)
    inputs = load_inputs(settings.data, currency=settings.account.currency)
    for day in RUN_DAYS:
        run_cycle(settings, run_date=day, inputs=inputs)
    report = report_for_run(settings, period="week", inputs=inputs)
    return write_report(report, directory / "report-week.html", period="week")


def screenshot(page_file: Path, png: Path, top_png: Path) -> None:
    """A full-page PNG of ``page_file``, and its top down to the payback charts."""
    executable = chromium_path()
    if executable is None:
        raise SystemExit("the system chromium is not installed")
    with headless_chromium(executable) as page:
        page.open(page_file.as_uri())
        page.screenshot(png)
        page.screenshot_of("#payback", top_png)


def main(argv: list[str]) -> None:
    """Write the CDNOW screenshots into the folder given as the only argument."""
    out = Path(argv[0] if argv else "docs")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        page = cdnow_report(Path(work))
        screenshot(page, out / "report-cdnow.png", out / "report-cdnow-top.png")
    logger.info(
        "screenshots written to %s (demo day %s)", out, dt.date.isoformat(DEMO_DAY)
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
