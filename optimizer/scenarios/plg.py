"""A synthetic product-led SaaS account in five markets. Nothing in it is real.

The generator is seeded: the same seed and run date give the same files.
What it simulates, and why each part is there:

- **Markets** FR, DE, ES, UK and US, with different costs per activation
  (ES cheapest, US dearest) and different CAC benchmarks in the config, so
  the same campaign type lands on different targets market by market. The
  UK is stored under its ISO 3166 code ``GB``; its campaigns are named
  ``UK | ...``, as people name them.
- **Segments** freelancer, SMB and 50+ employees, with their own price,
  paying share, churn and seat expansion, so their value curves differ: a
  freelancer's value is mostly in year one, a 50+ company's keeps growing.
- **A latent intent** per user drives both how much of the product they use
  in their first two weeks (``events``: projects created, teammates
  invited, bank account connected, invoices sent) and whether and how long
  they pay. Early event counts therefore carry real signal about value, as
  in a real PLG funnel.
- **Campaigns** per market on Search, Display and YouTube, most on target
  CPA, the brand campaigns already on target ROAS; one is still learning and
  one has too few conversions, so guardrails show up in the plan. A share of
  users arrive without a campaign (organic).
- **Campaign stats** cover the last 90 days: daily conversions are exactly
  the activations each campaign brought, costs are those activations at the
  campaign's illustrative cost per activation with day-to-day noise.

Money is in EUR, the account currency, in every market.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

from optimizer.demo import DemoFiles

TIME_ZONE = "Europe/Paris"
CURRENCY = "EUR"
HISTORY_DAYS = 3 * 365 + 90
STATS_DAYS = 90
TRUTH_DAYS = 56
MONTH_DAYS = 365.25 / 12
ORGANIC_SHARE = 0.3
ACTIVATION_RATE = 0.85
TRIAL_DAYS = 14
EARLY_DAYS = 14


@dataclass(frozen=True)
class Market:
    """A market of the scenario: its label, weight and cost level."""

    code: str
    label: str
    share: float
    cost_level: float
    cac_max: float
    pay_shift: float


@dataclass(frozen=True)
class Segment:
    """A customer segment and the shape of its value curve."""

    name: str
    share: float
    monthly_price: float
    pay_logit: float
    monthly_churn: float
    monthly_growth: float
    team_rate: float


@dataclass(frozen=True)
class CampaignKind:
    """A campaign type run in every listed market."""

    suffix: str
    channel: str
    share: float
    cost_per_activation: float
    strategy: str
    intent_shift: float


MARKETS = (
    Market("FR", "FR", 0.26, 1.00, 260.0, 0.0),
    Market("DE", "DE", 0.22, 1.30, 300.0, 0.15),
    Market("ES", "ES", 0.12, 0.55, 140.0, -0.25),
    Market("GB", "UK", 0.16, 1.45, 330.0, 0.05),
    Market("US", "US", 0.24, 1.85, 1200.0, 0.10),
)

SEGMENTS = (
    Segment("freelancer", 0.55, 15.0, -1.5, 0.085, 0.0, 0.1),
    Segment("SMB", 0.35, 59.0, -1.0, 0.040, 0.004, 1.2),
    Segment("50+ employees", 0.10, 390.0, -0.7, 0.018, 0.015, 4.0),
)

CAMPAIGN_KINDS = (
    CampaignKind("Search | Brand", "SEARCH", 0.30, 25.0, "TARGET_ROAS", 0.6),
    CampaignKind("Search | Generic", "SEARCH", 0.35, 70.0, "TARGET_CPA", 0.1),
    CampaignKind("Display | Prospecting", "DISPLAY", 0.25, 45.0, "TARGET_CPA", -0.4),
    CampaignKind("YouTube | Awareness", "VIDEO", 0.10, 80.0, "TARGET_CPA", -0.2),
)

#: What an earlier static value feed sent per brand conversion, and the brand
#: campaigns' tROAS on it (illustrative).
BRAND_VALUE = 150.0
BRAND_TROAS = {"US": 2.5}

#: Campaigns whose state shows a guardrail: (market, kind suffix) -> status.
LEARNING = {("DE", "Display | Prospecting")}
#: The ES YouTube campaign gets a sliver of the traffic: too few conversions.
LOW_VOLUME = {("ES", "YouTube | Awareness")}


def build_plg(
    directory: Path, run_date: dt.date, *, seed: int = 7, scale: float = 1.0
) -> DemoFiles:
    """Write the scenario's canonical tables and config under ``directory``.

    Parameters
    ----------
    directory
        Folder for ``valuebid.yaml``, ``data/`` and the run's state.
    run_date
        The day the cycle plans; data ends the day before.
    seed
        Seed of the random generator; the same seed gives the same files.
    scale
        Multiplies the number of sign-ups (tests use a smaller world).

    Returns
    -------
    DemoFiles
        The config path, and each recent user's true 1-year value (hidden
        from the cycle: later payments are simulated but not written).
    """
    tables = generate(run_date, seed=seed, scale=scale)
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    tables.users.to_parquet(data / "users.parquet", index=False)
    tables.revenue.to_parquet(data / "revenue.parquet", index=False)
    tables.events.to_parquet(data / "events.parquet", index=False)
    tables.campaign_stats.to_csv(
        data / "campaign_stats.csv", index=False, date_format="%Y-%m-%d"
    )
    config = directory / "valuebid.yaml"
    config.write_text(scenario_config(), encoding="utf-8")
    return DemoFiles(config=config, truth=tables.truth)


@dataclass(frozen=True)
class PLGTables:
    """The canonical tables of the scenario, and the hidden truth."""

    users: pd.DataFrame
    revenue: pd.DataFrame
    events: pd.DataFrame
    campaign_stats: pd.DataFrame
    truth: pd.DataFrame


def generate(run_date: dt.date, *, seed: int = 7, scale: float = 1.0) -> PLGTables:
    """Simulate the account up to the day before ``run_date``.

    ``scale`` multiplies the number of sign-ups (tests use a smaller world).
    """
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(TIME_ZONE)
    cutoff = pd.Timestamp(dt.datetime.combine(run_date, dt.time(), zone)).tz_convert(
        "UTC"
    )
    users = _users(rng, cutoff, scale)
    payments = _payments(rng, users)
    events = _events(rng, users, cutoff)

    visible = payments[payments["occurred_at"] < cutoff].reset_index(drop=True)
    revenue = pd.DataFrame(
        {
            "user_id": visible["user_id"].astype("string"),
            "occurred_at": visible["occurred_at"],
            "amount": visible["amount"].round(2),
            "currency": CURRENCY,
            "order_id": [f"inv-{i:07d}" for i in range(len(visible))],
        }
    )
    recent = users["signup_at"] >= cutoff - pd.Timedelta(days=TRUTH_DAYS)
    year_end = payments["user_id"].map(users.set_index("user_id")["signup_at"]) + (
        pd.Timedelta(days=365)
    )
    truth = (
        payments[payments["occurred_at"] < year_end]
        .groupby("user_id")["amount"]
        .sum()
        .reindex(users.loc[recent, "user_id"], fill_value=0.0)
        .rename("actual_365")
        .to_frame()
    )
    stats = _campaign_stats(rng, users, run_date, zone)
    columns = [
        "user_id",
        "signup_at",
        "activated_at",
        "country",
        "segment",
        "campaign_id",
        "gclid",
    ]
    return PLGTables(users[columns], revenue, events, stats, truth)


@dataclass(frozen=True)
class ScenarioCampaign:
    """One campaign of the scenario."""

    campaign_id: str
    campaign_name: str
    market: str
    suffix: str
    channel: str
    share: float
    cost_per_activation: float
    strategy: str
    intent_shift: float


def campaigns() -> tuple[ScenarioCampaign, ...]:
    """Every campaign of the scenario with its market, type and cost level."""
    found = []
    for m_index, market in enumerate(MARKETS):
        for k_index, kind in enumerate(CAMPAIGN_KINDS):
            share = kind.share
            if (market.code, kind.suffix) in LOW_VOLUME:
                share = 0.004
            found.append(
                ScenarioCampaign(
                    campaign_id=f"{2000 + 10 * m_index + k_index}",
                    campaign_name=f"{market.label} | {kind.suffix}",
                    market=market.code,
                    suffix=kind.suffix,
                    channel=kind.channel,
                    share=share,
                    cost_per_activation=round(
                        kind.cost_per_activation * market.cost_level, 2
                    ),
                    strategy=kind.strategy,
                    intent_shift=kind.intent_shift,
                )
            )
    return tuple(found)


def _users(
    rng: np.random.Generator, cutoff: pd.Timestamp, scale: float
) -> pd.DataFrame:
    """Sign-ups growing over three years, with market, segment and campaign."""
    days = np.arange(HISTORY_DAYS)
    # About 12 sign-ups a day three years ago, 60 a day now: a growing account.
    rate = scale * 12.0 * np.exp(np.log(5.0) * days / HISTORY_DAYS)
    per_day = rng.poisson(rate)
    day = np.repeat(days, per_day)
    n = len(day)
    start = cutoff - pd.Timedelta(days=HISTORY_DAYS)
    signup = start + pd.to_timedelta(day + rng.uniform(0.05, 0.95, n), unit="D")

    market_index = rng.choice(len(MARKETS), n, p=[m.share for m in MARKETS])
    segment_index = rng.choice(len(SEGMENTS), n, p=[s.share for s in SEGMENTS])
    table = campaigns()
    campaign_id = np.full(n, None, dtype=object)
    intent = rng.normal(0.0, 1.0, n)
    paid = rng.uniform(size=n) >= ORGANIC_SHARE
    for m_index, market in enumerate(MARKETS):
        mine = [c for c in table if c.market == market.code]
        chosen = (market_index == m_index) & paid
        weights = np.array([c.share for c in mine])
        pick = rng.choice(len(mine), int(chosen.sum()), p=weights / weights.sum())
        campaign_id[chosen] = np.array([c.campaign_id for c in mine])[pick]
        intent[chosen] += np.array([c.intent_shift for c in mine])[pick]

    activated = rng.uniform(size=n) < ACTIVATION_RATE
    delay = pd.to_timedelta(rng.exponential(0.6, n), unit="D")
    activated_at = pd.Series(signup + delay).where(activated)
    activated_at = activated_at.where(activated_at < cutoff)
    ids = [f"u{i:06d}" for i in range(n)]
    return pd.DataFrame(
        {
            "user_id": pd.array(ids, dtype="string"),
            "signup_at": pd.Series(signup).dt.tz_convert("UTC"),
            "activated_at": activated_at.dt.tz_convert("UTC"),
            "country": pd.array(
                [MARKETS[i].code for i in market_index], dtype="string"
            ),
            "segment": pd.array(
                [SEGMENTS[i].name for i in segment_index], dtype="string"
            ),
            "campaign_id": pd.array(campaign_id, dtype="string"),
            "gclid": pd.array(
                [
                    f"gclid-{u}" if c is not None else None
                    for u, c in zip(ids, campaign_id, strict=True)
                ],
                dtype="string",
            ),
            "intent": intent,
            "market_index": market_index,
            "segment_index": segment_index,
        }
    )


def _payments(rng: np.random.Generator, users: pd.DataFrame) -> pd.DataFrame:
    """Monthly payments of the users who convert, up to five years or churn."""
    seg = users["segment_index"].to_numpy()
    intent = users["intent"].to_numpy()
    logit = (
        np.array([s.pay_logit for s in SEGMENTS])[seg]
        + 1.1 * intent
        + np.array([m.pay_shift for m in MARKETS])[users["market_index"].to_numpy()]
    )
    pays = users["activated_at"].notna().to_numpy() & (
        rng.uniform(size=len(users)) < 1 / (1 + np.exp(-logit))
    )
    churn = np.clip(
        np.array([s.monthly_churn for s in SEGMENTS])[seg] * np.exp(-0.45 * intent),
        0.004,
        0.6,
    )
    months = np.minimum(rng.geometric(churn), 60)
    payer = np.flatnonzero(pays)
    count = months[payer]
    row_user = np.repeat(payer, count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    wait = TRIAL_DAYS + rng.exponential(6.0, len(payer))
    offset_days = np.repeat(wait, count) + k * MONTH_DAYS
    activated = users["activated_at"].iloc[row_user].reset_index(drop=True)
    occurred = activated + pd.to_timedelta(offset_days, unit="D")
    price = np.array([s.monthly_price for s in SEGMENTS])[seg[row_user]]
    growth = np.array([s.monthly_growth for s in SEGMENTS])[seg[row_user]]
    return pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy()[row_user],
            "occurred_at": occurred.dt.tz_convert("UTC"),
            "amount": price * (1 + growth) ** k,
        }
    )


def _events(
    rng: np.random.Generator, users: pd.DataFrame, cutoff: pd.Timestamp
) -> pd.DataFrame:
    """Product events of each user's first two weeks, driven by the same intent."""
    active = users[users["activated_at"].notna()]
    z = active["intent"].to_numpy()
    team = np.array([s.team_rate for s in SEGMENTS])[active["segment_index"].to_numpy()]
    counts = {
        "project_created": rng.poisson(1.0 + 2.0 * np.exp(0.6 * z)),
        "teammate_invited": rng.poisson(team * np.exp(0.8 * z)),
        "bank_connected": (
            rng.uniform(size=len(z)) < 1 / (1 + np.exp(-(z - 0.3)))
        ).astype(int),
        "invoice_sent": rng.poisson(1.5 * np.exp(0.7 * z)),
    }
    frames = []
    start = active["activated_at"].reset_index(drop=True)
    ids = active["user_id"].to_numpy()
    for name, count in counts.items():
        if name == "project_created":
            count = np.maximum(count, 1)
        index = np.repeat(np.arange(len(active)), count)
        # The first project is the activation itself; the others follow it.
        offset = rng.exponential(3.0, len(index))
        if name == "project_created":
            first = np.r_[True, index[1:] != index[:-1]]
            offset[first] = 0.0
        at = start.iloc[index].reset_index(drop=True) + pd.to_timedelta(
            np.minimum(offset, EARLY_DAYS), unit="D"
        )
        frames.append(
            pd.DataFrame(
                {
                    "user_id": ids[index],
                    "occurred_at": at.dt.tz_convert("UTC"),
                    "event": name,
                    "value": np.nan,
                }
            )
        )
    events = pd.concat(frames, ignore_index=True)
    events = events[events["occurred_at"] < cutoff]
    return events.sort_values(["occurred_at", "user_id"]).reset_index(drop=True)


