"""The activation value feed: each activated user's predicted value, sent once.

Public entry points: :func:`run_feed` (one run), :func:`make_sink` (the sink
the config names), :class:`Ledger` (what was sent) and :class:`FeedSettings`
(the ``feed:`` section of the config).
"""

from __future__ import annotations

from connectors.value_feed.events import (
    ConversionEvent,
    Outcome,
    RowResult,
    ValueSink,
    transaction_id,
)
from connectors.value_feed.feed import (
    FeedReport,
    ValueFigures,
    run_feed,
    shape_values,
)
from connectors.value_feed.ledger import Ledger
from connectors.value_feed.settings import FeedSettings


def make_sink(settings: FeedSettings) -> ValueSink:
    """The sink ``settings.sink`` names, with its client built from the config."""
    if settings.sink == "data_manager":
        from connectors.value_feed.data_manager import DataManagerSink

        return DataManagerSink.from_settings(settings)
    from connectors.value_feed.conversion_upload import ConversionUploadSink

    return ConversionUploadSink.from_settings(settings)


__all__ = [
    "ConversionEvent",
    "FeedReport",
    "FeedSettings",
    "Ledger",
    "Outcome",
    "RowResult",
    "ValueFigures",
    "ValueSink",
    "make_sink",
    "run_feed",
    "shape_values",
    "transaction_id",
]
