"""The value-level guardrail: a jump in the predicted values holds the day.

A unit mistake upstream (revenue exported in cents instead of currency units,
one currency read as another) multiplies every predicted value, and with it
every conversion value sent to Google, while each value on its own still
looks plausible. So each cycle run summarises the values it scored
(:class:`ValueSummary`) and compares their mean per user with the last
successful run of the account (:func:`check_value_level`). When the mean
moved by more than ``guardrails.max_value_jump`` times, up or down, every
target holds and no value is sent that day, and the run says why with both
figures and their ratio. A person who finds the new level real accepts it
for one run (``valuebid run --accept-value-level``); that run is recorded as
accepted and becomes the level later runs compare with.

The feed, which may run on its own schedule and scores users itself, makes
the same comparison before it sends (:func:`feed_value_check`), and also
sends nothing while the account's latest cycle run is held.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from config.schema import Settings
from connectors.files import Inputs
from optimizer.commands import run_command
from optimizer.days import account_today
from optimizer.state import VALUE_HELD, RunRecord, StateStore

logger = logging.getLogger(__name__)

#: Outcomes of the check.
FIRST = "first"
PASSED = "passed"
HELD = "held"
ACCEPTED = "accepted"
NOT_COMPARED = "not_compared"

#: With fewer new users than this in either run, one large account among
#: them can move their mean past the factor on its own, so the mean over
#: every scored user is compared instead.
MIN_NEW_USERS = 30

#: The command-line flag that accepts a new level for one run.
ACCEPT_FLAG = "--accept-value-level"


@dataclass(frozen=True)
class ValueSummary:
    """The figures of the values one run scored, in the account currency.

    Values are what the feed sends: the predicted 1-year value, times the
    gross margin when the config sets one. New users are those activated in
    the ``window_days`` days before the run's start. ``revenue_total`` is the
    revenue read before the run's start, net of refunds.
    """

    currency: str
    window_days: int
    new_users: int
    new_total: float
    scored_users: int
    scored_total: float
    revenue_total: float

    @property
    def new_mean(self) -> float | None:
        """Mean value per new user; ``None`` without new users."""
        return self.new_total / self.new_users if self.new_users else None

    @property
    def scored_mean(self) -> float | None:
        """Mean value per scored user; ``None`` when no user was scored."""
        return self.scored_total / self.scored_users if self.scored_users else None

    def as_dict(self) -> dict[str, Any]:
        """The figures as stored on the run, means included for readers."""
        return {
            **asdict(self),
            "new_mean": _rounded(self.new_mean),
            "scored_mean": _rounded(self.scored_mean),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ValueSummary | None:
        """The summary stored on a run; ``None`` when it has none."""
        if not raw:
            return None
        return cls(
            currency=str(raw["currency"]),
            window_days=int(raw["window_days"]),
            new_users=int(raw["new_users"]),
            new_total=float(raw["new_total"]),
            scored_users=int(raw["scored_users"]),
            scored_total=float(raw["scored_total"]),
            revenue_total=float(raw["revenue_total"]),
        )

    def describe(self) -> str:
        """One line for people: new users, their total and mean, the revenue."""
        mean = "-" if self.new_mean is None else f"{self.new_mean:,.2f}"
        return (
            f"{self.new_users:,} new users (activated in the last "
            f"{self.window_days} days) worth {self.new_total:,.2f} "
            f"{self.currency}, mean {mean}; {self.scored_users:,} users scored, "
            f"net revenue read {self.revenue_total:,.2f} {self.currency}"
        )


@dataclass(frozen=True)
class ValueCheck:
    """How a run's mean value per user compares with the last successful run.

    ``status`` is :data:`FIRST` (nothing to compare with), :data:`PASSED`,
    :data:`HELD` (moved by more than ``factor``), :data:`ACCEPTED` (moved as
    much, accepted for this run) or :data:`NOT_COMPARED` (a mean is missing
    or zero). ``basis`` says which mean was compared: ``new`` users or all
    ``scored`` users. ``reason`` is the sentence logged and shown.
    """

    status: str
    factor: float
    reason: str
    basis: str | None = None
    mean: float | None = None
    users: int | None = None
    baseline_run: str | None = None
    baseline_date: str | None = None
    baseline_mean: float | None = None
    ratio: float | None = None
    hint: str = ""
    #: When held: the figures of the level it was held against. A rerun of
    #: the day overwrites the run's own figures, so later checks compare
    #: with these instead (see :meth:`StateStore.value_baseline`).
    baseline_summary: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        """Whether this check holds the day's targets and values."""
        return self.status == HELD

    def as_dict(self) -> dict[str, Any]:
        """The check as stored on the run."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ValueCheck | None:
        """The check stored on a run; ``None`` when it has none."""
        if not raw:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})

    def describe(self, currency: str) -> str:
        """A short cell for the runs table: the mean and how it moved."""
        mean = "-" if self.mean is None else f"{self.mean:,.2f} {currency}"
        if self.ratio is None:
            return f"{mean} ({'first run' if self.status == FIRST else 'not compared'})"
        return f"{mean} x{self.ratio:.3g} {self.status}"


def summarize_values(
    settings: Settings,
    inputs: Inputs,
    scores: pd.DataFrame,
    as_of: pd.Timestamp | dt.datetime,
) -> ValueSummary:
    """The figures of the values scored at ``as_of``.

    Parameters
    ----------
    settings
        The config: gross margin, account currency, and the window of new
        users (``guardrails.observation_window_days``).
    inputs
        The canonical tables the users were scored from.
    scores
        One row per user with ``user_id`` and ``pltv_365``.
    as_of
        The scoring time (time-zone aware); revenue after it is not counted.

    Returns
    -------
    ValueSummary
    """
    margin = settings.economics.gross_margin or 1.0
    values = scores.set_index(scores["user_id"].astype(str))["pltv_365"]
    values = values.astype(float) * margin
    values = values[values.map(math.isfinite)]
    when = pd.Timestamp(as_of)
    window = settings.guardrails.observation_window_days
    activated = inputs.users["activated_at"]
    fresh = (
        activated.notna()
        & (activated <= when)
        & (activated > when - pd.Timedelta(days=window))
    )
    new_ids = inputs.users.loc[fresh, "user_id"].astype(str).unique()
    new_values = values.reindex(new_ids).dropna()
    revenue = inputs.revenue
    revenue_total = float(revenue.loc[revenue["occurred_at"] < when, "amount"].sum())
    return ValueSummary(
        currency=settings.account.currency,
        window_days=window,
        new_users=len(new_values),
        new_total=round(float(new_values.sum()), 2),
        scored_users=len(values),
        scored_total=round(float(values.sum()), 2),
        revenue_total=round(revenue_total, 2),
    )


def check_value_level(
    summary: ValueSummary,
    baseline: RunRecord | None,
    *,
    factor: float,
    run_date: dt.date,
    accept: bool = False,
    config: Path | None = None,
) -> ValueCheck:
    """Compare a run's mean value per user with the last successful run's.

    The mean per new user is compared when both runs have at least
    :data:`MIN_NEW_USERS` of them, the mean per scored user otherwise.

    Parameters
    ----------
    summary
        The figures of the values scored now.
    baseline
        The account's last successful run (see
        :meth:`optimizer.state.StateStore.value_baseline`); ``None`` when
        there is none, so nothing is compared.
    factor
        The largest move allowed, up (``mean / baseline > factor``) or down
        (``mean / baseline < 1 / factor``).
    run_date
        The day being planned, named in the hint to accept a new level.
    accept
        Accept a move beyond ``factor`` for this run.
    config
        The config file the hint to accept a new level names; a placeholder
        when ``None``.

    Returns
    -------
    ValueCheck
    """
    hint = (
        "check the inputs (revenue exported in cents rather than currency "
        "units, one currency read as another); if the new level is real, "
        f"accept it for one run with `{run_command(config, run_date, ACCEPT_FLAG)}`"
    )
    before = ValueSummary.from_dict(baseline.value_summary if baseline else None)
    if baseline is None or before is None:
        reason = (
            "no earlier successful run of this account to compare the values "
            "with: the value level is not checked this time"
        )
        logger.info("values of %s: %s", run_date, reason)
        return ValueCheck(
            FIRST,
            factor,
            reason,
            basis="new",
            mean=_rounded(summary.new_mean),
            users=summary.new_users,
        )

    if summary.new_users >= MIN_NEW_USERS and before.new_users >= MIN_NEW_USERS:
        basis, mean, then = "new", summary.new_mean, before.new_mean
        users = summary.new_users
        label = f"new user ({users:,} activated in the last {summary.window_days} days)"
    else:
        basis, mean, then = "scored", summary.scored_mean, before.scored_mean
        users = summary.scored_users
        label = f"scored user ({users:,} users; too few new users to compare)"
    compared = ValueCheck(
        NOT_COMPARED,
        factor,
        "",
        basis=basis,
        mean=_rounded(mean),
        users=users,
        baseline_run=baseline.run_id,
        baseline_date=baseline.run_date.isoformat(),
        baseline_mean=_rounded(then),
    )
    if mean is None or then is None or then <= 0:
        missing = (
            "no user was scored this time"
            if mean is None
            else f"run {baseline.run_id} has no positive mean value to compare with"
        )
        reason = f"{missing}: the value level is not checked this time"
        logger.info("values of %s: %s", run_date, reason)
        return replace(compared, reason=reason)

    ratio = mean / then
    money = summary.currency
    # A run id names a day: a rerun compares with its own day's earlier try.
    same_day = " (an earlier try of this day)" if baseline.run_date == run_date else ""
    moved = (
        f"mean value per {label} {mean:,.2f} {money} is {ratio:.3g}x the "
        f"{then:,.2f} {money} of run {baseline.run_id}{same_day}"
    )
    if 1 / factor <= ratio <= factor:
        reason = f"{moved}, within the {factor:g}x allowed"
        logger.info("values of %s: %s", run_date, reason)
        return replace(compared, status=PASSED, reason=reason, ratio=round(ratio, 4))
    reason = (
        f"the predicted values jumped: {moved}, beyond the {factor:g}x allowed "
        "(guardrails.max_value_jump)"
    )
    if accept:
        reason = f"{reason}; accepted for this run with {ACCEPT_FLAG}"
        logger.warning("values of %s: %s", run_date, reason)
        return replace(compared, status=ACCEPTED, reason=reason, ratio=round(ratio, 4))
    logger.warning("values of %s: %s; %s", run_date, reason, hint)
    return replace(
        compared,
        status=HELD,
        reason=reason,
        ratio=round(ratio, 4),
        hint=hint,
        baseline_summary=before.as_dict(),
    )


def feed_value_check(
    settings: Settings,
    store: StateStore,
    summary: ValueSummary,
    now: dt.datetime,
) -> ValueCheck:
    """The check the feed makes before sending values it scored itself.

    The values are compared with the account's last successful cycle run,
    the one that ran last whatever day it planned: the feed runs on its own
    clock, and a run dated a day ahead of it (or behind) is still the level
    it must not jump from. Only an account with no successful run yet is
    not compared, and the check says so. While the account's latest cycle
    run is held by this guardrail, the feed holds too, even if its own
    values pass: that run's day is not settled until a run of it passes or
    accepts the new level.

    Parameters
    ----------
    settings
        The config.
    store
        The state store holding the cycle runs.
    summary
        The figures of the values the feed scored.
    now
        The feed's clock (time-zone aware).

    Returns
    -------
    ValueCheck
    """
    account = settings.account.name
    today = account_today(settings.account.time_zone, now)
    check = check_value_level(
        summary,
        store.value_baseline(account),
        factor=settings.guardrails.max_value_jump,
        run_date=today,
        config=settings.source,
    )
    latest = store.latest_run(account)
    if check.held or latest is None or latest.status != VALUE_HELD:
        return check
    reason = (
        f"the cycle run {latest.run_id} of {latest.run_date} holds the day's "
        f"values ({latest.stop_reason or 'no reason recorded'})"
    )
    hint = (
        f"fix the inputs and run `{run_command(settings.source, latest.run_date)}` "
        "again, or accept the new level with "
        f"`{run_command(settings.source, latest.run_date, ACCEPT_FLAG)}`"
    )
    logger.warning("feed values held: %s; %s", reason, hint)
    return ValueCheck(
        HELD,
        check.factor,
        reason,
        basis=check.basis,
        mean=check.mean,
        users=check.users,
        baseline_run=latest.run_id,
        baseline_date=latest.run_date.isoformat(),
        hint=hint,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
