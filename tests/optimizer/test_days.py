"""The account's day: what "today" is for an account, whatever the machine's clock."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from optimizer import days
from optimizer.exceptions import OptimizerError

#: 03:00 UTC: still the evening before in New York, already morning in Paris.
LATE_EVENING_IN_NEW_YORK = dt.datetime(2026, 12, 5, 3, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/New_York", dt.date(2026, 12, 4)),
        ("UTC", dt.date(2026, 12, 5)),
        ("Europe/Paris", dt.date(2026, 12, 5)),
    ],
)
def test_the_day_is_the_accounts_not_the_machines(zone: str, day: dt.date) -> None:
    assert days.account_today(zone, LATE_EVENING_IN_NEW_YORK) == day


def test_today_reads_the_commands_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(days, "utc_now", lambda: LATE_EVENING_IN_NEW_YORK)

    assert days.account_today("America/New_York") == dt.date(2026, 12, 4)


def test_a_clock_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        days.account_today("UTC", dt.datetime(2026, 12, 5, 3, 0))


def test_a_day_starts_at_local_midnight() -> None:
    start = days.start_of_day(dt.date(2026, 12, 4), "America/New_York")

    assert start == pd.Timestamp("2026-12-04T05:00:00Z")
    assert days.account_today("America/New_York", start.to_pydatetime()) == (
        dt.date(2026, 12, 4)
    )
    # A summer day starts an hour earlier in UTC.
    assert days.start_of_day(dt.date(2026, 7, 1), "America/New_York") == (
        pd.Timestamp("2026-07-01T04:00:00Z")
    )


def test_a_day_not_begun_in_the_account_is_refused() -> None:
    # The machine's UTC date, 2026-12-05, is still tomorrow in New York.
    with pytest.raises(OptimizerError) as refused:
        days.refuse_day_ahead(
            dt.date(2026, 12, 5),
            "America/New_York",
            "planned",
            LATE_EVENING_IN_NEW_YORK,
        )
    assert str(refused.value) == (
        "--run-date 2026-12-05 has not begun in the account's time zone "
        "(America/New_York, where it is 2026-12-04): a day is planned with the "
        "data up to its start, so it can be once it has begun"
    )
    for day in (dt.date(2026, 12, 4), dt.date(2026, 11, 1)):
        days.refuse_day_ahead(
            day, "America/New_York", "planned", LATE_EVENING_IN_NEW_YORK
        )
    days.refuse_day_ahead(
        dt.date(2026, 12, 5), "Europe/Paris", "planned", LATE_EVENING_IN_NEW_YORK
    )
