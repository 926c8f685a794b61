"""Pushing target ROAS changes through the real client to the fake API."""

from __future__ import annotations

import logging

import grpc
import pytest

from connectors.google_ads import (
    ChangeOutcome,
    GoogleAdsSession,
    TargetChange,
    TargetCpaChange,
    apply_target_changes,
    restore_target_cpa,
)
from connectors.google_ads.read import enum_name
from tests.connectors.google_ads.conftest import CUSTOMER, DEVELOPER_TOKEN
from tests.fakes.google_ads import FakeGoogleAdsApi

MUTATE = "MutateCampaigns"


def _change(
    campaign_id: int,
    target: float,
    strategy: str = "TARGET_CPA",
    portfolio: str | None = None,
) -> TargetChange:
    return TargetChange(
        customer_id=CUSTOMER,
        campaign_id=str(campaign_id),
        new_target_roas=target,
        current_strategy=strategy,
        portfolio_strategy=portfolio,
        reason="ltv_cac_floor",
    )


def _strategy(api: FakeGoogleAdsApi, campaign_id: int) -> tuple[str, str, float]:
    """The fake's view of a campaign: strategy type, scheme set, its target ROAS."""
    campaign = api.campaign(CUSTOMER, campaign_id)
    scheme = campaign.WhichOneof("campaign_bidding_strategy") or ""
    target = getattr(getattr(campaign, scheme), "target_roas", 0.0) if scheme else 0.0
    return enum_name(campaign, "bidding_strategy_type"), scheme, float(target)


def test_tcpa_campaign_switches_to_maximize_conversion_value_with_target(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=40_000_000)

    (outcome,) = apply_target_changes(session, [_change(11, 3.5)])

    assert outcome.status == "applied"
    assert outcome.request_id is not None
    assert _strategy(fake_api, 11) == (
        "MAXIMIZE_CONVERSION_VALUE",
        "maximize_conversion_value",
        3.5,
    )
    validate, apply = fake_api.calls(MUTATE)
    assert validate.validate_only and validate.partial_failure
    assert not apply.validate_only and apply.partial_failure
    assert outcome.request_id == apply.request_id


