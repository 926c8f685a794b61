"""Config errors name the file, the key path and the bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from config import ConfigError, load_settings
from config.schema import Settings
from connectors.sources import FileSource
from tests.support.datasets import config_mapping


def _write(tmp_path: Path, mapping: Any) -> Path:
    path = tmp_path / "valuebid.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return path


def test_valid_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, config_mapping()))
    assert settings.data.users == FileSource(path=tmp_path / "data" / "users.csv")
    assert settings.state.directory == tmp_path / "state"
    assert settings.guardrails.max_step == 0.15
    assert settings.guardrails.max_value_jump == 3.0
    assert settings.guardrails.max_plausible_ltv_to_cac == 50.0
    assert settings.guardrails.max_plausible_cpa_to_cac == 50.0
    assert settings.economics.target_ltv_to_cac == 3.0


def test_settings_remember_the_file_they_were_read_from(tmp_path: Path) -> None:
    path = _write(tmp_path, config_mapping())

    settings = load_settings(path)

    assert settings.source == path
    # Settings built in code name no file; the model's own copy keeps it.
    assert Settings.model_validate(config_mapping()).source is None
    assert settings.model_copy(update={"kill_switch": True}).source == path


def test_market_overrides_inherit_the_rest(tmp_path: Path) -> None:
    mapping = config_mapping()
    mapping["markets"] = {
        "FR": {"cac_max": 90, "guardrails": {"max_step": 0.2}},
        "DE": {"cac_max": 120},
    }
    settings = load_settings(_write(tmp_path, mapping))
    assert settings.guardrails_for("FR").max_step == 0.2
    assert settings.guardrails_for("FR").min_days_between_changes == 7
    assert settings.guardrails_for("DE").max_step == 0.15


@pytest.mark.parametrize(
    ("change", "key", "shown"),
    [
        (lambda m: m["account"].pop("currency"), "account.currency", "missing"),
        (lambda m: m["account"].update(currency="us$"), "account.currency", "'us$'"),
        (
            lambda m: m["account"].update(time_zone="Mars/Olympus"),
            "account.time_zone",
            "'Mars/Olympus'",
        ),
        (lambda m: m["markets"].update(usa={"cac_max": 10}), "markets", "usa"),
        (
            lambda m: m["markets"]["US"].update(cac_max=-5),
            "markets.US.cac_max",
            "-5",
        ),
        (
            lambda m: m["markets"]["US"].update(troas_min=5, troas_max=2),
            "markets.US",
            "troas_min 5",
        ),
        (
            lambda m: m["markets"]["US"].update(troas_max=5000),
            "markets.US.troas_max",
            "5000",
        ),
        (
            lambda m: m.update(guardrails={"max_step": "fast"}),
            "guardrails.max_step",
            "'fast'",
        ),
        (lambda m: m.update(guardrail={"max_step": 0.1}), "guardrail", "unknown key"),
        (
            lambda m: m.update(guardrails={"max_value_jump": 1}),
            "guardrails.max_value_jump",
            "greater than 1",
        ),
        (
            lambda m: m.update(guardrails={"max_value_jump": "a lot"}),
            "guardrails.max_value_jump",
            "'a lot'",
        ),
        (
            lambda m: m["markets"]["US"].update(guardrails={"max_value_jump": 5}),
            "markets.US.guardrails.max_value_jump",
            "unknown key",
        ),
        (
            lambda m: m.update(guardrails={"max_plausible_ltv_to_cac": 0.5}),
            "guardrails.max_plausible_ltv_to_cac",
            "greater than 1",
        ),
        (
            lambda m: m["markets"]["US"].update(
                guardrails={"max_plausible_cpa_to_cac": 500}
            ),
            "markets.US.guardrails.max_plausible_cpa_to_cac",
            "unknown key",
        ),
        (lambda m: m.update(default_market="FR"), "default_market", "'FR'"),
        (
            lambda m: m.update(model={"max_train_users": 50}),
            "model.max_train_users",
            "50",
        ),
        (
            lambda m: m["markets"]["US"].update(campaign_name_pattern="(["),
            "markets.US.campaign_name_pattern",
            "'(['",
        ),
    ],
)
def test_invalid_setting_names_file_key_and_value(
    tmp_path: Path, change: Any, key: str, shown: str
) -> None:
    mapping = config_mapping()
    change(mapping)
    path = _write(tmp_path, mapping)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"  {key}" in message
    assert shown in message


def test_one_bad_market_gives_one_error_and_each_value_is_quoted_once(
    tmp_path: Path,
) -> None:
    mapping = config_mapping()
    mapping["default_market"] = "US"
    mapping["markets"]["US"]["cac_max"] = -5
    mapping["account"]["time_zone"] = "America/NewYork"
    path = _write(tmp_path, mapping)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert "2 invalid setting(s)" in message
    assert "markets.US.cac_max" in message
    assert "default_market" not in message
    assert message.count("'America/NewYork'") == 1


def test_lower_case_currency_codes_are_read_as_upper_case(tmp_path: Path) -> None:
    mapping = config_mapping()
    mapping["account"]["currency"] = "usd"
    mapping["data"]["fx"] = {"rates": {"eur": 1.1, "Gbp": 1.3}}

    settings = load_settings(_write(tmp_path, mapping))

    assert settings.account.currency == "USD"
    assert settings.data.fx is not None
    assert settings.data.fx.rates == {"EUR": 1.1, "GBP": 1.3}


@pytest.mark.parametrize(
    ("rates", "shown"),
    [
        ({"euro": 1.1}, "'euro' is not an ISO 4217 code"),
        ({"e1r": 1.1}, "'e1r' is not an ISO 4217 code"),
        ({"eur": 1.1, "EUR": 1.2}, "'EUR' is given twice"),
    ],
)
def test_a_bad_fx_currency_is_still_refused(
    tmp_path: Path, rates: dict[str, float], shown: str
) -> None:
    mapping = config_mapping()
    mapping["data"]["fx"] = {"rates": rates}
    with pytest.raises(ConfigError, match=shown):
        load_settings(_write(tmp_path, mapping))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("account: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path, ["a", "b"])
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(path)


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "config" / "example.yaml"
    settings = load_settings(example)
    assert isinstance(settings, Settings)
    assert set(settings.markets) >= {"FR", "DE", "US"}
    assert settings.model.max_train_users == 100_000
    # Every guardrail is shown with its default.
    text = example.read_text(encoding="utf-8")
    assert "  max_value_jump: 3.0 " in text
    assert settings.guardrails.max_value_jump == 3.0


def test_the_examples_api_sections_are_valid_once_uncommented(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "config" / "example.yaml"
    lines, inside = [], False
    for line in example.read_text(encoding="utf-8").splitlines():
        if line.startswith(("# google_ads:", "# feed:")):
            inside = True
        elif inside and not line.startswith("#   "):
            inside = False
        lines.append(line[2:] if inside else line)
    uncommented = tmp_path / "example.yaml"
    uncommented.write_text("\n".join(lines) + "\n", encoding="utf-8")

    settings = load_settings(uncommented)

    assert settings.google_ads is not None and settings.feed is not None
    assert settings.google_ads.token_uri == "http://127.0.0.1:8080/token"
    assert settings.feed.sink == "conversion_upload"
    assert settings.feed.batch_size == 2000


#: The part of a webhook URL that lets anyone post to the channel.
WEBHOOK_TOKEN = "T000/B000/XXXXtokenXXXX"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ftp://hooks.example/services/{WEBHOOK_TOKEN}", "(found ftp:;"),
        (f"hooks.example/services/{WEBHOOK_TOKEN}", "(found none;"),
        # A token pasted without its URL: no part of it reads as a scheme.
        (f"xoxbXXXXtokenXXXX:{WEBHOOK_TOKEN}", "(found none;"),
        (f"https:///services/{WEBHOOK_TOKEN}", "names no host after https://"),
        (f"https://hooks.example:{WEBHOOK_TOKEN}", "host and port can be read"),
    ],
)
def test_a_bad_webhook_url_is_refused_without_being_repeated(
    tmp_path: Path, url: str, shown: str
) -> None:
    mapping = config_mapping()
    mapping["operations"] = {"alerts": {"webhook_url": url}}
    path = _write(tmp_path, mapping)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: 1 invalid setting(s)\n")
    assert "  operations.alerts.webhook_url: " in message
    assert shown in message
    assert "the URL is not shown" in message
    assert "xxxxtokenxxxx" not in message.lower()
    assert "services" not in message


@pytest.mark.parametrize("key", ["developer_token", "developer-token"])
def test_a_token_pasted_into_the_config_says_where_it_belongs(
    tmp_path: Path, key: str
) -> None:
    token = "dt-3b7e-pasted-developer-token"
    mapping = config_mapping()
    mapping["google_ads"] = {"customer_ids": ["1234567890"], key: token}
    path = _write(tmp_path, mapping)

    with pytest.raises(ConfigError) as caught:
        load_settings(path)

    message = str(caught.value)
    assert f"google_ads.{key}: credentials are not read from this" in message
    assert "credentials_file" in message
    assert token not in message
