"""The state store's schema revisions keep existing rows."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from optimizer.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_schema,
)
from optimizer.state import (
    RunRecord,
    StateStore,
    create_state_engine,
    plan_folder,
    plan_rows,
    runs,
    target_changes,
)


def _foundation_schema(engine: sa.Engine) -> None:
    """The tables as the first release created them, without revision tracking."""
    old = sa.MetaData()
    sa.Table(
        "runs",
        old,
        sa.Column("run_id", sa.String(80), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("run_date", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=1),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(120)),
        sa.Column("plan_dir", sa.String(1000)),
        sa.UniqueConstraint("account", "run_date", name="uq_runs_account_day"),
    )
    sa.Table(
        "plan_rows",
        old,
        sa.Column("run_id", sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("campaign_id", sa.String(40), primary_key=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("new_troas", sa.Float),
        sa.Column("row", sa.JSON, nullable=False),
    )
    sa.Table(
        "target_changes",
        old,
        sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_strategy", sa.String(40), nullable=False),
        sa.Column("old_target_cpa", sa.Float),
        sa.Column("old_target_roas", sa.Float),
        sa.Column("new_target_roas", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),
    )
    old.create_all(engine)
    started = dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
    with engine.begin() as connection:
        for day in (2, 3):
            connection.execute(
                old.tables["runs"]
                .insert()
                .values(
                    run_id=f"2026110{day}-acme-fr",
                    account="Acme FR",
                    run_date=dt.date(2026, 11, day),
                    started_at=started,
                    status="planned",
                    mode="dry_run",
                    attempts=1,
                    inputs={"rows": {"users": 120}},
                    model_version="pltv-20261101",
                    plan_dir="/srv/valuebid/runs",
                )
            )
            connection.execute(
                old.tables["plan_rows"]
                .insert()
                .values(
                    run_id=f"2026110{day}-acme-fr",
                    campaign_id="101",
                    action="raise",
                    new_troas=2.3,
                    row={"campaign_id": "101", "new_troas": 2.3},
                )
            )
        connection.execute(
            old.tables["target_changes"]
            .insert()
            .values(
                run_id="20261102-acme-fr",
                campaign_id="101",
                applied_at=started,
                old_strategy="TARGET_CPA",
                old_target_cpa=41.0,
                new_target_roas=2.3,
                status="applied",
            )
        )


def test_upgrade_keeps_the_rows_of_a_store_made_before_revisions(db_url: str) -> None:
    engine = create_state_engine(db_url)
    _foundation_schema(engine)
    assert current_revision(engine) is None
    engine.dispose()

    store = StateStore(db_url)

    assert current_revision(store.engine) == head_revision()
    old_runs = store.list_runs()
    assert [r.run_id for r in old_runs] == ["20261103-acme-fr", "20261102-acme-fr"]
    assert old_runs[0].inputs == {"rows": {"users": 120}}
    assert {r.kind for r in old_runs} == {"cycle"}
    assert store.plan_of("20261102-acme-fr") == [
        {"campaign_id": "101", "new_troas": 2.3}
    ]
    change = store.changes_of("20261102-acme-fr")["101"]
    assert (change.old_strategy, change.old_target_cpa) == ("TARGET_CPA", 41.0)
    assert store.last_change_dates() == {"101": dt.date(2026, 11, 2)}
    # The new constraints hold on the upgraded tables.
    with store.engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar()
            == 2
        )
        count = sa.select(sa.func.count()).select_from(target_changes)
        assert connection.execute(count).scalar() == 1
    store.dispose()


def test_upgrade_from_the_first_revision_keeps_rows(db_url: str) -> None:
    engine = create_state_engine(db_url)
    upgrade_schema(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "insert into runs (run_id, account, run_date, started_at, status, "
                "mode, attempts, inputs) values ('r1', 'Acme FR', '2026-11-02', "
                "'2026-11-02 06:30:00', 'planned', 'dry_run', 1, '{}')"
            )
        )
    engine.dispose()

    store = StateStore(db_url)
    record = store.get_run("r1")
    assert record is not None
    assert (record.kind, record.rolls_back, record.stop_reason) == ("cycle", "", None)
    store.dispose()


def test_upgrade_to_failed_attempts_keeps_runs_approvals_and_changes(
    db_url: str,
) -> None:
    engine = create_state_engine(db_url)
    upgrade_schema(engine, "0002")
    started = dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
    with engine.begin() as connection:
        # Only the columns revision 0002 has.
        connection.execute(
            runs.insert().values(
                run_id="20261102-acme-fr",
                account="Acme FR",
                run_date=dt.date(2026, 11, 2),
                started_at=started,
                status="partial",
                mode="apply",
                attempts=2,
                inputs={"data_through": "2026-11-01"},
                kind="cycle",
                rolls_back="",
                stop_reason="103 rejected: TARGET_ROAS_OUT_OF_RANGE",
            )
        )
        connection.execute(
            plan_rows.insert().values(
                run_id="20261102-acme-fr",
                campaign_id="102",
                action="raise",
                new_troas=2.875,
                row={"campaign_id": "102", "new_troas": 2.875},
                approved_at=started,
            )
        )
        connection.execute(
            target_changes.insert().values(
                run_id="20261102-acme-fr",
                campaign_id="102",
                applied_at=started,
                old_strategy="TARGET_ROAS",
                old_target_roas=2.5,
                new_strategy="TARGET_ROAS",
                new_target_roas=2.875,
                status="applied",
                request_id="req-1",
            )
        )
    assert current_revision(engine) == "0002"
    engine.dispose()

    store = StateStore(db_url)
    try:
        assert current_revision(store.engine) == head_revision()
        record = store.get_run("20261102-acme-fr")
        assert record is not None
        assert (record.status, record.attempts, record.stop_reason) == (
            "partial",
            2,
            "103 rejected: TARGET_ROAS_OUT_OF_RANGE",
        )
        assert (record.failed_attempt_at, record.failed_attempt_error) == (None, None)
        with store.engine.connect() as connection:
            approved = connection.execute(
                sa.select(plan_rows.c.approved_at)
            ).scalar_one()
        assert approved is not None
        assert store.changes_of("20261102-acme-fr")["102"].request_id == "req-1"
        # A failed start of that day is recorded on the upgraded row.
        with store.transaction() as connection:
            kept = store.record_failed_attempt(
                connection,
                account="Acme FR",
                run_date=dt.date(2026, 11, 2),
                error="InputError: users.csv is missing",
                when=started,
            )
        assert kept is not None
        assert (kept.status, kept.failed_attempt_error) == (
            "partial",
            "InputError: users.csv is missing",
        )
    finally:
        store.dispose()


def test_stores_opened_at_once_upgrade_the_schema_once(db_url: str) -> None:
    errors: list[BaseException] = []
    ready = threading.Barrier(3)

    def open_store() -> None:
        ready.wait()
        try:
            StateStore(db_url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    engine = create_state_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_upgrade_to_value_level_keeps_runs_and_records_figures(db_url: str) -> None:
    engine = create_state_engine(db_url)
    upgrade_schema(engine, "0003")
    started = dt.datetime(2026, 11, 2, 6, 30, tzinfo=dt.UTC)
    with engine.begin() as connection:
        # Only the columns revision 0003 has.
        connection.execute(
            sa.text(
                "insert into runs (run_id, account, run_date, started_at, status, "
                "mode, attempts, inputs, kind, rolls_back, stop_reason, "
                "failed_attempt_error) values ('20261102-acme-fr', 'Acme FR', "
                "'2026-11-02', :started, 'rerun_failed', 'dry_run', 2, '{}', "
                "'cycle', '', null, 'InputError: users.csv is missing')"
            ),
            {"started": started},
        )
    assert current_revision(engine) == "0003"
    engine.dispose()

    store = StateStore(db_url)
    try:
        assert current_revision(store.engine) == head_revision() == "0004"
        record = store.get_run("20261102-acme-fr")
        assert record is not None
        assert (record.status, record.failed_attempt_error) == (
            "rerun_failed",
            "InputError: users.csv is missing",
        )
        assert (record.value_summary, record.value_check) == (None, None)
        assert store.value_baseline("Acme FR", dt.date(2026, 11, 30)) is None
        with store.transaction() as connection:
            held = store.record_run(
                connection,
                account="Acme FR",
                run_date=dt.date(2026, 11, 3),
                mode="dry_run",
                inputs={},
                model_version="pltv-test",
                plan_dir="/nonexistent",
                rows=[],
                started_at=started,
                value_summary={"new_users": 120, "new_total": 4332.0},
                value_check={"status": "held", "ratio": 34.2},
                hold_reason="value_jump: the predicted values jumped",
            )
        assert (held.status, held.value_check) == (
            "value_held",
            {"status": "held", "ratio": 34.2},
        )
    finally:
        store.dispose()


def test_downgrade_from_value_level_leaves_a_held_run_stopped(db_url: str) -> None:
    store = StateStore(db_url)
    with store.transaction() as connection:
        store.record_run(
            connection,
            account="Acme FR",
            run_date=dt.date(2026, 11, 3),
            mode="dry_run",
            inputs={},
            model_version="pltv-test",
            plan_dir="/nonexistent",
            rows=[],
            started_at=dt.datetime(2026, 11, 3, 6, 30, tzinfo=dt.UTC),
            value_summary={"new_users": 120},
            value_check={"status": "held"},
            hold_reason="value_jump: the predicted values jumped",
        )
    store.dispose()
    engine = create_state_engine(db_url)

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003")

    with engine.connect() as connection:
        assert current_revision(engine) == "0003"
        row = connection.execute(sa.text("select status, stop_reason from runs")).one()
        columns = {c["name"] for c in sa.inspect(connection).get_columns("runs")}
    engine.dispose()
    assert tuple(row) == ("stopped", "value_jump: the predicted values jumped")
    assert not {"value_summary", "value_check"} & columns


def test_a_plan_folder_is_found_under_the_configs_state_directory(
    tmp_path: Path,
) -> None:
    """A folder recorded relative to another start folder, or moved, is found."""
    state = tmp_path / "acme" / "state"
    (state / "runs" / "2026-12-05").mkdir(parents=True)
    elsewhere = tmp_path / "other" / "runs" / "2026-12-04"
    elsewhere.mkdir(parents=True)

    def folder(recorded: str | None) -> Path | None:
        record = RunRecord(
            run_id="20261205-acme",
            account="acme",
            run_date=dt.date(2026, 12, 5),
            status="planned",
            mode="dry_run",
            started_at=dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
            finished_at=None,
            attempts=1,
            model_version="m",
            plan_dir=recorded,
            inputs={},
        )
        return plan_folder(record, state)

    assert folder("acme/state/runs/2026-12-05") == state / "runs" / "2026-12-05"
    assert folder(str(elsewhere)) == elsewhere
    assert folder("/moved/away/runs/2026-12-03") == state / "runs" / "2026-12-03"
    assert folder(None) is None
