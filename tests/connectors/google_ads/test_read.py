"""Reading campaign stats through the real client from the fake API."""

from __future__ import annotations

import datetime as dt
import math

import grpc
import pandas as pd
import pytest
from google.oauth2.credentials import Credentials

from connectors.contracts import CAMPAIGN_STATS, enforce
from connectors.exceptions import (
    GoogleAdsConfigError,
    GoogleAdsError,
    GoogleAdsTransientError,
)
from connectors.google_ads import (
    CAMPAIGN_STATS_COLUMNS,
    GoogleAdsSession,
    GoogleAdsSettings,
    is_learning,
    open_session,
    read_campaign_stats,
)
from tests.connectors.google_ads.conftest import CUSTOMER, DAYS
from tests.fakes.google_ads import FakeGoogleAdsApi

OTHER = "2223334444"


def _populate(api: FakeGoogleAdsApi) -> None:
    api.add_customer(OTHER, currency_code="USD")
    api.add_portfolio(
        CUSTOMER, 900, "value portfolio", strategy="TARGET_ROAS", target_roas=3.2
    )
    api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=45_500_000)
    api.add_campaign(
        CUSTOMER,
        12,
        "FR | pmax",
        strategy="MAXIMIZE_CONVERSION_VALUE",
        target_roas=2.5,
        channel="PERFORMANCE_MAX",
        system_status="LEARNING_SETTING_CHANGE",
    )
    api.add_campaign(CUSTOMER, 13, "DE | search", portfolio_id=900, status="PAUSED")
    api.add_campaign(OTHER, 21, "US | search", strategy="MAXIMIZE_CONVERSIONS")
    for offset, day in enumerate(DAYS):
        for customer, campaign in ((CUSTOMER, 11), (CUSTOMER, 12), (CUSTOMER, 13)):
            api.add_stats(
                customer,
                campaign,
                day,
                cost_micros=(10 + offset) * 1_000_000 + 250_000,
                conversions=2.5 + offset,
                conversions_value=120.0 * (offset + 1),
            )
        api.add_stats(
            OTHER, 21, day, cost_micros=7_000_000, conversions=1, conversions_value=0
        )
    # Outside the range: must not be read.
    api.add_stats(
        CUSTOMER,
        11,
        dt.date(2026, 10, 31),
        cost_micros=1,
        conversions=1,
        conversions_value=1,
    )


