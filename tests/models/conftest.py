"""Synthetic canonical tables and the real CDNOW data for the model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The copy bundled for the demo: byte-identical to the published file, gzipped.
CDNOW_FILE = (
    Path(__file__).resolve().parents[2]
    / "optimizer"
    / "demo_data"
    / "cdnow_master.txt.gz"
)
CDNOW_AS_OF = pd.Timestamp("1998-06-30", tz="UTC")
START = pd.Timestamp("2024-01-01", tz="UTC")


def synthetic_tables(
    n_users: int = 600, seed: int = 0, days: int = 600
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Users with a latent purchase rate that early purchases reveal."""
    rng = np.random.default_rng(seed)
    signup = START + pd.to_timedelta(rng.integers(0, days - 400, n_users), unit="D")
    segment = rng.choice(["smb", "freelancer"], n_users)
    rate = rng.gamma(0.6, 1 / 60, n_users) * np.where(segment == "smb", 2.0, 1.0)
    spend = rng.gamma(3.0, 15.0, n_users)
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users)],
            "signup_at": signup,
            "activated_at": signup + pd.to_timedelta(rng.integers(0, 3, n_users), "D"),
            "country": rng.choice(["FR", "DE"], n_users),
            "segment": segment,
            "campaign_id": rng.choice(["c1", "c2", "c3"], n_users),
            "gclid": pd.Series([None] * n_users, dtype="string"),
            "seats": rng.integers(1, 20, n_users),
        }
    )
    rows = []
    events = []
    for i in range(n_users):
        count = rng.poisson(rate[i] * days)
        offsets = np.sort(rng.uniform(0, days, count))
        for j, offset in enumerate(np.concatenate(([0.0], offsets))):
            rows.append(
                (
                    f"u{i}",
                    signup[i] + pd.Timedelta(days=offset),
                    float(rng.gamma(3.0, spend[i] / 3.0)),
                    "EUR",
                    f"o{i}-{j}",
                )
            )
        if rate[i] > 0.01:
            events.append((f"u{i}", signup[i] + pd.Timedelta(hours=5), "invite", 1.0))
    revenue = pd.DataFrame(
        rows, columns=["user_id", "occurred_at", "amount", "currency", "order_id"]
    )
    event_table = pd.DataFrame(
        events, columns=["user_id", "occurred_at", "event", "value"]
    )
    return users, revenue, event_table


def noise_tables(
    n_users: int = 600, seed: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users who all buy at the same rate and spend: the past says nothing."""
    rng = np.random.default_rng(seed)
    signup = START + pd.to_timedelta(rng.integers(0, 200, n_users), unit="D")
    users = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_users)],
            "signup_at": signup,
            "activated_at": signup,
            "country": "FR",
            "segment": "smb",
            "campaign_id": "c1",
        }
    )
    rows = []
    for i in range(n_users):
        offsets = np.concatenate(([0.0], rng.uniform(0, 600, rng.poisson(4))))
        for j, offset in enumerate(offsets):
            amount = float(rng.gamma(2.0, 20.0))
            when = signup[i] + pd.Timedelta(days=float(offset))
            rows.append((f"u{i}", when, amount, "EUR", f"o{i}-{j}"))
    revenue = pd.DataFrame(
        rows, columns=["user_id", "occurred_at", "amount", "currency", "order_id"]
    )
    return users, revenue


@pytest.fixture(scope="session")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return synthetic_tables()


@pytest.fixture(scope="session")
def as_of() -> pd.Timestamp:
    return START + pd.Timedelta(days=600)


@pytest.fixture(scope="session")
def fitted(tables, as_of):
    from models.pltv import PLTVModel

    users, revenue, events = tables
    return PLTVModel(ages=(0, 7, 30, 90)).fit(users, revenue, as_of, events)


def load_cdnow() -> tuple[pd.DataFrame, pd.DataFrame]:
    """CDNOW as canonical tables: sign-up is the first purchase."""
    from optimizer.demo import cdnow_tables

    return cdnow_tables(CDNOW_FILE)
