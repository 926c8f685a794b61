"""Campaign stats: one row per campaign and day, whatever files they come in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from connectors.exceptions import ContractError
from connectors.files import Inputs, load_inputs
from connectors.sources import DataSettings
from connectors.warehouse import Chunk
from tests.connectors.conftest import BASE, NOW, Loader, write

HEADER = (
    "date,campaign_id,campaign_name,cost,conversions,conversion_value,"
    "bidding_strategy_type,target_cpa,target_roas,bidding_strategy_status"
)


def _day(day: str, cost: str = "100", status: str = "ENABLED") -> str:
    return f"2026-02-{day},111,Search FR,{cost},5,200,TARGET_CPA,20,,{status}"


def _stats(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _glob(tmp_path: Path, *files: str) -> dict[str, Path]:
    for number, text in enumerate(files, start=1):
        write(tmp_path / "exports", f"stats-{number:02}.csv", text)
    return {"path": tmp_path / "exports" / "stats-*.csv"}


def _refusal(load: Loader, stats: object) -> str:
    with pytest.raises(ContractError) as refused:
        load(tables={"campaign_stats": stats})
    return " ".join(str(refused.value).split())


def test_a_revised_day_in_an_overlapping_export_is_refused(
    load: Loader, tmp_path: Path
) -> None:
    first = _stats(_day("01"), _day("02"), _day("03"))
    revised = _stats(_day("02"), _day("03", cost="100.01"), _day("04"))

    message = _refusal(load, _glob(tmp_path, first, revised))

    exports = tmp_path / "exports"
    assert "the campaign_stats table has 1 conflict(s)" in message
    assert (
        f"campaign_id '111', date '2026-02-03': {exports / 'stats-01.csv'} line 4 "
        f"and {exports / 'stats-02.csv'} line 3 differ in cost '100.0' vs '100.01'"
    ) in message
    assert "Nothing was written" in message
    assert not (tmp_path / "state" / "quarantine").exists()


def test_a_campaign_day_twice_in_one_file_is_refused(
    load: Loader, tmp_path: Path
) -> None:
    stats = _stats(_day("01"), _day("02"), _day("01", cost="99.5"))

    message = _refusal(load, stats)

    path = tmp_path / "in" / "campaign_stats.csv"
    assert (
        f"campaign_id '111', date '2026-02-01': {path} line 2 and {path} line 4 "
        "differ in cost '100.0' vs '99.5'"
    ) in message


def test_a_day_both_enabled_and_paused_is_refused(load: Loader) -> None:
    stats = _stats(_day("01"), _day("01", status="PAUSED"))

    message = _refusal(load, stats)

    assert "date '2026-02-01'" in message
    assert "differ in bidding_strategy_status 'ENABLED' vs 'PAUSED'" in message


def test_many_conflicts_are_counted_and_the_first_few_shown(
    load: Loader, tmp_path: Path
) -> None:
    days = [f"{day:02}" for day in range(1, 9)]
    first = _stats(*(_day(day) for day in days))
    revised = _stats(*(_day(day, cost="101") for day in days))

    message = _refusal(load, _glob(tmp_path, first, revised))

    assert "the campaign_stats table has 8 conflict(s)" in message
    assert "date '2026-02-05'" in message
    assert "date '2026-02-06'" not in message
    assert "... and 3 more" in message


def test_refused_even_when_the_quarantine_accepts_bad_rows(load: Loader) -> None:
    with pytest.raises(ContractError, match=r"1 conflict\(s\)"):
        load(
            tables={"campaign_stats": _stats(_day("01"), _day("01", cost="1"))},
            max_share=1.0,
        )


def test_exact_repeats_across_exports_count_once(load: Loader, tmp_path: Path) -> None:
    first = _stats(_day("01"), _day("02"))
    again = _stats(_day("02"), _day("03"))

    inputs = load(tables={"campaign_stats": _glob(tmp_path, first, again)}, max_share=0)

    assert inputs.campaign_stats["cost"].sum() == pytest.approx(300.0)
    audit = inputs.audits["campaign_stats"]
    assert (audit.rows_in, audit.kept, audit.duplicates, audit.bad) == (4, 3, 1, 0)
    assert audit.file is not None
    repeat = pd.read_csv(audit.file, dtype="string").iloc[0]
    assert repeat["quarantine_kind"] == "duplicate"
    assert repeat["quarantine_source"] == str(tmp_path / "exports" / "stats-02.csv")
    assert repeat["quarantine_line"] == "2"
    assert repeat["quarantine_reason"] == (
        "repeats an identical earlier row of its campaign_id and date (first at "
        f"{tmp_path / 'exports' / 'stats-01.csv'} line 3)"
    )


def _api_load(tmp_path: Path, frame: pd.DataFrame) -> Inputs:
    for name in ("users", "revenue"):
        write(tmp_path / "in", f"{name}.csv", BASE[name])
    settings = DataSettings.model_validate(
        {name: tmp_path / "in" / f"{name}.csv" for name in ("users", "revenue")}
    )
    return load_inputs(
        settings,
        currency="EUR",
        now=pd.Timestamp(NOW),
        campaign_stats=Chunk("Google Ads API", 1, frame),
    )


def test_api_stats_with_a_campaign_day_twice_are_refused(tmp_path: Path) -> None:
    frame = pd.read_csv(pd.io.common.StringIO(_stats(_day("01"), _day("02"))))
    revised = frame.assign(cost=[100.0, 120.0])

    with pytest.raises(ContractError) as refused:
        _api_load(tmp_path, pd.concat([frame, revised], ignore_index=True))

    assert (
        "campaign_id '111', date '2026-02-02': Google Ads API row 2 and Google "
        "Ads API row 4 differ in cost '100.0' vs '120.0'"
    ) in " ".join(str(refused.value).split())
