"""The google-ads.yaml keys beyond the login that the conversion_upload sink honours.

``linked_customer_id`` must reach the API as the ``linked-customer-id``
header, ``http_proxy`` must carry the calls; bad values stop the sink before
anything is sent, with a message naming the file and the key, never a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from connectors.exceptions import ValueFeedError
from connectors.value_feed import FeedSettings, Ledger, make_sink, run_feed
from tests.connectors.value_feed.conftest import NOW, make_users
from tests.fakes.connect_proxy import connect_proxy
from tests.fakes.conversion_upload_server import FakeConversionUpload
from tests.fakes.grpc_tls import LoopbackServer
from tests.fakes.token_endpoint import TokenEndpoint, token_endpoint

DEVELOPER_TOKEN = "dev-token-secret-8181"
CLIENT_SECRET = "client-secret-8282"
REFRESH_TOKEN = "1//refresh-secret-8383"
PROXY_PASSWORD = "proxy-secret-8484"
SECRETS = (DEVELOPER_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, PROXY_PASSWORD)
USERS = make_users([{"user_id": f"u{i}"} for i in range(3)])


def google_ads_yaml(tmp_path: Path, **keys: str) -> Path:
    path = tmp_path / "google-ads.yaml"
    document = {
        "developer_token": DEVELOPER_TOKEN,
        "client_id": "client-id.apps.example",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "use_proto_plus": True,
        **keys,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
def login() -> Iterator[TokenEndpoint]:
    with token_endpoint() as endpoint:
        yield endpoint


def send(settings: FeedSettings, ledger: Ledger, api: FakeConversionUpload) -> Any:
    for gclid, clicked in zip(USERS["gclid"], USERS["signup_at"], strict=True):
        api.clicks[str(gclid)] = pd.Timestamp(clicked).to_pydatetime()
    values = pd.Series({f"u{i}": 10.0 + i for i in range(3)}, dtype=float)
    return run_feed(
        USERS,
        values,
        settings=settings,
        account="acme",
        currency="EUR",
        ledger=ledger,
        sink=make_sink(settings),
        now=NOW,
        send=True,
    )


def with_file(
    settings: FeedSettings, path: Path, server: LoopbackServer, login: TokenEndpoint
) -> FeedSettings:
    return settings.model_copy(
        update={"credentials": path, "endpoint": server.target, "token_uri": login.url}
    )


def test_linked_customer_id_reaches_the_api_as_its_header(
    tmp_path: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    login: TokenEndpoint,
    ledger: Ledger,
) -> None:
    path = google_ads_yaml(tmp_path, linked_customer_id="444-555-6666")
    settings = with_file(feed_settings, path, upload_server, login)

    report = send(settings, ledger, upload_api)

    assert report.counts["initial_sent"] == 3
    assert [m.get("linked-customer-id") for m in upload_api.metadata] == ["4445556666"]


def test_http_proxy_carries_the_uploads(
    tmp_path: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    login: TokenEndpoint,
    ledger: Ledger,
    grpc_channel_options: list[tuple[str, Any]],
) -> None:
    with connect_proxy() as proxy:
        path = google_ads_yaml(tmp_path, http_proxy=f"http://{proxy.host_port}")
        settings = with_file(feed_settings, path, upload_server, login)

        report = send(settings, ledger, upload_api)

    assert report.counts["initial_sent"] == 3
    assert proxy.tunnels == [upload_server.target]
    assert len(upload_api.received) == 3


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("linked_customer_id", "12345", "'12345' is not a Google Ads customer id"),
        ("linked_customer_id", "444-555-66667", "expected 10 digits"),
        ("http_proxy", "proxy.example:3128", "not an http proxy URL"),
        ("http_proxy", f"https://u:{PROXY_PASSWORD}@proxy.example:3128", "http only"),
        ("http_proxy", f"http://u:{PROXY_PASSWORD}@proxy.example", "host:port"),
        ("http_proxy", f"http://u:{PROXY_PASSWORD}@proxy.example:port", "host:port"),
    ],
)
def test_a_bad_key_names_the_file_and_the_key_but_no_secret(
    tmp_path: Path,
    feed_settings: FeedSettings,
    upload_api: FakeConversionUpload,
    upload_server: LoopbackServer,
    login: TokenEndpoint,
    ledger: Ledger,
    key: str,
    value: str,
    expected: str,
) -> None:
    path = google_ads_yaml(tmp_path, **{key: value})
    settings = with_file(feed_settings, path, upload_server, login)

    with pytest.raises(ValueFeedError) as raised:
        make_sink(settings)

    message = str(raised.value)
    assert message.startswith(
        f"feed.credentials: Google Ads credentials in the credentials file {path} "
        f"are invalid: {key}: "
    )
    assert expected in message
    assert not any(secret in message for secret in SECRETS)
    assert login.requests == []
    assert upload_api.received == []
