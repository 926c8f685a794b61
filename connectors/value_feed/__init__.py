"""The activation value feed: each activated user's predicted value, sent once.

Public entry points: :func:`run_feed` (one run), :func:`make_sink` (the sink
the config names), :class:`Ledger` (what was sent) and :class:`FeedSettings`
(the ``feed:`` section of the config).
"""

from __future__ import annotations

from connectors.exceptions import GoogleAdsConfigError, ValueFeedError
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


def check_credentials(settings: FeedSettings) -> None:
    """Read the file ``feed.credentials`` names as the sink would; nothing is sent.

    The ``conversion_upload`` sink needs a ``google-ads.yaml`` with its login
    keys; the ``data_manager`` sink a service-account or authorized-user key
    file, or, with none named, this machine's default credentials, which are
    not looked up here (that may contact a metadata server).

    Raises
    ------
    ValueFeedError
        The file is missing, unreadable or unusable; the message names
        ``feed.credentials`` and the file's absolute path, never a secret.
    """
    if settings.sink == "data_manager":
        from connectors.value_feed.data_manager import check_key_file

        if settings.credentials is not None:
            check_key_file(settings.credentials)
        return
    from connectors.google_ads import credentials_from_file

    if settings.credentials is None:
        raise ValueFeedError(
            "feed.credentials: the conversion_upload sink needs the path of a "
            "google-ads.yaml file"
        )
    try:
        credentials_from_file(
            settings.credentials.absolute(),
            login_customer_id=settings.login_customer_id,
        )
    except GoogleAdsConfigError as exc:
        raise ValueFeedError(f"feed.credentials: {exc}") from exc


__all__ = [
    "ConversionEvent",
    "FeedReport",
    "FeedSettings",
    "Ledger",
    "Outcome",
    "RowResult",
    "ValueFigures",
    "ValueSink",
    "check_credentials",
    "make_sink",
    "run_feed",
    "shape_values",
    "transaction_id",
]
