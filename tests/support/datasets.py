"""Small, valid canonical input files that tests then break one way at a time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

USERS_CSV = """user_id,signup_at,activated_at,country,segment,campaign_id,gclid
u1,2026-10-01T10:00:00Z,2026-10-01T11:00:00Z,US,smb,101,g1
u2,2026-10-02T10:00:00+02:00,,US,freelancer,101,g2
u3,2026-10-03T10:00:00Z,2026-10-03T12:00:00Z,US,smb,102,
"""

REVENUE_CSV = """user_id,occurred_at,amount,currency,order_id
u1,2026-10-01T12:00:00Z,49.00,USD,o1
u1,2026-11-01T12:00:00Z,49.00,USD,o2
u3,2026-10-04T08:00:00Z,120.50,USD,o3
"""

STATS_CSV = """date,campaign_id,campaign_name,cost,conversions,conversion_value,\
bidding_strategy_type,target_cpa,target_roas
2026-11-30,101,US | Search,120.5,3,0,TARGET_CPA,40,
2026-11-30,102,US | Display,80,2,150,TARGET_ROAS,,2.5
"""


@dataclass(frozen=True)
class Dataset:
    """Paths of a written dataset and its config."""

    config: Path
    users: Path
    revenue: Path
    campaign_stats: Path


def write_dataset(directory: Path) -> Dataset:
    """Write the three canonical files and a config that reads them."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    users = data / "users.csv"
    revenue = data / "revenue.csv"
    stats = data / "campaign_stats.csv"
    users.write_text(USERS_CSV, encoding="utf-8")
    revenue.write_text(REVENUE_CSV, encoding="utf-8")
    stats.write_text(STATS_CSV, encoding="utf-8")
    config = directory / "valuebid.yaml"
    config.write_text(yaml.safe_dump(config_mapping()), encoding="utf-8")
    return Dataset(config, users, revenue, stats)


def config_mapping() -> dict[str, object]:
    """A minimal valid config, paths relative to its own folder."""
    return {
        "account": {"name": "test", "time_zone": "Europe/Paris", "currency": "USD"},
        "data": {
            "users": "data/users.csv",
            "revenue": "data/revenue.csv",
            "campaign_stats": "data/campaign_stats.csv",
        },
        "markets": {"US": {"cac_max": 80.0}},
        "state": {"directory": "state"},
        "model": {"directory": "model"},
    }
