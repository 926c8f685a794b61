"""The report of the real CDNOW demo: what the run writes and the command prints."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner, Result

from config import load_settings
from optimizer.cli import app
from optimizer.report import report_for_run, write_report
from optimizer.report.build import _week_before
from optimizer.report.charts import nice_ticks
from optimizer.report.data import FeedCounts
from optimizer.report.html import CSS, content_security_policy, render_html
from optimizer.state import RunRecord, StateStore, state_url
from tests.optimizer.report.conftest import DEMO_DAY, DemoRuns


def test_each_run_writes_its_report_and_headline(demo_runs: DemoRuns) -> None:
    for result in demo_runs.results:
        assert result.report_error is None
        assert result.report == result.plan_dir / "report.html"
        headline = json.loads((result.plan_dir / "report.json").read_text())
        assert headline["run_id"] == result.run.run_id
        assert set(headline["targets"]) == {r.campaign_id for r in result.rows}


def test_demo_figures_are_consistent(demo_runs: DemoRuns) -> None:
    report = report_for_run(demo_runs.settings, inputs=demo_runs.inputs)

    assert report.run_id == demo_runs.last.run.run_id
    assert {s.segment for s in report.segments} == {"multi-item", "single-item"}
    for segment in report.segments:
        one, three, five = (p.value for p in segment.predicted)
        assert 0 < one <= three <= five
        assert len(segment.realized) > 12
        values = [p.value for p in segment.realized]
        assert values == sorted(values), "cumulative value never falls"
    (us,) = report.markets
    assert us.market == "US" and us.cac_max == 60.0
    assert us.cac is not None and us.activations > 0
    assert {r.label for r in report.ratios} >= {
        "market US",
        "segment multi-item",
        "segment single-item",
    }
    for ratio in report.ratios:
        assert ratio.ratio is not None and ratio.ratio_365 is not None
        assert ratio.ratio >= ratio.ratio_365
    assert [len(h.points) for h in report.history] == [3] * len(report.plan)


def test_page_is_self_contained(demo_runs: DemoRuns) -> None:
    report = demo_runs.last.report
    assert report is not None
    page = report.read_text(encoding="utf-8")

    assert not re.search(r"(src|href)\s*=", page)
    assert "<script" not in page
    assert "url(" not in page
    assert content_security_policy() in page
    assert page.count("<style>") == 1 and f"<style>{CSS}</style>" in page
    assert len(page) < 200_000


def test_names_are_escaped(demo_runs: DemoRuns) -> None:
    data = report_for_run(demo_runs.settings, inputs=demo_runs.inputs)
    row = replace(data.plan[0], campaign_name='<script>alert("x")</script>')

    page = render_html(replace(data, plan=(row, *data.plan[1:])))

    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_week_view_compares_with_last_week(demo_runs: DemoRuns, tmp_path: Path) -> None:
    data = report_for_run(demo_runs.settings, period="week", inputs=demo_runs.inputs)

    assert data.week is not None
    assert data.week.previous_run == demo_runs.results[1].run.run_id
    last_week = {r.campaign_id: r for r in demo_runs.results[1].rows}
    for cid, before, _ in data.week.targets:
        row = last_week[cid]
        assert before == (row.new_troas or row.current_roas_equivalent)
    assert any(this > 0 for _, _, this in data.week.spend)
    page = write_report(data, tmp_path / "week.html", period="week").read_text()
    assert 'id="week"' in page and "What moved this week" in page
    assert "<th>planned last week</th><th>planned now</th>" in page
    assert "What each run planned, pushed or not" in page


def test_report_command_writes_page_and_summary(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "report.html"

    result = CliRunner().invoke(
        app,
        [
            "report",
            "--config",
            str(demo_runs.config),
            "--out",
            str(out),
            "--period",
            "week",
        ],
    )

    assert result.exit_code == 0, result.output
    assert out.exists() and 'id="week"' in out.read_text()
    assert "US: CAC" in result.output
    assert "LTV/CAC 3y" in result.output
    assert f"Report written to {out}" in result.output


def test_report_command_names_an_unknown_run(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:

    result = CliRunner().invoke(
        app,
        [
            "report",
            "--config",
            str(demo_runs.config),
            "--out",
            str(tmp_path / "r.html"),
            "--run",
            "19990101-nope",
        ],
    )

    assert result.exit_code == 1
    assert "'19990101-nope' is not a recorded run" in result.output
    assert not (tmp_path / "r.html").exists()


def test_report_command_reports_an_older_run(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    first = demo_runs.results[0].run.run_id

    result = CliRunner().invoke(
        app,
        [
            "report",
            "--config",
            str(demo_runs.config),
            "--out",
            str(tmp_path / "r.html"),
            "--run",
            first,
        ],
    )

    assert result.exit_code == 0, result.output
    assert f"Report of run {first}" in result.output


@pytest.mark.parametrize(
    ("low", "high"), [(0.0, 1.0), (0.0, 7.3), (0.3, 0.31), (-4.0, 250.0), (0, 61)]
)
def test_ticks_cover_the_range_with_round_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)

    assert ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
    assert 2 <= len(ticks) <= 12


def test_feed_section_shows_recorded_counts(demo_runs: DemoRuns) -> None:
    data = report_for_run(demo_runs.settings, inputs=demo_runs.inputs)
    assert data.feed is None
    assert "recorded no value feed" in render_html(data)

    page = render_html(replace(data, feed=FeedCounts({"sent": 1234, "failed": 2})))

    table = page[page.index('id="feed-counts"') :]
    assert "<td>sent</td><td>1,234</td>" in table
    assert "<td>failed</td><td>2</td>" in table


#: 03:00 UTC on the day after the demo day: the machine's date is already
#: the next day, while the demo account (New York) is still in the evening
#: of the demo day.
DEMO_CLOCK = dt.datetime.combine(DEMO_DAY + dt.timedelta(days=1), dt.time(3), dt.UTC)


def _stop_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command reads the account's day from this instant."""
    monkeypatch.setattr("optimizer.days.utc_now", lambda: DEMO_CLOCK)


