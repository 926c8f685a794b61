"""The data: section of the config: simple paths stay valid, SQL needs a URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError
from config.loader import settings_from_mapping
from connectors.sources import FileSource, SqlSource

BASE = {
    "account": {"name": "acme", "currency": "EUR"},
    "markets": {"FR": {"cac_max": 100}},
}


def test_bare_paths_are_file_sources_resolved_against_the_config(
    tmp_path: Path,
) -> None:
    raw = {
        **BASE,
        "data": {
            "users": "in/users.csv",
            "revenue": {"path": "in/revenue-*.csv.gz"},
            "campaign_stats": "/abs/stats.parquet",
            "fx": {"source": "fx.csv"},
        },
    }

    settings = settings_from_mapping(raw, source="test.yaml", base_dir=tmp_path)

    assert settings.data.users == FileSource(path=tmp_path / "in" / "users.csv")
    assert settings.data.revenue == FileSource(path=tmp_path / "in/revenue-*.csv.gz")
    assert settings.data.campaign_stats == FileSource(path=Path("/abs/stats.parquet"))
    assert settings.data.fx.source == FileSource(path=tmp_path / "fx.csv")
    assert settings.data.quarantine.max_share == 0.01


def test_sql_sources_take_the_default_url(tmp_path: Path) -> None:
    raw = {
        **BASE,
        "data": {
            "url": "sqlite:///dwh.db",
            "users": {"table": "crm.users"},
            "revenue": {"query": "select * from invoices"},
            "campaign_stats": "stats.csv",
        },
    }

    data = settings_from_mapping(raw, source="test.yaml", base_dir=tmp_path).data

    assert isinstance(data.users, SqlSource)
    assert data.url_of(data.users) == "sqlite:///dwh.db"


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"users": {"table": "users"}}, "neither it nor data.url has a url"),
        (
            {"users": {"table": "u", "query": "select 1", "url": "sqlite://"}},
            "exactly one",
        ),
        ({"naive_time_zone": "Mars/Olympus"}, "unknown IANA time zone"),
        ({"quarantine": {"max_share": 1.5}}, "data.quarantine.max_share"),
        ({"fx": {"rates": {"us": 1.1}}}, "not an ISO 4217 code"),
    ],
)
def test_bad_data_settings_name_the_key(
    tmp_path: Path, data: dict[str, object], complaint: str
) -> None:
    raw = {
        **BASE,
        "data": {
            "users": "u.csv",
            "revenue": "r.csv",
            "campaign_stats": "s.csv",
            **data,
        },
    }

    with pytest.raises(ConfigError, match=complaint):
        settings_from_mapping(raw, source="test.yaml", base_dir=tmp_path)
