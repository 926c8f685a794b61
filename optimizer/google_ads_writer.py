"""The account's targets through the Google Ads connector, as a TargetWriter.

Reads each campaign's strategy and target (a portfolio strategy's own
target for campaigns that share one) and pushes target ROAS changes with
``apply_target_changes`` and restored target CPA strategies (a rollback of a
move to value-based bidding) with ``restore_target_cpa``: validated first,
batched, partial failure handled.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config.schema import Settings
from connectors.google_ads import (
    ChangeOutcome,
    GoogleAdsSession,
    TargetChange,
    TargetCpaChange,
    apply_target_changes,
    open_session,
    restore_target_cpa,
)
from connectors.google_ads.read import enum_name, read_campaign_stats, search
from connectors.warehouse import Chunk
from optimizer.apply import (
    VALUE_BASED,
    CampaignTarget,
    TargetUpdate,
    TargetWriter,
    UpdateOutcome,
)
from optimizer.exceptions import PlanningError
from optimizer.policy import TARGET_CPA

logger = logging.getLogger(__name__)

MICROS = 1_000_000

_CAMPAIGNS_QUERY = """
SELECT
  campaign.id,
  campaign.bidding_strategy_type,
  campaign.bidding_strategy,
  campaign.target_cpa.target_cpa_micros,
  campaign.maximize_conversions.target_cpa_micros,
  campaign.target_roas.target_roas,
  campaign.maximize_conversion_value.target_roas
FROM campaign
WHERE campaign.id IN ({ids})
"""

_PORTFOLIOS_QUERY = """
SELECT
  bidding_strategy.resource_name,
  bidding_strategy.type,
  bidding_strategy.target_cpa.target_cpa_micros,
  bidding_strategy.maximize_conversions.target_cpa_micros,
  bidding_strategy.target_roas.target_roas,
  bidding_strategy.maximize_conversion_value.target_roas
