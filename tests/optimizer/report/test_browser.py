"""The demo's report as a real headless Chromium renders it."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.optimizer.report.browser import Page, headless_chromium
from tests.optimizer.report.conftest import DemoRuns

# Each chart, and how many of its data marks (bars, lines, points, bands) have
# a non-empty box as laid out by the browser.
CHARTS_JS = """
[...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const drawn = [...svg.querySelectorAll('.mark')].filter(el => {
    const b = el.getBBox();
    return b.width > 0 || b.height > 0;
  }).length;
  return {name: svg.dataset.chart, width: box.width, height: box.height, drawn};
})
"""

# Every attribute value that could make the browser fetch something.
URLS_JS = """
(() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name === 'xmlns') continue;
      const v = attr.value.trim().toLowerCase();
      if (/^(https?:|ftp:|wss?:|\\/\\/)/.test(v) || v.includes('url(')
          || (attr.name === 'src' || attr.name.endsWith('href'))) {
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value);
      }
    }
  }
  for (const sheet of document.styleSheets) {
    if (sheet.href) { found.push('stylesheet ' + sheet.href); continue; }
    for (const rule of sheet.cssRules) {
      if (/url\\(|@import/.test(rule.cssText)) found.push(rule.cssText);
    }
  }
  return found;
})()
"""

PLAN_JS = """
[...document.querySelectorAll('#plan tbody tr')].map(tr => {
  const row = {campaign_id: tr.dataset.campaignId};
  for (const td of tr.querySelectorAll('td[data-field]')) {
    row[td.dataset.field] = td.textContent;
  }
  return row;
})
"""


@pytest.fixture(scope="module")
def rendered(demo_runs: DemoRuns, chromium: str) -> Iterator[tuple[Page, Path]]:
    report = demo_runs.last.report
    assert report is not None, demo_runs.last.report_error
    with headless_chromium(chromium) as page:
        page.open(report.as_uri())
        yield page, report


def test_every_chart_drew(rendered: tuple[Page, Path]) -> None:
    page, _ = rendered
    charts = page.evaluate(CHARTS_JS)

    names = {chart["name"] for chart in charts}
    assert {"ltv-cac", "cac-cap", "payback", "ltv-curves"} <= names
    assert {f"history-{cid}" for cid in ("1001", "1002", "1003", "1004")} <= names
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["drawn"] > 0, f"chart {chart['name']} drew no data mark"


def test_no_request_leaves_the_file(rendered: tuple[Page, Path]) -> None:
    page, report = rendered

    assert page.requests() == [report.as_uri()]
    assert not [m for m in page.console_messages() if "Content Security" in m]
    assert page.evaluate(URLS_JS) == []
    policy = page.evaluate(
        "document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]').content"
    )
    assert "default-src 'none'" in policy


def test_plan_table_matches_the_plan_file(rendered: tuple[Page, Path]) -> None:
    page, report = rendered
    plan = json.loads((report.parent / "plan.json").read_text(encoding="utf-8"))
    shown = page.evaluate(PLAN_JS)

    assert [row["campaign_id"] for row in shown] == [
        c["campaign_id"] for c in plan["campaigns"]
    ]
    for cell, row in zip(shown, plan["campaigns"], strict=True):
        assert cell["campaign"] == f"{row['campaign_id']} {row['campaign_name']}"
        assert cell["market"] == row["market"]
        assert cell["action"] == row["action"]
        assert cell["reason"] == row["reason"]
        assert cell["guardrail"] == (row["guardrail"] or "-")
        for field in ("observed_roas", "economic_troas", "new_troas"):
            assert cell[field] == _two_places(row[field]), field
        assert cell["change_pct"] == (
            "-" if row["change_pct"] is None else f"{row['change_pct']:+.1f} %"
        )
    moving = [r for r in plan["campaigns"] if r["new_troas"] is not None]
    assert moving, "the demo plan should move at least one target"


def _two_places(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records what it was asked for."""
    hits: list[str] = []
    handler = type("Recorder", (_Recorder,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_checks_catch_an_external_resource(
    demo_runs: DemoRuns,
    chromium: str,
    loopback_server: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    """An image and a stylesheet slipped into the page are seen and blocked.

    Without the policy the same page does reach the server, so the network
    check above is not blind.
    """
    base, hits = loopback_server
    report = demo_runs.last.report
    assert report is not None
    tampered = report.read_text(encoding="utf-8").replace(
        "<main>",
        f'<main><img src="{base}/pixel.png">'
        f'<link rel="stylesheet" href="{base}/font.css">',
    )
    guarded = tmp_path / "guarded.html"
    guarded.write_text(tampered, encoding="utf-8")
    open_page = tmp_path / "open.html"
    open_page.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", tampered),
        encoding="utf-8",
    )

    with headless_chromium(chromium) as page:
        page.open(guarded.as_uri())
        seen = page.requests()
        refusals = [m for m in page.console_messages() if "Content Security" in m]
        found = page.evaluate(URLS_JS)
    assert f"{base}/pixel.png" in seen and f"{base}/font.css" in seen
    assert len(refusals) == 2
    assert len(found) == 3
    assert hits == []

    with headless_chromium(chromium) as page:
        page.open(open_page.as_uri())
    assert sorted(hits) == ["/font.css", "/pixel.png"]
