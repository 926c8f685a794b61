"""The report in a few terminal lines."""

from __future__ import annotations

from optimizer.report.data import ReportData


def summary_lines(report: ReportData) -> list[str]:
    """What a person should know before opening the page, one line each."""
    lines = [f"Report of run {report.run_id} ({report.account}, {report.run_date})"]
    if report.held_back:
        lines.append(f"  HELD BACK: {report.held_back}")
    if report.inputs_note:
        lines.append(f"  NOTE: {report.inputs_note}.")
    for market in report.markets:
        cac = "-" if market.cac is None else f"{market.cac:,.2f}"
        verdict = "OVER its cap" if market.over_cap else "within its cap"
        lines.append(
            f"  {market.market}: CAC {cac} {report.currency} per paying customer, "
            f"{verdict} of {market.cac_max:,.2f}"
        )
    years = report.horizon_days // 365
    for ratio in report.ratios:
        value = "-" if ratio.ratio is None else f"{ratio.ratio:.2f}"
        payback = (
            "unknown"
            if ratio.payback_months is None
            else f"{ratio.payback_months:.1f} months"
        )
        lines.append(
            f"  {ratio.label}: LTV/CAC {years}y {value} ({ratio.band}), "
            f"payback {payback}"
        )
    changes = sum(row.action != "hold" for row in report.plan)
    lines.append(f"  Plan: {changes} of {len(report.plan)} campaigns change target")
    if report.risks:
        flags = ", ".join(f"{r.group}: {r.flag}" for r in report.risks[:4])
        more = len(report.risks) - 4
        lines.append(
            f"  Risk flags: {flags}" + (f" (+{more} more)" if more > 0 else "")
        )
    return lines
