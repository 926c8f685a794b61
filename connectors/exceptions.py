"""Errors raised by the connectors.

Hierarchy::

    ConnectorError
    ├── InputError              a source is missing, unreadable or breaks its contract
    │   └── ContractError       rows or columns that break the canonical table contract
    ├── GoogleAdsConfigError    Google Ads settings or credentials unusable (no request)
    ├── GoogleAdsError          the Google Ads API refused or failed a request
    │   └── GoogleAdsTransientError   still unavailable, timed out or over quota
    │                                 after the retries
    ├── LoginError              the OAuth login to a Google API failed
    └── ValueFeedError          the conversion value feed could not deliver
"""

from __future__ import annotations

from dataclasses import dataclass


class ConnectorError(Exception):
    """Base class of every error raised by a connector."""


class InputError(ConnectorError):
    """A source is missing, unreadable, or breaks its contract."""


class ContractError(InputError):
    """A table breaks its canonical contract (columns, types, values)."""


class GoogleAdsConfigError(ConnectorError, ValueError):
    """Google Ads settings or credentials are unusable; raised before any request."""


@dataclass(frozen=True)
class ApiErrorDetail:
    """One error the Google Ads API reported: its code, message and field path."""

    code: str
    message: str
    field_path: str = ""


class GoogleAdsError(ConnectorError):
    """The Google Ads API refused or failed a request.

    ``request_id`` is the id Google support asks for; ``status`` the gRPC
    status name; ``errors`` each error the API listed, with its field path.
    """

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        status: str | None = None,
        errors: tuple[ApiErrorDetail, ...] = (),
    ) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.status = status
        self.errors = errors

    def __str__(self) -> str:
        text = super().__str__()
        if self.request_id:
            text = f"{text} (request id {self.request_id})"
        return text


class GoogleAdsTransientError(GoogleAdsError):
    """The API stayed unavailable, timed out or over quota through every retry."""


class LoginError(ConnectorError):
    """The OAuth login to a Google API failed: no access token, so no request.

    ``api`` names the API; ``transient`` is true when the token endpoint
    could not be reached (worth retrying), false when it refused the
    credentials. The message never holds a secret.
    """

    def __init__(self, message: str, *, api: str, transient: bool = False) -> None:
        super().__init__(message)
        self.api = api
        self.transient = transient


class ValueFeedError(ConnectorError):
    """The conversion value feed could not deliver."""
