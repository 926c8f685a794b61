"""Campaigns to markets: configured ids, then names, then geo targets read."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from connectors.google_ads import (
    CampaignMarketRule,
    GoogleAdsSession,
    assign_markets,
    read_campaign_countries,
)
from tests.connectors.google_ads.conftest import CUSTOMER
from tests.fakes.google_ads import FakeGoogleAdsApi

RULES = {
    "FR": CampaignMarketRule(campaign_ids=["11"]),
    "DE": CampaignMarketRule(name_pattern=r"^DE \|"),
    "DACH": CampaignMarketRule(countries=["AT", "CH"]),
    "US": CampaignMarketRule(),
}


def _campaigns(*rows: tuple[int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(CUSTOMER, str(i), name) for i, name in rows],
        columns=["customer_id", "campaign_id", "campaign_name"],
    )


def test_ids_then_names_then_locations(
    fake_api: FakeGoogleAdsApi,
    session: GoogleAdsSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_api.geo_targets.update({2040: "AT", 2756: "CH"})
    fake_api.add_campaign(CUSTOMER, 11, "DE | but listed for FR", geo_target_ids=[2276])
    fake_api.add_campaign(CUSTOMER, 12, "DE | brand")
    fake_api.add_campaign(CUSTOMER, 13, "generic us", geo_target_ids=[2840])
    fake_api.add_campaign(CUSTOMER, 14, "alps", geo_target_ids=[2040, 2756])
    fake_api.add_campaign(CUSTOMER, 15, "everywhere", geo_target_ids=[2840, 2250])
    fake_api.add_campaign(CUSTOMER, 16, "no targeting")
    campaigns = _campaigns(
        (11, "DE | but listed for FR"),
        (12, "DE | brand"),
        (13, "generic us"),
        (13, "generic us"),
        (14, "alps"),
        (15, "everywhere"),
        (16, "no targeting"),
    )

    with caplog.at_level(logging.WARNING):
        markets = assign_markets(session, campaigns, RULES)

    got = {
        row.campaign_id: (
            None if pd.isna(row.market) else row.market,
            row.market_source,
        )
        for row in markets.itertuples(index=False)
    }
    assert got == {
        "11": ("FR", "campaign_ids"),
        "12": ("DE", "name_pattern"),
        "13": ("US", "location"),
        "14": ("DACH", "location"),
        "15": (None, "unmapped"),
        "16": (None, "unmapped"),
    }
    assert len(caplog.records) == 2
    queries = [c.query for c in fake_api.calls("SearchStream")]
    assert len(queries) == 2
    assert "IN (13, 14, 15, 16)" in queries[0]


def test_no_api_call_when_config_maps_everything(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    markets = assign_markets(session, _campaigns((11, "x"), (12, "DE | y")), RULES)

    assert markets["market"].tolist() == ["FR", "DE"]
    assert fake_api.requests == []


def test_countries_of_a_region_come_from_its_geo_target(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    # A region criterion: its country code is what maps it to a market.
    fake_api.geo_targets[9_000_001] = "FR"
    fake_api.add_campaign(CUSTOMER, 21, "paris", geo_target_ids=[9_000_001])

    assert read_campaign_countries(session, CUSTOMER, ["21"]) == {
        "21": frozenset({"FR"})
    }
