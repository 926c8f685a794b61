"""Alerts reach a Slack-compatible webhook served on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from connectors.exceptions import ContractError
from optimizer.alerts import WebhookAlerts, alerts_from
from optimizer.apply import apply_run, kill_switch_file
from optimizer.cli import app
from optimizer.cycle import run_cycle
from optimizer.exceptions import ApplyStopped
from optimizer.state import StateStore
from tests.optimizer.conftest import (
    RUN_DATE,
    START,
    broken_demo,
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


FAILED_DAY = dt.date(2026, 12, 4)


def test_a_failed_run_is_announced_once_without_secrets(
    webhook: ThreadingHTTPServer, tmp_path: Path
) -> None:
    hook = webhook_url(webhook)
    config = broken_demo(tmp_path, FAILED_DAY, hook)

    result = CliRunner().invoke(
        app, ["run", "--config", str(config), "--run-date", FAILED_DAY.isoformat()]
    )

    assert result.exit_code == 1
    assert "lacks required column(s) cost" in result.stderr
    [alert] = webhook.received  # type: ignore[attr-defined]
    text = alert["body"]["text"]
    assert text.startswith(
        f"valuebid run of {FAILED_DAY} for {load_settings(config).account.name} "
        "failed: ContractError: "
    )
    assert "lacks required column(s) cost" in text
    assert hook not in text
    assert "/services/" not in text


def test_an_alert_that_fails_leaves_the_runs_error_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        answer = threading.Thread(target=_answer_garbage, args=(listener,))
        answer.start()
        port = listener.getsockname()[1]
        config = broken_demo(tmp_path, FAILED_DAY, f"http://127.0.0.1:{port}/hook")

        with pytest.raises(ContractError, match=r"lacks required column\(s\) cost"):
            run_cycle(load_settings(config), run_date=FAILED_DAY)
        answer.join()

    messages = [r.getMessage() for r in caplog.records if r.name == "optimizer.alerts"]
    assert messages == ["alert not delivered: BadStatusLine"]


def _answer_garbage(listener: socket.socket) -> None:
    """Read one request, if one comes, and answer it with a line that is not HTTP."""
    listener.settimeout(60)
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        return
    with connection, connection.makefile("rb") as request:
        length = 0
        while (line := request.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        request.read(length)
        connection.sendall(b"not http at all\r\n\r\n")
