"""Value shaping, transaction ids and the ledger's claims (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.value_feed import (
    ConversionEvent,
    FeedReport,
    FeedSettings,
    Ledger,
    ValueFigures,
    run_feed,
    shape_values,
    transaction_id,
)
from tests.connectors.value_feed.conftest import NOW, make_users

LEASE = dt.timedelta(minutes=60)


def test_cap_at_percentile_and_floor() -> None:
    values = pd.Series([0.0, 10.0, 20.0, 30.0, 1000.0], index=list("abcde"))

    shaped = shape_values(values, cap_percentile=75, floor=5.0)

    # numpy's linear percentile of the five values at 75 % is 30.
    assert shaped.cap == 30.0
    assert shaped.values.to_dict() == {
        "a": 5.0,
        "b": 10.0,
        "c": 20.0,
        "d": 30.0,
        "e": 30.0,
    }
    assert (shaped.capped, shaped.floored) == (1, 1)


def test_floor_wins_over_a_lower_cap_and_nan_is_dropped() -> None:
    values = pd.Series([1.0, 2.0, np.nan], index=list("abc"))

    shaped = shape_values(values, cap_percentile=50, floor=3.0)

    assert shaped.cap == 3.0
    assert shaped.values.to_dict() == {"a": 3.0, "b": 3.0}


def test_no_cap_when_unset() -> None:
    shaped = shape_values(pd.Series([1.0, 99.0]), cap_percentile=None, floor=0.0)
    assert shaped.cap is None and shaped.values.tolist() == [1.0, 99.0]


def test_transaction_id_is_stable_and_hides_the_user_id() -> None:
    first = transaction_id("acme", "42", "user-7")
    assert first == transaction_id("acme", "42", "user-7")
    assert first != transaction_id("acme", "42", "user-8")
    assert first != transaction_id("acme", "43", "user-7")
    assert "user-7" not in first and len(first) <= 64


def _event(revision: int = 0, number: int = 1) -> ConversionEvent:
    return ConversionEvent(
        transaction_id=f"vb-{number}",
        user_id=f"u{number}",
        revision=revision,
        value=10.0,
        currency="EUR",
        conversion_time=NOW - dt.timedelta(days=1),
        gclid="g",
        hashed_email=None,
        hashed_phone=None,
        ad_user_data=None,
        ad_personalization=None,
    )


def _race(url: str) -> None:
    one, two = Ledger(url), Ledger(url)
    try:
        assert one.claim(_event(), "run-a", NOW, lease=LEASE)
        assert not two.claim(_event(), "run-b", NOW, lease=LEASE)
        assert not two.claim(_event(), "run-b", NOW + LEASE / 2, lease=LEASE)
        stale = NOW + LEASE + dt.timedelta(seconds=1)
        assert two.claim(_event(), "run-b", stale, lease=LEASE)
        assert not one.claim(_event(), "run-a", stale, lease=LEASE)
        assert two.latest_sends()["vb-1"].claimed_at == stale
    finally:
        one.dispose()
        two.dispose()


def test_two_runs_never_both_claim_a_revision_sqlite(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.postgres
def test_two_runs_never_both_claim_a_revision_postgres(postgres_url: str) -> None:
    _race(postgres_url)


def _batch_race(url: str) -> None:
    one, two = Ledger(url), Ledger(url)
    fresh, held, stale, doubt = (_event(number=n) for n in range(1, 5))
    try:
        assert one.claim(held, "run-a", NOW, lease=LEASE)
        assert one.claim(stale, "run-a", NOW - 2 * LEASE, lease=LEASE)
        assert one.claim(doubt, "run-a", NOW, lease=LEASE)
        one.release([doubt], NOW, "connection reset")

        won = two.claim_many([fresh, held, stale, doubt], "run-b", NOW, lease=LEASE)

        assert won == [fresh, stale, doubt]
        sends = two.latest_sends()
        assert {tid: (s.status, s.claimed_at) for tid, s in sends.items()} == {
            "vb-1": ("claimed", NOW),
            "vb-2": ("claimed", NOW),
            "vb-3": ("claimed", NOW),
            "vb-4": ("claimed", NOW),
        }
        assert set(two.conversions()) == {"vb-1", "vb-2", "vb-3", "vb-4"}
        assert two.claim_many([fresh, held], "run-c", NOW, lease=LEASE) == []
    finally:
        one.dispose()
        two.dispose()


def test_a_batch_claim_wins_exactly_what_single_claims_would_sqlite(
    tmp_path: Path,
) -> None:
    _batch_race(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.postgres
def test_a_batch_claim_wins_exactly_what_single_claims_would_postgres(
    postgres_url: str,
) -> None:
    _batch_race(postgres_url)


def test_a_batch_that_collides_falls_back_to_one_claim_each(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        # The same revision twice fails the batch insert on its key, as a
        # racing run's insert would; each event is then claimed on its own.
        won = ledger.claim_many(
            [_event(number=1), _event(number=1), _event(number=2)],
            "run-a",
            NOW,
            lease=LEASE,
        )

        assert won == [_event(number=1), _event(number=2)]
        assert set(ledger.latest_sends()) == {"vb-1", "vb-2"}
    finally:
        ledger.dispose()


def test_times_with_nanoseconds_go_out_to_the_microsecond(
    ledger: Ledger, feed_settings: FeedSettings
) -> None:
    users = make_users([{"user_id": "u1"}, {"user_id": "u2"}])
    users["activated_at"] += pd.Timedelta(nanoseconds=123_456_789)

    report = run_feed(
        users,
        pd.Series({"u1": 40.0, "u2": 60.0}),
        settings=feed_settings,
        account="acme",
        currency="EUR",
        ledger=ledger,
        sink=None,
        now=NOW,
    )

    assert sorted(e.conversion_time.microsecond for e in report.planned) == [
        123_456,
        123_456,
    ]


def test_value_figures_of_the_values_due() -> None:
    report = FeedReport(run_id="feed-1", mode="dry_run", sink="conversion_upload")
    assert report.value_figures() == ValueFigures(0, 0.0, None, None, None)

    report.planned = [
        dataclasses.replace(_event(number=n), value=v)
        for n, v in enumerate([10.0, 20.0, 30.0, 100.0])
    ]

    assert report.value_figures() == ValueFigures(4, 160.0, 40.0, 25.0, 100.0)


def test_capped_and_floored_count_the_values_due_not_every_activation(
    ledger: Ledger, feed_settings: FeedSettings
) -> None:
    # The cap is the 75th percentile of all four activations (27.25); the
    # user above it and the one under the floor activated too long ago to be
    # sent, so none of the values due was cut or raised.
    settings = feed_settings.model_copy(
        update={"cap_percentile": 75.0, "value_floor": 1.0, "lookback_days": 30}
    )
    users = make_users(
        [
            {"user_id": "u1", "activated_hours_ago": 24 * 40},
            {"user_id": "u2"},
            {"user_id": "u3"},
            {"user_id": "u4", "activated_hours_ago": 24 * 40},
        ]
    )
    values = pd.Series({"u1": 0.5, "u2": 2.0, "u3": 3.0, "u4": 100.0})

    def counts(run_users: pd.DataFrame) -> dict[str, int]:
        report = run_feed(
            run_users,
            values,
            settings=settings,
            account="acme",
            currency="EUR",
            ledger=ledger,
            sink=None,
            now=NOW,
        )
        assert report.cap == pytest.approx(27.25)
        return report.as_dict()

    first = counts(users)
    assert (first["due_first"], first["too_old"]) == (2, 2)
    assert (first["capped"], first["floored"]) == (0, 0)

    recent = users.assign(activated_at=NOW - dt.timedelta(hours=47))
    second = counts(recent)
    assert (second["due_first"], second["capped"], second["floored"]) == (4, 1, 1)
