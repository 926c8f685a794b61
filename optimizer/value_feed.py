"""The feed step of the daily cycle: score activated users, send their values.

The value sent is the predicted 1-year value, times the gross margin when the
config sets one, so that the bidder optimises what the business keeps.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from config.schema import Settings
from connectors.files import Inputs, load_inputs
from connectors.value_feed import FeedReport, Ledger, ValueSink, make_sink, run_feed
from optimizer.exceptions import PlanningError
from optimizer.state import state_url

logger = logging.getLogger(__name__)


def activation_values(settings: Settings, scores: pd.DataFrame) -> pd.Series:
    """Value per user id: ``pltv_365``, times the gross margin when one is set."""
    margin = settings.economics.gross_margin or 1.0
    values = scores.set_index("user_id")["pltv_365"].astype(float) * margin
    values.index = values.index.astype(str)
    return values


def feed_values(
    settings: Settings,
    *,
    now: dt.datetime,
    send: bool = False,
    inputs: Inputs | None = None,
    scores: pd.DataFrame | None = None,
    sink: ValueSink | None = None,
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

    Returns
    -------
    FeedReport
        The feed run's id and counts (also recorded in the ledger).

    Raises
    ------
    PlanningError
        The config has no ``feed:`` section.
    connectors.exceptions.ValueFeedError
        A request failed as a whole; the next run resends its rows.
    """
    if settings.feed is None:
        raise PlanningError(
            "the config has no feed: section; add one to send activation values"
        )
    if inputs is None:
        inputs = load_inputs(
            settings.data,
            currency=settings.account.currency,
            now=pd.Timestamp(now),
        )
    if scores is None:
        from optimizer.cycle import current_model

        as_of = pd.Timestamp(now).tz_convert("UTC")
        model = current_model(settings, inputs, as_of)
        scores = model.predict(inputs.users, inputs.revenue, as_of, inputs.events)
    if send and sink is None:
        sink = make_sink(settings.feed)

    ledger = Ledger(state_url(settings.state.directory, settings.state.url))
    try:
        return run_feed(
            inputs.users,
            activation_values(settings, scores),
            settings=settings.feed,
            account=settings.account.name,
            currency=settings.account.currency,
            ledger=ledger,
            sink=sink,
            now=now,
            send=send,
        )
    finally:
        ledger.dispose()
