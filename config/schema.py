"""The settings schema: every key of the config file, with its default.

The ratios and guardrails default to the values of the design brief; each
market may override any guardrail. Money in the config is in the account
currency, named once under ``account.currency``.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.google_ads.settings import GoogleAdsSettings
from connectors.sources import DatabaseUrl
from connectors.sources import DataSettings as DataSettings
from connectors.value_feed.settings import FeedSettings

#: Google Ads accepts target ROAS values in this range (1 % to 100,000 %).
API_MIN_TARGET_ROAS = 0.01
API_MAX_TARGET_ROAS = 1000.0

PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountSettings(_Strict):
    """The advertiser account the targets belong to."""

    name: str = Field(min_length=1)
    time_zone: str = "UTC"
    currency: str

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        # Three letters in either case: a lower-case code (Stripe writes 'usd')
        # means the same currency, and is kept upper-case as revenue rows are.
        if len(value) != 3 or not value.isascii() or not value.isalpha():
            msg = f"{value!r} is not an ISO 4217 code like 'USD'"
            raise ValueError(msg)
        return value.upper()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            msg = f"unknown IANA time zone {value!r} (e.g. 'Europe/Paris')"
            raise ValueError(msg) from exc
        return value


class EconomicsSettings(_Strict):
    """The ratios of the design brief; every one is a floor on tROAS."""

    min_ltv365_to_cac: PositiveFloat = Field(
        default=1.0, description="1-year break-even: LTV_365 / CAC at least this."
    )
    target_ltv_to_cac: PositiveFloat = Field(
        default=3.0, description="LTV / CAC wanted on the long horizon."
    )
    ltv_horizon_days: Literal[1095, 1825] = 1095
    payback_months: Annotated[int, Field(ge=1, le=60)] = 12
    gross_margin: Fraction | None = Field(
        default=None,
        description="Share of revenue kept; set it to bid on margin, not revenue.",
    )
    paying_share: Fraction | None = Field(
        default=None,
        description="Share of activations that pay; unset means observed.",
    )
    paying_lag_days: Annotated[int, Field(ge=0, le=365)] = Field(
        default=30,
        description=(
            "Days a user is given to start paying before the observed paying "
            "share counts them; younger users are left out of it."
        ),
    )


class VolumeRule(_Strict):
    """Conversions a campaign needs in a trailing window before value bidding."""

    conversions: Annotated[int, Field(ge=0)]
    window_days: Annotated[int, Field(ge=1)]


#: Campaign types keyed as Google Ads names them; ``OTHER`` covers the rest.
#: Source: Google Ads Help, "About Target ROAS bidding" (Search: 15
#: conversions in 30 days; most other types: 20 in 45 days).
DEFAULT_MIN_VOLUME = {
    "SEARCH": VolumeRule(conversions=15, window_days=30),
    "OTHER": VolumeRule(conversions=20, window_days=45),
}


class GuardrailSettings(_Strict):
    """How fast and when a target may move.

    Every market may override any key but ``max_value_jump`` and the two
    ``max_plausible_*`` limits, which judge the account's inputs as a whole.
    """

    max_step: Annotated[float, Field(gt=0, le=1)] = 0.15
    min_days_between_changes: Annotated[int, Field(ge=0)] = 7
    no_change_threshold: Annotated[float, Field(ge=0, lt=1)] = 0.02
    min_volume: dict[str, VolumeRule] = Field(
        default_factory=lambda: dict(DEFAULT_MIN_VOLUME),
        description="Minimum conversions per campaign type; OTHER is the fallback.",
    )
    observation_window_days: Annotated[int, Field(ge=7)] = 28
    conversion_lag_days: Annotated[int, Field(ge=0)] = 3
    max_data_age_days: Annotated[int, Field(ge=0)] = 2
    frozen: bool = Field(
        default=False, description="When true, no target moves in this market."
    )
    max_value_jump: Annotated[float, Field(gt=1)] = Field(
        default=3.0,
        description=(
            "Account-wide: when the mean predicted value per new user is more "
            "than this many times higher or lower than at the last successful "
            "run, every target and the value feed hold for the day."
        ),
    )
    # A unit mistake moves a figure by orders of magnitude (x100 for revenue
    # in cents, x1,000,000 for cost in Google Ads micros), where real
    # accounts differ from their own benchmarks by a few times: both limits
    # sit far from either. Measured on the bundled demos: 1.5 (CDNOW) and
    # 0.65 to 5.1 by market (PLG) for the first, under 1 for the second.
    max_plausible_ltv_to_cac: Annotated[float, Field(gt=1)] = Field(
        default=50.0,
        description=(
            "Account-wide: when a market's first-year value per paying user "
            "is more than this many times its CAC cap (revenue in cents?), "
            "every target and the value feed hold."
        ),
    )
    max_plausible_cpa_to_cac: Annotated[float, Field(gt=1)] = Field(
        default=50.0,
        description=(
            "Account-wide: when a market's cost per conversion is more than "
            "this many times its CAC cap (cost in micros?), every target and "
            "the value feed hold."
        ),
    )

    @field_validator("min_volume")
    @classmethod
    def _has_fallback(cls, value: dict[str, VolumeRule]) -> dict[str, VolumeRule]:
        if "OTHER" not in value:
            msg = f"needs an OTHER entry for unlisted types (has {sorted(value)})"
            raise ValueError(msg)
        return value

    def volume_rule(self, campaign_type: str) -> VolumeRule:
        """The conversion minimum for ``campaign_type`` (OTHER when unlisted)."""
        return self.min_volume.get(campaign_type, self.min_volume["OTHER"])


class GuardrailOverrides(_Strict):
    """Per-market overrides of :class:`GuardrailSettings`; unset keys inherit.

    ``max_value_jump`` and the ``max_plausible_*`` limits are account-wide
    and so have no per-market override.
    """

    max_step: Annotated[float, Field(gt=0, le=1)] | None = None
    min_days_between_changes: Annotated[int, Field(ge=0)] | None = None
    no_change_threshold: Annotated[float, Field(ge=0, lt=1)] | None = None
    min_volume: dict[str, VolumeRule] | None = Field(
        default=None, description="Per-type minimums; merged over the defaults."
    )
    observation_window_days: Annotated[int, Field(ge=7)] | None = None
    conversion_lag_days: Annotated[int, Field(ge=0)] | None = None
    max_data_age_days: Annotated[int, Field(ge=0)] | None = None
    frozen: bool | None = None


class MarketSettings(_Strict):
    """One market (a country): its CAC benchmark and tROAS bounds."""

    cac_max: PositiveFloat = Field(
        description="Most a new paying customer may cost here, account currency."
    )
    troas_min: Annotated[
        float, Field(ge=API_MIN_TARGET_ROAS, le=API_MAX_TARGET_ROAS)
    ] = 0.5
    troas_max: Annotated[
        float, Field(ge=API_MIN_TARGET_ROAS, le=API_MAX_TARGET_ROAS)
    ] = 20.0
    campaign_name_pattern: str | None = Field(
        default=None, description="Regex; campaigns whose name matches belong here."
    )
    campaign_ids: tuple[str, ...] = ()
    cac_max_by_segment: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="CAC benchmark per user segment; unlisted segments use cac_max.",
    )
    cac_max_by_product_line: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description=(
            "CAC benchmark per product line (the users' product_line column); "
            "where a segment benchmark also applies, the lower one holds."
        ),
    )
    guardrails: GuardrailOverrides = GuardrailOverrides()

    @field_validator("campaign_name_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _ordered_bounds(self) -> MarketSettings:
        if self.troas_min > self.troas_max:
            msg = f"troas_min {self.troas_min} is above troas_max {self.troas_max}"
            raise ValueError(msg)
        return self


class FinanceSettings(_Strict):
    """Company figures for the Rule of 40, the budget rules and business cases.

    Growth and EBITDA margin come from these keys or, when ``file`` is set,
    from its last two years (CSV with columns year, revenue, ebitda and
    optionally sales_marketing_cost, marketing_budget). Money is annual, in
    the account currency.
    """

    file: Path | None = None
    revenue_growth_pct: float | None = Field(
        default=None, description="Year-over-year revenue growth, in percent."
    )
    ebitda_margin_pct: float | None = Field(
        default=None, description="EBITDA over revenue, in percent."
    )
    marketing_budget: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Marketing budget for the next 12 months."
    )
    sales_marketing_cost: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="Total sales and marketing cost over 12 months."
    )
    expected_new_revenue: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="New revenue expected in the next 12 months; unset derives it.",
    )
    budget_share_min: Fraction = 0.15
    budget_share_max: Fraction = 0.20
    max_sales_marketing_months: Annotated[float, Field(gt=0)] = 12.0
    rule_of_40_threshold: float = 40.0
    hire_payback_months: Annotated[int, Field(ge=1, le=60)] = 12

    @model_validator(mode="after")
    def _ordered_shares(self) -> FinanceSettings:
        if self.budget_share_min > self.budget_share_max:
            msg = (
                f"budget_share_min {self.budget_share_min} is above "
                f"budget_share_max {self.budget_share_max}"
            )
            raise ValueError(msg)
        return self


class ModelSettings(_Strict):
    """Where model artefacts live and when to retrain."""

    directory: Path = Path("models")
    retrain_every_days: Annotated[int, Field(ge=1)] = 7
    max_train_users: Annotated[int, Field(ge=200)] | None = Field(
        default=100_000,
        description=(
            "Labelled users a training uses at most, drawn at random; null "
            "uses every one. Bounds training time and memory on large accounts."
        ),
    )


class StateSettings(_Strict):
    """Where runs, plans and applied changes are recorded."""

    directory: Path = Path(".valuebid")
    url: DatabaseUrl | None = Field(
        default=None,
        description="SQLAlchemy URL of the state database; default SQLite file.",
    )


def _crontab(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    fields = value.split()
    # Weekday numbers differ between cron dialects (0 is Sunday in crontab,
    # Monday in the scheduler), so only names are accepted there.
    if len(fields) == 5 and any(ch.isdigit() for ch in fields[4]):
        msg = (
            f"weekday field {fields[4]!r} uses numbers; write day names "
            "(e.g. 'sun', 'mon-fri'), whose meaning cannot be mistaken"
        )
        raise ValueError(msg)
    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        msg = (
            f"not a crontab expression (minute hour day month weekday, "
            f"e.g. '30 6 * * *'): {exc}"
        )
        raise ValueError(msg) from exc
    return value


Crontab = Annotated[str, AfterValidator(_crontab)]


class ScheduleSettings(_Strict):
    """When each job runs, as crontab expressions in the account time zone."""

    cycle: Crontab = "30 6 * * *"
    value_feed: Crontab = "0 */6 * * *"
    retrain: Crontab = "0 3 * * sun"
    misfire_grace_seconds: Annotated[int, Field(ge=1)] = Field(
        default=3600,
        description="A run missed by at most this long still happens, once.",
    )


def check_webhook_url(url: str) -> str:
    """Check that ``url`` is an http or https URL naming a host.

    Raises
    ------
    ValueError
        It is not. The message says what is wrong without repeating the URL,
        which is a secret: whoever holds it can post to the channel.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        # Not the parser's words: they may quote the part it could not read.
        msg = "not a URL whose host and port can be read (the URL is not shown)"
        raise ValueError(msg) from None
    if parts.scheme not in ("http", "https"):
        # What reads as a scheme may be the start of a token pasted without
        # one: only a short word is shown.
        found = (
            f"found {parts.scheme}:"
            if parts.scheme.isalpha() and len(parts.scheme) <= 8
            else "found none"
        )
        msg = f"must start with http:// or https:// ({found}; the URL is not shown)"
        raise ValueError(msg)
    if not host:
        msg = f"names no host after {parts.scheme}:// (the URL is not shown)"
        raise ValueError(msg)
    return url


