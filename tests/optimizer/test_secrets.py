"""No secret the config leads to is stored on a run, alerted or printed."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
import typer
import yaml
from google.ads.googleads.client import GoogleAdsClient
from google.oauth2.credentials import Credentials
from typer.testing import CliRunner

from config import load_settings
from config.loader import settings_from_mapping
from config.schema import Settings
from connectors.files import Inputs
from connectors.value_feed.conversion_upload import API_VERSION, ConversionUploadSink
from connectors.value_feed.ledger import feed_sends
from optimizer.cli import _show_plan, app
from optimizer.console import fail_cleanly
from optimizer.cycle import CycleResult
from optimizer.demo import build_demo
from optimizer.masking import without_secrets
from optimizer.state import StateStore, state_url
from optimizer.value_feed import feed_values
from optimizer.value_level import FIRST, ValueCheck
from tests.connectors.value_feed.conftest import NOW, make_users
from tests.fakes.conversion_upload_server import FakeConversionUpload
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import TlsIdentity, start_tls_server
from tests.fakes.token_endpoint import token_endpoint
from tests.optimizer.conftest import record_plan, webhook_url

CUSTOMER = "1234567890"
FAILED_DAY = dt.date(2026, 12, 4)

DEVELOPER_TOKEN = "dt-7f3a-developer-token"
CLIENT_SECRET = "cs-41b9-client-secret"
REFRESH_TOKEN = "rt-92c4-refresh-token"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEv-not-a-real-key\n-----END"


def _google_ads_yaml(path: Path, **extra: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "developer_token": DEVELOPER_TOKEN,
                "client_id": "client-id.apps.example",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                **extra,
            }
        ),
        encoding="utf-8",
    )
    return path


def _authorized_user(path: Path) -> Path:
    info = {
        "type": "authorized_user",
        "client_id": "client-id.apps.example",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def _settings(tmp_path: Path, **sections: Any) -> Settings:
    raw: dict[str, Any] = {
        "account": {"name": "Acme FR", "currency": "EUR"},
        "data": {
            "users": "users.csv",
            "revenue": "revenue.csv",
            "campaign_stats": "stats.csv",
        },
        "markets": {"FR": {"cac_max": 120.0}},
        **sections,
    }
    return settings_from_mapping(raw, source="test config", base_dir=tmp_path)


def _feed(sink: str, credentials: Path | None) -> dict[str, Any]:
    feed: dict[str, Any] = {
        "sink": sink,
        "customer_id": CUSTOMER,
        "conversion_action_id": "987",
    }
    if credentials is not None:
        feed["credentials"] = str(credentials)
    return feed


def test_the_google_ads_credentials_file_is_masked(tmp_path: Path) -> None:
    path = _google_ads_yaml(tmp_path / "google-ads.yaml")
    settings = _settings(
        tmp_path,
        google_ads={"customer_ids": [CUSTOMER], "credentials_file": str(path)},
    )

    _assert_masked(settings, DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN)


def test_google_ads_credentials_of_the_environment_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", DEVELOPER_TOKEN)
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("GOOGLE_ADS_REFRESH_TOKEN", REFRESH_TOKEN)
    settings = _settings(tmp_path, google_ads={"customer_ids": [CUSTOMER]})

    _assert_masked(settings, DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN)


def test_the_file_the_environment_names_for_google_ads_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _google_ads_yaml(tmp_path / "google-ads.yaml")
    monkeypatch.setenv("GOOGLE_ADS_CONFIGURATION_FILE_PATH", str(path))
    settings = _settings(tmp_path, google_ads={"customer_ids": [CUSTOMER]})

    _assert_masked(settings, DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN)


def test_the_service_account_key_google_ads_logs_in_with_is_masked(
    tmp_path: Path,
) -> None:
    key = tmp_path / "service-account.json"
    key.write_text(
        json.dumps({"type": "service_account", "private_key": PRIVATE_KEY}),
        encoding="utf-8",
    )
    path = _google_ads_yaml(tmp_path / "google-ads.yaml", json_key_file_path=str(key))
    settings = _settings(
        tmp_path,
        google_ads={"customer_ids": [CUSTOMER], "credentials_file": str(path)},
    )

    _assert_masked(settings, DEVELOPER_TOKEN, PRIVATE_KEY)


def test_the_conversion_upload_feeds_google_ads_yaml_is_masked(
    tmp_path: Path,
) -> None:
    path = _google_ads_yaml(tmp_path / "feed-google-ads.yaml")
    settings = _settings(tmp_path, feed=_feed("conversion_upload", path))

    _assert_masked(settings, DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN)


def test_the_data_manager_feeds_authorized_user_file_is_masked(
    tmp_path: Path,
) -> None:
    path = _authorized_user(tmp_path / "authorized-user.json")
    settings = _settings(tmp_path, feed=_feed("data_manager", path))

    _assert_masked(settings, CLIENT_SECRET, REFRESH_TOKEN)


def test_the_default_credentials_of_a_data_manager_feed_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _authorized_user(tmp_path / "application-default.json")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    settings = _settings(tmp_path, feed=_feed("data_manager", None))

    _assert_masked(settings, CLIENT_SECRET, REFRESH_TOKEN)


def _assert_masked(settings: Settings, *secrets: str) -> None:
    text = without_secrets(f"refused: {' / '.join(secrets)}", settings)

    assert text == f"refused: {' / '.join('***' for _ in secrets)}"


@pytest.fixture
def google_ads_api(tls_identity: TlsIdentity) -> Iterator[tuple[FakeGoogleAdsApi, str]]:
    api = FakeGoogleAdsApi()
    api.add_customer(CUSTOMER, currency_code="USD")
    server = start_tls_server(api.handlers(), tls_identity)
    yield api, server.target
    server.stop()


def test_a_failed_run_quoting_a_token_stores_alerts_and_prints_it_masked(
    tmp_path: Path,
    webhook: ThreadingHTTPServer,
    google_ads_api: tuple[FakeGoogleAdsApi, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, target = google_ads_api
    api.refuse_developer_token = True
    config = build_demo(tmp_path, FAILED_DAY).config
    credentials = _google_ads_yaml(tmp_path / "google-ads.yaml")
    with token_endpoint() as login:
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
        del raw["data"]["campaign_stats"]
        raw["google_ads"] = {
            "customer_ids": [CUSTOMER],
            "credentials_file": str(credentials),
            "endpoint": target,
            "token_uri": login.url,
            "retry": {"max_attempts": 1},
        }
        raw.setdefault("operations", {})["alerts"] = {
            "webhook_url": webhook_url(webhook)
        }
        config.write_text(yaml.safe_dump(raw), encoding="utf-8")
        settings = load_settings(config)
        store = StateStore(state_url(settings.state.directory, settings.state.url))
        run = record_plan(store, run_date=FAILED_DAY, account=settings.account.name)

        result = CliRunner().invoke(
            app, ["run", "--config", str(config), "--run-date", f"{FAILED_DAY}"]
        )

    after = store.get_run(run.run_id)
    store.dispose()
    assert after is not None
    stored = after.failed_attempt_error
    [alert] = webhook.received  # type: ignore[attr-defined]
    assert result.exit_code == 1
    assert "PERMISSION_DENIED: The developer token *** is only" in result.stderr
    assert stored is not None and "The developer token *** is only" in stored
    assert "The developer token *** is only" in alert["body"]["text"]
    for shown in (result.stderr, stored, alert["body"]["text"], caplog.text):
        assert DEVELOPER_TOKEN not in shown


def test_the_feeds_ledger_keeps_an_api_error_quoting_a_token_masked(
    tmp_path: Path, tls_identity: TlsIdentity, caplog: pytest.LogCaptureFixture
) -> None:
    credentials = _google_ads_yaml(tmp_path / "google-ads.yaml")
    settings = _settings(
        tmp_path,
        feed=_feed("conversion_upload", credentials),
        state={"directory": str(tmp_path / "state")},
    )
    api = FakeConversionUpload(now=NOW, quote_developer_token=True)
    server = start_tls_server(api.handlers(), tls_identity)
    client = GoogleAdsClient(
        credentials=Credentials(token="offline-access-token"),
        developer_token=DEVELOPER_TOKEN,
        endpoint=server.target,
        use_proto_plus=True,
        version=API_VERSION,
    )
    users = make_users([{"user_id": "u1"}])
    try:
        report = feed_values(
            settings,
            now=NOW,
            send=True,
            inputs=Inputs(users, pd.DataFrame(), pd.DataFrame()),
            scores=pd.DataFrame({"user_id": ["u1"], "pltv_365": [50.0]}),
            sink=ConversionUploadSink(client, CUSTOMER, "987"),
            value_check=ValueCheck(FIRST, 3.0, "nothing to compare with"),
        )
    finally:
        server.stop()

    assert report.counts["initial_unknown_click"] == 1
    engine = sa.create_engine(state_url(settings.state.directory, settings.state.url))
    with engine.connect() as connection:
        [detail] = connection.execute(sa.select(feed_sends.c.detail)).scalars()
    engine.dispose()
    assert detail == "CLICK_NOT_FOUND: CLICK_NOT_FOUND (fake) for developer token ***"
    assert DEVELOPER_TOKEN not in caplog.text


def _config_quoting_a_secret(tmp_path: Path) -> Path:
    """A config whose tables are read by a query the database refuses.

    The database names, in its refusal, the table the query reads: the
    refresh token of the config's Google Ads credentials.
    """
    credentials = _google_ads_yaml(tmp_path / "google-ads.yaml")
    table = {
        "url": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "query": f'SELECT * FROM "{REFRESH_TOKEN}"',
    }
    raw = {
        "account": {"name": "Acme FR", "currency": "EUR"},
        "data": {"users": table, "revenue": table, "campaign_stats": table},
        "markets": {"FR": {"cac_max": 120.0}},
        "state": {"directory": str(tmp_path / "state")},
        "google_ads": {
            "customer_ids": [CUSTOMER],
            "credentials_file": str(credentials),
        },
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return config


@pytest.mark.parametrize(
    "command",
    [
        ["economics"],
        ["case", "spend", "--market", "FR", "--amount", "1000"],
        ["case", "hire", "--cost", "60000"],
    ],
)
def test_the_economics_commands_print_an_error_quoting_a_secret_masked(
    tmp_path: Path, command: list[str]
) -> None:
    config = _config_quoting_a_secret(tmp_path)

    result = CliRunner().invoke(app, [*command, "--config", str(config)])

    assert result.exit_code == 1
    assert "no such table: ***" in result.stderr
    assert REFRESH_TOKEN not in result.output + result.stderr


def test_an_unexpected_error_is_printed_with_its_traceback_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_quoting_a_secret(tmp_path)

    with pytest.raises(typer.Exit) as exited, fail_cleanly(config):
        raise KeyError(f"no entry for {REFRESH_TOKEN}")

    printed = capsys.readouterr()
    assert exited.value.exit_code == 1
    assert printed.err.startswith("Traceback (most recent call last):")
    assert "KeyError: 'no entry for ***'" in printed.err
    assert REFRESH_TOKEN not in printed.err + printed.out


def test_a_report_error_quoting_a_secret_is_printed_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_quoting_a_secret(tmp_path)
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    run = record_plan(store, [])
    store.dispose()
    result = CycleResult(
        run=run,
        rows=[],
        plan_dir=tmp_path,
        model_version="pltv-test",
        scores=pd.DataFrame(),
        report_error=f"the chart server refused the token {REFRESH_TOKEN}",
    )

    _show_plan(result, config)

    printed = capsys.readouterr()
    assert "report not written: the chart server refused the token ***" in (printed.err)
    assert REFRESH_TOKEN not in printed.err + printed.out


@pytest.mark.parametrize("query", ["", "?key=kq-5521-endpoint-key"])
def test_a_token_endpoint_in_the_config_is_named_but_its_key_is_masked(
    tmp_path: Path, query: str
) -> None:
    """A plain endpoint URL is no secret: a login error must say which it tried."""
    endpoint = "http://127.0.0.1:18080/token"
    settings = _settings(
        tmp_path,
        google_ads={
            "customer_ids": [CUSTOMER],
            "credentials_file": str(_google_ads_yaml(tmp_path / "google-ads.yaml")),
            "token_uri": f"{endpoint}{query}",
        },
    )
    message = (
        f"login failed: its OAuth token endpoint {endpoint} could not be reached; "
        f"sent {DEVELOPER_TOKEN} to {endpoint}{query}"
    )

    masked = without_secrets(message, settings)

    assert f"endpoint {endpoint} could not be reached" in masked
    assert DEVELOPER_TOKEN not in masked
    assert "kq-5521-endpoint-key" not in masked


def test_a_refresh_token_echoed_form_encoded_is_masked(tmp_path: Path) -> None:
    """Refresh tokens start with 1//; an echoed token request percent-encodes them."""
    token = "1//0g-fake-refresh-token+with/slashes"
    path = _google_ads_yaml(tmp_path / "google-ads.yaml", refresh_token=token)
    settings = _settings(
        tmp_path, google_ads={"customer_ids": [CUSTOMER], "credentials_file": str(path)}
    )
    body = (
        "invalid_grant: Bad token: grant_type=refresh_token&refresh_token="
        "1%2F%2F0g-fake-refresh-token%2Bwith%2Fslashes&client_secret="
        f"{CLIENT_SECRET}"
    )

    masked = without_secrets(body, settings)

    assert "fake-refresh-token" not in masked
    assert CLIENT_SECRET not in masked
    assert "refresh_token=***" in masked
