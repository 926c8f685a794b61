"""Settings and credentials: every problem is caught before any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from pydantic import ValidationError

from config import ConfigError
from config.loader import settings_from_mapping
from connectors.exceptions import GoogleAdsConfigError
from connectors.google_ads import (
    CampaignMarketRule,
    GoogleAdsSettings,
    load_credentials,
    newest_api_version,
    open_session,
    read_campaign_stats,
)
from tests.connectors.google_ads.conftest import CUSTOMER, DAYS
from tests.fakes.connect_proxy import connect_proxy
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import LoopbackServer
from tests.support.datasets import config_mapping

SECRETS = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "dt-secret-1",
    "GOOGLE_ADS_CLIENT_ID": "client-id.apps",
    "GOOGLE_ADS_CLIENT_SECRET": "cs-secret-2",
    "GOOGLE_ADS_REFRESH_TOKEN": "rt-secret-3",
}


def test_customer_ids_are_normalised() -> None:
    settings = GoogleAdsSettings(
        customer_ids=["123-456-7890", 2223334444], login_customer_id="111-222-3333"
    )

    assert settings.customer_ids == ["1234567890", "2223334444"]
    assert settings.login_customer_id == "1112223333"


@pytest.mark.parametrize("bad", ["12345", "abcdefghij", "123-456-78901", True])
def test_malformed_customer_id_names_the_bad_value(bad: object) -> None:
    with pytest.raises(ValidationError) as raised:
        GoogleAdsSettings(customer_ids=[CUSTOMER, bad])

    (error,) = raised.value.errors()
    assert error["loc"] == ("customer_ids", 1)
    assert repr(bad) in error["msg"]


def test_a_customer_id_listed_twice_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        GoogleAdsSettings(customer_ids=["123-456-7890", "2223334444", "1234567890"])

    (error,) = raised.value.errors()
    assert error["loc"] == ("customer_ids",)
    assert "1234567890 more than once" in error["msg"]


def test_at_least_one_customer_id() -> None:
    with pytest.raises(ValidationError, match="customer_ids"):
        GoogleAdsSettings(customer_ids=[])


def test_api_version_defaults_to_the_newest_shipped() -> None:
    assert GoogleAdsSettings(customer_ids=[CUSTOMER]).api_version == "v26"
    assert newest_api_version() == "v26"
    with pytest.raises(ValidationError, match="'v1' is not shipped"):
        GoogleAdsSettings(customer_ids=[CUSTOMER], api_version="v1")


def test_market_rules_and_unknown_keys_are_checked() -> None:
    with pytest.raises(ValidationError, match="not a regex"):
        CampaignMarketRule(name_pattern="(")
    with pytest.raises(ValidationError, match="'x1' is not a number"):
        CampaignMarketRule(campaign_ids=["x1"])
    with pytest.raises(ValidationError, match="'FRA' is not an ISO"):
        CampaignMarketRule(countries=["FRA"])
    with pytest.raises(ValidationError, match="extra"):
        GoogleAdsSettings(customer_ids=[CUSTOMER], developer_token="x")


def test_the_config_file_mounts_the_section(tmp_path: Path) -> None:
    mapping = config_mapping()
    mapping["google_ads"] = {
        "customer_ids": ["123-456-7890"],
        "credentials_file": "google-ads.yaml",
    }

    settings = settings_from_mapping(mapping, source="v.yaml", base_dir=tmp_path)

    assert settings.google_ads is not None
    assert settings.google_ads.customer_ids == [CUSTOMER]
    assert settings.google_ads.credentials_file == tmp_path / "google-ads.yaml"

    mapping["google_ads"] = {"customer_ids": ["12345"]}
    with pytest.raises(ConfigError, match=r"google_ads\.customer_ids\.0: .*'12345'"):
        settings_from_mapping(mapping, source="v.yaml", base_dir=tmp_path)


def test_credentials_from_the_environment_stay_secret() -> None:
    settings = GoogleAdsSettings(customer_ids=[CUSTOMER])

    credentials = load_credentials(settings, SECRETS)

    assert credentials.developer_token.get_secret_value() == "dt-secret-1"
    assert credentials.source == "environment"
    shown = repr(credentials) + str(credentials) + repr(settings)
    for secret in ("dt-secret-1", "cs-secret-2", "rt-secret-3"):
        assert secret not in shown


def test_credentials_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "google-ads.yaml"
    path.write_text(
        "developer_token: dt-secret-1\n"
        "client_id: client-id.apps\n"
        "client_secret: cs-secret-2\n"
        "refresh_token: rt-secret-3\n"
        "login_customer_id: 111-222-3333\n"
        "use_proto_plus: true\n"
    )
    settings = GoogleAdsSettings(customer_ids=[CUSTOMER], credentials_file=path)

    credentials = load_credentials(settings, {})

    assert credentials.refresh_token is not None
    assert credentials.refresh_token.get_secret_value() == "rt-secret-3"
    assert credentials.login_customer_id == "1112223333"
    assert "rt-secret-3" not in repr(credentials)


def test_the_settings_login_customer_id_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "google-ads.yaml"
    path.write_text("developer_token: d\njson_key_file_path: /k.json\n")
    settings = GoogleAdsSettings(
        customer_ids=[CUSTOMER], credentials_file=path, login_customer_id="9998887777"
    )

    assert load_credentials(settings, {}).login_customer_id == "9998887777"


def test_missing_credentials_name_the_missing_variables() -> None:
    settings = GoogleAdsSettings(customer_ids=[CUSTOMER])
    partial = {"GOOGLE_ADS_CLIENT_SECRET": "cs-secret-2"}

    with pytest.raises(GoogleAdsConfigError) as raised:
        load_credentials(settings, partial)

    message = str(raised.value)
    assert "GOOGLE_ADS_DEVELOPER_TOKEN" in message
    assert "GOOGLE_ADS_REFRESH_TOKEN" in message
    assert "GOOGLE_ADS_CLIENT_SECRET" not in message
    assert "cs-secret-2" not in message


def test_missing_or_broken_credentials_file(tmp_path: Path) -> None:
    missing = GoogleAdsSettings(
        customer_ids=[CUSTOMER], credentials_file=tmp_path / "nope.yaml"
    )
    with pytest.raises(GoogleAdsConfigError, match="cannot read"):
        load_credentials(missing, {})

    listed = tmp_path / "list.yaml"
    listed.write_text("- developer_token\n")
    with pytest.raises(GoogleAdsConfigError, match="mapping"):
        load_credentials(
            GoogleAdsSettings(customer_ids=[CUSTOMER], credentials_file=listed), {}
        )

    no_token = tmp_path / "no-token.yaml"
    no_token.write_text("client_id: a\nclient_secret: b\nrefresh_token: c\n")
    with pytest.raises(GoogleAdsConfigError, match="developer_token"):
        load_credentials(
            GoogleAdsSettings(customer_ids=[CUSTOMER], credentials_file=no_token), {}
        )


def test_configuration_file_path_variable_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "google-ads.yaml"
    path.write_text("developer_token: d\njson_key_file_path: /k.json\n")

    credentials = load_credentials(
        GoogleAdsSettings(customer_ids=[CUSTOMER]),
        {"GOOGLE_ADS_CONFIGURATION_FILE_PATH": str(path)},
    )

    assert credentials.source == f"credentials file {path}"


def test_missing_credentials_fail_before_any_request(
    fake_api: FakeGoogleAdsApi, settings: GoogleAdsSettings
) -> None:
    with pytest.raises(GoogleAdsConfigError, match="GOOGLE_ADS_DEVELOPER_TOKEN"):
        open_session(settings, environ={})

    assert fake_api.requests == []


def test_session_built_from_oauth_keys_sends_nothing(
    fake_api: FakeGoogleAdsApi, settings: GoogleAdsSettings
) -> None:
    session = open_session(settings, environ=SECRETS)

    assert session.client.developer_token == "dt-secret-1"
    assert session.client.credentials.refresh_token == "rt-secret-3"
    assert not session.client.credentials.valid
    assert fake_api.requests == []


def test_application_default_credentials_stand_for_the_oauth_keys() -> None:
    credentials = load_credentials(
        GoogleAdsSettings(customer_ids=[CUSTOMER]),
        {
            "GOOGLE_ADS_DEVELOPER_TOKEN": "dt-secret-1",
            "GOOGLE_ADS_USE_APPLICATION_DEFAULT_CREDENTIALS": "true",
        },
    )

    assert credentials.use_application_default_credentials
    assert "GOOGLE_ADS_USE_APPLICATION_DEFAULT_CREDENTIALS" in (
        credentials.login_hint()
    )


def test_a_token_uri_off_this_machine_must_be_https() -> None:
    with pytest.raises(ValidationError, match="unencrypted"):
        GoogleAdsSettings(customer_ids=[CUSTOMER], token_uri="http://proxy.example/t")


def test_linked_customer_id_and_http_proxy_reach_the_api_calls(
    tmp_path: Path,
    fake_api: FakeGoogleAdsApi,
    fake_server: LoopbackServer,
    grpc_channel_options: list[tuple[str, Any]],
) -> None:
    path = tmp_path / "google-ads.yaml"
    with connect_proxy() as proxy:
        path.write_text(
            "developer_token: dt-secret-1\n"
            "linked_customer_id: 444-555-6666\n"
            f"http_proxy: http://{proxy.host_port}\n"
        )
        settings = GoogleAdsSettings(
            customer_ids=[CUSTOMER], credentials_file=path, endpoint=fake_server.target
        )
        # Explicit credentials are never refreshed: no login to mind here.
        oauth = Credentials(token="offline-access-token")  # type: ignore[no-untyped-call]
        session = open_session(settings, credentials=oauth, environ={})
        read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    assert session.client.linked_customer_id == "4445556666"
    calls = fake_api.calls("SearchStream")
    assert calls
    assert {c.metadata.get("linked-customer-id") for c in calls} == {"4445556666"}
    assert proxy.tunnels == [fake_server.target]


def test_linked_customer_id_and_http_proxy_from_the_environment_stay_secret() -> None:
    environ = {
        **SECRETS,
        "GOOGLE_ADS_LINKED_CUSTOMER_ID": "4445556666",
        "GOOGLE_ADS_HTTP_PROXY": "http://ads:px-secret-4@proxy.example:3128",
    }

    credentials = load_credentials(GoogleAdsSettings(customer_ids=[CUSTOMER]), environ)

    assert credentials.linked_customer_id == "4445556666"
    assert credentials.http_proxy is not None
    assert credentials.http_proxy.get_secret_value() == environ["GOOGLE_ADS_HTTP_PROXY"]
    assert "px-secret-4" in credentials.secrets()
    assert "px-secret-4" not in repr(credentials) + str(credentials)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GOOGLE_ADS_LINKED_CUSTOMER_ID", "444-555", "expected 10 digits"),
        ("GOOGLE_ADS_HTTP_PROXY", "socks5://u:px-secret-4@h:1080", "http only"),
    ],
)
def test_a_bad_linked_customer_id_or_http_proxy_names_the_variable(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(GoogleAdsConfigError) as raised:
        load_credentials(
            GoogleAdsSettings(customer_ids=[CUSTOMER]), {**SECRETS, variable: value}
        )

    message = str(raised.value)
    assert f"in the environment are invalid: {variable}: " in message
    assert expected in message
    assert not any(secret in message for secret in [*SECRETS.values(), "px-secret-4"])


def test_clients_built_every_run_add_the_proxy_once_and_refuse_another(
    tmp_path: Path,
    fake_server: LoopbackServer,
    grpc_channel_options: list[tuple[str, Any]],
) -> None:
    def session_through(proxy: str) -> None:
        path = tmp_path / "google-ads.yaml"
        path.write_text(f"developer_token: dt-secret-1\nhttp_proxy: {proxy}\n")
        settings = GoogleAdsSettings(
            customer_ids=[CUSTOMER], credentials_file=path, endpoint=fake_server.target
        )
        oauth = Credentials(token="offline-access-token")  # type: ignore[no-untyped-call]
        open_session(settings, credentials=oauth, environ={})

    for _ in range(3):
        session_through("http://ads:px-secret-4@127.0.0.1:3128")
    proxies = [value for key, value in grpc_channel_options if key == "grpc.http_proxy"]
    assert proxies == ["http://ads:px-secret-4@127.0.0.1:3128"]

    with pytest.raises(GoogleAdsConfigError, match="one proxy per process") as raised:
        session_through("http://127.0.0.1:3129")
    assert "px-secret-4" not in str(raised.value)
    assert str(tmp_path / "google-ads.yaml") in str(raised.value)


def test_an_unreadable_relative_credentials_file_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = GoogleAdsSettings(
        customer_ids=[CUSTOMER], credentials_file=Path("google-ads.yaml")
    )

    with pytest.raises(GoogleAdsConfigError) as raised:
        load_credentials(relative, {})

    assert str(raised.value) == (
        "cannot read Google Ads credentials file google-ads.yaml (resolved to "
        f"{tmp_path.absolute() / 'google-ads.yaml'}): No such file or directory"
    )
