"""Incremental SQL reads: late and restated revenue update history next run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tests.connectors.conftest import USERS_CSV, Loader

FIRST_LOAD = [
    ("u1", "2026-02-01T00:00:00Z", 10.0, "EUR", "o1", "2026-02-05T00:00:00Z"),
    ("u2", "2026-02-02T00:00:00Z", 20.0, "EUR", "o2", "2026-02-05T00:00:00Z"),
    ("u3", "2026-02-03T00:00:00Z", 30.0, "EUR", "o3", "2026-02-05T00:00:00Z"),
]


def _insert(url: str, rows: list[tuple[object, ...]]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "create table if not exists revenue (user_id text, occurred_at "
                "text, amount real, currency text, order_id text, loaded_at text)"
            )
        )
        connection.execute(
            sa.text(
                "insert into revenue values (:u, :at, :amount, :cur, :order, :loaded)"
            ),
            [
                dict(
                    zip(
                        ("u", "at", "amount", "cur", "order", "loaded"),
                        row,
                        strict=True,
                    )
                )
                for row in rows
            ],
        )
    engine.dispose()


def test_late_and_restated_revenue_update_history_next_run(
    load: Loader, db_url: str
) -> None:
    url = db_url
    source = {"table": "revenue", "incremental_column": "loaded_at"}
    _insert(url, FIRST_LOAD)

    first = load(tables={"revenue": source}, url=url, max_share=0)
    _insert(
        url,
        [
            ("u1", "2026-01-20T00:00:00Z", 5.0, "EUR", "o0", "2026-02-10T00:00:00Z"),
            ("u2", "2026-02-02T00:00:00Z", 25.0, "EUR", "o2", "2026-02-10T00:00:00Z"),
        ],
    )
    second = load(tables={"revenue": source}, url=url, max_share=0)
    third = load(tables={"revenue": source}, url=url, max_share=0)

    assert first.revenue["order_id"].tolist() == ["o1", "o2", "o3"]
    by_order = second.revenue.set_index("order_id")["amount"].to_dict()
    assert by_order == {"o1": 10.0, "o3": 30.0, "o0": 5.0, "o2": 25.0}
    audit = second.audits["revenue"]
    assert (audit.rows_in, audit.cached, audit.restated) == (4, 2, 1)
    assert audit.rows_in == audit.kept + audit.quarantined
    assert third.revenue.set_index("order_id")["amount"].to_dict() == by_order
    assert third.audits["revenue"].cached == 4


def test_revenue_waiting_for_its_user_is_kept_for_the_next_run(
    load: Loader, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'dwh.db'}"
    source = {"table": "revenue", "incremental_column": "loaded_at"}
    _insert(
        url,
        [*FIRST_LOAD, ("u5", "2026-02-04T00:00:00Z", 9.0, "EUR", "o5", "2026-02-05")],
    )
    users = tmp_path / "users5.csv"

    users.write_text(USERS_CSV + "u5,2026-01-09T10:00:00Z,,FR,smb,c1\n")

    early = load(tables={"revenue": source}, url=url)
    later = load(tables={"revenue": source, "users": {"path": users}}, url=url)

    assert early.audits["revenue"].quarantined == 1
    assert "o5" in set(later.revenue["order_id"])
    assert pd.Series(later.revenue["order_id"]).is_unique


def _insert_stats(url: str, rows: list[tuple[str, float, str]]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "create table if not exists stats (date text, campaign_id text, "
                "campaign_name text, cost real, conversions real, conversion_value "
                "real, bidding_strategy_type text, target_cpa real, target_roas "
                "real, loaded_at text)"
            )
        )
        connection.execute(
            sa.text(
                "insert into stats values (:day, 'c1', 'Search FR', :cost, 5, 200, "
                "'TARGET_CPA', 20, null, :loaded)"
            ),
            [
                {"day": day, "cost": cost, "loaded": loaded}
                for day, cost, loaded in rows
            ],
        )
    engine.dispose()


def test_a_campaign_day_restated_by_the_source_replaces_the_cached_one(
    load: Loader, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'dwh.db'}"
    source = {"table": "stats", "incremental_column": "loaded_at"}
    _insert_stats(
        url,
        [("2026-02-01", 100.0, "2026-02-02"), ("2026-02-02", 80.0, "2026-02-03")],
    )
    load(tables={"campaign_stats": source}, url=url, max_share=0)
    _insert_stats(
        url,
        [("2026-02-02", 82.5, "2026-02-04"), ("2026-02-03", 90.0, "2026-02-04")],
    )

    second = load(tables={"campaign_stats": source}, url=url, max_share=0)

    cost = second.campaign_stats.set_index("date")["cost"]
    assert cost.to_dict() == {
        pd.Timestamp("2026-02-01"): 100.0,
        pd.Timestamp("2026-02-02"): 82.5,
        pd.Timestamp("2026-02-03"): 90.0,
    }
    audit = second.audits["campaign_stats"]
    assert (audit.rows_in, audit.cached, audit.restated) == (3, 1, 1)