FROM bidding_strategy
"""


def connect_writer(
    settings: Settings, session: GoogleAdsSession | None = None
) -> TargetWriter | None:
    """The configured accounts' writer, or ``None`` without a google_ads section.

    Building it logs in (one OAuth token request, none with a valid token)
    and sends nothing to the API: a missing key or a refused login fails here,
    before any plan is approved or applied.

    Raises
    ------
    connectors.exceptions.GoogleAdsConfigError
        A credential is missing or unreadable.
    connectors.exceptions.LoginError
        The OAuth login failed.
    """
    if settings.google_ads is None:
        return None
    session = session or open_session(settings.google_ads)
    session.login()
    return GoogleAdsTargetWriter(session, settings.google_ads.customer_ids)


@dataclass(frozen=True)
class _Seen:
    customer_id: str
    strategy: str
    portfolio: str | None


class GoogleAdsTargetWriter:
    """Campaign targets of the configured customers, through the connector.

    Parameters
    ----------
    session
        An open Google Ads session.
    customer_ids
        The accounts whose campaigns are read and changed.
    """

    def __init__(self, session: GoogleAdsSession, customer_ids: Sequence[str]) -> None:
        self._session = session
        self._customer_ids = list(customer_ids)
        self._seen: dict[str, _Seen] = {}

    def read_targets(self, campaign_ids: Sequence[str]) -> dict[str, CampaignTarget]:
        """The current strategy and target of each campaign found."""
        wanted = [c for c in campaign_ids if c.isdigit()]
        if not wanted:
            return {}
        found: dict[str, CampaignTarget] = {}
        for customer_id in self._customer_ids:
            rows = search(
                self._session,
                customer_id,
                _CAMPAIGNS_QUERY.format(ids=", ".join(wanted)),
            )
            portfolios: dict[str, Any] | None = None
            for row in rows:
                campaign = row.campaign
                holder, portfolio = campaign, campaign.bidding_strategy or None
                if portfolio is not None:
                    if portfolios is None:
                        portfolios = self._portfolios(customer_id)
                    holder = portfolios.get(portfolio, campaign)
                strategy = enum_name(
                    holder,
                    "type" if holder is not campaign else "bidding_strategy_type",
                )
                campaign_id = str(campaign.id)
                found[campaign_id] = CampaignTarget(
                    campaign_id,
                    strategy,
                    _target_roas(holder, strategy),
                    _target_cpa(holder, strategy),
                )
                self._seen[campaign_id] = _Seen(customer_id, strategy, portfolio)
        return found

    def apply(self, updates: Sequence[TargetUpdate]) -> list[UpdateOutcome]:
        """Push target ROAS and target CPA updates; others are refused, not sent."""
        outcomes: dict[str, UpdateOutcome] = {}
        changes = []
        restores = []
        for update in updates:
            refused = self._unsupported(update)
            if refused is not None:
                outcomes[update.campaign_id] = UpdateOutcome(
                    update.campaign_id, "rejected", refused
                )
                continue
            seen = self._seen[update.campaign_id]
            if update.target.strategy == TARGET_CPA:
                assert update.target.target_cpa is not None
                restores.append(
                    TargetCpaChange(
                        customer_id=seen.customer_id,
                        campaign_id=update.campaign_id,
                        # Targets were read from micros: rounding gives them back.
                        target_cpa_micros=round(update.target.target_cpa * MICROS),
                        reason=update.reason,
                    )
                )
                continue
            assert update.target.target_roas is not None
            changes.append(
                TargetChange(
                    customer_id=seen.customer_id,
                    campaign_id=update.campaign_id,
                    new_target_roas=update.target.target_roas,
                    current_strategy=seen.strategy,
                    portfolio_strategy=seen.portfolio,
                    reason=update.reason,
                )
            )
        sent: list[ChangeOutcome] = []
        if changes:
            sent += apply_target_changes(self._session, changes)
        if restores:
            sent += restore_target_cpa(self._session, restores)
        for outcome in sent:
            error = outcome.error_message
            if error and outcome.error_field_path:
                error = f"{error} (field {outcome.error_field_path})"
            outcomes[outcome.campaign_id] = UpdateOutcome(
                outcome.campaign_id,
                "applied" if outcome.status == "applied" else "rejected",
                error,
                outcome.request_id,
            )
        return [outcomes[u.campaign_id] for u in updates if u.campaign_id in outcomes]

    def _unsupported(self, update: TargetUpdate) -> str | None:
        target = update.target
        if update.campaign_id not in self._seen:
            return "campaign not read from the account before the push"
        if target.strategy == TARGET_CPA and target.target_cpa is not None:
            portfolio = self._seen[update.campaign_id].portfolio
            if portfolio is None:
                return None
            # A standard strategy would take the campaign out of its
            # portfolio, which no run does: that is for a person to decide.
            return (
                f"campaign uses portfolio strategy {portfolio}: setting target "
                f"CPA {target.target_cpa} on it is not supported: set it by hand"
            )
        if target.strategy not in VALUE_BASED or target.target_roas is None:
            return (
                f"setting strategy {target.strategy} (target CPA "
                f"{target.target_cpa}) is not supported: set it by hand"
            )
        return None

    def _portfolios(self, customer_id: str) -> dict[str, Any]:
        return {
            row.bidding_strategy.resource_name: row.bidding_strategy
            for row in search(self._session, customer_id, _PORTFOLIOS_QUERY)
        }


def _target_roas(holder: Any, strategy: str) -> float | None:
    if strategy == "TARGET_ROAS":
        value = holder.target_roas.target_roas
    elif strategy == "MAXIMIZE_CONVERSION_VALUE":
        value = holder.maximize_conversion_value.target_roas
    else:
        return None
    return float(value) if value else None


def _target_cpa(holder: Any, strategy: str) -> float | None:
    if strategy == "TARGET_CPA":
        micros = holder.target_cpa.target_cpa_micros
    elif strategy == "MAXIMIZE_CONVERSIONS":
        micros = holder.maximize_conversions.target_cpa_micros
    else:
        return None
    return micros / MICROS if micros else None


def stats_days_needed(settings: Settings) -> int:
    """Days of campaign stats the planner looks at, over every market's windows."""
    days = 0
    for market in settings.markets:
        guard = settings.guardrails_for(market)
        days = max(
            days,
            guard.observation_window_days + guard.conversion_lag_days,
            *(rule.window_days for rule in guard.min_volume.values()),
        )
    return days


def read_api_stats(
    settings: Settings,
    run_date: dt.date,
    session: GoogleAdsSession | None = None,
) -> Chunk:
    """Campaign stats of the configured accounts up to the day before ``run_date``.

    Parameters
    ----------
    settings
        The config; its ``google_ads`` section names the accounts.
    run_date
        The day being planned; stats end the day before.
    session
        An open session; one is opened from the config when ``None``.

    Returns
    -------
    connectors.warehouse.Chunk
        The stats, to be checked against the ``campaign_stats`` contract like
        any other source.
    """
    if settings.google_ads is None:
        raise PlanningError(
            "campaign stats come from Google Ads, but the config has no "
            "google_ads section"
        )
    session = session or open_session(settings.google_ads)
    end = run_date - dt.timedelta(days=1)
    start = end - dt.timedelta(days=stats_days_needed(settings) - 1)
    frame = read_campaign_stats(session, settings.google_ads.customer_ids, start, end)
    logger.info(
        "read %d campaign-days from Google Ads, %s to %s", len(frame), start, end
    )
    return Chunk("Google Ads API", 1, frame)
