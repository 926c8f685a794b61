"""A send whose Google login fails: one clear error, nothing claimed, rerun safe.

The sinks are built from the config as ``valuebid feed --send`` builds them,
with credentials files on disk and the token endpoint on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.exceptions import LoginError
from connectors.value_feed import FeedSettings, Ledger, make_sink, run_feed
from connectors.value_feed.conversion_upload import ConversionUploadSink
from connectors.value_feed.data_manager import DataManagerSink
from tests.connectors.value_feed.conftest import NOW, make_users
from tests.fakes.conversion_upload_server import FakeConversionUpload
from tests.fakes.datamanager_server import FakeDataManager
from tests.fakes.grpc_tls import LoopbackServer
from tests.fakes.token_endpoint import ACCESS_TOKEN, closed_token_uri, token_endpoint

DEVELOPER_TOKEN = "dev-token-secret-5151"
CLIENT_SECRET = "client-secret-6262"
REFRESH_TOKEN = "1//refresh-secret-7373"
SECRETS = (DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN)


@pytest.fixture
def google_ads_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "google-ads.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "developer_token": DEVELOPER_TOKEN,
                "client_id": "client-id.apps.example",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
            }
        ),
        encoding="utf-8",
    )
    return path


def user_key_file(tmp_path: Path, token_uri: str) -> Path:
    """An authorized-user file: a user's OAuth client and refresh token.

    google-auth ignores its ``token_uri`` (it always logs in at Google's), so
    only ``feed.token_uri`` moves such a login.
    """
    path = tmp_path / "user.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "client-id.apps.example",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "token_uri": token_uri,
            }
        ),
        encoding="utf-8",
    )
    return path


def service_account_key_file(tmp_path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "example",
                "private_key_id": "key-1",
                "private_key": pem,
                "client_email": "feed@example.iam.gserviceaccount.com",
                "client_id": "1234",
                "token_uri": token_uri,
            }
        ),
        encoding="utf-8",
    )
    return path


def send(settings: FeedSettings, ledger: Ledger, sink: object):  # type: ignore[no-untyped-def]
    users = make_users([{"user_id": f"u{i}"} for i in range(4)])
    values = pd.Series({f"u{i}": 10.0 + i for i in range(4)}, dtype=float)
    return run_feed(
        users,
        values,
        settings=settings,
        account="acme",
        currency="EUR",
        ledger=ledger,
        sink=sink,  # type: ignore[arg-type]
        now=NOW,
        send=True,
    )


def register_clicks(api: FakeConversionUpload) -> None:
    for user in make_users([{"user_id": f"u{i}"} for i in range(4)]).itertuples():
        api.clicks[str(user.gclid)] = user.signup_at.to_pydatetime()


def assert_failed_run_left_nothing(ledger: Ledger) -> None:
    assert ledger.latest_sends() == {}
    assert ledger.conversions() == {}
    with ledger.engine.connect() as connection:
        statuses = connection.exec_driver_sql("select status from feed_runs").all()
    assert [s for (s,) in statuses] == ["failed"]


@pytest.fixture
def close_after() -> Iterator[list[DataManagerSink]]:
    sinks: list[DataManagerSink] = []
    yield sinks
    for sink in sinks:
        sink._client.transport.close()


def test_conversion_upload_login_failure_is_one_error_and_the_rerun_sends_once(
    google_ads_yaml: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
) -> None:
    register_clicks(upload_api)
    settings = feed_settings.model_copy(
        update={
            "credentials": google_ads_yaml,
            "endpoint": upload_server.target,
            "token_uri": closed_token_uri(),
        }
    )

    with pytest.raises(LoginError) as raised:
        send(settings, ledger, make_sink(settings))

    message = str(raised.value)
    assert message.startswith(
        "login to the Google Ads API (conversion upload) failed: its OAuth token "
        f"endpoint {settings.token_uri} could not be reached (Connection refused)"
    )
    assert "feed.token_uri" in message and "\n" not in message
    assert not any(secret in message for secret in SECRETS)
    assert upload_api.received == []
    assert_failed_run_left_nothing(ledger)

    report = send(settings, ledger, upload_sink)

    assert report.counts["initial_sent"] == 4
    assert sorted(upload_api.received) == sorted(upload_api.conversions)


def test_refused_google_ads_credentials_name_the_file_and_mask_the_secrets(
    google_ads_yaml: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    ledger: Ledger,
) -> None:
    with token_endpoint(refuse=True) as endpoint:
        settings = feed_settings.model_copy(
            update={
                "credentials": google_ads_yaml,
                "endpoint": upload_server.target,
                "token_uri": endpoint.url,
            }
        )
        with pytest.raises(LoginError) as raised:
            send(settings, ledger, make_sink(settings))

    message = str(raised.value)
    assert "refused the credentials (invalid_grant" in message
    assert (
        f"client_id, client_secret and refresh_token in the credentials file "
        f"{google_ads_yaml}" in message
    )
    assert "feed.credentials" in message
    assert not any(secret in message for secret in SECRETS)
    assert upload_api.received == []
    assert_failed_run_left_nothing(ledger)


def test_conversion_upload_logs_in_at_the_configured_endpoint_only(
    google_ads_yaml: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    ledger: Ledger,
) -> None:
    register_clicks(upload_api)
    with token_endpoint() as endpoint:
        settings = feed_settings.model_copy(
            update={
                "credentials": google_ads_yaml,
                "endpoint": upload_server.target,
                "token_uri": endpoint.url,
            }
        )
        report = send(settings, ledger, make_sink(settings))

    assert report.counts["initial_sent"] == 4
    assert [r["refresh_token"] for r in endpoint.requests] == [REFRESH_TOKEN]


def test_data_manager_login_failure_names_the_key_file_and_sends_nothing(
    tmp_path: Path,
    feed_settings: FeedSettings,
    dm_api: FakeDataManager,
    dm_server: LoopbackServer,
    ledger: Ledger,
    close_after: list[DataManagerSink],
) -> None:
    with token_endpoint(refuse=True) as endpoint:
        settings = feed_settings.model_copy(
            update={
                "sink": "data_manager",
                "credentials": user_key_file(tmp_path, endpoint.url),
                "endpoint": dm_server.target,
                "token_uri": endpoint.url,
            }
        )
        sink = make_sink(settings)
        assert isinstance(sink, DataManagerSink)
        close_after.append(sink)
        with pytest.raises(LoginError) as raised:
            send(settings, ledger, sink)

    message = str(raised.value)
    assert message.startswith("login to the Data Manager API failed")
    assert f"the key file feed.credentials names ({settings.credentials})" in message
    assert not any(secret in message for secret in SECRETS)
    assert dm_api.events == {}
    assert_failed_run_left_nothing(ledger)


def test_data_manager_token_uri_setting_moves_a_user_login_the_file_cannot(
    tmp_path: Path,
    feed_settings: FeedSettings,
    dm_api: FakeDataManager,
    dm_server: LoopbackServer,
    ledger: Ledger,
    close_after: list[DataManagerSink],
) -> None:
    with token_endpoint() as endpoint:
        settings = feed_settings.model_copy(
            update={
                "sink": "data_manager",
                "credentials": user_key_file(tmp_path, closed_token_uri()),
                "endpoint": dm_server.target,
                "token_uri": endpoint.url,
            }
        )
        sink = make_sink(settings)
        assert isinstance(sink, DataManagerSink)
        close_after.append(sink)
        report = send(settings, ledger, sink)

    assert report.counts["initial_sent"] == 4
    assert len(endpoint.requests) == 1
    assert set(dm_api.authorization) == {f"Bearer {ACCESS_TOKEN}"}


def test_a_data_manager_service_account_signs_its_own_tokens(
    tmp_path: Path,
    feed_settings: FeedSettings,
    dm_api: FakeDataManager,
    dm_server: LoopbackServer,
    ledger: Ledger,
    close_after: list[DataManagerSink],
) -> None:
    settings = feed_settings.model_copy(
        update={
            "sink": "data_manager",
            "credentials": service_account_key_file(tmp_path, closed_token_uri()),
            "endpoint": dm_server.target,
        }
    )
    sink = make_sink(settings)
    assert isinstance(sink, DataManagerSink)
    close_after.append(sink)

    report = send(settings, ledger, sink)

    assert report.counts["initial_sent"] == 4
    assert all(a.startswith("Bearer ey") for a in dm_api.authorization)