def test_value_based_campaign_target_is_updated(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    fake_api.add_campaign(
        CUSTOMER, 12, "FR | pmax", strategy="MAXIMIZE_CONVERSION_VALUE", target_roas=2.0
    )
    fake_api.add_campaign(
        CUSTOMER, 14, "FR | legacy", strategy="TARGET_ROAS", target_roas=4.0
    )

    outcomes = apply_target_changes(
        session,
        [
            _change(12, 2.3, "MAXIMIZE_CONVERSION_VALUE"),
            _change(14, 3.6, "TARGET_ROAS"),
        ],
    )

    assert [o.status for o in outcomes] == ["applied", "applied"]
    assert _strategy(fake_api, 12) == (
        "MAXIMIZE_CONVERSION_VALUE",
        "maximize_conversion_value",
        2.3,
    )
    assert _strategy(fake_api, 14) == ("TARGET_ROAS", "target_roas", 3.6)
    status = enum_name(
        fake_api.campaign(CUSTOMER, 12), "bidding_strategy_system_status"
    )
    assert status == "LEARNING_SETTING_CHANGE"


def test_portfolio_strategy_is_updated_once_for_its_campaigns(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    portfolio = fake_api.add_portfolio(
        CUSTOMER, 900, "shared", strategy="TARGET_ROAS", target_roas=3.0
    )
    fake_api.add_campaign(CUSTOMER, 13, "DE | a", portfolio_id=900)
    fake_api.add_campaign(CUSTOMER, 15, "DE | b", portfolio_id=900)

    outcomes = apply_target_changes(
        session,
        [
            _change(13, 3.3, "TARGET_ROAS", portfolio),
            _change(15, 3.3, "TARGET_ROAS", portfolio),
        ],
    )

    assert [o.status for o in outcomes] == ["applied", "applied"]
    assert fake_api.portfolio(CUSTOMER, 900).target_roas.target_roas == 3.3
    (validate, apply) = fake_api.calls("MutateBiddingStrategies")
    assert (validate.operations, apply.operations) == (1, 1)
    assert fake_api.calls(MUTATE) == []
    assert fake_api.campaign(CUSTOMER, 13).bidding_strategy == portfolio


def test_dry_run_validates_and_changes_nothing(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=40_000_000)
    before = fake_api.campaign(CUSTOMER, 11)

    outcomes = apply_target_changes(session, [_change(11, 3.5)], dry_run=True)

    assert outcomes == [
        ChangeOutcome(
            customer_id=CUSTOMER,
            campaign_id="11",
            status="validated",
            request_id=fake_api.calls(MUTATE)[0].request_id,
        )
    ]
    assert fake_api.campaign(CUSTOMER, 11) == before
    assert [c.validate_only for c in fake_api.calls(MUTATE)] == [True]


def test_rejected_campaign_does_not_stop_the_others(
    fake_api: FakeGoogleAdsApi,
    session: GoogleAdsSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for campaign_id in (11, 12, 13):
        fake_api.add_campaign(CUSTOMER, campaign_id, f"c{campaign_id}")
    caplog.set_level(logging.INFO, logger="connectors.google_ads")

    outcomes = apply_target_changes(
        session, [_change(11, 3.0), _change(12, 1500.0), _change(13, 4.0)]
    )

    assert [o.status for o in outcomes] == ["applied", "rejected", "applied"]
    rejected = outcomes[1]
    assert rejected.error_code == "range_error.TOO_HIGH"
    assert rejected.error_field_path == "update.maximize_conversion_value.target_roas"
    assert rejected.error_message and "1500" in rejected.error_message
    validate, apply = fake_api.calls(MUTATE)
    assert rejected.request_id == validate.request_id
    assert (validate.operations, apply.operations) == (3, 2)
    assert _strategy(fake_api, 12) == ("TARGET_CPA", "target_cpa", 0.0)
    assert _strategy(fake_api, 13)[2] == 4.0

    decisions = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(decisions) == 3
    (refusal,) = [line for line in decisions if "rejected" in line]
    assert "campaign 12" in refusal and "range_error.TOO_HIGH" in refusal


def test_without_validation_first_the_api_still_rejects_per_campaign(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "c11")
    fake_api.add_campaign(CUSTOMER, 12, "c12", status="REMOVED")

    outcomes = apply_target_changes(
        session, [_change(11, 3.0), _change(12, 3.0)], validate_only_first=False
    )

    assert [o.status for o in outcomes] == ["applied", "rejected"]
    assert outcomes[1].error_code == "mutate_error.MUTATE_NOT_ALLOWED"
    assert [c.validate_only for c in fake_api.calls(MUTATE)] == [False]


def test_batch_over_the_operation_limit_is_split(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    count = 10_001
    for campaign_id in range(1, count + 1):
        fake_api.add_campaign(CUSTOMER, campaign_id, f"c{campaign_id}")

    outcomes = apply_target_changes(
        session, [_change(i, 2.0) for i in range(1, count + 1)]
    )

    assert {o.status for o in outcomes} == {"applied"}
    sent = [(c.validate_only, c.operations) for c in fake_api.calls(MUTATE)]
    assert sent == [(True, 10_000), (True, 1), (False, 10_000), (False, 1)]
    assert _strategy(fake_api, count)[2] == 2.0


def test_smaller_batches_can_be_asked_for(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    for campaign_id in range(1, 6):
        fake_api.add_campaign(CUSTOMER, campaign_id, f"c{campaign_id}")

    apply_target_changes(
        session, [_change(i, 2.0) for i in range(1, 6)], max_operations=2
    )

    sizes = [c.operations for c in fake_api.calls(MUTATE)]
    assert sizes == [2, 2, 1, 2, 2, 1]


def test_transient_mutate_error_is_retried(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, sleeps: list[float]
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "c11")
    fake_api.fail_next(2, grpc.StatusCode.RESOURCE_EXHAUSTED, methods=[MUTATE])

    (outcome,) = apply_target_changes(session, [_change(11, 3.0)])

    assert outcome.status == "applied"
    assert sleeps == [1.0, 2.0]
    assert len(fake_api.calls(MUTATE)) == 4


def test_permanent_mutate_error_is_not_retried_and_is_recorded(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession, sleeps: list[float]
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "c11")
    fake_api.add_campaign(CUSTOMER, 12, "c12")
    fake_api.fail_next(1, grpc.StatusCode.PERMISSION_DENIED, methods=[MUTATE])

    outcomes = apply_target_changes(session, [_change(11, 3.0), _change(12, 3.0)])

    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    (call,) = fake_api.calls(MUTATE)
    assert outcomes[0].request_id == call.request_id
    assert outcomes[0].error_code == "authorization_error.USER_PERMISSION_DENIED"
    assert sleeps == []
    assert _strategy(fake_api, 11)[0] == "TARGET_CPA"


def test_unknown_campaign_is_rejected_by_the_api(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    (outcome,) = apply_target_changes(session, [_change(404, 3.0)])

    assert outcome.status == "rejected"
    assert outcome.error_code == "mutate_error.RESOURCE_NOT_FOUND"


def test_secrets_never_reach_the_logs(
    fake_api: FakeGoogleAdsApi,
    session: GoogleAdsSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "c11")
    fake_api.add_campaign(CUSTOMER, 12, "c12")
    caplog.set_level(logging.DEBUG)

    apply_target_changes(session, [_change(11, 1500.0), _change(12, 3.0)])

    assert caplog.records
    assert DEVELOPER_TOKEN not in caplog.text
    assert "offline-access-token" not in caplog.text


def test_unsupported_changes_fail_before_any_request(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    portfolio = f"customers/{CUSTOMER}/biddingStrategies/900"

    with pytest.raises(NotImplementedError, match="MANUAL_CPC"):
        apply_target_changes(session, [_change(11, 3.0, "MANUAL_CPC")])
    with pytest.raises(NotImplementedError, match="portfolio"):
        apply_target_changes(session, [_change(11, 3.0, "TARGET_CPA", portfolio)])
    with pytest.raises(ValueError, match="one target per portfolio"):
        apply_target_changes(
            session,
            [
                _change(11, 3.0, "TARGET_ROAS", portfolio),
                _change(12, 3.1, "TARGET_ROAS", portfolio),
            ],
        )
    with pytest.raises(ValueError, match="more than one change"):
        apply_target_changes(session, [_change(11, 3.0), _change(11, 3.1)])

    assert fake_api.requests == []


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_target_change_refuses_a_meaningless_target(bad: float) -> None:
    with pytest.raises(ValueError, match="not a positive number"):
        _change(11, bad)


def test_target_change_refuses_a_malformed_customer_id() -> None:
    with pytest.raises(ValueError, match="'12345'"):
        TargetChange("12345", "11", 3.0, "TARGET_CPA", None, "test")


def _restore(campaign_id: int, micros: int) -> TargetCpaChange:
    return TargetCpaChange(CUSTOMER, str(campaign_id), micros, "rollback")


def _cpa(api: FakeGoogleAdsApi, campaign_id: int) -> tuple[str, str, int]:
    """The fake's view of a campaign: strategy type, scheme set, its target CPA."""
    campaign = api.campaign(CUSTOMER, campaign_id)
    scheme = campaign.WhichOneof("campaign_bidding_strategy") or ""
    micros = campaign.target_cpa.target_cpa_micros if scheme == "target_cpa" else 0
    return enum_name(campaign, "bidding_strategy_type"), scheme, int(micros)


def test_migrated_campaign_goes_back_to_its_exact_target_cpa(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "FR | search", target_cpa_micros=40_123_456)
    before = fake_api.campaign(CUSTOMER, 11)
    (moved,) = apply_target_changes(session, [_change(11, 3.5)])
    assert moved.status == "applied"
    assert _cpa(fake_api, 11)[1] == "maximize_conversion_value"

    (outcome,) = restore_target_cpa(session, [_restore(11, 40_123_456)])

    assert outcome.status == "applied"
    assert _cpa(fake_api, 11) == ("TARGET_CPA", "target_cpa", 40_123_456)
    after = fake_api.campaign(CUSTOMER, 11)
    assert not after.HasField("maximize_conversion_value")
    # Only the strategy moved: the rest of the campaign is as it was.
    assert after.name == before.name
    assert enum_name(after, "status") == enum_name(before, "status")
    assert enum_name(after, "bidding_strategy_system_status") == "LEARNING_NEW"
    calls = fake_api.calls(MUTATE)
    assert [c.validate_only for c in calls] == [True, False, True, False]
    assert all(c.partial_failure for c in calls)
    assert outcome.request_id == calls[-1].request_id


def test_refused_restore_does_not_stop_the_others(
    fake_api: FakeGoogleAdsApi,
    session: GoogleAdsSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_api.add_campaign(CUSTOMER, 11, "c11", strategy="MAXIMIZE_CONVERSION_VALUE")
    fake_api.add_campaign(CUSTOMER, 12, "c12", status="REMOVED")
    fake_api.add_campaign(CUSTOMER, 13, "c13", strategy="MAXIMIZE_CONVERSION_VALUE")
    caplog.set_level(logging.INFO, logger="connectors.google_ads")

    outcomes = restore_target_cpa(
        session,
        [_restore(11, 30_000_000), _restore(12, 30_000_000), _restore(13, 5_500_000)],
    )

    assert [o.status for o in outcomes] == ["applied", "rejected", "applied"]
    assert outcomes[1].error_code == "mutate_error.MUTATE_NOT_ALLOWED"
    validate, apply = fake_api.calls(MUTATE)
    assert outcomes[1].request_id == validate.request_id
    assert (validate.operations, apply.operations) == (3, 2)
    assert _cpa(fake_api, 11) == ("TARGET_CPA", "target_cpa", 30_000_000)
    assert _cpa(fake_api, 13) == ("TARGET_CPA", "target_cpa", 5_500_000)
    decisions = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    (refusal,) = [line for line in decisions if "rejected" in line]
    assert "campaign 12" in refusal and "30000000 micros" in refusal


def test_restore_dry_run_and_batches(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    for campaign_id in (1, 2, 3):
        fake_api.add_campaign(
            CUSTOMER,
            campaign_id,
            f"c{campaign_id}",
            strategy="MAXIMIZE_CONVERSION_VALUE",
        )
    restores = [_restore(i, 20_000_000) for i in (1, 2, 3)]

    dry = restore_target_cpa(session, restores, dry_run=True, max_operations=2)
    assert [o.status for o in dry] == ["validated"] * 3
    assert _cpa(fake_api, 1)[0] == "MAXIMIZE_CONVERSION_VALUE"

    done = restore_target_cpa(session, restores, max_operations=2)
    assert [o.status for o in done] == ["applied"] * 3
    sent = [(c.validate_only, c.operations) for c in fake_api.calls(MUTATE)]
    assert sent == [(True, 2), (True, 1), (True, 2), (True, 1), (False, 2), (False, 1)]
    assert _cpa(fake_api, 3) == ("TARGET_CPA", "target_cpa", 20_000_000)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_target_cpa_change_refuses_a_meaningless_target(bad: int) -> None:
    with pytest.raises(ValueError, match="not a positive whole number"):
        TargetCpaChange(CUSTOMER, "11", bad, "rollback")


def test_duplicate_restore_fails_before_any_request(
    fake_api: FakeGoogleAdsApi, session: GoogleAdsSession
) -> None:
    with pytest.raises(ValueError, match="more than one change"):
        restore_target_cpa(session, [_restore(11, 1), _restore(11, 2)])

    assert fake_api.requests == []