@dataclass(frozen=True)
class DemoCommand:
    """`valuebid demo` as a person runs it, with no --run-date."""

    directory: Path
    output: str

    @property
    def config(self) -> Path:
        return self.directory / "valuebid.yaml"


@pytest.fixture(scope="module")
def demo_command(tmp_path_factory: pytest.TempPathFactory) -> DemoCommand:
    directory = tmp_path_factory.mktemp("demo-command") / "demo"
    with pytest.MonkeyPatch.context() as patch:
        _stop_the_clock(patch)
        result = CliRunner().invoke(
            app, ["demo", "--dir", str(directory)], env={"COLUMNS": "200"}
        )
    assert result.exit_code == 0, result.output
    return DemoCommand(directory, result.output)


def _valuebid(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_demo_prints_where_its_report_is(demo_command: DemoCommand) -> None:
    written = re.search(r"Report written to (\S+report\.html)", demo_command.output)
    assert written is not None, demo_command.output
    assert Path(written.group(1)).read_text(encoding="utf-8").startswith("<!DOCTYPE")


def test_the_demo_is_dated_with_its_accounts_day(demo_command: DemoCommand) -> None:
    settings = load_settings(demo_command.config)
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        (run,) = store.list_runs()
    finally:
        store.dispose()

    assert settings.account.time_zone == "America/New_York"
    assert run.run_date == DEMO_DAY
    assert f"Plan {DEMO_DAY:%Y%m%d}-cdnow-replay--demo" in demo_command.output
    assert (demo_command.directory / "state" / "runs" / f"{DEMO_DAY}").is_dir()


def test_report_and_economics_agree_on_the_demos_day(
    demo_command: DemoCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stop_the_clock(monkeypatch)
    config = str(demo_command.config)

    report = _valuebid("report", "--config", config, "--out", str(tmp_path / "r.html"))
    economics = _valuebid("economics", "--config", config)

    assert report.exit_code == 0, report.output
    assert economics.exit_code == 0, economics.output
    reported = re.search(r"US: CAC ([\d,.]+) USD per paying customer", report.output)
    measured = re.search(r"│ market\s+│ US\s+│.*│\s*([\d,.]+) │", economics.output)
    assert reported is not None, report.output
    assert measured is not None, economics.output
    assert reported.group(1) == measured.group(1)
    assert f"Report of run {DEMO_DAY:%Y%m%d}-cdnow-replay--demo" in report.output


def test_the_feed_compares_with_the_demo_run(
    demo_command: DemoCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revenue exported in cents right after the demo: the feed holds it."""
    _stop_the_clock(monkeypatch)
    raw = yaml.safe_load(demo_command.config.read_text(encoding="utf-8"))
    base = demo_command.directory
    raw["data"] = {k: str(base / v) for k, v in raw["data"].items()}
    raw["model"] = {"directory": str(base / "model")}
    # The demo's state, copied: the feed's records stay out of the fixture's.
    shutil.copytree(base / "state", tmp_path / "state")
    raw["state"] = {"directory": str(tmp_path / "state")}
    revenue = pd.read_csv(base / "data" / "revenue.csv.gz", dtype="string")
    cents = revenue.assign(amount=pd.to_numeric(revenue["amount"]) * 100)
    cents.to_csv(tmp_path / "revenue.csv.gz", index=False)
    raw["data"]["revenue"] = str(tmp_path / "revenue.csv.gz")
    raw["feed"] = {
        "sink": "conversion_upload",
        "customer_id": "123-456-7890",
        "conversion_action_id": "42",
    }
    config = tmp_path / "valuebid.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    dry = _valuebid("feed", "--config", str(config))
    sent = _valuebid("feed", "--send", "--config", str(config))

    run_id = f"{DEMO_DAY:%Y%m%d}-cdnow-replay--demo"
    assert dry.exit_code == 1, dry.output
    assert "held: --send would send nothing: the predicted values jumped" in (
        dry.stderr
    )
    assert f"USD of run {run_id}" in dry.stderr
    assert "no earlier successful run" not in dry.output
    assert sent.exit_code == 1
    assert "error: no value sent: the predicted values jumped" in sent.stderr


def test_report_scores_with_the_runs_own_model(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    """A model that failed its gate is what the run used; the report uses it too."""
    copy = tmp_path / "demo"
    shutil.copytree(demo_runs.config.parent, copy)
    current = next((copy / "model").rglob("CURRENT"))
    current.unlink()
    settings = load_settings(copy / demo_runs.config.name)

    data = report_for_run(settings, inputs=demo_runs.inputs)

    assert data.model_version == demo_runs.last.model_version
    assert data.segments and data.ratios


def test_the_week_view_compares_only_with_a_run_7_to_14_days_before(
    tmp_path: Path,
) -> None:
    def run(day: dt.date) -> RunRecord:
        folder = tmp_path / day.isoformat()
        folder.mkdir(exist_ok=True)
        return RunRecord(
            run_id=f"{day:%Y%m%d}-acme",
            account="acme",
            run_date=day,
            started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            finished_at=None,
            status="planned",
            mode="dry_run",
            attempts=1,
            inputs={},
            model_version=None,
            plan_dir=str(folder),
        )

    today = dt.date(2026, 12, 5)
    newest_first = [run(today - dt.timedelta(days=n)) for n in (0, 3, 10, 15)]
    compared = _week_before(newest_first, newest_first[0], tmp_path)
    assert compared is not None
    assert compared["run_id"] == "20261125-acme"

    too_old = [newest_first[0], newest_first[1], newest_first[3]]
    assert _week_before(too_old, newest_first[0], tmp_path) is None
    assert _week_before(
        [newest_first[0], run(today - dt.timedelta(days=14))],
        newest_first[0],
        tmp_path,
    ) == {
        "run_id": "20261121-acme",
        "run_date": "2026-11-21",
    }


def test_a_failed_write_leaves_the_previous_report_whole(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    data = report_for_run(demo_runs.settings, inputs=demo_runs.inputs)
    path = write_report(data, tmp_path / "report.html")
    before = path.read_bytes()
    # A lone surrogate cannot be encoded as UTF-8: the write fails midway.
    broken = replace(data, run_id="run-\udc80")

    with pytest.raises(UnicodeEncodeError):
        write_report(broken, path)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize("name", ["r.pdf", "report", "r.html.txt"])
def test_report_command_refuses_an_out_file_that_is_not_html(
    demo_runs: DemoRuns, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name

    result = CliRunner().invoke(
        app, ["report", "--config", str(demo_runs.config), "--out", str(out)]
    )

    assert result.exit_code == 2, result.output
    assert "--out" in result.output and ".html" in result.output
    assert not out.exists()


def test_a_report_after_the_inputs_changed_says_so(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    """A file rewritten since the run read it: the figures are not the run's."""
    copy = tmp_path / "demo"
    shutil.copytree(demo_runs.config.parent, copy)
    first = demo_runs.results[0].run.run_id
    command = [
        "report",
        "--config",
        str(copy / demo_runs.config.name),
        "--out",
        str(tmp_path / "r.html"),
        "--run",
        first,
    ]

    same = CliRunner().invoke(app, command)
    stats = copy / "data" / "campaign_stats.csv"
    stats.write_text(stats.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    changed = CliRunner().invoke(app, command)

    assert same.exit_code == 0, same.output
    assert "changed since this run" not in same.output
    assert changed.exit_code == 0, changed.output
    assert "NOTE: The campaign_stats file(s) changed since this run" in " ".join(
        changed.output.split()
    )
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="inputs-changed"' in page


def test_a_run_recorded_from_another_folder_is_reported_from_any_folder(
    demo_runs: DemoRuns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan folder recorded relative to where its run started is still found."""
    import sqlite3

    copy = tmp_path / "demo"
    shutil.copytree(demo_runs.config.parent, copy)
    database = sqlite3.connect(copy / "state" / "state.db")
    with database:
        for run_id, plan_dir in database.execute(
            "SELECT run_id, plan_dir FROM runs WHERE plan_dir IS NOT NULL"
        ).fetchall():
            relative = f"valuebid-demo/state/runs/{Path(plan_dir).name}"
            database.execute(
                "UPDATE runs SET plan_dir = ? WHERE run_id = ?", (relative, run_id)
            )
    database.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = CliRunner().invoke(
        app,
        [
            "report",
            "--config",
            str(copy / demo_runs.config.name),
            "--out",
            str(tmp_path / "r.html"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert f"Report of run {demo_runs.last.run.run_id}" in result.output
