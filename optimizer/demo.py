"""The bundled demo: the daily cycle replayed on real CDNOW purchase histories.

The purchases are real. How they are replayed:

- Every customer's first purchase is their sign-up and activation.
- Three quarters of the customers (chosen by a hash of their id) are the
  account's history: their dates are shifted so their 18 months of purchases
  end the day before the run date, so each has a complete first year and
  trains the model.
- The other quarter play newly acquired users: each is given a sign-up day in
  the last eight weeks before the run date, their purchases shift with it,
  and only the purchases made before the run date are visible.
- Country, campaigns, costs and target CPAs are illustrative scenario data,
  generated deterministically: five US campaigns on target CPA, whose daily
  conversions are exactly the new users they acquired and whose cost is those
  conversions at an illustrative cost per acquisition.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

DEMO_TIME_ZONE = "America/New_York"
NEW_USER_SHARE = 0.25
NEW_USER_DAYS = 56
STATS_DAYS = 60
CDNOW_END = dt.date(1998, 6, 30)


@dataclass(frozen=True)
class DemoCampaign:
    """An illustrative campaign of the demo account."""

    campaign_id: str
    name: str
    share: float
    cost_per_acquisition: float


# Illustrative: shares of acquisitions and costs per acquisition, in USD.
CAMPAIGNS = (
    DemoCampaign("1001", "US | Search | Brand", 0.32, 24.0),
    DemoCampaign("1002", "US | Search | Generic", 0.28, 41.0),
    DemoCampaign("1003", "US | Display | Prospecting", 0.20, 58.0),
    DemoCampaign("1004", "US | YouTube | Awareness", 0.196, 72.0),
    DemoCampaign("1005", "US | Search | Competitors", 0.004, 45.0),
)


@dataclass(frozen=True)
class DemoFiles:
    """Where the demo wrote its config and data."""

    config: Path
    truth: pd.DataFrame


def read_cdnow() -> pd.DataFrame:
    """The bundled CDNOW purchases: customer_id, date, number_of_cds, dollar_value."""
    source = resources.files("optimizer") / "demo_data" / "cdnow_master.txt.gz"
    with source.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as text:
        frame = pd.read_csv(
            text,
            sep=r"\s+",
            dtype={"customer_id": "string", "date": "string"},
        )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


def cdnow_tables(
    path: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CDNOW as canonical users and revenue tables, dates as recorded.

    Each customer's sign-up and activation are their first purchase.

    Parameters
    ----------
    path
        A CDNOW master file (plain or gzipped); the bundled copy when ``None``.
    """
    if path is None:
        purchases = read_cdnow()
    else:
        purchases = pd.read_csv(
            path, sep=r"\s+", dtype={"customer_id": "string", "date": "string"}
        )
        purchases["date"] = pd.to_datetime(purchases["date"], format="%Y%m%d")
    occurred = purchases["date"].dt.tz_localize("UTC")
    first = occurred.groupby(purchases["customer_id"]).min()
    users = pd.DataFrame(
        {
            "user_id": first.index.astype("string"),
            "signup_at": first.to_numpy(),
            "activated_at": first.to_numpy(),
            "country": "US",
            "segment": "all",
            "campaign_id": "unknown",
        }
    )
    revenue = pd.DataFrame(
        {
            "user_id": purchases["customer_id"],
            "occurred_at": occurred,
            "amount": purchases["dollar_value"].astype("float64"),
            "currency": "USD",
        }
    )
    return users, revenue


