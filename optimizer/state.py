"""The state store: runs, their plans, the target changes pushed, and leases.

SQLite by default (a file in the state folder), any SQLAlchemy URL otherwise.
The schema is versioned: opening a store upgrades it in place to the newest
revision (see ``optimizer/migrations``), so an upgrade of the tool keeps every
recorded run.

One cycle run per account and day: running the same day again re-plans that
run in place until something of it has been approved or pushed; from then on
the day's plan is frozen and every later start reuses it.

A start of the day that fails before it records its plan (an input that
breaks its contract, too many rows quarantined, a plan that cannot be made)
is recorded on the day's run too: when and why, in ``failed_attempt_at`` and
``failed_attempt_error``. The earlier plan was made on inputs the operator
has since replaced, so unless it is frozen the run becomes ``rerun_failed``,
which nothing approves or applies until a start of the day succeeds and
re-plans it; a ``value_held`` run stays held for its values instead. A frozen
plan keeps its status: what was reviewed or pushed does not depend on later
inputs, but its changes not applied yet are pushed only after a start of the
day succeeds or a new approval. A start that succeeds clears the record, as
the day's run then shows what that start did.

Each cycle run also records the figures of the values it scored
(``value_summary``) and how their mean per user compared with the last
successful run of the account (``value_check``). A run whose values moved
by more than the configured factor is ``value_held``: every target of its
plan holds and no value of the day is sent, until a run of the day passes
the check or accepts the new level deliberately.

A target change is written in two steps. Before a push, an ``intent`` row
holds the values read from the account just before (what a rollback
restores) and the values wanted; after the push, its status becomes
``applied`` or ``rejected``. An intent still ``pending`` after a crash is
reconciled by reading the account, never by pushing blindly again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from optimizer.exceptions import StateError
from optimizer.plan import PlanRow

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

#: Kinds of run.
CYCLE = "cycle"
ROLLBACK = "rollback"

#: Statuses of a run.
PLANNED = "planned"
APPLYING = "applying"
APPLIED = "applied"
PARTIAL = "partial"
STOPPED = "stopped"
FAILED = "failed"
#: A later start of the day failed before re-planning: the plan may not be used.
RERUN_FAILED = "rerun_failed"
#: The values scored jumped from the last successful run: targets and feed hold.
VALUE_HELD = "value_held"

#: Statuses of a target change.
PENDING = "pending"
CHANGE_APPLIED = "applied"
REJECTED = "rejected"
DRIFTED = "drifted"
#: Not pushed: its market's or its own campaign stats were too old on the
#: day of the push (the detail says which and why).
WITHHELD = "withheld"

runs = sa.Table(
    "runs",
    metadata,
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
    sa.Column("kind", sa.String(20), nullable=False, server_default=CYCLE),
    sa.Column("rolls_back", sa.String(80), nullable=False, server_default=""),
    sa.Column("stop_reason", sa.Text),
    sa.Column("failed_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("failed_attempt_error", sa.Text),
    # Python None stays SQL NULL, so runs without figures are found by query.
    sa.Column("value_summary", sa.JSON(none_as_null=True)),
    sa.Column("value_check", sa.JSON(none_as_null=True)),
    sa.UniqueConstraint(
        "account", "run_date", "kind", "rolls_back", name="uq_runs_account_day_kind"
    ),
)

plan_rows = sa.Table(
    "plan_rows",
    metadata,
    sa.Column("run_id", sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("campaign_id", sa.String(40), primary_key=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("new_troas", sa.Float),
    sa.Column("row", sa.JSON, nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True)),
)

target_changes = sa.Table(
    "target_changes",
    metadata,
    sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("campaign_id", sa.String(40), nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("old_strategy", sa.String(40), nullable=False),
    sa.Column("old_target_cpa", sa.Float),
    sa.Column("old_target_roas", sa.Float),
    sa.Column("new_target_roas", sa.Float),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("new_strategy", sa.String(40)),
    sa.Column("new_target_cpa", sa.Float),
    sa.Column("request_id", sa.String(200)),
    sa.UniqueConstraint("run_id", "campaign_id", name="uq_target_changes_run_campaign"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table.

    ``failed_attempt_at`` and ``failed_attempt_error`` say when and why the
    latest start of the day failed before it recorded a plan; both are
    ``None`` when the latest start succeeded. ``value_summary`` and
    ``value_check`` are the figures of the values the run scored and their
    comparison with the last successful run (see
    :mod:`optimizer.value_level`); ``None`` on runs recorded before they
    were kept.
    """

    run_id: str
    account: str
    run_date: dt.date
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    mode: str
    attempts: int
    inputs: dict[str, Any]
    model_version: str | None
    plan_dir: str | None
    kind: str = CYCLE
    rolls_back: str = ""
    stop_reason: str | None = None
    failed_attempt_at: dt.datetime | None = None
    failed_attempt_error: str | None = None
    value_summary: dict[str, Any] | None = None
    value_check: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredPlanRow:
    """A plan row as recorded, with its approval."""

    row: PlanRow
    approved_at: dt.datetime | None


