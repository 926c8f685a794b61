"""The account's day: the one notion of "today" every command uses.

A run is dated with the day in the account's time zone (``account.time_zone``),
and plans with the data up to the start of that day. The demo, the daily
cycle, the report, the unit economics, the feed and the scheduler all name
days this way, so a run made at 03:00 UTC for an account in New York is a
run of New York's day, which is still the day before, and every command
that compares with it finds it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from optimizer.exceptions import OptimizerError


def utc_now() -> dt.datetime:
    """The current time, in UTC: the clock the commands read "today" from."""
    return dt.datetime.now(dt.UTC)


def account_today(time_zone: str, now: dt.datetime | None = None) -> dt.date:
    """The day it is in the account's time zone.

    Parameters
    ----------
    time_zone
        The account's IANA time zone, e.g. ``America/New_York``.
    now
        The instant (time-zone aware); the current time when ``None``.

    Returns
    -------
    datetime.date
    """
    instant = utc_now() if now is None else now
    if instant.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    return instant.astimezone(ZoneInfo(time_zone)).date()


def start_of_day(day: dt.date, time_zone: str) -> pd.Timestamp:
    """The first instant of ``day`` in the account's time zone, in UTC.

    A run of ``day`` scores and plans with the data up to this instant.
    """
    local = dt.datetime.combine(day, dt.time(), ZoneInfo(time_zone))
    return pd.Timestamp(local).tz_convert("UTC")


def refuse_day_ahead(
    day: dt.date, time_zone: str, what: str, now: dt.datetime | None = None
) -> None:
    """Refuse ``day`` when it has not begun in the account's time zone.

    A day is read with the data up to its start, so a day still ahead has
    nothing of its own yet; planning it would also let one real day take
    the target steps of several.

    Parameters
    ----------
    day
        The day asked for (``--run-date``).
    time_zone
        The account's IANA time zone.
    what
        What the command does with the day, e.g. ``"planned"``.
    now
        The instant (time-zone aware); the current time when ``None``.

    Raises
    ------
    OptimizerError
        ``day`` is after the account's today.
    """
    today = account_today(time_zone, now)
    if day > today:
        raise OptimizerError(
            f"--run-date {day} has not begun in the account's time zone "
            f"({time_zone}, where it is {today}): a day is {what} with the data "
            "up to its start, so it can be once it has begun"
        )
