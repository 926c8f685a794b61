"""Alerts reach a Slack-compatible webhook served on 127.0.0.1."""

from __future__ import annotations

import socket
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from optimizer.alerts import WebhookAlerts, alerts_from
from optimizer.apply import apply_run, kill_switch_file
from optimizer.exceptions import ApplyStopped
from optimizer.state import StateStore
from tests.optimizer.conftest import (
    RUN_DATE,
    START,
    clock_at,
    make_settings,
    record_plan,
    webhook_url,
)
from tests.optimizer.fakes import MemoryAccount


def test_big_applied_changes_are_announced(
    webhook: ThreadingHTTPServer, tmp_path: Path, db_url: str, store: StateStore
) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        alerts={"webhook_url": webhook_url(webhook), "change_pct_threshold": 10},
    )
    run = record_plan(store)

    apply_run(
        store,
        run.run_id,
        MemoryAccount(START),
        settings,
        alerts=alerts_from(settings.operations.alerts),
        clock=clock_at(RUN_DATE),
    )

    received = webhook.received  # type: ignore[attr-defined]
    assert len(received) == 1
    assert received[0]["content_type"] == "application/json"
    text = received[0]["body"]["text"]
    # 102 moved +15 % (above 10 %); 103 moved -3.2 % (below).
    assert "102 +15.0% to TARGET_ROAS 2.875" in text
    assert "103" not in text


def test_a_stop_is_announced(
    webhook: ThreadingHTTPServer, tmp_path: Path, db_url: str, store: StateStore
) -> None:
    settings = make_settings(
        tmp_path, db_url, alerts={"webhook_url": webhook_url(webhook)}
    )
    flag = kill_switch_file(settings)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.touch()
    run = record_plan(store)

    with pytest.raises(ApplyStopped):
        apply_run(
            store,
            run.run_id,
            MemoryAccount(START),
            settings,
            alerts=alerts_from(settings.operations.alerts),
            clock=clock_at(RUN_DATE),
        )

    [alert] = webhook.received  # type: ignore[attr-defined]
    assert "stopped (kill_switch)" in alert["body"]["text"]


def test_a_rejected_change_is_announced(
    webhook: ThreadingHTTPServer, tmp_path: Path, db_url: str, store: StateStore
) -> None:
    settings = make_settings(
        tmp_path,
        db_url,
        alerts={"webhook_url": webhook_url(webhook), "change_pct_threshold": 50},
    )
    run = record_plan(store)

    apply_run(
        store,
        run.run_id,
        MemoryAccount(START, reject={"101"}),
        settings,
        alerts=alerts_from(settings.operations.alerts),
        clock=clock_at(RUN_DATE),
    )

    [alert] = webhook.received  # type: ignore[attr-defined]
    assert "is partial" in alert["body"]["text"]
    assert "101 rejected: TARGET_ROAS_OUT_OF_RANGE" in alert["body"]["text"]


def test_an_undeliverable_alert_is_logged_without_the_url(
    webhook: ThreadingHTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    webhook.status = 500  # type: ignore[attr-defined]
    WebhookAlerts(webhook_url(webhook)).send("valuebid run failed")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    WebhookAlerts(f"http://127.0.0.1:{closed_port}/hook").send("valuebid run failed")

    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "alert not delivered: HTTP 500 Internal Server Error"
    assert messages[1].startswith("alert not delivered:")
    assert all("/services/" not in m and "/hook" not in m for m in messages)
