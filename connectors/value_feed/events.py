"""What the feed sends, what a sink answers, and the interface of a sink."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Consent = Literal["GRANTED", "DENIED"] | None
Kind = Literal["initial", "restatement"]


class Outcome(enum.StrEnum):
    """What became of one conversion in one request."""

    SENT = "sent"
    ALREADY_EXISTS = "already_exists"
    TOO_RECENT = "too_recent"
    EXPIRED = "expired"
    UNKNOWN_CLICK = "unknown_click"
    REJECTED = "rejected"

    @property
    def delivered(self) -> bool:
        """Google holds this value now."""
        return self in (Outcome.SENT, Outcome.ALREADY_EXISTS)

    @property
    def retry_later(self) -> bool:
        """Worth sending again on a later run."""
        return self is Outcome.TOO_RECENT


@dataclass(frozen=True)
class ConversionEvent:
    """One activation's value, ready for a sink.

    ``revision`` 0 is the first send; each restatement adds one.
    ``adjusted_at`` is the time a restatement was decided, fixed when it is
    first claimed so that a resend is the same adjustment.
    """

    transaction_id: str
    user_id: str
    revision: int
    value: float
    currency: str
    conversion_time: dt.datetime
    gclid: str | None
    hashed_email: str | None
    hashed_phone: str | None
    ad_user_data: Consent
    ad_personalization: Consent
    adjusted_at: dt.datetime | None = None

    @property
    def kind(self) -> Kind:
        """First send or restatement."""
        return "initial" if self.revision == 0 else "restatement"


@dataclass(frozen=True)
class RowResult:
    """A sink's answer for one event of a batch."""

    transaction_id: str
    revision: int
    outcome: Outcome
    detail: str = ""
    request_id: str = ""


class ValueSink(Protocol):
    """Delivers conversion values to Google; one implementation per API."""

    name: str
    supports_restatement: bool

    def login(self) -> None:
        """Get an OAuth access token now, unless a valid one is held; send nothing.

        Raises
        ------
        connectors.exceptions.LoginError
            The login failed.
        """
        ...

    def upload(self, events: Sequence[ConversionEvent]) -> list[RowResult]:
        """Send one batch (at most 2,000 events); one result per event, in order.

        Raises
        ------
        connectors.exceptions.LoginError
            The login failed; nothing was sent.
        connectors.exceptions.ValueFeedError
            The request as a whole failed; no row's fate is known.
        """
        ...


def transaction_id(account: str, conversion_action_id: str, user_id: str) -> str:
    """The stable id of a user's activation conversion.

    Derived from the account, the conversion action and the user only, so a
    rerun, a resumed crash or a second process computes the same id, and
    Google rejects the repeat as a duplicate. Hashed so that no user id is
    sent to Google.
    """
    key = f"{account}\x1f{conversion_action_id}\x1f{user_id}".encode()
    return "vb-" + hashlib.sha256(key).hexdigest()[:40]
