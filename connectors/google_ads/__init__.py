"""Google Ads connector: read campaign stats, push target changes.

Everything goes through the official ``google-ads`` client, newest API version
it ships, over a ``GoogleAdsSession`` that retries transient errors and turns
failures into ``connectors.exceptions.GoogleAdsError``.
"""

from connectors.google_ads.markets import assign_markets, read_campaign_countries
from connectors.google_ads.read import (
    CAMPAIGN_STATS_COLUMNS,
    LEARNING_STATUSES,
    is_learning,
    read_campaign_stats,
)
from connectors.google_ads.session import (
    GoogleAdsSession,
    RetryPolicy,
    as_session,
    google_ads_client,
    oauth_credentials,
    open_session,
)
from connectors.google_ads.settings import (
    CampaignMarketRule,
    GoogleAdsCredentials,
    GoogleAdsSettings,
    RetrySettings,
    check_credentials_file,
    credentials_from_file,
    load_credentials,
    newest_api_version,
    normalize_customer_id,
)
from connectors.google_ads.write import (
    MAX_OPERATIONS_PER_REQUEST,
    ChangeOutcome,
    TargetChange,
    TargetCpaChange,
    apply_target_changes,
    restore_target_cpa,
)

__all__ = [
    "CAMPAIGN_STATS_COLUMNS",
    "LEARNING_STATUSES",
    "MAX_OPERATIONS_PER_REQUEST",
    "CampaignMarketRule",
    "ChangeOutcome",
    "GoogleAdsCredentials",
    "GoogleAdsSession",
    "GoogleAdsSettings",
    "RetryPolicy",
    "RetrySettings",
    "TargetChange",
    "TargetCpaChange",
    "apply_target_changes",
    "as_session",
    "assign_markets",
    "check_credentials_file",
    "credentials_from_file",
    "google_ads_client",
    "is_learning",
    "load_credentials",
    "newest_api_version",
    "normalize_customer_id",
    "oauth_credentials",
    "open_session",
    "read_campaign_countries",
    "read_campaign_stats",
    "restore_target_cpa",
]
