"""Fake Google APIs on loopback, the real clients aimed at them, a ledger, users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from google.ads import datamanager_v1 as dm
from google.ads.googleads.client import GoogleAdsClient
from google.oauth2.credentials import Credentials

from connectors.value_feed import FeedSettings, Ledger
from connectors.value_feed.conversion_upload import ConversionUploadSink
from connectors.value_feed.data_manager import DataManagerSink
from tests.fakes.conversion_upload_server import FakeConversionUpload
from tests.fakes.datamanager_server import FakeDataManager
from tests.fakes.grpc_tls import LoopbackServer, TlsIdentity, start_tls_server

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
CUSTOMER = "1234567890"
ACTION = "987654"
#: The developer token the upload sink sends.
DEVELOPER_TOKEN = "dev-token-not-a-real-one"


def make_users(specs: list[dict[str, object]]) -> pd.DataFrame:
    """A users table: each spec gives user_id and ages in hours, plus any column."""
    rows = []
    for spec in specs:
        age = float(spec.get("signup_hours_ago", 48))  # type: ignore[arg-type]
        activated = spec.get("activated_hours_ago", age - 1)
        row = {
            "user_id": spec["user_id"],
            "signup_at": NOW - dt.timedelta(hours=age),
            "activated_at": NOW - dt.timedelta(hours=float(activated)),  # type: ignore[arg-type]
            "country": spec.get("country", "FR"),
            "gclid": spec.get("gclid", f"gclid-{spec['user_id']}"),
        }
        row.update({k: v for k, v in spec.items() if k not in row and "ago" not in k})
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("signup_at", "activated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.dispose()


@pytest.fixture
def feed_settings() -> FeedSettings:
    return FeedSettings(
        sink="conversion_upload",
        customer_id=CUSTOMER,
        conversion_action_id=ACTION,
        identifiers=("gclid", "email", "phone"),
        cap_percentile=None,
        batch_size=3,
    )


@pytest.fixture
def upload_api() -> FakeConversionUpload:
    return FakeConversionUpload(now=NOW)


@pytest.fixture
def upload_server(
    upload_api: FakeConversionUpload, tls_identity: TlsIdentity
) -> Iterator[LoopbackServer]:
    server = start_tls_server(upload_api.handlers(), tls_identity)
    yield server
    server.stop()


@pytest.fixture
def upload_sink(upload_server: LoopbackServer) -> ConversionUploadSink:
    # Explicit credentials are never refreshed, so nothing leaves loopback.
    client = GoogleAdsClient(
        credentials=Credentials(token="offline-access-token"),
        developer_token=DEVELOPER_TOKEN,
        endpoint=upload_server.target,
        use_proto_plus=True,
        version="v26",
    )
    return ConversionUploadSink(client, CUSTOMER, ACTION)


@pytest.fixture
def dm_api() -> FakeDataManager:
    return FakeDataManager()


@pytest.fixture
def dm_server(
    dm_api: FakeDataManager, tls_identity: TlsIdentity
) -> Iterator[LoopbackServer]:
    server = start_tls_server(dm_api.handlers(), tls_identity)
    yield server
    server.stop()


@pytest.fixture
def dm_sink(dm_server: LoopbackServer) -> Iterator[DataManagerSink]:
    client = dm.IngestionServiceClient(
        credentials=Credentials(token="offline-access-token"),
        client_options={"api_endpoint": dm_server.target},
    )
    yield DataManagerSink(client, CUSTOMER, ACTION)
    client.transport.close()
