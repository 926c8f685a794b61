"""The ``feed:`` section of the config: where values go and how they are shaped.

Credentials are referenced, never written in the config: a path to a
``google-ads.yaml`` (Conversion upload) or to a service-account key file
(Data Manager API; unset means the machine's Application Default Credentials).
The login goes to Google's OAuth token endpoint, or to the key file's own,
unless ``token_uri`` names another; moving ``endpoint`` does not move it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.google_login import check_token_uri

#: Google rejects clicks younger than this (TOO_RECENT_EVENT): Google Ads API,
#: "Upload offline conversions" guide.
MIN_CLICK_AGE_HOURS = 6
#: Values may be restated only while the conversion is younger than this.
RESTATEMENT_WINDOW_DAYS = 54
#: Events per request, Data Manager API and ConversionUploadService alike.
MAX_BATCH = 2000
#: The longest click-through window a conversion action can have.
MAX_CLICK_WINDOW_DAYS = 90

Identifier = Literal["gclid", "email", "phone"]
Sink = Literal["data_manager", "conversion_upload"]


class FeedSettings(BaseModel):
    """How activated users' predicted values are sent to Google."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sink: Sink = Field(
        description="data_manager (Data Manager API) or conversion_upload "
        "(Google Ads ConversionUploadService, for accounts still allowed)."
    )
    customer_id: str = Field(description="Google Ads account receiving conversions.")
    login_customer_id: str | None = Field(
        default=None, description="Manager account making the call, if any."
    )
    conversion_action_id: str = Field(description="The activation conversion action.")
    credentials: Path | None = Field(
        default=None,
        description="google-ads.yaml (conversion_upload) or a service-account "
        "key file (data_manager); never the secret itself.",
    )
    endpoint: str | None = Field(
        default=None, description="host:port of the API; the public one when unset."
    )
    token_uri: str | None = Field(
        default=None,
        description="OAuth token endpoint the login goes to; Google's (or the "
        "key file's) when unset. https, or http on this machine only.",
    )
    identifiers: tuple[Identifier, ...] = Field(
        default=("gclid",),
        min_length=1,
        description="Identifiers the account may send; email and phone are "
        "hashed, and only sent where the user granted ad_user_data consent.",
    )
    cap_percentile: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=99.0,
        description="Values above this percentile of the scored activations are "
        "cut to it; unset sends them uncapped.",
    )
    value_floor: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="Least value sent, account currency."
    )
    restatement_threshold: Annotated[float, Field(gt=0)] = Field(
        default=0.25,
        description="Restate when the new value differs from the sent one by more "
        "than this share of it.",
    )
    lookback_days: Annotated[int, Field(ge=1, le=MAX_CLICK_WINDOW_DAYS)] = Field(
        default=30,
        description="Activations older than this are not sent for the first time.",
    )
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)] = MAX_BATCH
    claim_lease_minutes: Annotated[int, Field(ge=1)] = Field(
        default=60,
        description="A send claimed by a run that died is retried after this.",
    )

    @field_validator("customer_id", "login_customer_id")
    @classmethod
    def _ten_digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = str(value).replace("-", "").strip()
        if not re.fullmatch(r"\d{10}", digits):
            msg = f"{value!r} is not a Google Ads customer id (10 digits)"
            raise ValueError(msg)
        return digits

    @field_validator("token_uri")
    @classmethod
    def _token_uri_is_safe(cls, value: str | None) -> str | None:
        return check_token_uri(value)

    @field_validator("conversion_action_id")
    @classmethod
    def _numeric(cls, value: str) -> str:
        text = str(value).strip()
        if not text.isdigit():
            raise ValueError(f"{value!r} is not a conversion action id (digits)")
        return text

    @field_validator("identifiers")
    @classmethod
    def _distinct(cls, value: tuple[Identifier, ...]) -> tuple[Identifier, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"identifiers {list(value)} repeat an entry")
        return value
