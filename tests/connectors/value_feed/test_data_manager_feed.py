"""The feed through the real google-ads-datamanager client against a fake API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import pytest
import sqlalchemy as sa
from google.ads import datamanager_v1 as dm

from connectors.value_feed import (
    ConversionEvent,
    FeedSettings,
    Ledger,
    RowResult,
    run_feed,
    transaction_id,
)
from connectors.value_feed.data_manager import DataManagerSink
from connectors.value_feed.ledger import feed_sends
from tests.connectors.value_feed.conftest import ACTION, CUSTOMER, NOW, make_users
from tests.connectors.value_feed.test_identifiers import JANEDOE_GMAIL, US_PHONE
from tests.fakes.datamanager_server import FakeDataManager


def run(users, values, settings, ledger, sink, now=NOW):  # type: ignore[no-untyped-def]
    return run_feed(
        users,
        pd.Series(values, dtype=float),
        settings=settings.model_copy(update={"sink": "data_manager"}),
        account="acme",
        currency="USD",
        ledger=ledger,
        sink=sink,
        now=now,
        send=True,
    )


def test_first_run_ingests_every_activation_once_with_value_and_ids(
    dm_api: FakeDataManager,
    dm_sink: DataManagerSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users(
        [
            {
                "user_id": "u1",
                "country": "US",
                "email": "jane.doe@gmail.com",
                "phone": "(800) 555-0100",
                "ad_user_data_consent": "granted",
                "ad_personalization_consent": "GRANTED",
            },
            *({"user_id": f"u{i}"} for i in range(2, 6)),
        ]
    )
    values = {f"u{i}": float(i) for i in range(1, 6)}

    report = run(users, values, feed_settings, ledger, dm_sink)

    assert dm_api.request_sizes == [3, 2]
    assert len(dm_api.events) == 5
    event = dm_api.events[transaction_id("acme", ACTION, "u1")]
    assert event.conversion_value == 1.0
    assert event.currency == "USD"
    assert event.ad_identifiers.gclid == "gclid-u1"
    assert event.event_timestamp == NOW - dt.timedelta(hours=47)
    identifiers = event.user_data.user_identifiers
    assert [i.email_address for i in identifiers if i.email_address] == [JANEDOE_GMAIL]
    assert [i.phone_number for i in identifiers if i.phone_number] == [US_PHONE]
    assert event.consent.ad_user_data == dm.ConsentStatus.CONSENT_GRANTED
    destination = dm_api.destinations[0]
    assert destination.operating_account.account_id == CUSTOMER
    assert destination.product_destination_id == ACTION
    assert dm_api.authorization[0] == "Bearer offline-access-token"
    assert report.counts["initial_sent"] == 5

    again = run(users, values, feed_settings, ledger, dm_sink)
    assert not again.planned
    assert dm_api.request_sizes == [3, 2]


def test_lost_response_is_retried_under_the_same_ids_and_google_drops_repeats(
    dm_api: FakeDataManager,
    dm_sink: DataManagerSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": f"u{i}"} for i in range(7)])
    values = {f"u{i}": 1.0 for i in range(7)}
    dm_api.lose_response_of = {2}

    # The generated client retries UNAVAILABLE by itself: the same batch again.
    report = run(users, values, feed_settings, ledger, dm_sink)

    assert dm_api.request_sizes == [3, 3, 3, 1]
    assert len(dm_api.events) == 7
    assert report.counts["initial_sent"] == 7
    assert dm_sink.request_errors(request_id_of(ledger, "u3")) == {
        "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID": 3
    }


class _DiesAfterUpload:
    name = "data_manager"
    supports_restatement = False

    def __init__(self, sink: DataManagerSink) -> None:
        self.sink = sink

    def login(self) -> None:
        self.sink.login()

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        self.sink.upload(events)
        raise SystemExit("killed")


def test_run_killed_after_a_batch_resumes_without_duplicates(
    dm_api: FakeDataManager,
    dm_sink: DataManagerSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": f"u{i}"} for i in range(5)])
    values = {f"u{i}": 2.0 for i in range(5)}
    with pytest.raises(SystemExit):
        run(users, values, feed_settings, ledger, _DiesAfterUpload(dm_sink))
    assert len(dm_api.events) == 3

    later = NOW + dt.timedelta(minutes=feed_settings.claim_lease_minutes + 1)
    resumed = run(users, values, feed_settings, ledger, dm_sink, now=later)

    assert resumed.counts["due_retry"] == 3
    assert resumed.counts["due_first"] == 2
    assert len(dm_api.events) == 5
    assert dm_sink.request_errors(request_id_of(ledger, "u0")) == {
        "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID": 3
    }
    assert not run(users, values, feed_settings, ledger, dm_sink, now=later).planned


def request_id_of(ledger: Ledger, user_id: str) -> str:
    """The id of the request that last carried this user's conversion."""
    with ledger.engine.connect() as connection:
        found = connection.execute(
            sa.select(feed_sends.c.request_id).where(
                feed_sends.c.transaction_id == transaction_id("acme", ACTION, user_id)
            )
        ).scalar_one()
    return str(found)


def test_restatements_are_counted_not_sent(
    dm_api: FakeDataManager,
    dm_sink: DataManagerSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": "u1"}])
    run(users, {"u1": 10.0}, feed_settings, ledger, dm_sink)

    report = run(users, {"u1": 50.0}, feed_settings, ledger, dm_sink)

    assert report.counts["restatement_unsupported"] == 1
    assert dm_api.request_sizes == [1]
