"""The daily cycle reading stats from, and applying to, a Google Ads account.

The real google-ads client talks TLS gRPC to the fake API on 127.0.0.1; the
users and revenue are the CDNOW replay of the demo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from google.oauth2.credentials import Credentials

from config import ConfigError, load_settings
from config.schema import Settings
from connectors.google_ads import GoogleAdsSession, open_session
from optimizer.cycle import run_cycle
from optimizer.demo import build_demo
from optimizer.policy import HOLD
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import TlsIdentity, start_tls_server

CUSTOMER = "1234567890"
RUN_DATE = dt.date(2026, 12, 4)
CHANNELS = {"Search": "SEARCH", "Display": "DISPLAY", "YouTube": "VIDEO"}


def _load_account(api: FakeGoogleAdsApi, stats: pd.DataFrame) -> None:
    api.add_customer(CUSTOMER, currency_code="USD")
    for campaign in stats.drop_duplicates("campaign_id").itertuples():
        api.add_campaign(
            CUSTOMER,
            int(campaign.campaign_id),
            str(campaign.campaign_name),
            target_cpa_micros=int(float(campaign.target_cpa) * 1_000_000),
            channel=CHANNELS[str(campaign.campaign_name).split(" | ")[1]],
        )
    for day in stats.itertuples():
        api.add_stats(
            CUSTOMER,
            int(day.campaign_id),
            dt.date.fromisoformat(str(day.date)),
            cost_micros=round(float(day.cost) * 1_000_000),
            conversions=float(day.conversions),
            conversions_value=float(day.conversion_value),
        )


@pytest.fixture
def account(
    tmp_path: Path, tls_identity: TlsIdentity
) -> Iterator[tuple[Settings, FakeGoogleAdsApi, GoogleAdsSession]]:
    files = build_demo(tmp_path, RUN_DATE)
    stats = pd.read_csv(tmp_path / "data" / "campaign_stats.csv", dtype=str)
    api = FakeGoogleAdsApi()
    _load_account(api, stats)
    server = start_tls_server(api.handlers(), tls_identity)

    config = yaml.safe_load(files.config.read_text())
    del config["data"]["campaign_stats"]
    config["google_ads"] = {"customer_ids": [CUSTOMER], "endpoint": server.target}
    config["operations"] = {"apply_mode": "auto"}
    files.config.write_text(yaml.safe_dump(config))
    google_ads = load_settings(files.config).google_ads
    assert google_ads is not None
    session = open_session(
        google_ads,
        credentials=Credentials(token="offline-access-token"),
        environ={"GOOGLE_ADS_DEVELOPER_TOKEN": "dev-token-not-a-real-one"},
        sleep=lambda seconds: None,
    )
    yield load_settings(files.config), api, session
    server.stop()


@pytest.mark.slow
def test_cycle_reads_the_account_and_applies_its_plan_once(
    account: tuple[Settings, FakeGoogleAdsApi, GoogleAdsSession],
) -> None:
    settings, api, session = account

    result = run_cycle(settings, run_date=RUN_DATE, apply=True, google_ads=session)

    stats_queries = [
        call for call in api.calls("SearchStream") if "segments.date" in call.query
    ]
    assert stats_queries, "stats should come from the API"
    assert result.run.inputs["rows"]["campaign_stats"] > 0
    moved = {r.campaign_id: r for r in result.rows if r.new_troas is not None}
    held = {r.campaign_id for r in result.rows if r.action == HOLD}
    assert moved and "1005" in held
    for campaign_id, row in moved.items():
        campaign = api.campaign(CUSTOMER, int(campaign_id))
        assert campaign.maximize_conversion_value.target_roas == pytest.approx(
            row.new_troas
        )
    untouched = api.campaign(CUSTOMER, 1005)
    assert untouched.target_cpa.target_cpa_micros == 45_000_000
    mutates = api.calls("MutateCampaigns")
    assert mutates[0].validate_only
    assert any(not call.validate_only for call in mutates)

    again = run_cycle(settings, run_date=RUN_DATE, apply=True, google_ads=session)
    assert again.run.run_id == result.run.run_id
    assert len(api.calls("MutateCampaigns")) == len(mutates)


def test_stats_need_a_file_or_an_account(tmp_path: Path) -> None:
    files = build_demo(tmp_path, RUN_DATE)
    config = yaml.safe_load(files.config.read_text())
    del config["data"]["campaign_stats"]
    files.config.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="no google_ads section"):
        load_settings(files.config)
