"""The state store: runs, their plans, and the target changes applied.

SQLite by default (a file in the state folder), any SQLAlchemy URL otherwise.
One run per account and day: running the same day again updates that run in
place instead of adding another.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from optimizer.exceptions import StateError
from optimizer.plan import PlanRow

metadata = sa.MetaData()

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
    sa.UniqueConstraint("account", "run_date", name="uq_runs_account_day"),
)

plan_rows = sa.Table(
    "plan_rows",
    metadata,
    sa.Column("run_id", sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("campaign_id", sa.String(40), primary_key=True),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("new_troas", sa.Float),
    sa.Column("row", sa.JSON, nullable=False),
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
    sa.Column("new_target_roas", sa.Float, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
)


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""

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


def state_url(directory: Path, url: str | None) -> str:
    """The database URL: ``url`` when given, else a SQLite file in ``directory``."""
    if url:
        return url
    return f"sqlite:///{directory / 'state.db'}"


class StateStore:
    """Read and record runs, plans and changes.

    Parameters
    ----------
    url
        A SQLAlchemy database URL.
    """

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        self.engine: Engine = sa.create_engine(url)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
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
    ) -> RunRecord:
        """Insert the day's run, or update it in place when it already exists."""
        run_id = f"{run_date:%Y%m%d}-{_slug(account)}"
        finished = dt.datetime.now(dt.UTC)
        existing = connection.execute(
            sa.select(runs.c.attempts).where(runs.c.run_id == run_id)
        ).scalar_one_or_none()
        values = {
            "account": account,
            "run_date": run_date,
            "started_at": started_at,
            "finished_at": finished,
            "status": "planned",
            "mode": mode,
            "inputs": inputs,
            "model_version": model_version,
            "plan_dir": plan_dir,
        }
        if existing is None:
            connection.execute(
                runs.insert().values(run_id=run_id, attempts=1, **values)
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

    def get_run(
        self, run_id: str, connection: Connection | None = None
    ) -> RunRecord | None:
        """The run with this id, or ``None``."""
        query = sa.select(runs).where(runs.c.run_id == run_id)
        if connection is not None:
            row = connection.execute(query).mappings().first()
        else:
            with self.engine.connect() as own:
                row = own.execute(query).mappings().first()
        return RunRecord(**row) if row is not None else None

    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(runs).order_by(runs.c.run_date.desc())
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

    def last_change_dates(self) -> dict[str, dt.date]:
        """Date of the last applied target change of each campaign."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(
                    target_changes.c.campaign_id,
                    sa.func.max(target_changes.c.applied_at),
                )
                .where(target_changes.c.status == "applied")
                .group_by(target_changes.c.campaign_id)
            )
            return {str(cid): _as_date(when) for cid, when in result}

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


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
