"""Errors raised by the connectors.

Hierarchy::

    ConnectorError
    ├── InputError              a source is missing, unreadable or breaks its contract
    │   └── ContractError       rows or columns that break the canonical table contract
    ├── GoogleAdsError          the Google Ads API refused or failed a request
    └── ValueFeedError          the conversion value feed could not deliver
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error raised by a connector."""


class InputError(ConnectorError):
    """A source is missing, unreadable, or breaks its contract."""


class ContractError(InputError):
    """A table breaks its canonical contract (columns, types, values)."""


class GoogleAdsError(ConnectorError):
    """The Google Ads API refused or failed a request."""


class ValueFeedError(ConnectorError):
    """The conversion value feed could not deliver."""
