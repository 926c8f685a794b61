"""Which market each campaign belongs to: configured rules, then its geo targets."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping

import pandas as pd

from connectors.google_ads.read import search
from connectors.google_ads.session import GoogleAdsSession
from connectors.google_ads.settings import CampaignMarketRule

logger = logging.getLogger(__name__)

MARKET_COLUMNS = ("customer_id", "campaign_id", "market", "market_source")

_LOCATIONS_QUERY = """
SELECT campaign.id, campaign_criterion.location.geo_target_constant
FROM campaign_criterion
WHERE campaign_criterion.type = 'LOCATION'
  AND campaign_criterion.negative = FALSE
  AND campaign.id IN ({ids})
"""

_COUNTRIES_QUERY = """
SELECT geo_target_constant.resource_name, geo_target_constant.country_code
FROM geo_target_constant
WHERE geo_target_constant.resource_name IN ({names})
"""


def assign_markets(
    session: GoogleAdsSession,
    campaigns: pd.DataFrame,
    rules: Mapping[str, CampaignMarketRule],
) -> pd.DataFrame:
    """Map each campaign to a market.

    A listed campaign id wins; then a name pattern matching exactly one
    market; then location targeting read from the API, when every targeted
    country belongs to exactly one market. Others stay unmapped (market
    missing), with a warning, so a person can add them to the configuration.

    Parameters
    ----------
    campaigns
        At least ``customer_id``, ``campaign_id`` and ``campaign_name``, e.g.
        the output of ``read_campaign_stats`` (duplicates are dropped).
    rules
        Market name to its rule, the ``markets`` of ``GoogleAdsSettings``.

    Returns
    -------
    pandas.DataFrame
        ``MARKET_COLUMNS``: market_source is ``campaign_ids``,
        ``name_pattern``, ``location`` or ``unmapped``.
    """
    unique = campaigns[["customer_id", "campaign_id", "campaign_name"]]
    unique = unique.drop_duplicates(["customer_id", "campaign_id"])
    by_id = {cid: market for market, rule in rules.items() for cid in rule.campaign_ids}
    patterns = {
        market: re.compile(rule.name_pattern)
        for market, rule in rules.items()
        if rule.name_pattern is not None
    }

    assigned: dict[tuple[str, str], tuple[str | None, str]] = {}
    pending: dict[str, list[str]] = defaultdict(list)
    for customer_id, campaign_id, name in unique.itertuples(index=False):
        key = (str(customer_id), str(campaign_id))
        named = [m for m, pattern in patterns.items() if pattern.search(str(name))]
        if campaign_id in by_id:
            assigned[key] = (by_id[campaign_id], "campaign_ids")
        elif len(named) == 1:
            assigned[key] = (named[0], "name_pattern")
        else:
            pending[key[0]].append(key[1])

    countries = _market_countries(rules)
    for customer_id, campaign_ids in pending.items():
        targeted = read_campaign_countries(session, customer_id, campaign_ids)
        for campaign_id in campaign_ids:
            market = _market_of(targeted.get(campaign_id, frozenset()), countries)
            source = "location" if market is not None else "unmapped"
            assigned[(customer_id, campaign_id)] = (market, source)
            if market is None:
                logger.warning(
                    "campaign %s of customer %s matches no market: list its id "
                    "or a name pattern under the market in the configuration",
                    campaign_id,
                    customer_id,
                )

    return pd.DataFrame(
        [(c, k, m, s) for (c, k), (m, s) in assigned.items()],
        columns=list(MARKET_COLUMNS),
    )


def read_campaign_countries(
    session: GoogleAdsSession, customer_id: str, campaign_ids: list[str]
) -> dict[str, frozenset[str]]:
    """The countries (ISO alpha-2) each campaign positively targets."""
    if not campaign_ids:
        return {}
    rows = search(
        session,
        customer_id,
        _LOCATIONS_QUERY.format(ids=", ".join(str(int(i)) for i in campaign_ids)),
    )
    geo_of: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        geo_of[str(row.campaign.id)].add(
            row.campaign_criterion.location.geo_target_constant
        )
    names = sorted({name for names in geo_of.values() for name in names})
    if not names:
        return {}

    quoted = ", ".join(f"'{name}'" for name in names)
    country_of = {
        row.geo_target_constant.resource_name: row.geo_target_constant.country_code
        for row in search(session, customer_id, _COUNTRIES_QUERY.format(names=quoted))
    }
    return {
        campaign_id: frozenset(country_of[n] for n in geo if country_of.get(n))
        for campaign_id, geo in geo_of.items()
    }


def _market_countries(
    rules: Mapping[str, CampaignMarketRule],
) -> dict[str, frozenset[str]]:
    countries = {}
    for market, rule in rules.items():
        codes = rule.countries or ([market.upper()] if len(market) == 2 else [])
        countries[market] = frozenset(codes)
    return countries


def _market_of(
    targeted: frozenset[str], countries: Mapping[str, frozenset[str]]
) -> str | None:
    if not targeted:
        return None
    matches = [market for market, codes in countries.items() if targeted <= codes]
    return matches[0] if len(matches) == 1 else None
