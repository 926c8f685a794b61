"""The report as one self-contained HTML page.

No script, no external font, image or stylesheet: the charts are inline SVG
and the one ``<style>`` block is allowed by its hash in a
Content-Security-Policy that forbids everything else, so a browser opening
the file makes no request at all.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from html import escape
from typing import Literal

from optimizer.economics import FLOOR_LABELS
from optimizer.plan import PlanRow
from optimizer.report import charts as c
from optimizer.report.data import (
    EXCELLENT_LTV_TO_CAC,
    ReportData,
    SegmentLTV,
    WeekChange,
)

CSS = """
:root{--ink:#222;--muted:#6b6b6b;--line:#e4e4e4;--good:#00795a;--warn:#a86f00;
--bad:#b84a00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;
color:var(--ink);background:#f6f6f4}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header h1{font-size:22px;margin:0 0 2px}
header p{margin:0;color:var(--muted)}
h2{font-size:17px;margin:28px 0 8px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:14px;margin:10px 0 4px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));
gap:10px;margin:16px 0 4px}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile b{display:block;font-size:22px}
.tile span{color:var(--muted);font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px}
.grid.small{grid-template-columns:repeat(auto-fill,minmax(340px,1fr))}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;
padding:10px 12px}
figcaption{font-weight:600;margin-bottom:4px}
figure p{margin:4px 0 0;color:var(--muted);font-size:12px}
svg.chart{width:100%;height:auto;display:block}
svg.chart.bars{max-width:720px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:5px 7px;text-align:left;
vertical-align:top}
th{background:#efefec;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.reason{color:#444;max-width:420px}
.ok{color:var(--good);font-weight:600}.warn{color:var(--warn);font-weight:600}
.bad{color:var(--bad);font-weight:600}
.note{color:var(--muted);font-size:12px}
.pill{display:inline-block;border-radius:9px;padding:0 7px;font-size:12px;
background:#eee}
.held{margin:16px 0 4px;padding:10px 14px;border:2px solid var(--bad);
border-radius:8px;background:#fff3ea}
.held b{color:var(--bad)}
"""

Period = Literal["day", "week"]


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def content_security_policy() -> str:
    """The policy of the page: its own style block and nothing else."""
    return (
        "default-src 'none'; "
        f"style-src 'sha256-{_hash(CSS)}'; "
        "img-src 'none'; font-src 'none'; script-src 'none'; "
        "connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def render_html(report: ReportData, *, period: Period = "day") -> str:
    """The whole report page.

    Parameters
    ----------
    report
        The figures of one run.
    period
        ``"week"`` adds what moved since the run a week earlier.

    Returns
    -------
    str
        A complete HTML document with no external reference.
    """
    sections = [
        _header(report),
        _week(report.week, report) if period == "week" and report.week else "",
        _payback(report),
        _curves(report),
        _business(report),
        _plan(report),
        _history(report),
        _feed(report),
        _quality(report),
        _risks(report),
    ]
    title = f"valuebid report: {report.account}, {report.run_date:%Y-%m-%d}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" '
        f'content="{content_security_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        "<body><main>" + "".join(sections) + "</main></body></html>\n"
    )


def _money(report: ReportData, value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f} {report.currency}"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def _header(report: ReportData) -> str:
    changes = sum(row.action != "hold" for row in report.plan)
    over = [m.market for m in report.markets if m.over_cap]
    weak = [r for r in report.ratios if r.band == "insufficient"]
    gini = report.quality.gini if report.quality else None
    tiles = [
        (f"{changes} of {len(report.plan)}", "campaigns with a target change"),
        (", ".join(over) or "none", "markets whose CAC is over its cap"),
        (
            f"{len(weak)} of {len(report.ratios)}",
            f"markets and segments under LTV/CAC {report.target_ltv_to_cac:g}",
        ),
        (str(len(report.risks)), "risk flags (segments and channels)"),
        (
            "not recorded" if gini is None else f"{gini:.2f}",
            "model normalized Gini on its holdout",
        ),
    ]
    tile_html = "".join(
        f'<div class="tile"><b>{escape(v)}</b><span>{escape(t)}</span></div>'
        for v, t in tiles
    )
    held = (
        f'<div class="held" id="held-back" role="alert"><b>Held back.</b> '
        f"{escape(report.held_back)}</div>"
        if report.held_back
        else ""
    )
    changed = (
        f'<p class="note" id="inputs-changed">{escape(report.inputs_note)}.</p>'
        if report.inputs_note
        else ""
    )
    return (
        f"<header><h1>Unit economics and plan: {escape(report.account)}</h1>"
        f"<p>Run {escape(report.run_id)} for {report.run_date:%A %d %B %Y} "
        f"({escape(report.mode.replace('_', ' '))}), model "
        f"{escape(report.model_version or '-')}, money in {report.currency}. "
        f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p></header>"
        f'{held}{changed}<div class="tiles">{tile_html}</div>'
    )


def _figure(caption: str, svg: str, note: str = "") -> str:
    extra = f"<p>{escape(note)}</p>" if note else ""
    return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}{extra}</figure>"


def _payback(report: ReportData) -> str:
    target = report.target_ltv_to_cac
    ratio_bars = [
        c.Bar(r.label, r.ratio, _band_colour(r.band), note=r.band)
        for r in report.ratios
        if r.ratio is not None
    ]
    bands = [
        c.Band(0, target, c.BAD, "insufficient"),
        c.Band(target, EXCELLENT_LTV_TO_CAC, c.WARN, "satisfactory"),
        c.Band(EXCELLENT_LTV_TO_CAC, float("inf"), c.GOOD, "excellent"),
    ]
    ratio_svg = c.bar_chart(
        "ltv-cac",
        "LTV/CAC by market and segment",
        ratio_bars,
        x_label=f"LTV at {report.horizon_days // 365} years / CAC",
        bands=bands,
        references=[c.Reference(target, f"target {target:g}")],
        x_max=2 * EXCELLENT_LTV_TO_CAC,
    )
    floor = report.min_ltv365_to_cac
    year_bars = [
        c.Bar(r.label, r.ratio_365, c.GOOD if r.ratio_365 >= floor else c.BAD)
        for r in report.ratios
        if r.ratio_365 is not None
    ]
    year_svg = c.bar_chart(
        "ltv-cac-1y",
        "1-year LTV/CAC against break-even",
        year_bars,
        x_label="LTV at 1 year / CAC",
        references=[c.Reference(floor, f"break-even {floor:g}", c.BAD)],
    )
    cac_bars = [
        c.Bar(
            f"{m.market} ({m.activations:,.0f} activations)",
            m.cac,
            c.BAD if m.over_cap else c.GOOD,
            note=f"(cap {m.cac_max:,.0f})",
            marker=m.cac_max,
        )
        for m in report.markets
        if m.cac is not None
    ]
    cac_svg = c.bar_chart(
        "cac-cap",
        "CAC against its cap by market",
        cac_bars,
        x_label=f"cost per paying customer, {report.currency}",
        value_format="{:,.2f}",
    )
    limit = report.payback_limit_months
    pay_bars = [
        c.Bar(
            r.label,
            r.payback_months if r.payback_months is not None else 3 * limit,
            c.GOOD
            if r.payback_months is not None and r.payback_months <= limit
            else c.BAD,
            text="" if r.payback_months is not None else "not paid back",
        )
        for r in report.ratios
    ]
    pay_svg = c.bar_chart(
        "payback",
        "CAC payback in months",
        pay_bars,
        x_label="months of value to earn back the acquisition cost",
        references=[c.Reference(limit, f"limit {limit:g} months", c.BAD)],
        value_format="{:.1f}",
        x_max=2 * limit,
    )
    rows = "".join(
        f"<tr><td>{escape(r.scope)}</td><td>{escape(r.key)}</td>"
        f'<td class="num">{_money(report, r.cac, 2)}</td>'
        f'<td class="num">{_money(report, r.ltv_365, 2)}</td>'
        f'<td class="num">{_money(report, r.ltv_horizon, 2)}</td>'
        f'<td class="num">{_num(r.ratio_365)}</td>'
        f'<td class="num">{_num(r.ratio)}</td>'
        f'<td class="{_band_class(r.band)}">{escape(r.band)}</td>'
        f'<td class="num">{_num(r.payback_months, "{:.1f}")}</td></tr>'
        for r in report.ratios
    )
    years = report.horizon_days // 365
    table = (
        '<table id="ratios"><thead><tr><th>scope</th><th>market or segment</th>'
        "<th>CAC</th><th>LTV 1y</th>"
        f"<th>LTV {years}y</th><th>LTV/CAC 1y</th>"
        f"<th>LTV/CAC {years}y</th><th>band</th>"
        f"<th>payback (months)</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    cac_note = (
        "Campaign cost of the days whose activations have had time to pay, over "
        "the new paying users they brought; the dark tick is the market's cap."
    )
    return (
        '<section id="payback"><h2>Does each market and segment pay back?</h2>'
        '<div class="grid">'
        + _figure(
            "LTV/CAC by market and segment",
            ratio_svg,
            "Per paying user; a segment carries its share of each campaign's "
            "cost. Bars beyond "
            f"{2 * EXCELLENT_LTV_TO_CAC:g} end in an arrow.",
        )
        + _figure(
            "1-year LTV/CAC against break-even",
            year_svg,
            "The first rule: a year of value must at least pay for the user.",
        )
        + _figure("CAC against its cap", cac_svg, cac_note)
        + _figure(
            "Payback",
            pay_svg,
            "Months of value per paying user to earn back its CAC.",
        )
        + "</div><h3>The figures</h3>"
        + table
        + "</section>"
    )


def _band_colour(band: str) -> str:
    return {"insufficient": c.BAD, "satisfactory": c.WARN}.get(band, c.GOOD)


def _band_class(band: str) -> str:
    return {"insufficient": "bad", "satisfactory": "warn", "excellent": "ok"}.get(
        band, "note"
    )


def _curves(report: ReportData) -> str:
    series: list[c.Series] = []
    for index, segment in enumerate(report.segments):
        series.extend(_segment_series(segment, c.PALETTE[index % len(c.PALETTE)]))
    svg = c.line_chart(
        "ltv-curves",
        "LTV curves by segment",
        series,
        x_label="months since sign-up",
        y_label=f"value per user, {report.currency}",
        x_ticks=[0, 6, 12, 18, 24, 36, 48, 60],
        frame=c.Frame(width=1100, height=340),
    )
    rows = "".join(
        f'<tr><td>{escape(s.segment)}</td><td class="num">{s.users:,}</td>'
        f'<td class="num">{len(s.realized) - 1}</td>'
        f'<td class="num">{s.predicted_users:,}</td>'
        + "".join(
            f'<td class="num">{_money(report, p.value, 2)} '
            f'<span class="note">[{p.low:,.2f}-{p.high:,.2f}]</span></td>'
            for p in s.predicted
        )
        + "</tr>"
        for s in report.segments
    )
    return (
        '<section id="ltv"><h2>LTV at 1, 3 and 5 years by segment</h2>'
        + _figure(
            "Realized (solid, 90 % band) and predicted (dashed, 90 % interval)",
            svg,
            "Realized: mean value per user in its first months, over the users "
            "old enough to have lived them. Predicted: the model's mean at 1, 3 "
            "and 5 years for the users whose first year is not over.",
        )
        + '<table id="segments"><thead><tr><th>segment</th><th>users</th>'
        "<th>months realized</th><th>users predicted</th><th>1 year</th>"
        "<th>3 years</th><th>5 years</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _segment_series(segment: SegmentLTV, colour: str) -> list[c.Series]:
    out = [
        c.Series(
            f"{segment.segment} realized",
            [(p.months, p.value) for p in segment.realized],
            colour,
            band=[(p.months, p.low, p.high) for p in segment.realized],
        )
    ]
    if segment.predicted:
        out.append(
            c.Series(
                f"{segment.segment} predicted",
                [(p.months, p.value) for p in segment.predicted],
                colour,
                dashed=True,
                band=[(p.months, p.low, p.high) for p in segment.predicted],
                whiskers=True,
                markers=True,
            )
        )
    return out


def _business(report: ReportData) -> str:
    b = report.business
    low, high = b.marketing_share_range
    rows = [
        (
            "Marketing budget / expected new revenue",
            _num(b.marketing_share, "{:.1%}"),
            f"{low:.0%}-{high:.0%}",
            _verdict(
                b.marketing_share is not None and low <= b.marketing_share <= high,
                b.marketing_share,
            ),
            b.marketing_basis,
        ),
        (
            "Sales + marketing in months of the revenue it brings",
            _num(b.sm_months, "{:.1f}"),
            f"<= {b.max_sm_months:g}",
            _verdict(
                b.sm_months is not None and b.sm_months <= b.max_sm_months,
                b.sm_months,
            ),
            b.sm_basis,
        ),
        (
            "Rule of 40 (growth % + EBITDA margin %)",
            _num(b.rule_of_40, "{:.1f}"),
            f">= {b.rule_of_40_threshold:g}",
            _verdict(
                b.rule_of_40 is not None and b.rule_of_40 >= b.rule_of_40_threshold,
                b.rule_of_40,
            ),
            f"growth {_num(b.growth_pct, '{:+.1f} %')}, EBITDA margin "
            f"{_num(b.ebitda_margin_pct, '{:.1f} %')}",
        ),
    ]
    body = "".join(
        f'<tr><td>{escape(name)}</td><td class="num">{escape(value)}</td>'
        f'<td class="num">{escape(rule)}</td><td>{verdict}</td>'
        f'<td class="note">{escape(basis)}</td></tr>'
        for name, value, rule, verdict, basis in rows
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in b.notes)
    return (
        '<section id="business"><h2>Rule of 40 and budget ratios</h2>'
        '<table id="business-ratios"><thead><tr><th>ratio</th><th>figure</th>'
        "<th>rule</th><th>verdict</th><th>from</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{notes}</section>"
    )


def _verdict(ok: bool, value: float | None) -> str:
    if value is None:
        return '<span class="note">unknown</span>'
    return (
        '<span class="ok">within</span>' if ok else '<span class="bad">outside</span>'
    )


def _plan(report: ReportData) -> str:
    rows = "".join(_plan_row(row) for row in report.plan)
    return (
        '<section id="plan-section"><h2>Today\'s plan</h2>'
        f'<p class="note">From {escape(report.plan_file)}. The binding constraint '
        "is the floor that sets the economic target; the guardrail is what kept "
        "the step smaller.</p>"
        '<table id="plan"><thead><tr><th>campaign</th><th>market</th>'
        "<th>now</th><th>observed ROAS</th><th>economic tROAS</th>"
        "<th>binding constraint</th><th>action</th><th>new tROAS</th>"
        "<th>change</th><th>guardrail</th><th>reason</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _plan_row(row: PlanRow) -> str:
    def cell(name: str, text: str, num: bool = True) -> str:
        klass = ' class="num"' if num else ""
        return f'<td data-field="{name}"{klass}>{escape(text)}</td>'

    if row.current_strategy == "TARGET_CPA" and row.current_target_cpa is not None:
        now = f"tCPA {row.current_target_cpa:.2f}"
    elif row.current_target_roas is not None:
        now = f"tROAS {row.current_target_roas:.2f}"
    else:
        now = row.current_strategy
    binding = FLOOR_LABELS.get(row.binding_constraint or "", row.binding_constraint)
    return (
        f'<tr data-campaign-id="{escape(row.campaign_id)}">'
        + cell("campaign", f"{row.campaign_id} {row.campaign_name}", num=False)
        + cell("market", row.market, num=False)
        + cell("now", now)
        + cell("observed_roas", _num(row.observed_roas))
        + cell("economic_troas", _num(row.economic_troas))
        + cell("binding_constraint", binding or "-", num=False)
        + cell("action", row.action, num=False)
        + cell("new_troas", _num(row.new_troas))
        + cell("change_pct", _num(row.change_pct, "{:+.1f} %"))
        + cell("guardrail", row.guardrail or "-", num=False)
        + f'<td class="reason" data-field="reason">{escape(row.reason)}</td></tr>'
    )


def _history(report: ReportData) -> str:
    figures = []
    for campaign in report.history:
        dates = sorted({p.run_date for p in campaign.points})
        first = dates[0]
        day = {p.run_date: float((p.run_date - first).days) for p in campaign.points}
        series = [
            c.Series(
                "target in force",
                [
                    (day[p.run_date], p.current)
                    for p in campaign.points
                    if p.current is not None
                ],
                c.PALETTE[7],
                step=True,
                markers=True,
            ),
            c.Series(
                "proposed",
                [
                    (day[p.run_date], p.proposed)
                    for p in campaign.points
                    if p.proposed is not None
                ],
                c.PALETTE[0],
                markers=True,
            ),
            c.Series(
                "economic",
                [
                    (day[p.run_date], p.economic)
                    for p in campaign.points
                    if p.economic is not None
                ],
                c.PALETTE[5],
                dashed=True,
                markers=True,
            ),
        ]
        labels = {day[d]: f"{d:%d %b}" for d in dates}

        def label(x: float, labels: dict[float, str] = labels) -> str:
            return labels.get(x, "")

        svg = c.line_chart(
            f"history-{campaign.campaign_id}",
            f"Target history of campaign {campaign.campaign_id}",
            [s for s in series if s.points],
            x_label=f"run date ({len(dates)} run{'s' if len(dates) > 1 else ''})",
            y_label="tROAS",
            x_ticks=sorted(labels) if len(labels) <= 8 else None,
            x_format=label,
            frame=c.Frame(width=420, height=230, right=28),
        )
        figures.append(_figure(f"{campaign.campaign_id} {campaign.campaign_name}", svg))
    return (
        '<section id="history"><h2>Target history per campaign</h2>'
        '<p class="note">From the runs in the state store: the target in force '
        "(tCPA shown as its tROAS equivalent), what each run proposed and the "
        "economic target it walked toward.</p>"
        f'<div class="grid small">{"".join(figures)}</div></section>'
    )


def _feed(report: ReportData) -> str:
    if report.feed is None:
        body = (
            '<p class="note">This run recorded no value feed: no conversion '
            "values were planned or sent.</p>"
        )
    else:
        body = _table(
            "feed-counts",
            ["status", "values"],
            [[k, f"{v:,}"] for k, v in sorted(report.feed.counts.items())],
        )
    if report.value_check:
        body += f'<p class="note">Value level: {escape(report.value_check)}.</p>'
    return f'<section id="feed"><h2>Value feed</h2>{body}</section>'


def _quality(report: ReportData) -> str:
    quality = report.quality
    if quality is None:
        return (
            '<section id="quality"><h2>Model quality</h2><p class="note">Model '
            f"{escape(report.model_version or '-')} recorded no holdout metrics, "
            "so its calibration and ranking cannot be shown.</p></section>"
        )
    metrics = sorted({m for row in quality.table.values() for m in row})
    who = sorted(quality.table, key=lambda w: (w != "model", w))
    table = _table(
        "quality-table",
        ["", *metrics],
        [[w, *(_num(quality.table[w].get(m), "{:.3f}") for m in metrics)] for w in who],
    )
    parts = []
    ginis = [(w, quality.table[w].get("normalized_gini")) for w in who]
    bars = [
        c.Bar(w, g, c.PALETTE[0] if w == "model" else c.PALETTE[4])
        for w, g in ginis
        if g is not None
    ]
    if bars:
        parts.append(
            _figure(
                "Normalized Gini: model against the baselines",
                c.bar_chart(
                    "gini",
                    "Normalized Gini",
                    bars,
                    x_label="normalized Gini (1 = perfect ranking)",
                    value_format="{:.3f}",
                ),
            )
        )
    if quality.deciles:
        series = [
            c.Series(
                "predicted",
                [(i + 1.0, p) for i, (p, _) in enumerate(quality.deciles)],
                c.PALETTE[0],
                markers=True,
            ),
            c.Series(
                "actual",
                [(i + 1.0, a) for i, (_, a) in enumerate(quality.deciles)],
                c.PALETTE[1],
                markers=True,
            ),
        ]
        parts.append(
            _figure(
                "Decile calibration",
                c.line_chart(
                    "calibration",
                    "Decile calibration",
                    series,
                    x_label="decile of predicted value",
                    y_label="value per user",
                    x_ticks=[float(i) for i in range(1, 11)],
                ),
            )
        )
    return (
        f'<section id="quality"><h2>Model quality: {escape(quality.version)}</h2>'
        f'<div class="grid">{"".join(parts)}</div>{table}</section>'
    )


def _risks(report: ReportData) -> str:
    if not report.risks:
        body = (
            '<p class="note">No segment or channel is clearly worse than the '
            "account.</p>"
        )
    else:
        rows = [
            [
                r.kind,
                r.group,
                r.flag,
                _figure_text(report, r.figure, r.unit),
                _figure_text(report, r.account_figure, r.unit),
                f"{r.users:,}",
            ]
            for r in report.risks
        ]
        body = _table(
            "risks",
            ["kind", "segment or channel", "flag", "figure", "account", "users"],
            rows,
        )
    return (
        '<section id="risk"><h2>Risk flags per segment and channel</h2>'
        '<p class="note">High churn: share of users at least 180 days old with '
        "no purchase in the last 90 days. No repeat purchase: share of those "
        "users who bought twice or more. Low basket: mean order amount.</p>"
        f"{body}</section>"
    )


def _figure_text(report: ReportData, value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f} %"
    return _money(report, value, 2)


def _week(week: WeekChange, report: ReportData) -> str:
    since = (
        f"run {week.previous_run} ({week.previous_date})"
        if week.previous_run
        else "no earlier run: none was recorded 7 to 14 days before this one"
    )
    names = {row.campaign_id: row.campaign_name for row in report.plan}
    targets = _table(
        "week-targets",
        ["campaign", "planned last week", "planned now", "change"],
        [
            [f"{cid} {names.get(cid, '')}", _num(a), _num(b), _delta(a, b)]
            for cid, a, b in week.targets
        ],
    )
    ratios = _table(
        "week-ratios",
        ["market or segment", "last week", "now", "change"],
        [[key, _num(a), _num(b), _delta(a, b)] for key, a, b in week.ratios],
    )
    spend = _table(
        "week-spend",
        ["campaign", "previous 7 days", "last 7 days", "change"],
        [
            [
                f"{cid} {names.get(cid, '')}",
                _money(report, a),
                _money(report, b),
                _delta(a, b),
            ]
            for cid, a, b in week.spend
        ],
    )
    return (
        f'<section id="week"><h2>What moved this week</h2><p class="note">Against '
        f'{escape(since)}.</p><h3>Targets (tROAS)</h3><p class="note">What '
        "each run planned, pushed or not: the new target of a change, else the "
        "target in place (a tCPA as its tROAS equivalent).</p>"
        f"{targets}"
        f"<h3>LTV/CAC ({report.horizon_days // 365} years)</h3>{ratios}"
        f"<h3>Spend</h3>{spend}</section>"
    )


def _delta(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "-"
    if before == 0:
        return f"{after - before:+,.2f}"
    return f"{(after / before - 1):+.1%}"


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return (
        f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
