"""Secret settings are held hidden: no repr, str or log of the settings shows them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError, load_settings
from config.loader import settings_from_mapping
from optimizer.alerts import WebhookAlerts, alerts_from

WEBHOOK = "https://hooks.example.com/services/T000/B000/hook-secret-4242"


def test_the_webhook_url_shows_in_no_repr_str_or_log_of_the_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = {
        "account": {"name": "Acme FR", "currency": "EUR"},
        "data": {
            "users": "users.csv",
            "revenue": "revenue.csv",
            "campaign_stats": "stats.csv",
        },
        "markets": {"FR": {"cac_max": 120.0}},
        "operations": {"alerts": {"webhook_url": WEBHOOK}},
    }
    settings = settings_from_mapping(raw, source="test config", base_dir=tmp_path)
    logger = logging.getLogger("tests.config")

    with caplog.at_level(logging.DEBUG, logger="tests.config"):
        logger.debug("settings: %s", settings)
        logger.debug("settings: %r", settings)

    for shown in (repr(settings), str(settings), caplog.text):
        assert "hook-secret-4242" not in shown
    assert isinstance(alerts_from(settings.operations.alerts), WebhookAlerts)


@pytest.mark.parametrize(
    "section",
    [
        {"state": {"url": "postgresql://reader:pw-s3cret-77@127.0.0.1:54x2/test"}},
        {"data_url": "postgresql://reader:pw-s3cret-77@127.0.0.1:54x2/test"},
        {"users_url": "postgresql://reader:pw-s3cret-77@127.0.0.1:54x2/test"},
    ],
    ids=["state.url", "data.url", "a SQL source's url"],
)
def test_a_malformed_database_url_is_refused_with_its_password_masked(
    tmp_path: Path, section: dict[str, Any]
) -> None:
    data: dict[str, Any] = {
        "users": "users.csv",
        "revenue": "revenue.csv",
        "campaign_stats": "stats.csv",
    }
    if "data_url" in section:
        data["url"] = section.pop("data_url")
    if "users_url" in section:
        data["users"] = {"url": section.pop("users_url"), "table": "users"}
    raw = {
        "account": {"name": "Acme FR", "currency": "EUR"},
        "data": data,
        "markets": {"FR": {"cac_max": 120.0}},
        **section,
    }

    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(raw, source="test config", base_dir=tmp_path)

    message = str(caught.value)
    assert "not a SQLAlchemy URL" in message
    assert "'postgresql://reader:***@127.0.0.1:54x2/test'" in message
    assert "pw-s3cret-77" not in message


def test_a_config_that_is_not_yaml_is_refused_without_quoting_its_lines(
    tmp_path: Path,
) -> None:
    config = tmp_path / "valuebid.yaml"
    config.write_text(
        "operations:\n"
        "  alerts: {webhook_url: https://hooks.example.com/hook-secret-4242: x}\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as caught:
        load_settings(config)

    message = str(caught.value)
    assert "hook-secret-4242" not in message
    assert message.startswith(f"{config}: not valid YAML: ")
    assert "(line 2, column " in message
