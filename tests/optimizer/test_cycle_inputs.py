"""The cycle reads its inputs through the checks and records the quarantine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from config import load_settings
from connectors.exceptions import ContractError
from models.registry import ModelRegistry
from optimizer.cycle import run_cycle
from optimizer.demo import build_demo
from optimizer.exceptions import PlanningError
from optimizer.state import state_url
from tests.optimizer.conftest import PLG_RUN_DATE, PLGWorld

RUN_DATE = dt.date(2026, 11, 2)


def _spoil_revenue(path: Path, rows: int) -> None:
    """Make the first ``rows`` revenue amounts negative."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
    frame.loc[: rows - 1, "amount"] = "-1"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)


@pytest.mark.slow
def test_a_run_records_its_quarantine_and_fails_past_the_limit(
    tmp_path: Path,
) -> None:
    files = build_demo(tmp_path, RUN_DATE)
    settings = load_settings(files.config)
    revenue_path = tmp_path / "data" / "revenue.csv.gz"
    _spoil_revenue(revenue_path, 3)

    result = run_cycle(settings, run_date=RUN_DATE)

    audit = result.run.inputs["quarantine"]["revenue"]
    assert audit["quarantined"] == 3
    assert audit["rows_in"] == audit["kept"] + audit["quarantined"]
    assert Path(audit["file"]).parent == tmp_path / "state/quarantine/2026-11-02"

    _spoil_revenue(revenue_path, 5000)
    with pytest.raises(ContractError, match=r"column 'amount', line 2: value '-1'"):
        run_cycle(settings, run_date=RUN_DATE)
    engine = sa.create_engine(state_url(settings.state.directory, None))
    with engine.connect() as connection:
        runs = connection.execute(sa.text("select count(*) from runs")).scalar_one()
    engine.dispose()
    assert runs == 1


def test_a_run_without_events_refuses_a_model_trained_with_them(
    plg_world: PLGWorld, tmp_path: Path
) -> None:
    settings = plg_world.settings
    current = ModelRegistry(settings.model.directory).current()
    assert current is not None and current.event_features
    moved = settings.model_copy(
        update={
            "data": settings.data.model_copy(update={"events": None}),
            "state": settings.state.model_copy(update={"directory": tmp_path}),
        }
    )
    inputs = dataclasses.replace(plg_world.inputs, events=None)

    with pytest.raises(PlanningError) as refused:
        run_cycle(moved, run_date=PLG_RUN_DATE, inputs=inputs)

    message = str(refused.value)
    assert f"the pLTV model {current.version} was trained with product" in message
    assert ", ".join(current.event_features) in message
    assert "as data.events" in message
    assert not (tmp_path / "runs").exists()
