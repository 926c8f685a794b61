"""The feed through the real google-ads client against the fake upload services."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.exceptions import ValueFeedError
from connectors.value_feed import (
    ConversionEvent,
    FeedSettings,
    Ledger,
    RowResult,
    run_feed,
    transaction_id,
)
from connectors.value_feed.conversion_upload import ConversionUploadSink
from connectors.value_feed.ledger import feed_sends
from tests.connectors.value_feed.conftest import (
    ACTION,
    DEVELOPER_TOKEN,
    NOW,
    make_users,
)
from tests.connectors.value_feed.test_identifiers import FR_PHONE, JANEDOE_GMAIL
from tests.fakes.conversion_upload_server import FakeConversionUpload

ACCOUNT = "acme"


def tid(user_id: str) -> str:
    return transaction_id(ACCOUNT, ACTION, user_id)


def register_clicks(api: FakeConversionUpload, users: pd.DataFrame) -> None:
    for row in users.itertuples():
        api.clicks[row.gclid] = row.signup_at.to_pydatetime()


def feed(
    users: pd.DataFrame,
    values: dict[str, float],
    settings: FeedSettings,
    ledger: Ledger,
    sink: object,
    now: dt.datetime = NOW,
    send: bool = True,
):  # type: ignore[no-untyped-def]
    return run_feed(
        users,
        pd.Series(values, dtype=float),
        settings=settings,
        account=ACCOUNT,
        currency="EUR",
        ledger=ledger,
        sink=sink,  # type: ignore[arg-type]
        now=now,
        send=send,
    )


def test_first_run_sends_each_eligible_activation_once_with_value_and_ids(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users(
        [
            {
                "user_id": "u1",
                "email": " Jane.Doe+ads@GMAIL.com",
                "phone": "06 12 34 56 78",
                "ad_user_data_consent": "GRANTED",
                "ad_personalization_consent": "denied",
            },
            {"user_id": "u2"},
            {
                "user_id": "u3",
                "email": "x@example.com",
                "ad_user_data_consent": "DENIED",
            },
            {"user_id": "u4", "signup_hours_ago": 72},
            {"user_id": "u5", "signup_hours_ago": 2, "activated_hours_ago": 1},
        ]
    )
    never = make_users([{"user_id": "u6"}]).assign(activated_at=pd.NaT)
    users = pd.concat([users, never], ignore_index=True)
    register_clicks(upload_api, users)
    values = {"u1": 120.456, "u2": 80.0, "u3": 15.0, "u4": 300.0, "u5": 50.0}

    dry = feed(users, values, feed_settings, ledger, upload_sink, send=False)
    assert dry.counts["due_first"] == 4
    assert upload_api.received == []

    report = feed(users, values, feed_settings, ledger, upload_sink)

    sent = upload_api.conversions
    assert sorted(sent) == sorted(tid(u) for u in ("u1", "u2", "u3", "u4"))
    assert sorted(Counter(upload_api.received).values()) == [1, 1, 1, 1]
    assert upload_api.requests == [3, 1]
    first = sent[tid("u1")]
    assert first.value == pytest.approx(120.46)
    assert first.currency == "EUR"
    assert first.gclid == "gclid-u1"
    assert first.conversion_time == NOW - dt.timedelta(hours=47)
    assert first.hashed_emails == [JANEDOE_GMAIL]
    assert first.hashed_phones == [FR_PHONE]
    assert (first.ad_user_data, first.ad_personalization) == ("GRANTED", "DENIED")
    # Contact data of a user who denied ad_user_data stays home.
    assert sent[tid("u3")].hashed_emails == []
    assert sent[tid("u3")].ad_user_data == "DENIED"
    assert sent[tid("u2")].ad_user_data == "UNSPECIFIED"
    assert report.counts["initial_sent"] == 4
    assert report.counts["held_too_recent"] == 1
    record = ledger.get_run(report.run_id)
    assert record is not None and record.status == "sent"
    assert record.counts["initial_sent"] == 4

    again = feed(users, values, feed_settings, ledger, upload_sink)

    assert upload_api.requests == [3, 1]
    assert not again.planned
    assert again.counts["held_too_recent"] == 1


def test_too_recent_click_is_sent_on_a_later_run(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": "u1", "signup_hours_ago": 8}, {"user_id": "u2"}])
    register_clicks(upload_api, users)
    # Google has the click later than our sign-up time says: it answers too recent.
    upload_api.clicks["gclid-u1"] = NOW - dt.timedelta(hours=3)
    values = {"u1": 40.0, "u2": 60.0}

    first = feed(users, values, feed_settings, ledger, upload_sink)

    assert first.counts["initial_too_recent"] == 1
    assert sorted(upload_api.conversions) == [tid("u2")]

    later = NOW + dt.timedelta(hours=4)
    upload_api.now = later
    second = feed(users, values, feed_settings, ledger, upload_sink, now=later)

    assert second.counts["initial_sent"] == 1
    assert upload_api.conversions[tid("u1")].value == 40.0
    assert Counter(upload_api.received)[tid("u2")] == 1


def test_unknown_and_expired_clicks_are_recorded_and_skipped(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": "u1"}, {"user_id": "u2"}])
    upload_api.clicks["gclid-u2"] = NOW - dt.timedelta(days=120)
    values = {"u1": 10.0, "u2": 20.0}

    first = feed(users, values, feed_settings, ledger, upload_sink)
    second = feed(users, values, feed_settings, ledger, upload_sink)

    assert first.counts["initial_unknown_click"] == 1
    assert first.counts["initial_expired"] == 1
    assert not second.planned
    assert {c.status for c in ledger.conversions().values()} == {"skipped"}


def test_lost_response_mid_run_resumes_without_duplicates(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": f"u{i}"} for i in range(7)])
    register_clicks(upload_api, users)
    values = {f"u{i}": 10.0 * (i + 1) for i in range(7)}
    upload_api.lose_response_of = {2}

    with pytest.raises(ValueFeedError, match="UploadClickConversions"):
        feed(users, values, feed_settings, ledger, upload_sink)

    assert len(upload_api.conversions) == 6
    upload_api.lose_response_of = set()
    resumed = feed(users, values, feed_settings, ledger, upload_sink)

    assert resumed.counts["initial_already_exists"] == 3
    assert resumed.counts["initial_sent"] == 1
    assert sorted(upload_api.conversions) == sorted(tid(f"u{i}") for i in range(7))
    assert {c.status for c in ledger.conversions().values()} == {"sent"}
    assert not feed(users, values, feed_settings, ledger, upload_sink).planned


def test_the_apis_error_texts_pass_through_the_mask_before_the_ledger(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = make_users([{"user_id": f"u{i}"} for i in range(4)])
    register_clicks(upload_api, users[users["user_id"] != "u1"])
    upload_api.quote_developer_token = True
    upload_api.lose_response_of = {2}

    with pytest.raises(ValueFeedError):
        run_feed(
            users,
            pd.Series({f"u{i}": 10.0 for i in range(4)}, dtype=float),
            settings=feed_settings,
            account=ACCOUNT,
            currency="EUR",
            ledger=ledger,
            sink=upload_sink,
            now=NOW,
            send=True,
            mask=lambda text: text.replace(DEVELOPER_TOKEN, "***"),
        )

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                sa.select(feed_sends.c.status, feed_sends.c.detail).where(
                    feed_sends.c.detail.is_not(None)
                )
            ).all()
        )
    engine.dispose()
    assert set(stored) == {"unknown_click", "in_doubt"}
    assert stored["unknown_click"].endswith("(fake) for developer token ***")
    assert stored["in_doubt"].endswith(
        "connection reset (fake) for developer token ***"
    )
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name == "connectors.value_feed.feed"
    )
    assert "for developer token ***" in logged
    assert DEVELOPER_TOKEN not in logged + "".join(stored.values())


class _DiesAfterUpload:
    """The process dies once Google has applied the batch, before recording it."""

    name = "conversion_upload"
    supports_restatement = True

    def __init__(self, sink: ConversionUploadSink) -> None:
        self.sink = sink

    def login(self) -> None:
        self.sink.login()

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        self.sink.upload(events)
        raise SystemExit("killed")


def test_claims_of_a_dead_run_wait_for_the_lease_then_resend_once(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    users = make_users([{"user_id": f"u{i}"} for i in range(2)])
    register_clicks(upload_api, users)
    values = {"u0": 5.0, "u1": 6.0}
    with pytest.raises(SystemExit):
        feed(users, values, feed_settings, ledger, _DiesAfterUpload(upload_sink))

    second_firing = feed(users, values, feed_settings, ledger, upload_sink)
    assert second_firing.counts["in_flight"] == 2
    assert not second_firing.planned

    later = NOW + dt.timedelta(minutes=feed_settings.claim_lease_minutes + 1)
    upload_api.now = later
    resumed = feed(users, values, feed_settings, ledger, upload_sink, now=later)

    assert resumed.counts["initial_already_exists"] == 2
    assert Counter(upload_api.received) == {tid("u0"): 2, tid("u1"): 2}
    assert len(upload_api.conversions) == 2


def test_restatement_inside_54_days_goes_out_and_after_does_not(
    upload_api: FakeConversionUpload,
    upload_sink: ConversionUploadSink,
    ledger: Ledger,
    feed_settings: FeedSettings,
) -> None:
    settings = feed_settings.model_copy(update={"lookback_days": 90})
    users = make_users(
        [
            {"user_id": "young", "signup_hours_ago": 10 * 24 + 2},
            {"user_id": "old", "signup_hours_ago": 50 * 24 + 2},
        ]
    )
    register_clicks(upload_api, users)
    feed(users, {"young": 100.0, "old": 100.0}, settings, ledger, upload_sink)

    later = NOW + dt.timedelta(days=5)
    upload_api.now = later
    report = feed(
        users, {"young": 200.0, "old": 200.0}, settings, ledger, upload_sink, later
    )

    assert report.counts["restatement_sent"] == 1
    assert report.counts["restatement_too_late"] == 1
    assert upload_api.conversions[tid("young")].value == 200.0
    assert upload_api.conversions[tid("old")].value == 100.0
    assert ledger.conversions()[tid("young")].sent_value == 200.0

    small = feed(
        users, {"young": 210.0, "old": 200.0}, settings, ledger, upload_sink, later
    )
    assert small.counts["due_restatement"] == 0
    assert len(upload_api.conversions[tid("young")].restatements) == 1
