"""The session's OAuth login: real credentials, loopback token endpoints only."""

from __future__ import annotations

import pytest

from connectors.exceptions import LoginError
from connectors.google_ads import (
    GoogleAdsSettings,
    TargetChange,
    apply_target_changes,
    open_session,
    read_campaign_stats,
)
from tests.connectors.google_ads.conftest import CUSTOMER, DAYS
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import LoopbackServer
from tests.fakes.token_endpoint import ACCESS_TOKEN, closed_token_uri, token_endpoint

SECRETS = {
    "GOOGLE_ADS_DEVELOPER_TOKEN": "dt-secret-1111",
    "GOOGLE_ADS_CLIENT_ID": "client-id.apps",
    "GOOGLE_ADS_CLIENT_SECRET": "cs-secret-2222",
    "GOOGLE_ADS_REFRESH_TOKEN": "rt-secret-3333",
}


def _settings(server: LoopbackServer, token_uri: str) -> GoogleAdsSettings:
    return GoogleAdsSettings(
        customer_ids=[CUSTOMER],
        endpoint=server.target,
        token_uri=token_uri,
        retry={"max_attempts": 3},
    )


def _assert_no_secret(text: str) -> None:
    for name in ("DEVELOPER_TOKEN", "CLIENT_SECRET", "REFRESH_TOKEN"):
        assert SECRETS[f"GOOGLE_ADS_{name}"] not in text


def test_the_login_goes_to_the_configured_token_endpoint_once(
    fake_api: FakeGoogleAdsApi, fake_server: LoopbackServer, sleeps: list[float]
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=45_000_000)
    with token_endpoint() as endpoint:
        session = open_session(
            _settings(fake_server, endpoint.url), environ=SECRETS, sleep=sleeps.append
        )
        read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])
        read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    assert [r["refresh_token"] for r in endpoint.requests] == ["rt-secret-3333"]
    calls = fake_api.calls("SearchStream")
    assert calls
    assert {c.metadata["authorization"] for c in calls} == {f"Bearer {ACCESS_TOKEN}"}


def test_an_unreachable_token_endpoint_is_retried_then_named(
    fake_api: FakeGoogleAdsApi, fake_server: LoopbackServer, sleeps: list[float]
) -> None:
    session = open_session(
        _settings(fake_server, closed_token_uri()), environ=SECRETS, sleep=sleeps.append
    )

    with pytest.raises(LoginError) as raised:
        read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    message = str(raised.value)
    assert message.startswith("login to the Google Ads API failed")
    assert "could not be reached (Connection refused)" in message
    assert "google_ads.token_uri" in message
    _assert_no_secret(message)
    assert sleeps == [1.0, 2.0]
    assert fake_api.requests == []


def test_refused_credentials_name_the_variables_to_check_and_are_not_retried(
    fake_api: FakeGoogleAdsApi, fake_server: LoopbackServer, sleeps: list[float]
) -> None:
    with token_endpoint(refuse=True) as endpoint:
        session = open_session(
            _settings(fake_server, endpoint.url), environ=SECRETS, sleep=sleeps.append
        )
        with pytest.raises(LoginError) as raised:
            read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    message = str(raised.value)
    assert "refused the credentials (invalid_grant" in message
    assert (
        "GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET and GOOGLE_ADS_REFRESH_TOKEN "
        "in the environment" in message
    )
    _assert_no_secret(message)
    assert len(endpoint.requests) == 1 and sleeps == []
    assert fake_api.requests == []


def test_a_failed_login_is_not_reported_as_rejected_changes(
    fake_api: FakeGoogleAdsApi, fake_server: LoopbackServer, sleeps: list[float]
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=45_000_000)
    session = open_session(
        _settings(fake_server, closed_token_uri()), environ=SECRETS, sleep=sleeps.append
    )
    change = TargetChange(CUSTOMER, "11", 3.0, "TARGET_CPA", None, "value-based")

    with pytest.raises(LoginError):
        apply_target_changes(session, [change])

    assert fake_api.requests == []
