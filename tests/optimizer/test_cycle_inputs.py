"""The cycle reads its inputs through the checks and records the quarantine."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from config import load_settings
from connectors.exceptions import ContractError
from models.pltv import PLTVModel
from models.registry import ModelRegistry
from optimizer.cycle import run_cycle
from optimizer.demo import build_demo
from optimizer.exceptions import PlanningError
from optimizer.state import StateStore, state_url
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


def _refund_first_payments(path: Path, users: int) -> pd.DataFrame:
    """Refund in full, a day later, the earliest first payments of ``users``
    users, and refund a later one of theirs far beyond what they paid.

    Returns the refund rows added, the one beyond last.
    """
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype="string", keep_default_na=False)
    when = pd.to_datetime(frame["occurred_at"], utc=True)
    firsts = when.groupby(frame["user_id"]).idxmin().to_numpy()
    first = frame.loc[firsts].assign(at=when[firsts]).sort_values("at").head(users)
    later = first["at"] + pd.Timedelta(days=1)
    refunds = first.drop(columns="at").assign(
        occurred_at=later.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        amount="-" + first["amount"],
        order_id="refund-" + first["order_id"],
    )
    beyond = refunds.iloc[[0]].assign(amount="-999999", order_id="refund-beyond")
    added = pd.concat([refunds, beyond], ignore_index=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        pd.concat([frame, added]).to_csv(handle, index=False)
    return added


@pytest.mark.slow
def test_a_run_keeps_refunds_and_quarantines_the_one_beyond_what_was_paid(
    tmp_path: Path,
) -> None:
    files = build_demo(tmp_path, RUN_DATE)
    settings = load_settings(files.config)
    revenue_path = tmp_path / "data" / "revenue.csv.gz"
    with gzip.open(revenue_path, "rt", encoding="utf-8") as handle:
        paid = pd.read_csv(handle)["amount"].sum()
    refunds = _refund_first_payments(revenue_path, 300)

    result = run_cycle(settings, run_date=RUN_DATE)

    audit = result.run.inputs["quarantine"]["revenue"]
    assert (audit["quarantined"], audit["duplicates"]) == (1, 0)
    assert audit["rows_in"] == audit["kept"] + 1
    quarantined = pd.read_csv(audit["file"], dtype="string")
    assert quarantined["order_id"].tolist() == ["refund-beyond"]
    user = refunds["user_id"].iloc[0]
    reason = quarantined["quarantine_reason"].iloc[0]
    assert f"more than user {user!r} had paid by then" in reason
    refunded = -refunds["amount"].iloc[:-1].astype(float).sum()
    assert result.value_summary is not None
    assert result.value_summary.revenue_total == pytest.approx(
        paid - refunded, abs=0.01
    )
    assert result.rows, "the run plans its campaigns"


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


def test_a_run_on_users_without_a_column_the_model_learnt_fails_naming_it(
    plg_world: PLGWorld, tmp_path: Path
) -> None:
    settings = plg_world.settings
    moved = settings.model_copy(
        update={
            "state": settings.state.model_copy(update={"directory": tmp_path}),
            "model": settings.model.model_copy(update={"directory": tmp_path / "m"}),
        }
    )
    users = plg_world.inputs.users
    tiers = np.random.default_rng(3).choice(["free", "pro", "team"], len(users))
    with_tier = dataclasses.replace(
        plg_world.inputs, users=users.assign(plan_tier=tiers)
    )
    model = PLTVModel(ages=(0, 30), loss="relative", max_train_users=300).fit(
        with_tier.users, with_tier.revenue, plg_world.as_of, with_tier.events
    )
    assert model.extra_user_columns == ["plan_tier"]
    planned = run_cycle(moved, run_date=PLG_RUN_DATE, inputs=with_tier, model=model)

    with pytest.raises(PlanningError) as refused:
        run_cycle(moved, run_date=PLG_RUN_DATE, inputs=plg_world.inputs, model=model)

    message = str(refused.value)
    assert message == (
        f"the pLTV model {model.version} was trained with the users column(s) "
        f"plan_tier, which data.users ({settings.data.users.describe()}) lacks. "
        "Restore them to that table, or point model.directory to a new folder "
        f"(now {tmp_path / 'm'}) so that the next run trains a model without them."
    )
    store = StateStore(state_url(moved.state.directory, moved.state.url))
    try:
        record = store.get_run(planned.run.run_id)
    finally:
        store.dispose()
    assert record is not None
    assert record.failed_attempt_error == f"PlanningError: {message}"