def _checked_webhook_url(value: object) -> object:
    return check_webhook_url(value) if isinstance(value, str) else value


#: A webhook URL, checked as :func:`check_webhook_url` does and held hidden.
WebhookUrl = Annotated[SecretStr, BeforeValidator(_checked_webhook_url)]


class AlertSettings(_Strict):
    """Where failures and big applied changes are announced."""

    webhook_url: WebhookUrl | None = Field(
        default=None,
        description="Slack-compatible incoming webhook; unset sends nothing. "
        "Held hidden: no repr or log of the settings shows it.",
    )
    change_pct_threshold: Annotated[float, Field(ge=0)] = Field(
        default=10.0, description="Alert on applied target moves of this % or more."
    )
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0


class OperationsSettings(_Strict):
    """How plans are applied, locked, stopped and announced."""

    apply_mode: Literal["approval", "auto"] = Field(
        default="approval",
        description="auto pushes each day's plan; approval waits for "
        "`valuebid approve`.",
    )
    kill_switch_file: Path | None = Field(
        default=None,
        description="While this file exists nothing is applied; default "
        "<state.directory>/KILL_SWITCH.",
    )
    max_plan_age_days: Annotated[int, Field(ge=0)] = Field(
        default=1, description="A plan older than this is not applied."
    )
    lock_ttl_seconds: Annotated[int, Field(ge=10)] = 900
    lock_wait_seconds: Annotated[float, Field(ge=0)] = 120.0
    schedule: ScheduleSettings = ScheduleSettings()
    alerts: AlertSettings = AlertSettings()


