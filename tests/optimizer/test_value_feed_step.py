"""The feed step and command on the bundled demo (real CDNOW users), dry run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from config import load_settings
from connectors.value_feed import Ledger
from optimizer.cli import app
from optimizer.demo import build_demo
from optimizer.state import state_url
from optimizer.value_feed import feed_values
from tests.fakes.token_endpoint import closed_token_uri

# Fits the pLTV model on the full demo data set.
pytestmark = pytest.mark.slow

RUN_DAY = dt.date(2026, 12, 1)


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    files = build_demo(directory, RUN_DAY)
    raw = yaml.safe_load(files.config.read_text(encoding="utf-8"))
    raw["feed"] = {
        "sink": "conversion_upload",
        "customer_id": "123-456-7890",
        "conversion_action_id": "42",
        "lookback_days": 90,
    }
    files.config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return files.config


def test_dry_run_counts_due_values_and_records_the_run(demo_config: Path) -> None:
    settings = load_settings(demo_config)
    now = dt.datetime.combine(RUN_DAY, dt.time(), dt.UTC)

    report = feed_values(settings, now=now)

    assert report.mode == "dry_run"
    assert report.counts["due_first"] == len(report.planned) > 0
    assert all(e.gclid and e.value >= 0 for e in report.planned)
    assert report.cap is not None
    assert max(e.value for e in report.planned) <= round(report.cap, 2)
    ledger = Ledger(state_url(settings.state.directory, settings.state.url))
    try:
        record = ledger.get_run(report.run_id)
        assert record is not None
        assert record.status == "planned"
        assert record.counts["due_first"] == report.counts["due_first"]
        assert ledger.latest_sends() == {}
    finally:
        ledger.dispose()


def test_feed_command_is_a_dry_run_by_default(demo_config: Path) -> None:
    result = CliRunner().invoke(app, ["feed", "--config", str(demo_config)])

    assert result.exit_code == 0, result.output
    assert "dry_run" in result.output
    assert "rerun with --send" in result.output


def test_feed_send_with_a_failing_login_is_one_error_and_claims_nothing(
    demo_config: Path,
) -> None:
    secrets = ("dev-token-secret-9191", "client-secret-9292", "1//refresh-9393")
    credentials = demo_config.parent / "google-ads.yaml"
    credentials.write_text(
        yaml.safe_dump(
            {
                "developer_token": secrets[0],
                "client_id": "client-id.apps.example",
                "client_secret": secrets[1],
                "refresh_token": secrets[2],
            }
        ),
        encoding="utf-8",
    )
    raw = yaml.safe_load(demo_config.read_text(encoding="utf-8"))
    raw["feed"].update(
        credentials=str(credentials),
        endpoint="127.0.0.1:9",
        token_uri=closed_token_uri(),
    )
    config = demo_config.parent / "send.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = CliRunner().invoke(app, ["feed", "--send", "--config", str(config)])

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "error: login to the Google Ads API (conversion upload) failed" in (
        result.output
    )
    assert "feed.token_uri" in result.output and "Traceback" not in result.output
    assert not any(secret in result.output for secret in secrets)
    settings = load_settings(config)
    ledger = Ledger(state_url(settings.state.directory, settings.state.url))
    try:
        assert ledger.latest_sends() == {}
    finally:
        ledger.dispose()
