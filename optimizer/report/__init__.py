"""The unit-economics report: figures of a run, charts, one HTML page.

:func:`report_for_run` gathers the figures of a recorded run,
:func:`write_report` writes the page and :func:`summary_lines` the few lines
printed in the terminal.
"""

from __future__ import annotations

from optimizer.report.build import (
    assemble,
    report_for_run,
    write_report,
    write_run_report,
)
from optimizer.report.data import ReportData
from optimizer.report.summary import summary_lines

__all__ = [
    "ReportData",
    "assemble",
    "report_for_run",
    "summary_lines",
    "write_report",
    "write_run_report",
]