class Settings(_Strict):
    """The whole config file."""

    account: AccountSettings
    data: DataSettings
    markets: dict[str, MarketSettings] = Field(min_length=1)
    default_market: str | None = Field(
        default=None, description="Market of campaigns no rule places."
    )
    economics: EconomicsSettings = EconomicsSettings()
    guardrails: GuardrailSettings = GuardrailSettings()
    finance: FinanceSettings = FinanceSettings()
    model: ModelSettings = ModelSettings()
    state: StateSettings = StateSettings()
    feed: FeedSettings | None = Field(
        default=None, description="Send activation values to Google; unset: off."
    )
    kill_switch: bool = Field(
        default=False, description="When true, no target is changed anywhere."
    )
    google_ads: GoogleAdsSettings | None = Field(
        default=None,
        description="The Google Ads accounts to read and push; unset, files only.",
    )
    operations: OperationsSettings = OperationsSettings()

    # Not a key of the file: where the settings were read from, so that a
    # message telling a person which command to run next can name the file.
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The config file, as it was named when read; ``None`` if built in code."""
        return self._source

    def read_from(self, path: Path) -> Settings:
        """These settings, marked as read from the config file ``path``."""
        marked = self.model_copy()
        marked._source = path
        return marked

    @field_validator("markets")
    @classmethod
    def _country_codes(
        cls, value: dict[str, MarketSettings]
    ) -> dict[str, MarketSettings]:
        for code in value:
            if not re.fullmatch(r"[A-Z]{2}", code):
                msg = f"market {code!r} is not an ISO 3166 alpha-2 code like 'FR'"
                raise ValueError(msg)
        return value

    @field_validator("default_market")
    @classmethod
    def _default_market_known(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        if "markets" not in info.data:
            # The markets failed their own checks, which say why; naming the
            # default as missing from them would be a second, false error.
            return value
        markets = info.data["markets"] or {}
        if value is not None and value not in markets:
            msg = f"{value!r} is not one of the markets {sorted(markets)}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _campaign_stats_have_a_source(self) -> Settings:
        if self.data.campaign_stats is None and self.google_ads is None:
            msg = (
                "data.campaign_stats is unset and there is no google_ads section "
                "to read campaign stats from; set one of them"
            )
            raise ValueError(msg)
        return self

    def guardrails_for(self, market: str) -> GuardrailSettings:
        """The guardrails in force in ``market``: its overrides over the defaults."""
        market_overrides = self.markets[market].guardrails
        overrides = market_overrides.model_dump(exclude_none=True)
        if market_overrides.min_volume is not None:
            overrides["min_volume"] = {
                **self.guardrails.min_volume,
                **market_overrides.min_volume,
            }
        return self.guardrails.model_copy(update=overrides)