def _campaign_stats(
    rng: np.random.Generator, users: pd.DataFrame, run_date: dt.date, zone: ZoneInfo
) -> pd.DataFrame:
    table = campaigns()
    acquired = users[users["activated_at"].notna() & users["campaign_id"].notna()]
    local_day = (
        acquired["activated_at"].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
    )
    per_day = acquired.groupby(["campaign_id", local_day]).size()
    days = pd.date_range(
        end=pd.Timestamp(run_date) - pd.Timedelta(days=1), periods=STATS_DAYS
    )
    rows = []
    for campaign in table:
        status = (
            "LEARNING_SETTING_CHANGE"
            if (campaign.market, campaign.suffix) in LEARNING
            else "ENABLED"
        )
        cpa = campaign.cost_per_activation
        on_roas = campaign.strategy == "TARGET_ROAS"
        for day in days:
            conversions = int(per_day.get((campaign.campaign_id, day), 0))
            noise = float(rng.lognormal(0.0, 0.2))
            rows.append(
                {
                    "date": day,
                    "campaign_id": campaign.campaign_id,
                    "campaign_name": campaign.campaign_name,
                    "advertising_channel_type": campaign.channel,
                    "cost": round(conversions * cpa * noise, 2),
                    "conversions": conversions,
                    "conversion_value": conversions * BRAND_VALUE if on_roas else 0,
                    "bidding_strategy_type": campaign.strategy,
                    "target_cpa": None if on_roas else cpa,
                    "target_roas": BRAND_TROAS.get(campaign.market, 4.0)
                    if on_roas
                    else None,
                    "bidding_strategy_status": status,
                }
            )
    return pd.DataFrame(rows)


