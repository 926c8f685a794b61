"""Fixtures for the connector tests: small valid tables and a loader around them."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.files import Inputs, load_inputs
from connectors.sources import DataSettings

USERS_CSV = """user_id,signup_at,activated_at,country,segment,campaign_id
u1,2026-01-01T10:00:00Z,2026-01-02T10:00:00Z,FR,smb,c1
u2,2026-01-03T10:00:00Z,2026-01-03T12:00:00Z,DE,freelancer,c2
u3,2026-01-04T10:00:00+01:00,,FR,smb,c1
u4,2026-01-05T10:00:00Z,2026-01-06T10:00:00Z,DE,50+,c2
"""

REVENUE_CSV = """user_id,occurred_at,amount,currency,order_id
u1,2026-02-01T00:00:00Z,10.5,EUR,o1
u2,2026-02-02T00:00:00Z,20,EUR,o2
u3,2026-02-03T00:00:00Z,30,EUR,o3
u4,2026-02-04T00:00:00Z,40,EUR,o4
"""

STATS_CSV = """date,campaign_id,campaign_name,cost,conversions,conversion_value,\
bidding_strategy_type,target_cpa,target_roas
2026-02-01,c1,Search FR,100,5,200,TARGET_CPA,20,
2026-02-01,c2,Search DE,80,4,100,TARGET_ROAS,,1.5
"""

BASE = {"users": USERS_CSV, "revenue": REVENUE_CSV, "campaign_stats": STATS_CSV}

#: The clock of every load: rows after it are in the future.
NOW = "2026-03-01T00:00:00Z"


def replace_row(text: str, row: int, line: str) -> str:
    """``text`` with data row ``row`` (1-based, header excluded) replaced."""
    lines = text.splitlines(keepends=True)
    lines[row] = line + "\n"
    return "".join(lines)


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """Write a table file; ``.gz`` names are gzip-compressed."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


Loader = Callable[..., Inputs]


@pytest.fixture
def load(tmp_path: Path) -> Loader:
    """Load the base tables, with any table text or data setting overridden."""

    def run(
        *,
        tables: dict[str, Any] | None = None,
        max_share: float = 1.0,
        time_zone: str | None = None,
        **data: Any,
    ) -> Inputs:
        import pandas as pd

        sources: dict[str, Any] = {}
        for name, content in {**BASE, **(tables or {})}.items():
            if isinstance(content, str | bytes):
                sources[name] = write(tmp_path / "in", f"{name}.csv", content)
            else:
                sources[name] = content
        settings = DataSettings.model_validate(
            {**sources, "quarantine": {"max_share": max_share}, **data}
        )
        return load_inputs(
            settings,
            currency="EUR",
            now=pd.Timestamp(NOW),
            time_zone=time_zone,
            state_dir=tmp_path / "state",
            run_label="test",
        )

    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each dialect the connector is tested on."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def grpc_channel_options() -> Iterator[list[tuple[str, Any]]]:
    """The google-ads client's process-wide channel options, restored afterwards.

    A client built with ``http_proxy`` adds the proxy to them for every later
    client of the process; restoring them keeps it out of the next tests.
    """
    from google.ads.googleads import client

    options: list[tuple[str, Any]] = client._GRPC_CHANNEL_OPTIONS
    saved = list(options)
    yield options
    options[:] = saved
