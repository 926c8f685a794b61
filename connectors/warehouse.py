"""Read canonical tables from SQL tables or queries behind any SQLAlchemy URL.

Rows are fetched in chunks through a server-side cursor where the dialect has
one (``stream_results``), so a large table never sits in memory as Python
tuples. A source with an ``incremental_column`` reads only rows past the last
value seen; the rows read before are kept in a Parquet cache in the state
folder, and a newer row with the same id replaces the cached one, so late or
restated revenue updates a user's history on the next run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from connectors.contracts import ROW_COLUMN, SOURCE_COLUMN, Contract
from connectors.exceptions import InputError
from connectors.origins import RowOrigin
from connectors.sources import SqlSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """Rows read from a source, and the source row number of the first one.

    ``origin`` reads rows of the source again as they were read (a file); a
    SQL source has none.
    """

    source: str
    first_row: int
    frame: pd.DataFrame
    origin: RowOrigin | None = None


class SqlReader:
    """Read one SQL source in chunks, optionally past a watermark.

    Parameters
    ----------
    source
        The table or query.
    url
        The SQLAlchemy URL it connects to.
    table
        The canonical table it feeds, for messages.
    since
        Read only rows whose ``source.incremental_column`` is past this value.
    """

    def __init__(
        self, source: SqlSource, url: str, table: str, since: Any = None
    ) -> None:
        self.source = source
        self.url = url
        self.table = table
        self.since = since
        self.rows_read = 0
        self.watermark: Any = since
        self.name = _describe(source, url)

    def chunks(self) -> Iterator[Chunk]:
        """Yield the rows as data frames of at most ``chunk_rows`` rows.

        Raises
        ------
        InputError
            The URL, the SQL or the connection failed; the message names the
            source, how many rows were read first, and the database's words.
        """
        try:
            engine = sa.create_engine(self.url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise InputError(
                f"{self.name}: cannot use the {self.table} database URL: {exc}"
            ) from exc
        try:
            with engine.connect() as connection:
                streaming = connection.execution_options(
                    stream_results=True, max_row_buffer=self.source.chunk_rows
                )
                result = streaming.execute(*self._statement(connection))
                try:
                    yield from self._fetch(result)
                finally:
                    _close_quietly(result)
        except DBAPIError as exc:
            raise InputError(self._failure(exc)) from exc
        except SQLAlchemyError as exc:
            raise InputError(
                f"{self.name}: the {self.table} query failed after "
                f"{self.rows_read} row(s): {exc}"
            ) from exc
        finally:
            engine.dispose()

    def _fetch(self, result: sa.CursorResult[Any]) -> Iterator[Chunk]:
        columns = list(result.keys())
        while rows := result.fetchmany(self.source.chunk_rows):
            # Column-wise from plain tuples: building a frame from Row objects
            # probes each row's attributes and took most of the read time.
            frame = pd.DataFrame(
                dict(zip(columns, zip(*rows, strict=True), strict=True))
            )
            first = self.rows_read + 1
            self.rows_read += len(frame)
            self._advance(frame)
            yield Chunk(self.name, first, frame)

    def _statement(self, connection: sa.Connection) -> tuple[Any, ...]:
        quote = connection.dialect.identifier_preparer.quote
        if self.source.table is not None:
            parts = self.source.table.split(".")
            base = "SELECT * FROM " + ".".join(quote(part) for part in parts)
        else:
            base = str(self.source.query).strip().rstrip(";")
        column = self.source.incremental_column
        if column is None or self.since is None:
            return (sa.text(base),)
        wrapped = f"SELECT * FROM ({base}) valuebid_src WHERE {quote(column)} > :since"
        return sa.text(wrapped), {"since": self.since}

    def _advance(self, frame: pd.DataFrame) -> None:
        column = self.source.incremental_column
        if column is None:
            return
        if column not in frame.columns:
            raise InputError(
                f"{self.name}: incremental_column {column!r} is not a column of "
                f"the {self.table} rows; it has {', '.join(map(str, frame.columns))}"
            )
        values = frame[column].dropna()
        if values.empty:
            return
        top = values.max()
        if self.watermark is None or top > self.watermark:
            self.watermark = _plain(top)

    def _failure(self, exc: DBAPIError) -> str:
        if exc.connection_invalidated or _looks_dropped(exc):
            return (
                f"{self.name}: the connection to the database dropped while "
                f"reading the {self.table} table, after {self.rows_read} row(s): "
                f"{_first_line(exc.orig)}. Nothing was used; run again when the "
                "database is reachable."
            )
        return (
            f"{self.name}: the database refused the {self.table} read after "
            f"{self.rows_read} row(s): {_first_line(exc.orig)}"
        )


class IncrementalCache:
    """The rows of an incremental SQL source read by earlier runs.

    Stored as ``<directory>/<table>.parquet`` plus a JSON file holding the
    watermark and a digest of the source, so a changed query starts over.
    """

    def __init__(self, directory: Path, table: str, source: SqlSource) -> None:
        self.rows_path = directory / f"{table}.parquet"
        self.meta_path = directory / f"{table}.json"
        self.digest = hashlib.sha256(
            source.model_dump_json(exclude={"chunk_rows"}).encode()
        ).hexdigest()

    def load(self) -> tuple[pd.DataFrame | None, Any]:
        """The cached rows and the watermark, or ``(None, None)`` to start over."""
        if not (self.rows_path.exists() and self.meta_path.exists()):
            return None, None
        meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        if meta.get("digest") != self.digest:
            logger.info("%s: source changed since the cache; reading it all", self)
            return None, None
        return pd.read_parquet(self.rows_path), _decode(meta["watermark"])

    def save(self, rows: pd.DataFrame, watermark: Any) -> None:
        """Replace the cache with ``rows`` read up to ``watermark``."""
        self.rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(self.rows_path, index=False)
        meta = {"digest": self.digest, "watermark": _encode(watermark)}
        self.meta_path.write_text(json.dumps(meta), encoding="utf-8")

    def __str__(self) -> str:
        return str(self.rows_path)


def merge_cached(
    cached: pd.DataFrame, fresh: pd.DataFrame, contract: Contract
) -> tuple[pd.DataFrame, int]:
    """Cached rows overlaid with fresh ones: a fresh row replaces its id's old row.

    A fresh row also replaces the cached rows with its key (a campaign-day
    the source restated since the last run). Rows without an id cannot be
    matched and are simply added.

    Returns
    -------
    tuple of (pandas.DataFrame, int)
        The merged rows, and how many cached rows fresh ones replaced.
    """
    if fresh.empty:
        return cached, 0
    keys = [c.name for c in contract.columns if c.unique and c.name in fresh.columns]
    keep = pd.Series(True, index=cached.index)
    for key in keys:
        keep &= ~(cached[key].isin(fresh[key].dropna()) & cached[key].notna())
    if contract.key and set(contract.key) <= set(fresh.columns):
        compound = list(contract.key)
        restated = pd.MultiIndex.from_frame(cached[compound]).isin(
            pd.MultiIndex.from_frame(fresh[compound])
        )
        keep &= ~restated
    merged = pd.concat([cached[keep], fresh], ignore_index=True)
    merged[ROW_COLUMN] = merged[ROW_COLUMN].astype("int64")
    merged[SOURCE_COLUMN] = merged[SOURCE_COLUMN].astype("string")
    return merged, int((~keep).sum())


def _describe(source: SqlSource, url: str) -> str:
    safe = sa.make_url(url).render_as_string(hide_password=True)
    if source.table is not None:
        return f"{safe} table {source.table}"
    query = " ".join(str(source.query).split())
    return f"{safe} query {query[:80]!r}"


def _close_quietly(result: sa.CursorResult[Any]) -> None:
    """Close a result whose connection may already be gone.

    A server-side cursor left open warns when collected; on a dropped
    connection closing it fails too, and that second failure says nothing
    the first did not.
    """
    cursor = result.cursor
    try:
        result.close()
        if cursor is not None:
            cursor.close()
    except Exception:
        logger.debug("closing the cursor after a failed read also failed")


def _looks_dropped(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        sign in text
        for sign in (
            "terminating connection",
            "server closed the connection",
            "connection is closed",
            "connection already closed",
            "consuming input failed",
        )
    )


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error else "(no detail)"


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _encode(value: Any) -> dict[str, Any]:
    if isinstance(value, dt.datetime):
        return {"kind": "datetime", "value": value.isoformat()}
    return {"kind": "plain", "value": value}


def _decode(stored: dict[str, Any]) -> Any:
    if stored["kind"] == "datetime":
        return dt.datetime.fromisoformat(stored["value"])
    return stored["value"]