def scenario_config() -> str:
    """The scenario's config: markets, benchmarks, ratios and company finance."""
    markets = {}
    for market in MARKETS:
        markets[market.code] = {
            "cac_max": market.cac_max,
            "troas_min": 0.5,
            "troas_max": 20.0,
            "campaign_name_pattern": f"^{market.label} \\|",
        }
    # Segment benchmarks where the market prices segments differently.
    markets["DE"]["cac_max_by_segment"] = {"freelancer": 150.0, "50+ employees": 900.0}
    markets["US"]["guardrails"] = {"max_step": 0.2}
    markets["ES"]["guardrails"] = {"min_days_between_changes": 10}
    config = {
        "account": {
            "name": "PLG scenario (synthetic)",
            "time_zone": TIME_ZONE,
            "currency": CURRENCY,
        },
        "data": {
            "users": "data/users.parquet",
            "revenue": "data/revenue.parquet",
            "events": "data/events.parquet",
            "campaign_stats": "data/campaign_stats.csv",
        },
        "markets": markets,
        "economics": {
            "min_ltv365_to_cac": 1.0,
            "target_ltv_to_cac": 3.0,
            "ltv_horizon_days": 1095,
            "payback_months": 12,
            "gross_margin": 0.8,
        },
        "finance": {
            "revenue_growth_pct": 46.0,
            "ebitda_margin_pct": -9.0,
            "marketing_budget": 520000.0,
            "sales_marketing_cost": 2100000.0,
        },
        "model": {"directory": "model"},
        "state": {"directory": "state"},
    }
    header = (
        "# valuebid PLG scenario: every user, payment, event, campaign, cost and\n"
        "# benchmark here is synthetic, generated with a fixed seed.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)
