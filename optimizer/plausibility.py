"""The plausibility guardrail: inputs off by orders of magnitude hold the day.

The value-level guardrail (:mod:`optimizer.value_level`) catches a unit
mistake by comparing the values with an earlier run, so an account's first
run, which has none, passes it whatever the units. This guardrail needs no
history: it sets the account's inputs against the benchmarks its own config
gives, each market's CAC cap (``cac_max``).

- **Revenue.** A market's first-year value per paying user (revenue, times
  the gross margin when one is set, of the users whose first year is over)
  over its CAC cap is its LTV/CAC at the cap. Real businesses sit within a
  few times it, since the cap is set from that value; revenue exported in
  cents makes it a hundred times higher.
- **Cost.** A market's cost per conversion over the last
  ``observation_window_days`` days of campaign stats, over its highest CAC
  cap. A conversion costs less than a paying customer, so it is at most a
  few times the cap on a real account; cost exported in Google Ads micros
  makes it a million times higher.

When either goes beyond its limit (``guardrails.max_plausible_ltv_to_cac``,
``guardrails.max_plausible_cpa_to_cac``), the cycle run holds every target
and sends no value, as for a jump in values, and names the figure, the
limit and the likely cause. A person whose business is truly that unusual
raises the limit in the config, or accepts the figures for one run with
``valuebid run --accept-unusual-economics``. ``valuebid check``, ``valuebid
economics`` and ``valuebid case`` warn with the same sentences, and the feed
run on its own sends nothing on such inputs unless the account's latest
cycle run accepted them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from config.schema import MarketSettings, Settings
from connectors.contracts import member_of
from connectors.files import Inputs
from optimizer.commands import run_command
from optimizer.planner import campaign_countries, market_of, user_cac_max
from optimizer.state import RunRecord

logger = logging.getLogger(__name__)

#: Outcomes of the check.
PASSED = "passed"
HELD = "held"
ACCEPTED = "accepted"

#: The figures compared with a limit.
LTV_TO_CAC = "ltv_to_cac"
CPA_TO_CAC = "cpa_to_cac"

#: The command-line flag that accepts implausible figures for one run.
ACCEPT_FLAG = "--accept-unusual-economics"

#: A market needs this many paying users whose first year is over before
#: their mean value is judged: with fewer, one large customer can carry it.
MIN_PAYERS = 30

#: A market needs this many conversions before its cost per conversion is
#: judged: one conversion after a costly week is a bad campaign, not a unit.
MIN_CONVERSIONS = 10

_LIKELY_CAUSE = {
    LTV_TO_CAC: "revenue exported in cents rather than currency units?",
    CPA_TO_CAC: "campaign cost exported in micros rather than currency units?",
}
_LIMIT_KEY = {
    LTV_TO_CAC: "guardrails.max_plausible_ltv_to_cac",
    CPA_TO_CAC: "guardrails.max_plausible_cpa_to_cac",
}


@dataclass(frozen=True)
class Signal:
    """One figure of one market beyond its plausible limit.

    ``value`` is the first-year value per paying user (:data:`LTV_TO_CAC`)
    or the cost per conversion (:data:`CPA_TO_CAC`), ``count`` the paying
    users or conversions it is measured on, both in the account currency.
    """

    market: str
    figure: str
    value: float
    count: float
    cac_cap: float
    ratio: float
    limit: float

    def describe(self, currency: str, window_days: int) -> str:
        """The sentence shown and recorded: figure, cap, ratio, limit, cause."""
        if self.figure == LTV_TO_CAC:
            what = (
                f"first-year value per paying user {self.value:,.2f} {currency} "
                f"({self.count:,.0f} paying users)"
            )
        else:
            what = (
                f"cost per conversion {self.value:,.2f} {currency} "
                f"({self.count:,.0f} conversions in the last {window_days} days "
                "of campaign stats)"
            )
        return (
            f"market {self.market}: {what} is {_times(self.ratio)} its CAC cap "
            f"{self.cac_cap:,.2f} {currency}, beyond the {self.limit:g}x "
            f"plausible ({_LIMIT_KEY[self.figure]}): {_LIKELY_CAUSE[self.figure]}"
        )


@dataclass(frozen=True)
class PlausibilityCheck:
    """Whether the inputs are within orders of magnitude of the config's caps.

    ``status`` is :data:`PASSED`, :data:`HELD` (a figure beyond its limit) or
    :data:`ACCEPTED` (as far, accepted for this run). ``reason`` is the
    sentence logged, printed and recorded; ``hint`` says how to go on.
    """

    status: str
    reason: str
    signals: tuple[Signal, ...] = ()
    hint: str = ""

    @property
    def held(self) -> bool:
        """Whether this check holds the day's targets and values."""
        return self.status == HELD

    def as_dict(self) -> dict[str, Any]:
        """The check as stored on the run."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> PlausibilityCheck | None:
        """The check stored on a run; ``None`` when it has none."""
        if not raw:
            return None
        return cls(
            status=str(raw["status"]),
            reason=str(raw["reason"]),
            signals=tuple(Signal(**signal) for signal in raw.get("signals", ())),
            hint=str(raw.get("hint", "")),
        )


def check_plausibility(
    settings: Settings,
    inputs: Inputs,
    as_of: pd.Timestamp,
    *,
    run_date: dt.date,
    accept: bool = False,
    config: Path | None = None,
    log: bool = True,
) -> PlausibilityCheck:
    """Set the inputs against each market's CAC cap, by orders of magnitude.

    Parameters
    ----------
    settings
        The config: the markets' caps, the gross margin, the limits
        ``guardrails.max_plausible_ltv_to_cac`` and
        ``guardrails.max_plausible_cpa_to_cac``.
    inputs
        The checked tables; revenue from ``as_of`` on is not counted.
    as_of
        The start of the day planned (time-zone aware).
    run_date
        The day planned, named in the hint to accept the figures.
    accept
        Accept figures beyond their limit for this run.
    config
        The config file the hint names; a placeholder when ``None``.
    log
        Log a finding as a warning (a run's decision); ``False`` for a
        command that prints the finding itself.

    Returns
    -------
    PlausibilityCheck
    """
    signals = implausible_signals(settings, inputs, as_of)
    if not signals:
        return PlausibilityCheck(
            PASSED, "every market's revenue and cost are within the plausible limits"
        )

    reason = describe_signals(settings, signals)
    if accept:
        reason = f"{reason}; accepted for this run with {ACCEPT_FLAG}"
        if log:
            logger.warning("inputs of %s: %s", run_date, reason)
        return PlausibilityCheck(ACCEPTED, reason, signals)
    hint = (
        f"check the exports' units; if the figures are real, raise "
        f"{limit_keys(signals)} in the config, or accept them for one run with "
        f"`{run_command(config, run_date, ACCEPT_FLAG)}`"
    )
    if log:
        logger.warning("inputs of %s: %s; %s", run_date, reason, hint)
    return PlausibilityCheck(HELD, reason, signals, hint)


def implausible_signals(
    settings: Settings, inputs: Inputs, as_of: pd.Timestamp
) -> tuple[Signal, ...]:
    """Every market's figure beyond its plausible limit; empty when none is.

    The measure behind :func:`check_plausibility`, with no decision made
    and nothing logged, for the commands that only report on the inputs.

    Parameters
    ----------
    settings
        The config: the markets' caps, the gross margin and the limits.
    inputs
        The checked tables; revenue from ``as_of`` on is not counted.
    as_of
        The start of the day measured (time-zone aware).

    Returns
    -------
    tuple of Signal
        Revenue signals first, then cost signals, each in market order.
    """
    markets = _user_markets(settings, inputs)
    return (
        *_value_signals(settings, inputs, markets, as_of),
        *_cost_signals(settings, inputs),
    )


def describe_signals(settings: Settings, signals: tuple[Signal, ...]) -> str:
    """The sentence naming each figure, its cap, ratio, limit and likely cause."""
    currency = settings.account.currency
    window = settings.guardrails.observation_window_days
    found = "; ".join(signal.describe(currency, window) for signal in signals)
    return f"the inputs are implausible for the config's CAC caps: {found}"


def limit_keys(signals: tuple[Signal, ...]) -> str:
    """The config keys of the limits ``signals`` went beyond, joined by "and"."""
    return " and ".join(sorted({_LIMIT_KEY[s.figure] for s in signals}))


def feed_plausibility(
    settings: Settings,
    inputs: Inputs,
    now: dt.datetime,
    *,
    run_date: dt.date,
    latest: RunRecord | None,
) -> PlausibilityCheck:
    """The check the feed makes on its own: held unless a cycle run accepted.

    A person who accepted the figures in the account's latest cycle run
    (``--accept-unusual-economics``) accepted what the feed sends too, until
    the next cycle run judges them again.
    """
    check = check_plausibility(
        settings, inputs, pd.Timestamp(now), run_date=run_date, config=settings.source
    )
    if not check.held or latest is None:
        return check
    accepted = PlausibilityCheck.from_dict((latest.inputs or {}).get("plausibility"))
    if accepted is None or accepted.status != ACCEPTED:
        return check
    reason = f"{check.reason}; accepted by the cycle run {latest.run_id}"
    logger.warning("feed inputs: %s", reason)
    return replace(check, status=ACCEPTED, reason=reason, hint="")


def _user_markets(settings: Settings, inputs: Inputs) -> pd.Series:
    """Each user's market: its campaign's, else its country, else the default."""
    users = inputs.users
    stats = inputs.campaign_stats
    countries = campaign_countries(users)
    latest = stats.sort_values("date").drop_duplicates("campaign_id", keep="last")
    by_campaign = {
        str(cid): market_of(settings, str(cid), str(name), countries)
        for cid, name in zip(
            latest["campaign_id"], latest["campaign_name"], strict=True
        )
    }
    market = users["campaign_id"].astype("object").map(by_campaign)
    country = users["country"].astype("object")
    market = market.fillna(country.where(country.isin(list(settings.markets))))
    if settings.default_market is not None:
        market = market.fillna(settings.default_market)
    return market


def _value_signals(
    settings: Settings,
    inputs: Inputs,
    markets: pd.Series,
    as_of: pd.Timestamp,
) -> list[Signal]:
    """Markets whose first-year value per paying user is beyond the limit."""
    users = inputs.users
    year = pd.Timedelta(days=365)
    done = (users["signup_at"] <= as_of - year).to_numpy(dtype=bool)
    signup = users.loc[done].set_index("user_id")["signup_at"]
    revenue = inputs.revenue
    revenue = revenue[
        (revenue["occurred_at"] < as_of) & member_of(revenue["user_id"], signup.index)
    ]
    if revenue.empty:
        return []
    since = revenue["occurred_at"] - revenue["user_id"].map(signup)
    first_year = revenue.loc[(since < year).to_numpy(dtype=bool)]
    margin = settings.economics.gross_margin or 1.0
    per_user = first_year.groupby("user_id", observed=True)["amount"].sum() * margin
    per_user = per_user[per_user > 0]
    payers = users.loc[done].set_index("user_id")
    payers = payers.loc[payers.index.isin(per_user.index)]
    payer_market = markets.loc[done].set_axis(users.loc[done, "user_id"])
    payer_market = payer_market.reindex(payers.index)

    limit = settings.guardrails.max_plausible_ltv_to_cac
    signals = []
    for code, market in settings.markets.items():
        mine = payers[(payer_market == code).to_numpy(dtype=bool)]
        if len(mine) < MIN_PAYERS:
            continue
        value = float(per_user.reindex(mine.index).mean())
        cap = float(user_cac_max(market, mine).mean())
        if value / cap > limit:
            signals.append(
                Signal(code, LTV_TO_CAC, value, len(mine), cap, value / cap, limit)
            )
    return signals


def _cost_signals(settings: Settings, inputs: Inputs) -> list[Signal]:
    """Markets whose cost per conversion is beyond the limit."""
    stats = inputs.campaign_stats
    window = settings.guardrails.observation_window_days
    newest = stats["date"].max()
    recent = stats[(stats["date"] > newest - pd.Timedelta(days=window)).to_numpy()]
    countries = campaign_countries(inputs.users)
    names = recent.drop_duplicates("campaign_id", keep="last")
    market = {
        str(cid): market_of(settings, str(cid), str(name), countries)
        for cid, name in zip(names["campaign_id"], names["campaign_name"], strict=True)
    }
    by_market = (
        recent[["cost", "conversions"]]
        .astype("float64")
        .groupby(recent["campaign_id"].astype("object").map(market).to_numpy())
        .sum()
    )

    limit = settings.guardrails.max_plausible_cpa_to_cac
    signals = []
    for code, totals in by_market.iterrows():
        conversions = float(totals["conversions"])
        if conversions < MIN_CONVERSIONS:
            continue
        cpa = float(totals["cost"]) / conversions
        cap = _highest_cap(settings.markets[str(code)])
        if cpa / cap > limit:
            signals.append(
                Signal(str(code), CPA_TO_CAC, cpa, conversions, cap, cpa / cap, limit)
            )
    return signals


def _highest_cap(market: MarketSettings) -> float:
    """The market's highest CAC benchmark, segment and product line included."""
    return max(
        [
            market.cac_max,
            *market.cac_max_by_segment.values(),
            *market.cac_max_by_product_line.values(),
        ]
    )


def _times(ratio: float) -> str:
    """A ratio as people read it: ``153x``, ``750,016x``, ``2.3x``."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"
