"""Apply and rollback through the real Google Ads client and the fake API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.oauth2.credentials import Credentials

from config.schema import Settings
from connectors.exceptions import ConnectorError
from connectors.google_ads import GoogleAdsSettings, open_session
from optimizer.apply import (
    CampaignTarget,
    TargetUpdate,
    apply_run,
    approve_and_apply,
    rollback_run,
)
from optimizer.exceptions import ApplyStopped
from optimizer.google_ads_writer import GoogleAdsTargetWriter
from optimizer.state import RunRecord, StateStore
from tests.fakes.google_ads import FakeGoogleAdsApi
from tests.fakes.grpc_tls import LoopbackServer, TlsIdentity, start_tls_server
from tests.optimizer.conftest import (
    RUN_DATE,
    clock_at,
    make_settings,
    plan_row,
    record_plan,
)

CUSTOMER = "1234567890"
TODAY = clock_at(RUN_DATE)
#: The developer token the writer sends, and the one the config's
#: credentials file holds in the tests of masking.
DEVELOPER_TOKEN = "dev-token-not-a-real-one"


@pytest.fixture
def fake_api() -> FakeGoogleAdsApi:
    api = FakeGoogleAdsApi()
    api.add_customer(CUSTOMER, currency_code="EUR")
    api.add_campaign(CUSTOMER, 201, "FR | Search | tCPA", target_cpa_micros=41_000_000)
    api.add_campaign(
        CUSTOMER,
        202,
        "FR | Search | value",
        strategy="MAXIMIZE_CONVERSION_VALUE",
        target_roas=2.5,
    )
    portfolio = 77
    api.add_portfolio(
        CUSTOMER, portfolio, "FR shared", strategy="TARGET_ROAS", target_roas=3.1
    )
    api.add_campaign(CUSTOMER, 203, "FR | Display", portfolio_id=portfolio)
    return api


@pytest.fixture
def writer(
    fake_api: FakeGoogleAdsApi, tls_identity: TlsIdentity
) -> Iterator[GoogleAdsTargetWriter]:
    server: LoopbackServer = start_tls_server(fake_api.handlers(), tls_identity)
    session = open_session(
        GoogleAdsSettings(customer_ids=[CUSTOMER], endpoint=server.target),
        credentials=Credentials(token="offline-access-token"),
        environ={"GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN},
        sleep=lambda seconds: None,
    )
    yield GoogleAdsTargetWriter(session, [CUSTOMER])
    server.stop()


PLAN = [
    plan_row(
        "201", strategy="TARGET_CPA", target_cpa=41.0, action="migrate", new_troas=1.9
    ),
    plan_row(
        "202",
        strategy="MAXIMIZE_CONVERSION_VALUE",
        target_roas=2.5,
        new_troas=2.875,
        change_pct=15.0,
    ),
    plan_row("203", target_roas=3.1, action="lower", new_troas=2.9, change_pct=-6.5),
]


def test_reads_standard_and_portfolio_targets(writer: GoogleAdsTargetWriter) -> None:
    assert writer.read_targets(["201", "202", "203", "999"]) == {
        "201": CampaignTarget("201", "TARGET_CPA", None, 41.0),
        "202": CampaignTarget("202", "MAXIMIZE_CONVERSION_VALUE", 2.5, None),
        "203": CampaignTarget("203", "TARGET_ROAS", 3.1, None),
    }


def test_apply_once_then_roll_back_through_the_api(
    writer: GoogleAdsTargetWriter,
    fake_api: FakeGoogleAdsApi,
    store: StateStore,
    settings: Settings,
) -> None:
    run = record_plan(store, PLAN)

    def mutates() -> int:
        return len(fake_api.calls("MutateCampaigns")) + len(
            fake_api.calls("MutateBiddingStrategies")
        )

    first = apply_run(store, run.run_id, writer, settings, clock=TODAY)
    pushed_once = mutates()
    second = apply_run(store, run.run_id, writer, settings, clock=TODAY)

    assert sorted(first.applied) == ["201", "202", "203"]
    assert pushed_once > 0
    assert second.pushed == []
    assert mutates() == pushed_once
    assert writer.read_targets(["201", "202", "203"]) == {
        "201": CampaignTarget("201", "MAXIMIZE_CONVERSION_VALUE", 1.9, None),
        "202": CampaignTarget("202", "MAXIMIZE_CONVERSION_VALUE", 2.875, None),
        "203": CampaignTarget("203", "TARGET_ROAS", 2.9, None),
    }
    assert all(c.request_id for c in store.changes_of(run.run_id).values())

    undo = rollback_run(store, run.run_id, writer, settings, clock=TODAY)

    assert sorted(undo.applied) == ["201", "202", "203"]
    assert undo.rejected == {}
    assert undo.status == "applied"
    assert writer.read_targets(["201", "202", "203"]) == {
        "201": CampaignTarget("201", "TARGET_CPA", None, 41.0),
        "202": CampaignTarget("202", "MAXIMIZE_CONVERSION_VALUE", 2.5, None),
        "203": CampaignTarget("203", "TARGET_ROAS", 3.1, None),
    }
    restored = fake_api.campaign(CUSTOMER, 201)
    assert restored.WhichOneof("campaign_bidding_strategy") == "target_cpa"
    assert restored.target_cpa.target_cpa_micros == 41_000_000
    assert all(c.request_id for c in store.changes_of(undo.run_id).values())


def test_rollback_restores_the_exact_prior_target_cpa(
    writer: GoogleAdsTargetWriter,
    fake_api: FakeGoogleAdsApi,
    store: StateStore,
    settings: Settings,
) -> None:
    # A target no float round trip of a whole-currency value would hit.
    fake_api.add_campaign(CUSTOMER, 204, "FR | odd", target_cpa_micros=37_654_321)
    plan = [
        plan_row(
            "204",
            strategy="TARGET_CPA",
            target_cpa=37.654321,
            action="migrate",
            new_troas=2.2,
        )
    ]
    run = record_plan(store, plan)
    applied = apply_run(store, run.run_id, writer, settings, clock=TODAY)
    assert applied.applied == ["204"]
    assert writer.read_targets(["204"])["204"].strategy == "MAXIMIZE_CONVERSION_VALUE"

    undo = rollback_run(store, run.run_id, writer, settings, clock=TODAY)

    assert undo.applied == ["204"]
    campaign = fake_api.campaign(CUSTOMER, 204)
    assert campaign.WhichOneof("campaign_bidding_strategy") == "target_cpa"
    assert campaign.target_cpa.target_cpa_micros == 37_654_321
    assert writer.read_targets(["204"]) == {
        "204": CampaignTarget("204", "TARGET_CPA", None, 37.654321)
    }
    validate, push = fake_api.calls("MutateCampaigns")[-2:]
    assert (validate.validate_only, push.validate_only) == (True, False)
    assert store.changes_of(undo.run_id)["204"].request_id == push.request_id


def test_target_cpa_on_a_portfolio_campaign_is_refused_unsent(
    writer: GoogleAdsTargetWriter, fake_api: FakeGoogleAdsApi
) -> None:
    writer.read_targets(["203"])
    wanted = CampaignTarget("203", "TARGET_CPA", None, 30.0)

    (outcome,) = writer.apply([TargetUpdate(wanted, "test")])

    assert outcome.status == "rejected"
    assert outcome.error and "portfolio strategy" in outcome.error
    assert fake_api.calls("MutateCampaigns") == []
    assert fake_api.portfolio(CUSTOMER, 77).target_roas.target_roas == 3.1


class _Alerts:
    """An alert sink keeping what it is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str) -> None:
        self.sent.append(text)


