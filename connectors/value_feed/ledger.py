"""The sent-values ledger: what Google holds, what is in flight, every run.

Three tables on their own ``MetaData`` (the connectors never import the
optimizer's state module), in the same database as the state store:

- ``feed_conversions``: one row per activation conversion, with the value
  Google holds and whether it is still worth sending;
- ``feed_sends``: one row per revision of a conversion (0 the first value,
  then one per restatement); inserting it is the claim that makes exactly one
  process send that revision; its status is the last outcome;
- ``feed_runs``: one row per feed run, with its counts.

A revision's value is fixed when it is claimed, so a resend after a crash is
the same conversion with the same transaction id, which Google rejects as a
duplicate instead of counting twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from connectors.exceptions import ValueFeedError
from connectors.value_feed.events import ConversionEvent, Outcome, RowResult

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

feed_conversions = sa.Table(
    "feed_conversions",
    metadata,
    sa.Column("transaction_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(200), nullable=False, index=True),
    sa.Column("conversion_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("sent_value", sa.Float),
    sa.Column("sent_revision", sa.Integer),
    sa.Column("first_sent_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

feed_sends = sa.Table(
    "feed_sends",
    metadata,
    sa.Column("transaction_id", sa.String(64), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("adjusted_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("request_id", sa.String(120)),
    sa.Column("detail", sa.Text),
)

feed_runs = sa.Table(
    "feed_runs",
    metadata,
    sa.Column("run_id", sa.String(80), primary_key=True),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("sink", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("counts", sa.JSON, nullable=False),
)

CLAIMED = "claimed"
#: The request failed as a whole: Google may or may not hold the rows.
IN_DOUBT = "in_doubt"
RETRYABLE = frozenset({IN_DOUBT, Outcome.TOO_RECENT.value})


@dataclass(frozen=True)
class SendRecord:
    """The latest revision of one conversion, as the ledger has it."""

    transaction_id: str
    revision: int
    value: float
    currency: str
    adjusted_at: dt.datetime | None
    status: str
    claimed_at: dt.datetime


@dataclass(frozen=True)
class ConversionRecord:
    """One activation conversion and the value Google holds for it."""

    transaction_id: str
    user_id: str
    conversion_time: dt.datetime
    status: str
    sent_value: float | None
    sent_revision: int | None


@dataclass(frozen=True)
class FeedRunRecord:
    """One row of ``feed_runs``."""

    run_id: str
    account: str
    sink: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, int]


class Ledger:
    """Read and write the sent-values ledger.

    Parameters
    ----------
    url
        A SQLAlchemy database URL, normally the state store's.
    """

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        self.engine: Engine = sa.create_engine(url)
        try:
            # TODO: replace with the state store's migrations once they carry
            # these tables; create_all never alters an existing table.
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise ValueFeedError(f"cannot open the value-feed ledger: {exc}") from exc

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise ValueFeedError(f"value-feed ledger write failed: {exc}") from exc

    def latest_sends(self) -> dict[str, SendRecord]:
        """The highest revision of every conversion in the ledger."""
        top = (
            sa.select(
                feed_sends.c.transaction_id,
                sa.func.max(feed_sends.c.revision).label("revision"),
            )
            .group_by(feed_sends.c.transaction_id)
            .subquery()
        )
        query = sa.select(feed_sends).join(
            top,
            sa.and_(
                feed_sends.c.transaction_id == top.c.transaction_id,
                feed_sends.c.revision == top.c.revision,
            ),
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return {
            row["transaction_id"]: SendRecord(
                transaction_id=row["transaction_id"],
                revision=row["revision"],
                value=row["value"],
                currency=row["currency"],
                adjusted_at=_utc(row["adjusted_at"]),
                status=row["status"],
                claimed_at=_utc_required(row["claimed_at"]),
            )
            for row in rows
        }

    def conversions(self) -> dict[str, ConversionRecord]:
        """Every conversion the feed has claimed at least once."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(feed_conversions)).mappings().all()
        return {
            row["transaction_id"]: ConversionRecord(
                transaction_id=row["transaction_id"],
                user_id=row["user_id"],
                conversion_time=_utc_required(row["conversion_time"]),
                status=row["status"],
                sent_value=row["sent_value"],
                sent_revision=row["sent_revision"],
            )
            for row in rows
        }

    def claim(
        self,
        event: ConversionEvent,
        run_id: str,
        now: dt.datetime,
        *,
        lease: dt.timedelta,
    ) -> bool:
        """Make this run the only sender of ``event``'s revision.

        A new revision is claimed by inserting its row; an existing one only
        when its last attempt asks for a retry (too recent, in doubt) or the
        run that claimed it has held it longer than ``lease`` (it died). The
        insert, or the conditional update, is atomic in the database, so of
        two runs racing for the same revision exactly one wins.
        """
        try:
            with self.engine.begin() as connection:
                self._ensure_conversion(connection, event, now)
        except IntegrityError:
            pass
        except SQLAlchemyError as exc:
            raise ValueFeedError(f"value-feed ledger write failed: {exc}") from exc
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    feed_sends.insert().values(
                        transaction_id=event.transaction_id,
                        revision=event.revision,
                        value=event.value,
                        currency=event.currency,
                        adjusted_at=event.adjusted_at,
                        status=CLAIMED,
                        run_id=run_id,
                        claimed_at=now,
                        attempts=1,
                    )
                )
            return True
        except IntegrityError:
            pass
        except SQLAlchemyError as exc:
            raise ValueFeedError(f"value-feed ledger write failed: {exc}") from exc
        stale = now - lease
        with self._begin() as connection:
            result = connection.execute(_reclaim(event, run_id, now, stale))
            return result.rowcount == 1

    def claim_many(
        self,
        events: Sequence[ConversionEvent],
        run_id: str,
        now: dt.datetime,
        *,
        lease: dt.timedelta,
    ) -> list[ConversionEvent]:
        """Claim a batch as :meth:`claim` claims each event; return those won, in order.

        The whole batch is claimed in one transaction: a commit per event made
        the ledger, not the API, the cost of a large run (about 2.5 ms per
        commit on SQLite, measured by ``benchmarks/push.py``). Should another
        run insert one of these rows meanwhile, the transaction fails on its
        key and the batch falls back to :meth:`claim`, event by event.
        """
        if not events:
            return []
        try:
            with self.engine.begin() as connection:
                won = self._claim_batch(connection, events, run_id, now, now - lease)
        except IntegrityError:
            return [e for e in events if self.claim(e, run_id, now, lease=lease)]
        except SQLAlchemyError as exc:
            raise ValueFeedError(f"value-feed ledger write failed: {exc}") from exc
        return [e for e in events if (e.transaction_id, e.revision) in won]

    def _claim_batch(
        self,
        connection: Connection,
        events: Sequence[ConversionEvent],
        run_id: str,
        now: dt.datetime,
        stale: dt.datetime,
    ) -> set[tuple[str, int]]:
        ids = sorted({e.transaction_id for e in events})
        known = set(
            connection.execute(
                sa.select(feed_conversions.c.transaction_id).where(
                    feed_conversions.c.transaction_id.in_(ids)
                )
            ).scalars()
        )
        new_conversions: dict[str, dict[str, Any]] = {}
        for event in events:
            if event.transaction_id not in known:
                new_conversions.setdefault(
                    event.transaction_id,
                    {
                        "transaction_id": event.transaction_id,
                        "user_id": event.user_id,
                        "conversion_time": event.conversion_time,
                        "currency": event.currency,
                        "status": "pending",
                        "updated_at": now,
                    },
                )
        if new_conversions:
            connection.execute(
                feed_conversions.insert(), list(new_conversions.values())
            )

        sent = {
            (row.transaction_id, row.revision)
            for row in connection.execute(
                sa.select(feed_sends.c.transaction_id, feed_sends.c.revision).where(
                    feed_sends.c.transaction_id.in_(ids)
                )
            )
        }
        fresh = [e for e in events if (e.transaction_id, e.revision) not in sent]
        if fresh:
            connection.execute(
                feed_sends.insert(),
                [
                    {
                        "transaction_id": e.transaction_id,
                        "revision": e.revision,
                        "value": e.value,
                        "currency": e.currency,
                        "adjusted_at": e.adjusted_at,
                        "status": CLAIMED,
                        "run_id": run_id,
                        "claimed_at": now,
                        "attempts": 1,
                    }
                    for e in fresh
                ],
            )
        won = {(e.transaction_id, e.revision) for e in fresh}
        for event in events:
            key = (event.transaction_id, event.revision)
            if key in sent and key not in won:
                result = connection.execute(_reclaim(event, run_id, now, stale))
                if result.rowcount == 1:
                    won.add(key)
        return won

    def _ensure_conversion(
        self, connection: Connection, event: ConversionEvent, now: dt.datetime
    ) -> None:
        exists = connection.execute(
            sa.select(feed_conversions.c.transaction_id).where(
                feed_conversions.c.transaction_id == event.transaction_id
            )
        ).first()
        if exists is None:
            connection.execute(
                feed_conversions.insert().values(
                    transaction_id=event.transaction_id,
                    user_id=event.user_id,
                    conversion_time=event.conversion_time,
                    currency=event.currency,
                    status="pending",
                    updated_at=now,
                )
            )

    def record(
        self,
        events: Sequence[ConversionEvent],
        results: Sequence[RowResult],
        now: dt.datetime,
    ) -> None:
        """Store each row's outcome and, when delivered, the value Google holds."""
        by_key = {(e.transaction_id, e.revision): e for e in events}
        sends: list[dict[str, Any]] = []
        conversions: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for result in results:
            event = by_key[(result.transaction_id, result.revision)]
            sends.append(
                {
                    "k_transaction_id": result.transaction_id,
                    "k_revision": result.revision,
                    "v_status": result.outcome.value,
                    "v_finished_at": now,
                    "v_request_id": result.request_id or None,
                    "v_detail": result.detail or None,
                }
            )
            update = _conversion_update(event, result.outcome, now)
            if update:
                # One statement per set of columns, each run over all its rows:
                # a round trip per row made this the slowest step of a send.
                conversions.setdefault(tuple(sorted(update)), []).append(
                    {"k_transaction_id": result.transaction_id}
                    | {f"v_{key}": value for key, value in update.items()}
                )
        if not sends:
            return
        with self._begin() as connection:
            connection.execute(
                feed_sends.update()
                .where(
                    feed_sends.c.transaction_id == sa.bindparam("k_transaction_id"),
                    feed_sends.c.revision == sa.bindparam("k_revision"),
                )
                .values(
                    {
                        name: sa.bindparam(f"v_{name}")
                        for name in ("status", "finished_at", "request_id", "detail")
                    }
                ),
                sends,
            )
            for columns, rows in conversions.items():
                connection.execute(
                    feed_conversions.update()
                    .where(
                        feed_conversions.c.transaction_id
                        == sa.bindparam("k_transaction_id")
                    )
                    .values({name: sa.bindparam(f"v_{name}") for name in columns}),
                    rows,
                )

    def release(
        self, events: Sequence[ConversionEvent], now: dt.datetime, detail: str
    ) -> None:
        """Mark a failed request's rows in doubt: the next run resends them."""
        with self._begin() as connection:
            for event in events:
                connection.execute(
                    feed_sends.update()
                    .where(
                        feed_sends.c.transaction_id == event.transaction_id,
                        feed_sends.c.revision == event.revision,
                        feed_sends.c.status == CLAIMED,
                    )
                    .values(status=IN_DOUBT, finished_at=now, detail=detail[:2000])
                )

    def start_run(
        self, run_id: str, *, account: str, sink: str, mode: str, now: dt.datetime
    ) -> None:
        """Open the run's record."""
        with self._begin() as connection:
            connection.execute(
                feed_runs.insert().values(
                    run_id=run_id,
                    account=account,
                    sink=sink,
                    mode=mode,
                    status="running",
                    started_at=now,
                    counts={},
                )
            )

    def finish_run(
        self, run_id: str, *, status: str, counts: dict[str, int], now: dt.datetime
    ) -> None:
        """Close the run's record with its counts."""
        with self._begin() as connection:
            connection.execute(
                feed_runs.update()
                .where(feed_runs.c.run_id == run_id)
                .values(status=status, finished_at=now, counts=dict(counts))
            )

    def get_run(self, run_id: str) -> FeedRunRecord | None:
        """The feed run with this id, or ``None``."""
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(feed_runs).where(feed_runs.c.run_id == run_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        values: dict[str, Any] = dict(row)
        values["started_at"] = _utc_required(values["started_at"])
        values["finished_at"] = _utc(values["finished_at"])
        return FeedRunRecord(**values)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _reclaim(
    event: ConversionEvent, run_id: str, now: dt.datetime, stale: dt.datetime
) -> sa.Update:
    """Take over an existing revision when it asks for a retry or its claim died."""
    return (
        feed_sends.update()
        .where(
            feed_sends.c.transaction_id == event.transaction_id,
            feed_sends.c.revision == event.revision,
            sa.or_(
                feed_sends.c.status.in_(sorted(RETRYABLE)),
                sa.and_(
                    feed_sends.c.status == CLAIMED,
                    feed_sends.c.claimed_at < stale,
                ),
            ),
        )
        .values(
            status=CLAIMED,
            run_id=run_id,
            claimed_at=now,
            attempts=feed_sends.c.attempts + 1,
        )
    )


def _conversion_update(
    event: ConversionEvent, outcome: Outcome, now: dt.datetime
) -> dict[str, Any]:
    if outcome.delivered:
        update: dict[str, Any] = {
            "status": "sent",
            "sent_value": event.value,
            "sent_revision": event.revision,
            "updated_at": now,
        }
        if event.revision == 0:
            update["first_sent_at"] = now
        return update
    if event.revision > 0:
        # A failed restatement leaves the earlier value in force at Google.
        return {}
    if outcome.retry_later:
        return {"status": "retry", "updated_at": now}
    if outcome in (Outcome.EXPIRED, Outcome.UNKNOWN_CLICK):
        return {"status": "skipped", "updated_at": now}
    return {"status": "rejected", "updated_at": now}


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _utc_required(value: dt.datetime) -> dt.datetime:
    out = _utc(value)
    assert out is not None
    return out
