"""The fake's own rules, checked through the real client with raw requests.

valuebid never sends these requests; they show the fake would refuse them as
the real API does, so the connector tests can rely on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.ads.googleads.client import GoogleAdsClient
from google.ads.googleads.errors import GoogleAdsException
from google.oauth2.credentials import Credentials

from connectors.google_ads.read import enum_name
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import TlsIdentity, start_tls_server

CUSTOMER = "1234567890"


@pytest.fixture
def api() -> FakeGoogleAdsApi:
    fake = FakeGoogleAdsApi()
    fake.add_customer(CUSTOMER)
    for campaign_id in (1, 2):
        fake.add_campaign(CUSTOMER, campaign_id, f"c{campaign_id}")
    return fake


@pytest.fixture
def client(api: FakeGoogleAdsApi, tls_identity: TlsIdentity) -> Iterator[Any]:
    server = start_tls_server(api.handlers(), tls_identity)
    yield GoogleAdsClient(
        credentials=Credentials(token="t"),
        developer_token="d",
        endpoint=server.target,
        version="v26",
    )
    server.stop()


def _request(
    client: Any, updates: list[tuple[int, float, list[str]]], **flags: bool
) -> Any:
    request = client.get_type("MutateCampaignsRequest")
    request.customer_id = CUSTOMER
    for campaign_id, target, mask in updates:
        operation = request.operations.add()
        operation.update.resource_name = f"customers/{CUSTOMER}/campaigns/{campaign_id}"
        operation.update.maximize_conversion_value.target_roas = target
        operation.update_mask.paths.extend(mask)
    for name, value in flags.items():
        setattr(request, name, value)
    return request


def _codes(error: GoogleAdsException) -> list[str]:
    return [str(e.error_code).strip() for e in error.failure.errors]


MASK = ["maximize_conversion_value.target_roas"]


def test_update_mask_must_name_the_changed_field(client: Any) -> None:
    service = client.get_service("CampaignService")

    with pytest.raises(GoogleAdsException) as raised:
        service.mutate_campaigns(request=_request(client, [(1, 2.0, ["name"])]))

    assert "FIELD_MASK_MISSING" in _codes(raised.value)[0]
    assert raised.value.request_id.startswith("fake-")


def test_more_than_10000_operations_are_refused(client: Any) -> None:
    service = client.get_service("CampaignService")
    updates = [(1, 2.0, MASK)] * 10_001

    with pytest.raises(GoogleAdsException) as raised:
        service.mutate_campaigns(request=_request(client, updates))

    assert "TOO_MANY_MUTATE_OPERATIONS" in _codes(raised.value)[0]


def test_without_partial_failure_a_request_is_atomic(
    client: Any, api: FakeGoogleAdsApi
) -> None:
    service = client.get_service("CampaignService")

    with pytest.raises(GoogleAdsException) as raised:
        service.mutate_campaigns(
            request=_request(client, [(1, 2.0, MASK), (2, 0.001, MASK)])
        )

    assert "TOO_LOW" in _codes(raised.value)[0]
    assert api.campaign(CUSTOMER, 1).WhichOneof("campaign_bidding_strategy") == (
        "target_cpa"
    )


def test_validate_only_changes_nothing(client: Any, api: FakeGoogleAdsApi) -> None:
    service = client.get_service("CampaignService")
    before = api.campaign(CUSTOMER, 1)

    response = service.mutate_campaigns(
        request=_request(client, [(1, 2.0, MASK)], validate_only=True)
    )

    assert not response.results
    assert api.campaign(CUSTOMER, 1) == before


def test_unknown_gaql_field_is_refused(client: Any) -> None:
    service = client.get_service("GoogleAdsService")

    with pytest.raises(GoogleAdsException) as raised:
        service.search_stream(
            customer_id=CUSTOMER, query="SELECT campaign.nope FROM campaign"
        )

    assert "UNRECOGNIZED_FIELD" in _codes(raised.value)[0]


def test_segments_date_needs_a_date_range(client: Any) -> None:
    service = client.get_service("GoogleAdsService")

    with pytest.raises(GoogleAdsException) as raised:
        service.search_stream(
            customer_id=CUSTOMER, query="SELECT segments.date FROM campaign"
        )

    assert "EXPECTED_FILTERS_ON_DATE_RANGE" in _codes(raised.value)[0]


def _cpa_request(client: Any, micros: int, mask: list[str]) -> Any:
    request = client.get_type("MutateCampaignsRequest")
    request.customer_id = CUSTOMER
    operation = request.operations.add()
    operation.update.resource_name = f"customers/{CUSTOMER}/campaigns/1"
    operation.update.target_cpa.target_cpa_micros = micros
    operation.update_mask.paths.extend(mask)
    return request


CPA_MASK = ["target_cpa.target_cpa_micros"]


@pytest.mark.parametrize("micros", [0, -5_000_000])
def test_standard_target_cpa_must_be_positive(client: Any, micros: int) -> None:
    service = client.get_service("CampaignService")

    with pytest.raises(GoogleAdsException) as raised:
        service.mutate_campaigns(request=_cpa_request(client, micros, CPA_MASK))

    assert "TOO_LOW" in _codes(raised.value)[0]


def test_target_cpa_outside_the_mask_is_refused(client: Any) -> None:
    service = client.get_service("CampaignService")

    with pytest.raises(GoogleAdsException) as raised:
        service.mutate_campaigns(request=_cpa_request(client, 30_000_000, MASK))

    assert "FIELD_MASK_MISSING" in _codes(raised.value)[0]


def test_setting_target_cpa_replaces_the_value_scheme(
    client: Any, api: FakeGoogleAdsApi
) -> None:
    service = client.get_service("CampaignService")
    service.mutate_campaigns(request=_request(client, [(1, 2.0, MASK)]))

    service.mutate_campaigns(request=_cpa_request(client, 30_000_000, CPA_MASK))

    campaign = api.campaign(CUSTOMER, 1)
    assert campaign.WhichOneof("campaign_bidding_strategy") == "target_cpa"
    assert campaign.target_cpa.target_cpa_micros == 30_000_000
    assert not campaign.HasField("maximize_conversion_value")
    assert enum_name(campaign, "bidding_strategy_type") == "TARGET_CPA"
