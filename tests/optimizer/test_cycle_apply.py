"""The daily cycle applies its plan once, end to end, on the bundled demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config import load_settings
from optimizer.apply import CampaignTarget
from optimizer.cycle import run_cycle
from optimizer.demo import CAMPAIGNS, DEMO_TIME_ZONE, build_demo
from tests.optimizer.fakes import MemoryAccount


@pytest.mark.slow
def test_a_scheduled_cycle_in_auto_mode_applies_once_per_day(tmp_path: Path) -> None:
    today = dt.datetime.now(ZoneInfo(DEMO_TIME_ZONE)).date()
    files = build_demo(tmp_path, today)
    loaded = load_settings(files.config)
    settings = loaded.model_copy(
        update={
            "operations": loaded.operations.model_copy(update={"apply_mode": "auto"})
        }
    )
    account = MemoryAccount(
        {
            c.campaign_id: CampaignTarget(
                c.campaign_id, "TARGET_CPA", None, c.cost_per_acquisition
            )
            for c in CAMPAIGNS
        }
    )

    first = run_cycle(settings, run_date=today, writer=account)
    second = run_cycle(settings, run_date=today, writer=account)

    assert first.applied is not None
    assert second.applied is not None
    changed = sorted(r.campaign_id for r in first.rows if r.new_troas is not None)
    assert changed, "the demo plan moves no campaign"
    assert sorted(first.applied.applied) == changed
    assert second.applied.pushed == []
    assert sorted(account.pushes) == changed
    assert second.run.attempts == 2
    assert second.run.status == "applied"
    assert [r.new_troas for r in second.rows] == [r.new_troas for r in first.rows]
    for row in first.rows:
        if row.new_troas is not None:
            assert account.targets[row.campaign_id].target_roas == row.new_troas