@dataclass(frozen=True)
class ChangeRecord:
    """One target change of a run: the values before, the values wanted, the outcome."""

    run_id: str
    campaign_id: str
    status: str
    old_strategy: str
    old_target_roas: float | None
    old_target_cpa: float | None
    new_strategy: str | None
    new_target_roas: float | None
    new_target_cpa: float | None
    applied_at: dt.datetime
    detail: str | None
    request_id: str | None


def state_url(directory: Path, url: str | None) -> str:
    """The database URL: ``url`` when given, else a SQLite file in ``directory``."""
    if url:
        return url
    return f"sqlite:///{directory / 'state.db'}"


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet, else ``None``.

    Opening a store creates its file, so commands that only read or amend
    recorded runs check this first and leave no empty database behind.
    """
    location = make_url(url)
    if location.get_backend_name() != "sqlite" or location.database in (
        None,
        "",
        ":memory:",
    ):
        return None
    path = Path(str(location.database))
    return None if path.exists() else path


def create_state_engine(url: str) -> Engine:
    """An engine on the state database, with write locks taken at ``BEGIN``.

    SQLite's default deferred transactions take the write lock only at the
    first write, so two processes that both read then write can fail with
    "database is locked" instead of waiting; ``BEGIN IMMEDIATE`` makes the
    second writer wait its turn at the start of its transaction.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _manual_transactions(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class StateStore:
    """Read and record runs, plans and changes.

    Parameters
    ----------
    url
        A SQLAlchemy database URL. The schema is created or upgraded to the
        newest revision on open.

    Raises
    ------
    StateError
        The database cannot be opened or upgraded.
    """

    def __init__(self, url: str) -> None:
        from optimizer.migrations import upgrade_schema

        self.engine: Engine = create_state_engine(url)
        try:
            upgrade_schema(self.engine)
        except SQLAlchemyError as exc:
            self.engine.dispose()
            raise StateError(f"cannot open the state store: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit of work; rolled back on any error."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StateError(f"state store write failed: {exc}") from exc

    def record_run(
        self,
        connection: Connection,
        *,
        account: str,
        run_date: dt.date,
        mode: str,
        inputs: dict[str, Any],
        model_version: str | None,
        plan_dir: str,
        rows: Sequence[PlanRow],
        started_at: dt.datetime,
        value_summary: dict[str, Any] | None = None,
        value_check: dict[str, Any] | None = None,
        hold_reason: str | None = None,
    ) -> RunRecord:
        """Insert the day's run, or update it in place when it already exists.

        Once a change of the day's run has been approved or pushed, its plan
        is frozen: a later start counts the attempt and keeps the recorded
        plan, so what is applied is always what was reviewed. Either way the
        record of a failed earlier start is cleared: this one succeeded.

        With ``hold_reason`` (the values jumped from the last successful
        run) the run is recorded ``value_held`` with that reason as its stop
        reason. A frozen plan keeps its status and figures instead, and the
        held start is recorded like a failed one: when, and why.
        """
        run_id = cycle_run_id(account, run_date)
        finished = dt.datetime.now(dt.UTC)
        # The row lock orders this against an approval or a failed start of
        # the same day, which decide on the same frozen-or-not question.
        existing = connection.execute(
            sa.select(runs.c.attempts).where(runs.c.run_id == run_id).with_for_update()
        ).scalar_one_or_none()
        if existing is not None and self.plan_frozen(run_id, connection):
            logger.info(
                "run %s already has approved or pushed changes: plan kept", run_id
            )
            connection.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(
                    attempts=existing + 1,
                    finished_at=finished,
                    failed_attempt_at=finished if hold_reason else None,
                    failed_attempt_error=hold_reason,
                )
            )
            record = self.get_run(run_id, connection)
            assert record is not None
            return record
        values = {
            "account": account,
            "run_date": run_date,
            "started_at": started_at,
            "finished_at": finished,
            "status": VALUE_HELD if hold_reason else PLANNED,
            "mode": mode,
            "inputs": inputs,
            "model_version": model_version,
            "plan_dir": plan_dir,
            "stop_reason": hold_reason,
            "failed_attempt_at": None,
            "failed_attempt_error": None,
            "value_summary": value_summary,
            "value_check": value_check,
        }
        if existing is None:
            connection.execute(
                runs.insert().values(
                    run_id=run_id, attempts=1, kind=CYCLE, rolls_back="", **values
                )
            )
        else:
            connection.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(attempts=existing + 1, **values)
            )
            connection.execute(plan_rows.delete().where(plan_rows.c.run_id == run_id))
        if rows:
            connection.execute(
                plan_rows.insert(),
                [
                    {
                        "run_id": run_id,
                        "campaign_id": row.campaign_id,
                        "action": row.action,
                        "new_troas": row.new_troas,
                        "row": json.loads(json.dumps(row.to_dict(), default=str)),
                    }
                    for row in rows
                ],
            )
        record = self.get_run(run_id, connection)
        assert record is not None
        return record

    def record_failed_attempt(
        self,
        connection: Connection,
        *,
        account: str,
        run_date: dt.date,
        error: str,
        when: dt.datetime,
    ) -> RunRecord | None:
        """Record on the day's run a start that failed before recording a plan.

        The attempt is counted and its time and error kept. A plan nothing
        was approved or pushed from becomes ``rerun_failed``: it was made on
        inputs since replaced, so it may not be approved or applied until a
        start of the day succeeds. A ``value_held`` run stays held for its
        values, with its reason: the failed start settles nothing, and the
        day must not look as if it were held for the failure alone. A frozen
        plan keeps its status; its changes not yet applied wait for a start
        of the day that succeeds or a new approval (see
        :func:`stale_approvals`).

        Parameters
        ----------
        connection
            The transaction to write in.
        account, run_date
            The day whose start failed.
        error
            Why it failed, as stored and shown; free of secrets.
        when
            When it failed.

        Returns
        -------
        RunRecord or None
            The day's run as now recorded; ``None`` when the day has no run,
            so there is no plan to hold back and nothing is written.
        """
        run_id = cycle_run_id(account, run_date)
        existing = connection.execute(
            sa.select(runs.c.attempts, runs.c.status)
            .where(runs.c.run_id == run_id)
            .with_for_update()
        ).first()
        if existing is None:
            return None
        attempts, status = existing
        values: dict[str, Any] = {
            "attempts": attempts + 1,
            "failed_attempt_at": when,
            "failed_attempt_error": error,
        }
        if status != VALUE_HELD and not self.plan_frozen(run_id, connection):
            # The old stop reason was about the plan now set aside.
            values.update(status=RERUN_FAILED, stop_reason=None)
        connection.execute(runs.update().where(runs.c.run_id == run_id).values(values))
        record = self.get_run(run_id, connection)
        assert record is not None
        return record

    def plan_frozen(self, run_id: str, connection: Connection) -> bool:
        """Whether any change of the run has been approved or pushed."""
        approved = connection.execute(
            sa.select(sa.func.count())
            .select_from(plan_rows)
            .where(plan_rows.c.run_id == run_id, plan_rows.c.approved_at.is_not(None))
        ).scalar_one()
        pushed = connection.execute(
            sa.select(sa.func.count())
            .select_from(target_changes)
            .where(target_changes.c.run_id == run_id)
        ).scalar_one()
        return bool(approved or pushed)

    def create_rollback_run(
        self, connection: Connection, original: RunRecord, run_date: dt.date
    ) -> RunRecord:
        """The run that undoes ``original`` on ``run_date``; reused if it exists."""
        run_id = f"{original.run_id}-undo-{run_date:%Y%m%d}"
        if self.get_run(run_id, connection) is None:
            now = dt.datetime.now(dt.UTC)
            connection.execute(
                runs.insert().values(
                    run_id=run_id,
                    account=original.account,
                    run_date=run_date,
                    started_at=now,
                    finished_at=None,
                    status=PLANNED,
                    mode="apply",
                    attempts=1,
                    inputs={},
                    model_version=None,
                    plan_dir=None,
                    kind=ROLLBACK,
                    rolls_back=original.run_id,
                )
            )
        else:
            connection.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(attempts=runs.c.attempts + 1)
            )
        record = self.get_run(run_id, connection)
        assert record is not None
        return record

    def set_status(
        self,
        connection: Connection,
        run_id: str,
        status: str,
        stop_reason: str | None = None,
    ) -> None:
        """Record a run's outcome (and why it stopped, when it did)."""
        connection.execute(
            runs.update()
            .where(runs.c.run_id == run_id)
            .values(
                status=status,
                stop_reason=stop_reason,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )

    def get_run(
        self,
        run_id: str,
        connection: Connection | None = None,
        *,
        lock: bool = False,
    ) -> RunRecord | None:
        """The run with this id, or ``None``.

        With ``lock`` (and a ``connection``) the row stays locked until the
        transaction ends, so a decision taken on its status holds.
        """
        query = sa.select(runs).where(runs.c.run_id == run_id)
        if lock:
            query = query.with_for_update()
        if connection is not None:
            row = connection.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        return RunRecord(**row) if row is not None else None

    def value_baseline(
        self, account: str, on_or_before: dt.date | None = None
    ) -> RunRecord | None:
        """The account's last successful cycle run, for its values.

        Successful: it recorded the figures of its values. A plan held back
        by a failed later start of its day still counts: the failure set its
        plan aside, not the figures its own start measured, and without them
        the first day of an account would have no level to compare a rerun
        with. A run held for a jump in its values stands for the level it was
        held against:
        its rerun overwrote its own figures with the jumped ones, so the
        record returned carries the held check's ``baseline_summary`` and
        names the run that level came from.

        Parameters
        ----------
        account
            The account whose runs are searched.
        on_or_before
            The latest run day to consider, the newest day first (a cycle run
            compares with the days up to the one it plans). ``None``
            considers every day and takes the run that started last (the
            feed, on its own clock, compares with the latest level recorded).

        Returns
        -------
        RunRecord or None
            The run; ``None`` when there is no such run.
        """
        # A run held for its values carries the level it was held against:
        # a rerun of its day overwrote its own figures with the jumped ones,
        # and the day after must not lose the level by skipping it.
        query = sa.select(runs).where(
            runs.c.account == account,
            runs.c.kind == CYCLE,
            runs.c.value_summary.is_not(None),
        )
        if on_or_before is None:
            # A run's start time is that of the start whose figures it holds:
            # a frozen plan keeps both when a later start reuses it.
            query = query.order_by(runs.c.started_at.desc(), runs.c.run_date.desc())
        else:
            query = query.where(runs.c.run_date <= on_or_before).order_by(
                runs.c.run_date.desc()
            )
        with self.engine.connect() as connection:
            for row in connection.execute(query).mappings():
                record = RunRecord(**row)
                if record.status != VALUE_HELD:
                    return record
                check = record.value_check or {}
                carried = check.get("baseline_summary")
                if carried:
                    return replace(
                        record,
                        run_id=str(check.get("baseline_run") or record.run_id),
                        run_date=dt.date.fromisoformat(
                            str(check.get("baseline_date") or record.run_date)
                        ),
                        value_summary=carried,
                    )
                # Held before held runs kept their level: look further back.
        return None

    def latest_run(self, account: str) -> RunRecord | None:
        """The account's most recent cycle run, or ``None``."""
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(runs)
                    .where(runs.c.account == account, runs.c.kind == CYCLE)
                    .order_by(runs.c.run_date.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return RunRecord(**row) if row is not None else None

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).order_by(runs.c.run_date.desc(), runs.c.started_at)
            ).mappings()
            return [RunRecord(**row) for row in rows]

    def plan_of(self, run_id: str) -> list[dict[str, Any]]:
        """The plan rows recorded for a run."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(plan_rows.c.row)
                .where(plan_rows.c.run_id == run_id)
                .order_by(plan_rows.c.campaign_id)
            )
            return [dict(row) for row in result.scalars()]

    def stored_plan(
        self, run_id: str, connection: Connection | None = None
    ) -> list[StoredPlanRow]:
        """The plan rows of a run as :class:`PlanRow`, with their approvals."""
        query = (
            sa.select(plan_rows.c.row, plan_rows.c.approved_at)
            .where(plan_rows.c.run_id == run_id)
            .order_by(plan_rows.c.campaign_id)
        )
        if connection is None:
            with self.engine.connect() as own:
                result = own.execute(query).all()
        else:
            result = connection.execute(query).all()
        return [StoredPlanRow(PlanRow(**row), approved) for row, approved in result]

    def approve(
        self,
        connection: Connection,
        run_id: str,
        campaign_ids: Sequence[str] | None,
        when: dt.datetime,
        *,
        renew_before: dt.datetime | None = None,
    ) -> list[str]:
        """Mark plan rows approved (all when ``campaign_ids`` is ``None``).

        With ``renew_before``, a row approved at or before that time whose
        change is not applied yet is approved again at ``when``: the approval
        that counts is the one given after a later start of the day failed.

        Returns
        -------
        list of str
            The campaigns whose rows this call approved or approved again,
            sorted; rows approved already and left as they were are not in it.
        """
        unapproved: sa.ColumnElement[bool] = plan_rows.c.approved_at.is_(None)
        if renew_before is not None:
            unapproved = sa.or_(
                unapproved,
                sa.and_(plan_rows.c.approved_at <= renew_before, ~_row_applied()),
            )
        query = plan_rows.update().where(plan_rows.c.run_id == run_id, unapproved)
        if campaign_ids is not None:
            query = query.where(plan_rows.c.campaign_id.in_(list(campaign_ids)))
        updated = connection.execute(
            query.values(approved_at=when).returning(plan_rows.c.campaign_id)
        )
        return sorted(str(cid) for cid in updated.scalars())

    def approvals_awaiting_renewal(
        self, connection: Connection, run_id: str, failed_at: dt.datetime
    ) -> list[str]:
        """Campaigns approved at or before ``failed_at`` whose change is not applied.

        These are the approvals a later failed start of the run's day set
        aside: the apply refuses to push them until they are approved again.
        """
        query = sa.select(plan_rows.c.campaign_id).where(
            plan_rows.c.run_id == run_id,
            plan_rows.c.approved_at.is_not(None),
            plan_rows.c.approved_at <= failed_at,
            ~_row_applied(),
        )
        return sorted(str(cid) for cid in connection.execute(query).scalars())

    def changes_of(
        self, run_id: str, connection: Connection | None = None
    ) -> dict[str, ChangeRecord]:
        """The target changes of a run, by campaign id."""
        query = sa.select(target_changes).where(target_changes.c.run_id == run_id)
        if connection is None:
            with self.engine.connect() as own:
                rows = own.execute(query).mappings().all()
        else:
            rows = connection.execute(query).mappings().all()
        return {
            str(row["campaign_id"]): ChangeRecord(
                run_id=row["run_id"],
                campaign_id=str(row["campaign_id"]),
                status=row["status"],
                old_strategy=row["old_strategy"],
                old_target_roas=row["old_target_roas"],
                old_target_cpa=row["old_target_cpa"],
                new_strategy=row["new_strategy"],
                new_target_roas=row["new_target_roas"],
                new_target_cpa=row["new_target_cpa"],
                applied_at=row["applied_at"],
                detail=row["detail"],
                request_id=row["request_id"],
            )
            for row in rows
        }

    def record_intent(self, connection: Connection, change: ChangeRecord) -> None:
        """Write (or re-arm) a change as ``pending`` before it is pushed."""
        values = {
            "applied_at": change.applied_at,
            "old_strategy": change.old_strategy,
            "old_target_cpa": change.old_target_cpa,
            "old_target_roas": change.old_target_roas,
            "new_strategy": change.new_strategy,
            "new_target_roas": change.new_target_roas,
            "new_target_cpa": change.new_target_cpa,
            "status": PENDING,
            "detail": change.detail,
            "request_id": None,
        }
        updated = connection.execute(
            target_changes.update()
            .where(
                target_changes.c.run_id == change.run_id,
                target_changes.c.campaign_id == change.campaign_id,
            )
            .values(**values)
        )
        if updated.rowcount == 0:
            connection.execute(
                target_changes.insert().values(
                    run_id=change.run_id, campaign_id=change.campaign_id, **values
                )
            )

    def record_outcome(
        self,
        connection: Connection,
        run_id: str,
        campaign_id: str,
        *,
        status: str,
        detail: str | None,
        request_id: str | None,
        when: dt.datetime,
    ) -> None:
        """Record what became of a pushed (or reconciled) change."""
        connection.execute(
            target_changes.update()
            .where(
                target_changes.c.run_id == run_id,
                target_changes.c.campaign_id == campaign_id,
            )
            .values(
                status=status, detail=detail, request_id=request_id, applied_at=when
            )
        )

    def last_change_dates(self) -> dict[str, dt.date]:
        """Date of the last applied target change of each campaign."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(
                    target_changes.c.campaign_id,
                    sa.func.max(target_changes.c.applied_at),
                )
                .where(target_changes.c.status == CHANGE_APPLIED)
                .group_by(target_changes.c.campaign_id)
            )
            return {str(cid): _as_date(when) for cid, when in result}

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def plan_folder(record: RunRecord, state_directory: Path) -> Path | None:
    """Where a run's plan files are, whatever folder a command starts from.

    A run records its plan folder as the state directory's ``runs/<day>``
    folder. An absolute record that exists is taken as it is; any other
    (recorded relative to the folder its run started from, or moved since)
    is found by its name under the config's state directory, which the
    config resolves from its own place. ``None`` when the run wrote no plan.
    """
    if not record.plan_dir:
        return None
    recorded = Path(record.plan_dir)
    if recorded.is_absolute() and recorded.exists():
        return recorded
    return state_directory / "runs" / recorded.name


