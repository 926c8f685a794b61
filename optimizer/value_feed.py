"""The feed step of the daily cycle: score activated users, send their values.

The value sent is the predicted 1-year value, times the gross margin when the
config sets one, so that the bidder optimises what the business keeps.

Before anything is sent, the values pass the value-level check (see
:mod:`optimizer.value_level`): the cycle hands over its own check, and the
feed run on its own (``valuebid feed``, the scheduler) makes it on the values
it scored, so a day held for a jump in values sends nothing either way. The
feed on its own also judges its inputs against the config's CAC caps (see
:mod:`optimizer.plausibility`) and sends nothing on revenue or cost off by
orders of magnitude, unless the account's latest cycle run accepted them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from config.schema import Settings
from connectors.files import Inputs, load_inputs
from connectors.value_feed import (
    FeedReport,
    FeedSettings,
    Ledger,
    ValueSink,
    make_sink,
    run_feed,
)
from optimizer.days import account_today
from optimizer.exceptions import PlanningError, ValueJumpError
from optimizer.masking import secrets_mask
from optimizer.plausibility import feed_plausibility
from optimizer.state import StateStore, state_url
from optimizer.value_level import (
    HELD,
    ValueCheck,
    feed_value_check,
    summarize_values,
)

logger = logging.getLogger(__name__)


def activation_values(settings: Settings, scores: pd.DataFrame) -> pd.Series:
    """Value per user id: ``pltv_365``, times the gross margin when one is set."""
    margin = settings.economics.gross_margin or 1.0
    values = scores.set_index("user_id")["pltv_365"].astype(float) * margin
    values.index = values.index.astype(str)
    return values


def require_feed(settings: Settings) -> FeedSettings:
    """The config's ``feed:`` section, checked before any input is read.

    Raises
    ------
    PlanningError
        The config has none.
    """
    if settings.feed is None:
        raise PlanningError(
            "the config has no feed: section; add one to send activation values"
        )
    return settings.feed


@dataclass(frozen=True)
class PreparedFeed:
    """What a feed run on its own sends from: tables, scores, and their check."""

    inputs: Inputs
    scores: pd.DataFrame
    check: ValueCheck


def prepare_feed(
    settings: Settings,
    *,
    now: dt.datetime,
    inputs: Inputs | None = None,
    scores: pd.DataFrame | None = None,
    notify: Callable[[str], None] | None = None,
) -> PreparedFeed:
    """Read and score as the feed does, and check the level of the values.

    Parameters
    ----------
    settings
        The validated config.
    now
        The feed's clock (time-zone aware).
    inputs
        Already-loaded inputs; read from ``settings.data`` when ``None``.
    scores
        Already-computed scores (``user_id``, ``pltv_365``); the current model
        scores the users as of ``now`` when ``None``.
    notify
        Called with a line worth keeping in the output, as the cycle's
        ``notify``: that no model was current and one is trained, then its
        gate's verdict. Logged at INFO when ``None``.

    Returns
    -------
    PreparedFeed
        The tables, the scores, and how the values compare with the last
        successful cycle run (see :func:`optimizer.value_level.feed_value_check`);
        held too on implausible inputs (see
        :func:`optimizer.plausibility.feed_plausibility`).

    Raises
    ------
    PlanningError
        The config has no ``feed:`` section; checked before reading anything.
    """
    require_feed(settings)
    if inputs is None:
        inputs = load_inputs(
            settings.data,
            currency=settings.account.currency,
            now=pd.Timestamp(now),
            time_zone=settings.account.time_zone,
        )
    if scores is None:
        from optimizer.cycle import current_model

        as_of = pd.Timestamp(now).tz_convert("UTC")
        model = current_model(settings, inputs, as_of, notify)
        scores = model.predict(inputs.users, inputs.revenue, as_of, inputs.events)
    summary = summarize_values(settings, inputs, scores, now)
    store = StateStore(state_url(settings.state.directory, settings.state.url))
    try:
        check = feed_value_check(settings, store, summary, now)
        latest = store.latest_run(settings.account.name)
    finally:
        store.dispose()
    if not check.held:
        plausible = feed_plausibility(
            settings,
            inputs,
            now,
            run_date=account_today(settings.account.time_zone, now),
            latest=latest,
        )
        if plausible.held:
            check = ValueCheck(
                HELD,
                check.factor,
                plausible.reason,
                basis=check.basis,
                mean=check.mean,
                users=check.users,
                hint=plausible.hint,
            )
    return PreparedFeed(inputs, scores, check)


def feed_values(
    settings: Settings,
    *,
    now: dt.datetime,
    send: bool = False,
    inputs: Inputs | None = None,
    scores: pd.DataFrame | None = None,
    sink: ValueSink | None = None,
    value_check: ValueCheck | None = None,
) -> FeedReport:
    """Run the value feed once: the entry point of the cycle and the scheduler.

    Parameters
    ----------
    settings
        The validated config; its ``feed:`` section must be set.
    now
        The run's clock (time-zone aware).
    send
        Upload to Google; ``False`` is a dry run that only counts.
    inputs
        Already-loaded inputs; read from ``settings.data`` when ``None``.
    scores
        Already-computed scores (``user_id``, ``pltv_365``); the current model
        scores the users as of ``now`` when ``None``.
    sink
        Where values go; built from the config when ``None`` and sending.
    value_check
        The level check of these values, as the cycle made it; made here
        (see :func:`prepare_feed`) when ``None``.

    Returns
    -------
    FeedReport
        The feed run's id and counts (also recorded in the ledger, where an
        error text of the API is kept with the config's secrets masked; see
        :func:`optimizer.masking.secrets_mask`).

    Raises
    ------
    PlanningError
        The config has no ``feed:`` section.
    ValueJumpError
        Sending was asked while the values are held for a jump from the last
        successful run; nothing was sent or recorded.
    connectors.exceptions.ValueFeedError
        A request failed as a whole; the next run resends its rows.
    """
    feed = require_feed(settings)
    if inputs is None or scores is None or value_check is None:
        prepared = prepare_feed(settings, now=now, inputs=inputs, scores=scores)
        inputs, scores = prepared.inputs, prepared.scores
        value_check = value_check or prepared.check
    if send and value_check.held:
        raise ValueJumpError(
            f"no value sent: {value_check.reason}; "
            f"{value_check.hint or 'the day is held'}"
        )
    if send and sink is None:
        sink = make_sink(feed)

    ledger = Ledger(state_url(settings.state.directory, settings.state.url))
    try:
        return run_feed(
            inputs.users,
            activation_values(settings, scores),
            settings=feed,
            account=settings.account.name,
            currency=settings.account.currency,
            ledger=ledger,
            sink=sink,
            now=now,
            send=send,
            mask=secrets_mask(settings),
        )
    finally:
        ledger.dispose()