def build_demo(directory: Path, run_date: dt.date) -> DemoFiles:
    """Write the demo's canonical input files and config under ``directory``.

    Parameters
    ----------
    directory
        Folder for ``valuebid.yaml``, ``data/`` and the run's state.
    run_date
        The day the cycle plans; sign-ups are placed relative to it.

    Returns
    -------
    DemoFiles
        The config path, and each new user's true 1-year value (hidden from
        the cycle, shown afterwards to judge the predictions).
    """
    purchases = read_cdnow()
    first = purchases.groupby("customer_id")["date"].min()
    ids = first.index.to_series()
    draw = ids.map(_unit_hash)
    is_new = draw < NEW_USER_SHARE

    history_shift = pd.Timedelta(
        days=(run_date - dt.timedelta(days=1) - CDNOW_END).days
    )
    offset_days = (
        (draw / NEW_USER_SHARE * NEW_USER_DAYS).astype(int).clip(0, NEW_USER_DAYS - 1)
    )
    new_signup = pd.Timestamp(run_date) - pd.to_timedelta(
        NEW_USER_DAYS - offset_days, unit="D"
    )
    shift = pd.Series(history_shift, index=ids.index)
    shift[is_new] = new_signup[is_new] - first[is_new]

    zone = ZoneInfo(DEMO_TIME_ZONE)
    noon = pd.Timedelta(hours=12)
    purchases["shifted"] = (
        purchases["date"] + purchases["customer_id"].map(shift) + noon
    )
    purchases["occurred_at"] = (
        purchases["shifted"].dt.tz_localize(zone).dt.tz_convert("UTC")
    )
    cutoff = pd.Timestamp(dt.datetime.combine(run_date, dt.time(), zone)).tz_convert(
        "UTC"
    )

    signup = (first + shift + noon).dt.tz_localize(zone).dt.tz_convert("UTC")
    campaign = ids.map(lambda cid: _campaign_for(cid).campaign_id)
    first_basket = (
        purchases.sort_values("date").groupby("customer_id")["number_of_cds"].first()
    )
    users = pd.DataFrame(
        {
            "user_id": ids.to_numpy(),
            "signup_at": signup.to_numpy(),
            "activated_at": signup.to_numpy(),
            "country": "US",
            "segment": np.where(
                first_basket.reindex(ids.index) > 1, "multi-item", "single-item"
            ),
            "campaign_id": campaign.to_numpy(),
            "gclid": [f"demo-{cid}" for cid in ids],
        }
    )
    year_end = purchases["customer_id"].map(signup) + pd.Timedelta(days=365)
    truth = (
        purchases[is_new.reindex(purchases["customer_id"]).to_numpy()]
        .loc[lambda p: p["occurred_at"] < year_end[p.index]]
        .groupby("customer_id")["dollar_value"]
        .sum()
        .rename("actual_365")
    )
    visible = purchases[purchases["occurred_at"] < cutoff]
    revenue = pd.DataFrame(
        {
            "user_id": visible["customer_id"].to_numpy(),
            "occurred_at": visible["occurred_at"].to_numpy(),
            "amount": visible["dollar_value"].to_numpy(),
            "currency": "USD",
            "order_id": [
                f"{c}-{i}"
                for c, i in zip(visible["customer_id"], visible.index, strict=True)
            ],
        }
    )
    stats = _campaign_stats(users[is_new.to_numpy()], revenue, run_date, zone)

    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    users.to_csv(data / "users.csv.gz", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    revenue.to_csv(
        data / "revenue.csv.gz", index=False, date_format="%Y-%m-%dT%H:%M:%SZ"
    )
    stats.to_csv(data / "campaign_stats.csv", index=False, date_format="%Y-%m-%d")
    config = directory / "valuebid.yaml"
    config.write_text(_demo_config(), encoding="utf-8")
    return DemoFiles(config=config, truth=truth.to_frame())


def _campaign_stats(
    new_users: pd.DataFrame, revenue: pd.DataFrame, run_date: dt.date, zone: ZoneInfo
) -> pd.DataFrame:
    local_day = (
        new_users["signup_at"].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
    )
    first_value = revenue.groupby("user_id")["amount"].first()
    days = pd.date_range(
        end=pd.Timestamp(run_date) - pd.Timedelta(days=1), periods=STATS_DAYS
    )
    rng = np.random.default_rng(20_260_101)
    rows = []
    for campaign in CAMPAIGNS:
        mine = new_users[new_users["campaign_id"] == campaign.campaign_id]
        per_day = mine.groupby(local_day[mine.index]).size()
        value = mine["user_id"].map(first_value).groupby(local_day[mine.index]).sum()
        for day in days:
            conversions = int(per_day.get(day, 0))
            noise = float(rng.lognormal(0.0, 0.15))
            rows.append(
                {
                    "date": day,
                    "campaign_id": campaign.campaign_id,
                    "campaign_name": campaign.name,
                    "cost": round(
                        conversions * campaign.cost_per_acquisition * noise, 2
                    ),
                    "conversions": conversions,
                    "conversion_value": round(float(value.get(day, 0.0)), 2),
                    "bidding_strategy_type": "TARGET_CPA",
                    "target_cpa": campaign.cost_per_acquisition,
                    "target_roas": None,
                    "bidding_strategy_status": "ENABLED",
                }
            )
    return pd.DataFrame(rows)


def _demo_config() -> str:
    config = {
        "account": {
            "name": "CDNOW replay (demo)",
            "time_zone": DEMO_TIME_ZONE,
            "currency": "USD",
        },
        "data": {
            "users": "data/users.csv.gz",
            "revenue": "data/revenue.csv.gz",
            "campaign_stats": "data/campaign_stats.csv",
        },
        "markets": {
            # Example benchmark for the illustration only; replace with your own.
            "US": {
                "cac_max": 60.0,
                "troas_min": 0.5,
                "troas_max": 20.0,
                "campaign_name_pattern": "^US \\|",
            },
        },
        "economics": {
            "min_ltv365_to_cac": 1.0,
            "target_ltv_to_cac": 3.0,
            "ltv_horizon_days": 1095,
            "payback_months": 12,
        },
        "model": {"directory": "model"},
        "state": {"directory": "state"},
    }
    header = (
        "# valuebid demo: real CDNOW purchases replayed; campaigns, costs and the\n"
        "# US CAC benchmark are illustrative.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def _unit_hash(text: str) -> float:
    digest = hashlib.sha256(f"valuebid-demo:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _campaign_for(customer_id: str) -> DemoCampaign:
    draw = _unit_hash(f"campaign:{customer_id}")
    edge = 0.0
    for campaign in CAMPAIGNS:
        edge += campaign.share
        if draw < edge:
            return campaign
    return CAMPAIGNS[-1]