def held_back_reason(record: RunRecord) -> str | None:
    """Why the run's plan is held back, or ``None`` when it is not.

    A ``value_held`` run gives its stop reason; a ``rerun_failed`` one, when
    and why the later start of its day failed.
    """
    if record.status == VALUE_HELD:
        return record.stop_reason or f"{VALUE_HELD}: no reason recorded"
    if record.status != RERUN_FAILED:
        return None
    when = (
        f" at {as_utc(record.failed_attempt_at):%Y-%m-%d %H:%M} UTC"
        if record.failed_attempt_at is not None
        else ""
    )
    return (
        f"{RERUN_FAILED}: a later run of {record.run_date} failed{when} before "
        f"re-planning the day ({record.failed_attempt_error or 'no reason'}); "
        "this plan is neither approved nor applied until a run of the day "
        "succeeds"
    )


def cycle_run_id(account: str, run_date: dt.date) -> str:
    """The id of the account's cycle run on ``run_date``."""
    return f"{run_date:%Y%m%d}-{_slug(account)}"


def as_utc(value: dt.datetime) -> dt.datetime:
    """A recorded time in UTC; SQLite hands back the stored UTC time naive."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value).date()
    assert isinstance(value, dt.date)
    return value


def _slug(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
    return cleaned[:60] or "account"


def _row_applied() -> sa.Exists:
    """Whether the plan row's change was applied (correlated with ``plan_rows``)."""
    return (
        sa.select(target_changes.c.change_id)
        .where(
            target_changes.c.run_id == plan_rows.c.run_id,
            target_changes.c.campaign_id == plan_rows.c.campaign_id,
            target_changes.c.status == CHANGE_APPLIED,
        )
        .exists()
    )
