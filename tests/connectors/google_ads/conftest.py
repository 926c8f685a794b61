"""A fake Google Ads API per test, and a session of the real client aimed at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from google.oauth2.credentials import Credentials

from connectors.google_ads import GoogleAdsSession, GoogleAdsSettings, open_session
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import LoopbackServer, TlsIdentity, start_tls_server

CUSTOMER = "1234567890"
DEVELOPER_TOKEN = "dev-token-not-a-real-one"


@pytest.fixture
def fake_api() -> FakeGoogleAdsApi:
    api = FakeGoogleAdsApi()
    api.add_customer(CUSTOMER, currency_code="EUR")
    return api


@pytest.fixture
def fake_server(
    fake_api: FakeGoogleAdsApi, tls_identity: TlsIdentity
) -> Iterator[LoopbackServer]:
    server = start_tls_server(fake_api.handlers(), tls_identity)
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def settings(fake_server: LoopbackServer) -> GoogleAdsSettings:
    return GoogleAdsSettings(customer_ids=[CUSTOMER], endpoint=fake_server.target)


@pytest.fixture
def env() -> dict[str, str]:
    return {"GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN}


@pytest.fixture
def session(
    settings: GoogleAdsSettings, env: dict[str, str], sleeps: list[float]
) -> GoogleAdsSession:
    # Explicit credentials: they are never refreshed, so nothing leaves loopback.
    return open_session(
        settings,
        credentials=Credentials(token="offline-access-token"),
        environ=env,
        sleep=sleeps.append,
    )


DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(3)]