def test_reads_every_campaign_and_day_with_targets_and_money(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    _populate(fake_api)

    stats = read_campaign_stats(session, [CUSTOMER, OTHER], DAYS[0], DAYS[-1])

    assert tuple(stats.columns) == CAMPAIGN_STATS_COLUMNS
    assert len(stats) == 4 * len(DAYS)
    assert set(stats["date"].dt.date) == set(DAYS)
    by_campaign = stats.groupby("campaign_id")
    assert by_campaign.size().to_dict() == {"11": 3, "12": 3, "13": 3, "21": 3}

    first = stats[(stats["campaign_id"] == "11")].iloc[0]
    assert first["date"] == pd.Timestamp(DAYS[0])
    assert first["cost"] == pytest.approx(10.25)
    assert first["conversions"] == pytest.approx(2.5)
    assert first["conversion_value"] == pytest.approx(120.0)
    assert first["bidding_strategy_type"] == "TARGET_CPA"
    assert first["target_cpa"] == pytest.approx(45.5)
    assert math.isnan(first["target_roas"])
    assert first["currency"] == "EUR"
    assert first["customer_id"] == CUSTOMER
    assert first["campaign_status"] == "ENABLED"
    assert first["advertising_channel_type"] == "SEARCH"
    assert first["portfolio_strategy"] == ""

    pmax = stats[stats["campaign_id"] == "12"].iloc[0]
    assert pmax["bidding_strategy_type"] == "MAXIMIZE_CONVERSION_VALUE"
    assert pmax["target_roas"] == pytest.approx(2.5)
    assert pmax["advertising_channel_type"] == "PERFORMANCE_MAX"
    assert is_learning(pmax["bidding_strategy_status"])

    portfolio = stats[stats["campaign_id"] == "13"].iloc[0]
    assert (
        portfolio["portfolio_strategy"] == f"customers/{CUSTOMER}/biddingStrategies/900"
    )
    assert portfolio["bidding_strategy_type"] == "TARGET_ROAS"
    assert portfolio["target_roas"] == pytest.approx(3.2)
    assert portfolio["campaign_status"] == "PAUSED"

    us = stats[stats["campaign_id"] == "21"].iloc[0]
    assert us["currency"] == "USD"
    assert us["bidding_strategy_type"] == "MAXIMIZE_CONVERSIONS"
    assert math.isnan(us["target_cpa"])
    assert not is_learning(us["bidding_strategy_status"])


def test_query_asks_for_a_finite_date_range(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    _populate(fake_api)

    read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[1])

    (call,) = fake_api.calls("SearchStream")[:1]
    assert "BETWEEN '2026-11-01' AND '2026-11-02'" in call.query
    assert call.metadata["developer-token"] == "dev-token-not-a-real-one"


def test_empty_range_gives_the_columns_and_no_rows(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    stats = read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    assert stats.empty
    assert tuple(stats.columns) == CAMPAIGN_STATS_COLUMNS


@pytest.mark.parametrize("bad", ["123456789", "12345678901", "123-456-789a", ""])
def test_malformed_customer_id_fails_before_any_request(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, bad: str
) -> None:
    with pytest.raises(GoogleAdsConfigError, match=repr(bad)):
        read_campaign_stats(session, [CUSTOMER, bad], DAYS[0], DAYS[-1])

    assert fake_api.requests == []


def test_dashed_customer_id_is_accepted(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    _populate(fake_api)

    stats = read_campaign_stats(session, ["123-456-7890"], DAYS[0], DAYS[-1])

    assert set(stats["customer_id"]) == {CUSTOMER}


def test_transient_errors_are_retried_with_backoff(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, sleeps: list[float]
) -> None:
    _populate(fake_api)
    fake_api.fail_next(1, grpc.StatusCode.UNAVAILABLE)
    fake_api.fail_next(1, grpc.StatusCode.DEADLINE_EXCEEDED)
    fake_api.fail_next(1, grpc.StatusCode.RESOURCE_EXHAUSTED)

    stats = read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    assert len(stats) == 9
    assert sleeps == [1.0, 2.0, 4.0]
    failed = [c.failed_with for c in fake_api.calls("SearchStream")]
    assert failed[:4] == [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        None,
    ]


def test_retries_are_bounded(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, sleeps: list[float]
) -> None:
    fake_api.fail_next(50, grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(GoogleAdsTransientError, match="UNAVAILABLE") as raised:
        read_campaign_stats(session, [CUSTOMER], DAYS[0], DAYS[-1])

    assert len(fake_api.calls("SearchStream")) == 5
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert raised.value.__cause__ is not None


def test_permanent_error_is_not_retried_and_keeps_the_request_id(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, sleeps: list[float]
) -> None:
    with pytest.raises(GoogleAdsError) as raised:
        read_campaign_stats(session, ["9998887777"], DAYS[0], DAYS[-1])

    error = raised.value
    assert not isinstance(error, GoogleAdsTransientError)
    assert error.status == "PERMISSION_DENIED"
    assert error.request_id == fake_api.requests[0].request_id
    assert error.errors[0].code == "authorization_error.USER_PERMISSION_DENIED"
    assert error.request_id in str(error)
    assert type(error.__cause__).__name__ == "GoogleAdsException"
    assert len(fake_api.requests) == 1
    assert sleeps == []


def test_client_account_behind_a_manager_needs_the_login_customer_id(
    fake_api: FakeGoogleAdsApi,
    settings: GoogleAdsSettings,
    env: dict[str, str],
    session: GoogleAdsSession,
) -> None:
    fake_api.add_customer("5556667777", manager_id="1112223333")
    fake_api.add_campaign("5556667777", 31, "ES | search")
    fake_api.add_stats(
        "5556667777",
        31,
        DAYS[0],
        cost_micros=1_000_000,
        conversions=1,
        conversions_value=10,
    )
    with pytest.raises(GoogleAdsError, match="PERMISSION_DENIED"):
        read_campaign_stats(session, ["5556667777"], DAYS[0], DAYS[0])

    managed = open_session(
        GoogleAdsSettings(
            customer_ids=settings.customer_ids,
            login_customer_id="111-222-3333",
            endpoint=settings.endpoint,
        ),
        credentials=Credentials(token="offline-access-token"),
        environ=env,
    )
    stats = read_campaign_stats(managed, ["5556667777"], DAYS[0], DAYS[0])

    assert stats["campaign_id"].tolist() == ["31"]
    assert fake_api.requests[-1].metadata["login-customer-id"] == "1112223333"


def test_a_bare_client_is_accepted(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    _populate(fake_api)

    stats = read_campaign_stats(session.client, [CUSTOMER], DAYS[0], DAYS[0])

    assert len(stats) == 3


def test_api_stats_meet_the_campaign_stats_contract(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    _populate(fake_api)
    stats = read_campaign_stats(session, [CUSTOMER, OTHER], DAYS[0], DAYS[-1])

    checked = enforce(stats, CAMPAIGN_STATS, "Google Ads API")

    assert len(checked) == len(stats)
