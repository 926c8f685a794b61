"""``valuebid check`` reads the inputs through their contracts and writes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from optimizer import days
from optimizer.cli import app
from tests.connectors.conftest import REVENUE_CSV, STATS_CSV, USERS_CSV


def _config(folder: Path, revenue: str, max_share: float) -> Path:
    (folder / "users.csv").write_text(USERS_CSV, encoding="utf-8")
    (folder / "revenue.csv").write_text(revenue, encoding="utf-8")
    (folder / "stats.csv").write_text(STATS_CSV, encoding="utf-8")
    config = folder / "valuebid.yaml"
    config.write_text(
        "account: {name: acme, currency: EUR}\n"
        "markets: {FR: {cac_max: 100}, DE: {cac_max: 120}}\n"
        "data:\n"
        "  users: users.csv\n"
        "  revenue: {path: revenue.csv}\n"
        "  campaign_stats: stats.csv\n"
        f"  quarantine: {{max_share: {max_share}}}\n",
        encoding="utf-8",
    )
    return config


def test_check_reports_quarantined_rows_without_writing(tmp_path: Path) -> None:
    repeated = REVENUE_CSV.splitlines()[-1] + "\n"
    config = _config(tmp_path, REVENUE_CSV.replace(",30,", ",-30,") + repeated, 0.5)

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert "3 revenue" in result.output
    said = " ".join(result.output.split())
    assert (
        "2 of 5 row(s) would be set aside: 1 bad (quarantined), 1 exact "
        "repeat(s) of a row kept" in said
    ), said
    assert not (tmp_path / ".valuebid").exists()


def test_check_fails_naming_the_line_in_strict_mode(tmp_path: Path) -> None:
    config = _config(tmp_path, REVENUE_CSV.replace(",30,", ",-30,"), 0)

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    assert (
        "column 'amount', line 4: value '-30' is a refund of 30.00 EUR, more than "
        "user 'u3' had paid by then (0.00 EUR net before it)"
    ) in " ".join(result.output.split())


def test_check_keeps_refunds_and_sets_aside_the_one_beyond_what_was_paid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refunds = (
        "u3,2026-02-10T00:00:00Z,-30,EUR,r3\n"
        "u4,2026-02-10T00:00:00Z,-15.5,EUR,r4\n"
        "u2,2026-02-10T00:00:00Z,-21,EUR,r2\n"
    )
    config = _config(tmp_path, REVENUE_CSV + refunds, 0.5)

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "6 revenue" in said, said
    assert "revenue: 2 refund(s) kept" in said, said
    assert "1 of 7 row(s) would be set aside: 1 bad (quarantined)" in said, said
    assert (
        "line 8: value '-21' is a refund of 21.00 EUR, more than user 'u2' had "
        "paid by then (20.00 EUR net before it)"
    ) in caplog.text


def test_check_warns_when_campaign_stats_are_too_old_to_act_on(tmp_path: Path) -> None:
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    zone = load_settings(config).account.time_zone
    yesterday = days.account_today(zone) - dt.timedelta(days=1)

    old = CliRunner().invoke(app, ["check", "--config", str(config)])
    (tmp_path / "stats.csv").write_text(
        STATS_CSV.replace("2026-02-01", yesterday.isoformat()), encoding="utf-8"
    )
    fresh = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert old.exit_code == 0, old.output
    said = " ".join(old.output.split())
    for market in ("FR", "DE"):
        assert f"campaign_stats: campaign stats of market {market} end on" in said
        assert f"a run today would hold every target of market {market}" in said
    assert fresh.exit_code == 0, fresh.output
    assert "stale_data" not in fresh.output


def test_check_names_the_market_and_the_campaign_whose_stats_stopped(
    tmp_path: Path,
) -> None:
    """FR's c1 runs to yesterday while FR's c3 stopped ten days ago, and DE's
    only campaign stopped too: DE is held whole, c3 alone in FR."""
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    zone = load_settings(config).account.time_zone
    yesterday = days.account_today(zone) - dt.timedelta(days=1)
    stopped = yesterday - dt.timedelta(days=9)
    header, fr_row, de_row = STATS_CSV.splitlines()
    (tmp_path / "users.csv").write_text(
        USERS_CSV + "u5,2026-01-07T10:00:00Z,,FR,smb,c3\n", encoding="utf-8"
    )
    (tmp_path / "stats.csv").write_text(
        "\n".join(
            [
                header,
                fr_row.replace("2026-02-01", yesterday.isoformat()),
                de_row.replace("2026-02-01", stopped.isoformat()),
                f"{stopped},c3,Display FR,50,1,60,TARGET_CPA,50,",
            ]
        )
        + "\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(
        app, ["check", "--config", str(config)], env={"COLUMNS": "500"}
    )

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        f"campaign_stats: campaign stats of market DE end on {stopped}, 9 day(s) "
        f"before yesterday, while other markets' run to {yesterday}; at most 2 "
        "allowed (guardrails.max_data_age_days): a run today would hold every "
        "target of market DE (stale_data)"
    ) in said
    assert (
        f"campaign_stats: campaign stats of campaign c3 end on {stopped}, 9 day(s) "
        f"before yesterday, while market FR's run to {yesterday}"
    ) in said
    assert (
        "at most 2 allowed (guardrails.max_data_age_days): a run today would hold "
        "campaign c3 ('Display FR') of market FR (stale_data)"
    ) in said
    assert "market FR end on" not in said and "campaign c1" not in said


def test_a_future_campaign_day_is_set_aside_and_hides_no_staleness(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    zone = load_settings(config).account.time_zone
    tomorrow = days.account_today(zone) + dt.timedelta(days=1)
    header, fr_row, de_row = STATS_CSV.splitlines()
    ahead = fr_row.replace("2026-02-01", tomorrow.isoformat())
    (tmp_path / "stats.csv").write_text(
        "\n".join([header, fr_row, de_row, ahead]) + "\n", encoding="utf-8"
    )

    result = CliRunner().invoke(
        app, ["check", "--config", str(config)], env={"COLUMNS": "500"}
    )

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "campaign_stats: 1 of 3 row(s) would be set aside: 1 bad" in said
    assert "campaign stats of market FR end on 2026-02-01" in said


def test_check_refuses_a_campaign_day_with_two_different_rows(tmp_path: Path) -> None:
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    header, first, second = STATS_CSV.splitlines()
    revised = first.replace(",100,", ",100.01,")
    (tmp_path / "stats.csv").write_text(
        "\n".join([header, first, second, revised]) + "\n", encoding="utf-8"
    )

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "the campaign_stats table has 1 conflict(s)" in said
    assert (
        f"campaign_id 'c1', date '2026-02-01': {tmp_path / 'stats.csv'} line 2 and "
        f"{tmp_path / 'stats.csv'} line 4 differ in cost '100.0' vs '100.01'"
    ) in said
    assert "OK" not in result.output


def _with_brand_campaign(
    folder: Path, default_market: str | None, country: str = "UK"
) -> Path:
    config = _config(folder, REVENUE_CSV, 0.5)
    if default_market is not None:
        text = config.read_text(encoding="utf-8")
        config.write_text(text + f"default_market: {default_market}\n", "utf-8")
    (folder / "users.csv").write_text(
        USERS_CSV + f"u5,2026-01-07T10:00:00Z,,{country},smb,c3\n", encoding="utf-8"
    )
    (folder / "stats.csv").write_text(
        STATS_CSV + "2026-02-01,c3,Brand,50,1,60,TARGET_CPA,50,\n", encoding="utf-8"
    )
    return config


@pytest.mark.parametrize("country", ["UK", "uk"])
def test_check_names_campaigns_only_the_default_market_places(
    tmp_path: Path, country: str
) -> None:
    config = _with_brand_campaign(tmp_path, default_market="FR", country=country)

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "campaign_stats: 1 campaign(s) fall to default_market FR: no campaign id, "
        "name pattern or users' country places them: c3 ('Brand')"
    ) in said
    assert "c1" not in said and "c2" not in said
    assert (
        "users: country 'UK' of 1 user(s) is not an ISO 3166 alpha-2 code "
        "(use 'GB'): no market matches it"
    ) in said


def test_check_refuses_a_campaign_no_market_places(tmp_path: Path) -> None:
    config = _with_brand_campaign(tmp_path, default_market=None)

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "campaign c3 ('Brand') belongs to no market" in said
    assert "OK" not in result.output


def _with_patterns(folder: Path, extra: str = "") -> Path:
    """FR's pattern matches any name with 'Search', DE's any name ending 'DE'."""
    config = _config(folder, REVENUE_CSV, 0.5)
    text = config.read_text(encoding="utf-8").replace(
        "markets: {FR: {cac_max: 100}, DE: {cac_max: 120}}\n",
        "markets:\n"
        "  FR: {cac_max: 100, campaign_name_pattern: 'Search'}\n"
        f"  DE: {{cac_max: 120, campaign_name_pattern: 'DE$'{extra}}}\n",
    )
    config.write_text(text, encoding="utf-8")
    return config


def test_check_refuses_a_campaign_two_name_patterns_match(tmp_path: Path) -> None:
    config = _with_patterns(tmp_path)

    result = CliRunner().invoke(
        app, ["check", "--config", str(config)], env={"COLUMNS": "500"}
    )

    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert (
        "campaign c2 ('Search DE') matches the campaign_name_pattern of markets "
        "FR ('Search') and DE ('DE$')"
    ) in said
    assert "OK" not in result.output


def test_a_listed_campaign_id_wins_over_two_matching_patterns(tmp_path: Path) -> None:
    config = _with_patterns(tmp_path, extra=", campaign_ids: [c2]")

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 0, result.output


SECRET = "cs-s3cret-never-shown"

#: Config sections naming a credential file, the file (None: not written),
#: and what ``check`` must then say.
CREDENTIAL_FILES = {
    "google_ads file missing": (
        "google_ads: {customer_ids: ['1234567890'], credentials_file: ads.yaml}\n",
        None,
        "google_ads.credentials_file: cannot read Google Ads credentials file",
    ),
    "google_ads file without its refresh token": (
        "google_ads: {customer_ids: ['1234567890'], credentials_file: ads.yaml}\n",
        f"developer_token: d\nclient_id: c\nclient_secret: {SECRET}\n",
        "google_ads.credentials_file: Google Ads credentials incomplete in the "
        "credentials file",
    ),
    "conversion_upload file missing": (
        "feed: {sink: conversion_upload, customer_id: '1234567890',\n"
        "       conversion_action_id: '1', credentials: ads.yaml}\n",
        None,
        "feed.credentials: cannot read Google Ads credentials file",
    ),
    "data_manager key file missing": (
        "feed: {sink: data_manager, customer_id: '1234567890',\n"
        "       conversion_action_id: '1', credentials: ads.yaml}\n",
        None,
        "feed.credentials: cannot read key file",
    ),
    "data_manager key file of no known kind": (
        "feed: {sink: data_manager, customer_id: '1234567890',\n"
        "       conversion_action_id: '1', credentials: ads.yaml}\n",
        f'{{"type": "external_account", "secret": "{SECRET}"}}',
        "feed.credentials: key file",
    ),
}


@pytest.mark.parametrize("case", sorted(CREDENTIAL_FILES))
def test_check_reads_the_credential_files_the_config_names(
    tmp_path: Path, case: str
) -> None:
    section, content, says = CREDENTIAL_FILES[case]
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    config.write_text(config.read_text(encoding="utf-8") + section, encoding="utf-8")
    if content is not None:
        (tmp_path / "ads.yaml").write_text(content, encoding="utf-8")

    result = CliRunner().invoke(
        app, ["check", "--config", str(config)], env={"COLUMNS": "500"}
    )

    assert result.exit_code == 1, result.output
    assert says in result.stderr
    assert str(tmp_path.absolute() / "ads.yaml") in result.stderr
    assert SECRET not in result.output


def test_check_accepts_a_readable_credentials_file(tmp_path: Path) -> None:
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    config.write_text(
        config.read_text(encoding="utf-8")
        + "google_ads: {customer_ids: ['1234567890'], credentials_file: ads.yaml}\n",
        encoding="utf-8",
    )
    (tmp_path / "ads.yaml").write_text(
        f"developer_token: d\nclient_id: c\nclient_secret: {SECRET}\n"
        "refresh_token: r\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert SECRET not in result.output


def test_check_refuses_a_bad_webhook_url_without_showing_it(tmp_path: Path) -> None:
    config = _config(tmp_path, REVENUE_CSV, 0.5)
    hook = "ftp://hooks.example/services/T000/B000/XXXXtokenXXXX"
    with config.open("a", encoding="utf-8") as out:
        out.write(f"operations: {{alerts: {{webhook_url: '{hook}'}}}}\n")

    result = CliRunner().invoke(app, ["check", "--config", str(config)])

    assert result.exit_code == 1
    said = " ".join(result.stderr.split())
    assert said.startswith(f"error: {config}: 1 invalid setting(s)"), said
    assert "operations.alerts.webhook_url: must start with http:// or https://" in said
    assert "/services/" not in result.output
    assert "XXXXtokenXXXX" not in result.output
