"""The multi-market PLG scenario, scaled to millions of users and 10,000 campaigns.

It draws from the scenario's own generator (``optimizer.scenarios.plg``):
the same markets, segments, campaign types, latent intent, payments and
product events. Two things change with size:

- **Users come in chunks.** Each chunk is an independent draw of the whole
  scenario at a fraction of the scale, with its own seed from the run's
  seed. Sign-ups per day are Poisson, and a sum of independent Poisson draws
  is Poisson with the summed rate, so the chunks together are a draw of the
  scenario at the full scale; only a chunk is ever in memory, and it is
  appended to the Parquet files as it is made.
- **Each of the scenario's 20 campaigns (market x type) is split into equal
  sub-campaigns**, 500 each for 10,000, named ``FR | Search | Generic | 0042``
  so the market patterns of the config still match. A user of a campaign
  lands on one of its sub-campaigns at random; campaign stats are the
  activations each sub-campaign brought per day, at the type's cost per
  activation in that market with day-to-day noise, as in the scenario.

Usage::

    python benchmarks/scale_plg.py --users 1000000 --dir /tmp/plg-1m
        [--campaigns 10000] [--seed 7] [--run-date 2026-12-01]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from optimizer.scenarios import plg  # noqa: E402

CHUNK_USERS = 250_000
RUN_DATE = dt.date(2026, 12, 1)


def users_per_scale() -> float:
    """Expected sign-ups of the scenario at ``scale=1`` (its growth curve, summed)."""
    days = np.arange(plg.HISTORY_DAYS)
    return float((12.0 * np.exp(np.log(5.0) * days / plg.HISTORY_DAYS)).sum())


@dataclass
class _Appender:
    """One Parquet file written chunk by chunk with the first chunk's schema."""

    path: Path
    writer: pq.ParquetWriter | None = None
    rows: int = 0

    def add(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.rows += len(frame)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class ScaledWorld:
    """What was written, for the benchmark's report."""

    config: Path
    users: int
    revenue: int
    events: int
    campaigns: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def build_scaled(
    directory: Path,
    users: int,
    *,
    campaigns: int = 10_000,
    seed: int = 7,
    run_date: dt.date = RUN_DATE,
    chunk_users: int = CHUNK_USERS,
) -> ScaledWorld:
    """Write the scaled scenario's tables (Parquet) and config under ``directory``."""
    started = time.perf_counter()
    base = plg.campaigns()
    per_base = max(1, campaigns // len(base))
    chunks = max(1, math.ceil(users / chunk_users))
    scale = users / chunks / users_per_scale()
    zone = ZoneInfo(plg.TIME_ZONE)
    cutoff = pd.Timestamp(dt.datetime.combine(run_date, dt.time(), zone)).tz_convert(
        "UTC"
    )
    first_stats_day = pd.Timestamp(run_date) - pd.Timedelta(days=plg.STATS_DAYS)

    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {
        name: _Appender(data / f"{name}.parquet")
        for name in ("users", "revenue", "events")
    }
    activations: list[pd.Series] = []
    try:
        for chunk in range(chunks):
            rng = np.random.default_rng([seed, chunk])
            people = plg._users(rng, cutoff, scale)
            payments = plg._payments(rng, people)
            events = plg._events(rng, people, cutoff)
            _rename(people, payments, events, chunk)
            _split_campaigns(rng, people, per_base)

            files["users"].add(people[_USER_COLUMNS])
            visible = payments[payments["occurred_at"] < cutoff]
            files["revenue"].add(_revenue(visible, chunk, files["revenue"].rows))
            files["events"].add(events)
            activations.append(_activations(people, zone, first_stats_day))
    finally:
        for appender in files.values():
            appender.close()

    rng = np.random.default_rng([seed, chunks])
    stats = _campaign_stats(rng, base, per_base, activations, run_date)
    stats.to_parquet(data / "campaign_stats.parquet", index=False)
    config = directory / "valuebid.yaml"
    config.write_text(_config(), encoding="utf-8")
    return ScaledWorld(
        config=config,
        users=files["users"].rows,
        revenue=files["revenue"].rows,
        events=files["events"].rows,
        campaigns=stats["campaign_id"].nunique(),
        seconds=time.perf_counter() - started,
    )


_USER_COLUMNS = [
    "user_id",
    "signup_at",
    "activated_at",
    "country",
    "segment",
    "campaign_id",
    "gclid",
]


def _rename(
    people: pd.DataFrame, payments: pd.DataFrame, events: pd.DataFrame, chunk: int
) -> None:
    """Make user ids unique across chunks: ``u<chunk>-<number in chunk>``."""
    prefix = f"u{chunk:03d}-"
    people["gclid"] = people["gclid"].str.replace("gclid-u", f"gclid-{prefix}")
    people["user_id"] = prefix + people["user_id"].str.slice(1)
    payments["user_id"] = prefix + payments["user_id"].astype("string").str.slice(1)
    events["user_id"] = prefix + events["user_id"].astype("string").str.slice(1)


def _split_campaigns(
    rng: np.random.Generator, people: pd.DataFrame, per_base: int
) -> None:
    """Move each campaign's users onto its sub-campaigns, evenly at random."""
    paid = people["campaign_id"].notna().to_numpy()
    base_ids = people.loc[paid, "campaign_id"].astype(int).to_numpy()
    sub = rng.integers(0, per_base, int(paid.sum()))
    ids = np.full(len(people), None, dtype=object)
    ids[paid] = (base_ids * 10_000 + sub).astype(str)
    people["campaign_id"] = pd.array(ids, dtype="string")


def sub_campaign_id(base_id: str, index: int) -> str:
    """Id of sub-campaign ``index`` of the scenario's campaign ``base_id``."""
    return str(int(base_id) * 10_000 + index)


def _revenue(visible: pd.DataFrame, chunk: int, first: int) -> pd.DataFrame:
    numbers = pd.Series(np.arange(first, first + len(visible))).astype("string")
    return pd.DataFrame(
        {
            "user_id": visible["user_id"].astype("string").to_numpy(),
            "occurred_at": visible["occurred_at"].to_numpy(),
            "amount": visible["amount"].round(2).to_numpy(),
            "currency": plg.CURRENCY,
            "order_id": ("inv-" + numbers).to_numpy(),
        }
    )


def _activations(
    people: pd.DataFrame, zone: ZoneInfo, first_day: pd.Timestamp
) -> pd.Series:
    """Activations per (campaign, local day) since ``first_day``."""
    acquired = people[people["activated_at"].notna() & people["campaign_id"].notna()]
    day = acquired["activated_at"].dt.tz_convert(zone).dt.tz_localize(None)
    day = day.dt.normalize()
    recent = day >= first_day
    return (
        acquired.loc[recent, "campaign_id"]
        .to_frame()
        .assign(day=day[recent])
        .groupby(["campaign_id", "day"])
        .size()
    )


def _campaign_stats(
    rng: np.random.Generator,
    base: tuple[plg.ScenarioCampaign, ...],
    per_base: int,
    activations: list[pd.Series],
    run_date: dt.date,
) -> pd.DataFrame:
    """Daily stats of every sub-campaign, built column by column."""
    days = pd.date_range(
        end=pd.Timestamp(run_date) - pd.Timedelta(days=1), periods=plg.STATS_DAYS
    )
    subs = [(c, i) for c in base for i in range(per_base)]
    width = len(days)

    def column(values: list[object]) -> np.ndarray:
        return np.repeat(np.array(values, dtype=object), width)

    ids = column([sub_campaign_id(c.campaign_id, i) for c, i in subs])
    counts = pd.concat(activations).groupby(level=[0, 1]).sum()
    conversions = (
        counts.reindex(pd.MultiIndex.from_arrays([ids, np.tile(days, len(subs))]))
        .fillna(0)
        .to_numpy(dtype="int64")
    )
    on_roas = column([c.strategy == "TARGET_ROAS" for c, _ in subs]).astype(bool)
    cpa = column([c.cost_per_activation for c, _ in subs]).astype(float)
    return pd.DataFrame(
        {
            "date": np.tile(days, len(subs)),
            "campaign_id": ids,
            "campaign_name": column([f"{c.campaign_name} | {i:04d}" for c, i in subs]),
            "advertising_channel_type": column([c.channel for c, _ in subs]),
            "cost": (conversions * cpa * rng.lognormal(0.0, 0.2, len(ids))).round(2),
            "conversions": conversions,
            "conversion_value": np.where(on_roas, conversions * plg.BRAND_VALUE, 0.0),
            "bidding_strategy_type": column([c.strategy for c, _ in subs]),
            "target_cpa": np.where(on_roas, np.nan, cpa),
            "target_roas": np.where(
                on_roas,
                column([plg.BRAND_TROAS.get(c.market, 4.0) for c, _ in subs]).astype(
                    float
                ),
                np.nan,
            ),
            "bidding_strategy_status": column(
                [
                    "LEARNING_SETTING_CHANGE"
                    if (c.market, c.suffix) in plg.LEARNING
                    else "ENABLED"
                    for c, _ in subs
                ]
            ),
        }
    )


def _config() -> str:
    config = yaml.safe_load(plg.scenario_config())
    config["account"]["name"] = "PLG scenario, scaled (synthetic)"
    config["data"]["campaign_stats"] = "data/campaign_stats.parquet"
    return (
        "# valuebid PLG scenario scaled for benchmarks: synthetic, fixed seed.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


def main() -> None:
    """Write one scaled world and say what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=RUN_DATE)
    args = parser.parse_args()

    world = build_scaled(
        args.dir,
        args.users,
        campaigns=args.campaigns,
        seed=args.seed,
        run_date=args.run_date,
    )
    print(
        f"{world.users:,} users, {world.revenue:,} revenue rows "
        f"({world.revenue / world.users:.1f} per user), {world.events:,} product "
        f"events ({world.events / world.users:.1f} per user), {world.campaigns:,} "
        f"campaigns in {world.seconds:.0f} s -> {world.config}"
    )


if __name__ == "__main__":
    main()