def _with_credentials(tmp_path: Path, db_url: str) -> Settings:
    """Settings whose Google Ads credentials file holds the writer's token."""
    path = tmp_path / "google-ads.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "developer_token": DEVELOPER_TOKEN,
                "client_id": "client-id.apps.example",
                "client_secret": "client-secret-not-real",
                "refresh_token": "refresh-token-not-real",
            }
        ),
        encoding="utf-8",
    )
    return make_settings(
        tmp_path,
        db_url,
        google_ads={"customer_ids": [CUSTOMER], "credentials_file": str(path)},
    )


def _apply_lines(caplog: pytest.LogCaptureFixture) -> str:
    """What the apply itself logged (a library's lines are masked elsewhere)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if r.name == "optimizer.apply"
    )


def _stored(store: StateStore, run: RunRecord) -> RunRecord:
    record = store.get_run(run.run_id)
    assert record is not None
    return record


def test_a_rejection_quoting_the_developer_token_is_stored_masked(
    writer: GoogleAdsTargetWriter,
    fake_api: FakeGoogleAdsApi,
    store: StateStore,
    tmp_path: Path,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _with_credentials(tmp_path, db_url)
    fake_api.refuse_updates_of = {202}
    run = record_plan(store, PLAN)
    alerts = _Alerts()

    report = apply_run(store, run.run_id, writer, settings, alerts=alerts, clock=TODAY)

    assert sorted(report.applied) == ["201", "203"]
    detail = store.changes_of(run.run_id)["202"].detail
    assert detail is not None
    assert "The developer token *** may not change this resource" in detail
    reason = _stored(store, run).stop_reason
    assert reason is not None and "202 rejected: The developer token ***" in reason
    [alert] = alerts.sent
    for shown in (
        detail,
        report.rejected["202"],
        reason,
        alert,
        _apply_lines(caplog),
    ):
        assert DEVELOPER_TOKEN not in shown
        assert "***" in shown


def test_a_failed_read_quoting_the_developer_token_is_stored_masked(
    writer: GoogleAdsTargetWriter,
    fake_api: FakeGoogleAdsApi,
    store: StateStore,
    tmp_path: Path,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _with_credentials(tmp_path, db_url)
    fake_api.refuse_developer_token = True
    run = record_plan(store, PLAN)
    alerts = _Alerts()

    with pytest.raises(ConnectorError):
        apply_run(store, run.run_id, writer, settings, alerts=alerts, clock=TODAY)

    record = _stored(store, run)
    assert record.status == "failed"
    reason = record.stop_reason
    assert reason is not None
    assert reason.startswith("reading the current targets failed: ")
    assert "The developer token *** is only approved" in reason
    [alert] = alerts.sent
    for shown in (reason, alert, _apply_lines(caplog)):
        assert DEVELOPER_TOKEN not in shown
        assert "***" in shown


def test_a_stop_reason_quoting_a_secret_is_stored_and_raised_masked(
    writer: GoogleAdsTargetWriter,
    store: StateStore,
    tmp_path: Path,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _with_credentials(tmp_path, db_url)
    run = record_plan(store, PLAN)
    alerts = _Alerts()

    def gate(record: RunRecord) -> str:
        return f"the model registry refused the token {DEVELOPER_TOKEN}"

    with pytest.raises(ApplyStopped) as stopped:
        apply_run(
            store,
            run.run_id,
            writer,
            settings,
            model_gate=gate,
            alerts=alerts,
            clock=TODAY,
        )
    with pytest.raises(ApplyStopped) as refused:
        approve_and_apply(
            store,
            run.run_id,
            None,
            settings,
            lambda: writer,
            model_gate=gate,
            clock=TODAY,
        )

    reason = _stored(store, run).stop_reason
    assert reason == "model_gate: the model registry refused the token ***"
    [alert] = alerts.sent
    for shown in (
        reason,
        str(stopped.value),
        str(refused.value),
        alert,
        _apply_lines(caplog),
    ):
        assert DEVELOPER_TOKEN not in shown
        assert "refused the token ***" in shown
