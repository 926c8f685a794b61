"""Read the canonical tables from files or SQL, check them, quarantine bad rows.

A table's source is a CSV or Parquet file, a glob of them (compressed CSV
too), or a SQL table or query (:mod:`connectors.warehouse`). Every source is
read in chunks, each chunk checked against the table's contract, so memory
holds the checked table and one raw chunk, never the whole raw source.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from connectors.contracts import (
    CAMPAIGN_STATS,
    DUPLICATE,
    EVENTS,
    FX_RATES,
    REVENUE,
    ROW_COLUMN,
    SOURCE_COLUMN,
    USERS,
    Contract,
    check,
    concat_rejected,
    enforce,
    index_of,
    member_of,
    refusal,
    reject_where,
    split_duplicates,
    strip_provenance,
)
from connectors.exceptions import ContractError, InputError
from connectors.origins import CsvOrigin, ParquetOrigin, RowOrigin
from connectors.quarantine import (
    TableAudit,
    as_read,
    audit,
    judge,
    placer,
    write_quarantine,
)
from connectors.refunds import settle_refunds
from connectors.sources import (
    DEFAULT_CHUNK_ROWS,
    DataSettings,
    FileSource,
    SqlSource,
)
from connectors.warehouse import Chunk, IncrementalCache, SqlReader, merge_cached

logger = logging.getLogger(__name__)

_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".zip", ".xz", ".zst"}
_GLOB_CHARS = set("*?[")

CONTRACTS = {
    "users": USERS,
    "revenue": REVENUE,
    "campaign_stats": CAMPAIGN_STATS,
    "events": EVENTS,
}


@dataclass(frozen=True)
class Inputs:
    """The canonical tables of one run, with what was read to make them."""

    users: pd.DataFrame
    revenue: pd.DataFrame
    campaign_stats: pd.DataFrame
    events: pd.DataFrame | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    audits: dict[str, TableAudit] = field(default_factory=dict)

    def row_counts(self) -> dict[str, int]:
        """Rows per table, for the run record."""
        counts = {
            "users": len(self.users),
            "revenue": len(self.revenue),
            "campaign_stats": len(self.campaign_stats),
        }
        if self.events is not None:
            counts["events"] = len(self.events)
        return counts

    def quarantine_record(self) -> dict[str, dict[str, Any]]:
        """Rows in, kept and quarantined per table, for the run record."""
        return {name: item.as_record() for name, item in self.audits.items()}


@dataclass
class TableRead:
    """One table after its contract: rows kept, rows rejected, rows read."""

    table: str
    kept: pd.DataFrame
    rejected: pd.DataFrame
    rows_in: int
    fingerprint: str
    cached: int = 0
    restated: int = 0
    cache: IncrementalCache | None = None
    watermark: Any = None
    carry: pd.DataFrame | None = None
    """Rows for the next incremental read: checked, before cross-table rules,
    so a row refused today for want of its user comes back once it exists."""
    origins: dict[str, RowOrigin] = field(default_factory=dict)
    """The sources that can be read again, by name, for the quarantine."""

    def reject(self, mask: pd.Series, column: str, problem: str | np.ndarray) -> None:
        """Move the kept rows where ``mask`` holds to the quarantine.

        ``problem`` is one reason, or one per row moved.
        """
        if not bool(mask.fillna(False).any()):
            return
        split = reject_where(self.kept, mask, column, problem)
        self.kept = split.kept
        self.rejected = concat_rejected([self.rejected, split.rejected])


def read_table(
    path: Path, contract: Contract, *, naive_time_zone: str | None = None
) -> pd.DataFrame:
    """Read one canonical table from a file or glob and check it strictly.

    Parameters
    ----------
    path
        A ``.csv`` (optionally compressed) or ``.parquet`` file, or a glob.
    contract
        The table it must satisfy.
    naive_time_zone
        Zone assumed for timestamps written without one; ``None`` refuses them.

    Returns
    -------
    pandas.DataFrame
        The table with canonical column types.

    Raises
    ------
    InputError
        The file is missing, empty, unreadable, or of an unknown format.
    ContractError
        A row breaks the contract; the message names source, column, line (a
        CSV file's, the header being line 1) or row, and value of the first.
    """
    read = read_source(
        file_chunks(FileSource(path=path), contract.table),
        contract,
        naive_time_zone=naive_time_zone,
    )
    judge(_audit(read), as_read(read.rejected, read.origins), 0.0)
    return strip_provenance(read.kept)


def file_chunks(
    source: FileSource, table: str, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
    """Yield the rows of a file, or of every file a glob matches, in chunks.

    Raises
    ------
    InputError
        No file matches, or one is empty, unreadable, not in its encoding, or
        of an unknown format. These are errors, never quarantined rows.
    """
    for path in source_paths(source, table):
        yield from _chunks_of(path, table, chunk_rows, source.encoding)


def source_paths(source: FileSource, table: str) -> list[Path]:
    """The file of a source, or every file its glob matches, in name order.

    Raises
    ------
    InputError
        A glob matches no file.
    """
    pattern = str(source.path)
    if not _GLOB_CHARS & set(pattern):
        return [source.path]
    paths = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise InputError(f"{pattern}: no {table} file matches this pattern")
    return paths


def file_fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 of the bytes of ``paths``, each preceded by its size.

    Hashing the files as read is exact and costs a fraction of hashing the
    parsed rows (a tenth of a second for a million users' Parquet).
    """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def _chunks_of(
    path: Path, table: str, chunk_rows: int, encoding: str
) -> Iterator[Chunk]:
    if not path.exists():
        raise InputError(f"{path}: the {table} file does not exist")
    if path.is_dir():
        raise InputError(f"{path}: the {table} source is a folder, not a file")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSION_SUFFIXES
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes or [""])[-1]
    sep = "\t" if kind == ".tsv" else ","
    if kind in _PARQUET_SUFFIXES and not compressed:
        frames = _parquet_frames(path, chunk_rows)
    elif kind in _CSV_SUFFIXES:
        frames = _csv_frames(path, chunk_rows, encoding, sep=sep)
    else:
        raise InputError(
            f"{path}: unknown format {''.join(suffixes) or '(no suffix)'!r} for "
            f"the {table} file; use .csv (optionally .gz, .bz2, .zip, .xz, .zst) "
            "or .parquet"
        )
    rows = 0
    origin: RowOrigin | None = None
    try:
        for frame in frames:
            if origin is None:
                origin = (
                    CsvOrigin(path, encoding, sep, tuple(map(str, frame.columns)))
                    if kind in _CSV_SUFFIXES
                    else ParquetOrigin(path)
                )
            if len(frame):
                yield Chunk(str(path), rows + 1, frame, origin)
                rows += len(frame)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the {table} file is empty") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the {table} file is not {encoding} text (byte "
            f"0x{exc.object[exc.start]:02x}{_bad_line(path, encoding)}): save it "
            f"as {encoding}, or name its encoding in the config (data.{table}: "
            "{path: ..., encoding: cp1252}, say), and run again"
        ) from None
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{path}: cannot read the {table} file{_past(rows)}: "
            f"{str(exc).strip()} (lines "
            "count the header as line 1; a value with a comma must be quoted)"
        ) from exc
    except (OSError, EOFError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot read the {table} file{_past(rows)}: {exc}"
        ) from exc
    if rows == 0:
        raise InputError(f"{path}: the {table} file has no rows")


def _bad_line(path: Path, encoding: str) -> str:
    """Where the first line that does not decode is, for the error message."""
    if path.suffix.lower() in _COMPRESSION_SUFFIXES:
        return ""
    try:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode(encoding)
                except UnicodeDecodeError:
                    return f" on line {number}, counting the header as line 1"
    except (OSError, LookupError):
        return ""
    return ""


def _past(rows: int) -> str:
    """Where a read failed, when rows were read before it."""
    return f", after data row {rows}" if rows else ""


def _csv_frames(
    path: Path, chunk_rows: int, encoding: str, sep: str
) -> Iterator[pd.DataFrame]:
    with pd.read_csv(
        path,
        sep=sep,
        dtype="string",
        keep_default_na=False,
        na_values=[""],
        chunksize=chunk_rows,
        encoding=encoding,
    ) as reader:
        yield from reader


def _parquet_frames(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    handle = pq.ParquetFile(path)
    try:
        for batch in handle.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    finally:
        handle.close()


def read_source(
    chunks: Iterable[Chunk],
    contract: Contract,
    *,
    naive_time_zone: str | None = None,
    now: pd.Timestamp | None = None,
    allow_empty: bool = False,
    hash_rows: bool = True,
) -> TableRead:
    """Check every chunk of a source, then set aside repeated ids.

    Parameters
    ----------
    chunks
        The source's rows, e.g. from :func:`file_chunks` or
        :meth:`connectors.warehouse.SqlReader.chunks`.
    contract
        The canonical table they must satisfy.
    naive_time_zone
        Zone assumed for timestamps written without one; ``None`` rejects them.
    now
        Timestamps after this are rejected as future, and dates after the day
        it falls on in its own time zone; ``None`` skips both.
    allow_empty
        No rows is a normal outcome (an incremental read with nothing new).
    hash_rows
        Fingerprint the source by hashing its rows; ``False`` leaves the
        fingerprint empty for a caller that has a cheaper exact one (the
        bytes of its files, :func:`file_fingerprint`).

    Returns
    -------
    TableRead
        Every row read, either kept or rejected with its reason.

    Raises
    ------
    InputError
        The source is missing, empty or unreadable, or lacks a column.
    """
    kept: list[pd.DataFrame] = []
    rejected: list[pd.DataFrame] = []
    origins: dict[str, RowOrigin] = {}
    digest = hashlib.sha256()
    rows_in = 0
    for chunk in chunks:
        rows_in += len(chunk.frame)
        if chunk.origin is not None:
            origins[chunk.source] = chunk.origin
        if hash_rows:
            hashes = pd.util.hash_pandas_object(chunk.frame, index=False)
            digest.update(hashes.to_numpy().tobytes())
        checked = check(
            chunk.frame,
            contract,
            chunk.source,
            naive_time_zone=naive_time_zone,
            now=now,
            first_row=chunk.first_row,
        )
        kept.append(checked.kept)
        rejected.append(checked.rejected)
    if rows_in == 0:
        if not allow_empty:
            raise InputError(f"the {contract.table} source has no rows")
        nothing = pd.DataFrame()
        return TableRead(contract.table, nothing, concat_rejected([]), 0, "")
    sources = pd.CategoricalDtype(
        list(
            dict.fromkeys(
                c for part in kept for c in part[SOURCE_COLUMN].cat.categories
            )
        )
    )
    for part in kept:
        part[SOURCE_COLUMN] = part[SOURCE_COLUMN].astype(sources)
    table = pd.concat(kept, ignore_index=True) if len(kept) > 1 else kept[0]
    unique = split_duplicates(table, contract, placer(origins))
    return TableRead(
        contract.table,
        unique.kept,
        concat_rejected([*rejected, unique.rejected]),
        rows_in,
        digest.hexdigest() if hash_rows else "",
        origins=origins,
    )


def load_inputs(
    data: DataSettings,
    *,
    currency: str,
    now: pd.Timestamp | None = None,
    time_zone: str | None = None,
    state_dir: Path | None = None,
    run_label: str | None = None,
    campaign_stats: Chunk | None = None,
) -> Inputs:
    """Read, check and cross-check the canonical tables of one run.

    Parameters
    ----------
    data
        The ``data:`` section of the config: sources, FX, quarantine rules.
    currency
        The account currency; revenue is converted into it.
    now
        Timestamps after this are future and quarantined; default the clock.
    time_zone
        The account's time zone: a campaign-stats date after the day ``now``
        falls on there is future and quarantined; ``None`` judges dates in
        UTC.
    state_dir
        The state folder: incremental caches go to ``warehouse/``, and
        quarantine files to ``quarantine/<run_label>/`` unless configured.
        ``None`` writes nothing (a dry check).
    run_label
        Names the run's quarantine folder; default the current UTC time.
    campaign_stats
        Campaign stats read elsewhere (the Google Ads API), checked like any
        source; required when ``data.campaign_stats`` is unset.

    Returns
    -------
    Inputs
        The checked tables, a fingerprint of each, and the audit of each.

    Raises
    ------
    InputError
        A source is missing, empty or unreadable, a SQL read fails.
    ContractError
        A table's bad rows exceed ``data.quarantine.max_share``.
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    if time_zone is not None:
        now = now.tz_convert(time_zone)
    reads = {
        name: _read_configured(name, source, data, now, state_dir)
        for name, source in data.sources().items()
    }
    if campaign_stats is not None:
        reads["campaign_stats"] = read_source(
            [campaign_stats], CONTRACTS["campaign_stats"], now=now
        )
    if "campaign_stats" not in reads:
        raise InputError(
            "no campaign stats: set data.campaign_stats, or read them from the "
            "Google Ads API with a google_ads section"
        )

    _cross_check(reads, data, currency, now)

    audits = _judge_all(reads, data, state_dir, run_label)
    for read in reads.values():
        if read.cache is not None and read.carry is not None:
            read.cache.save(read.carry, read.watermark)

    inputs = Inputs(
        users=strip_provenance(reads["users"].kept),
        revenue=strip_provenance(reads["revenue"].kept),
        campaign_stats=strip_provenance(reads["campaign_stats"].kept),
        events=strip_provenance(reads["events"].kept) if "events" in reads else None,
        fingerprints={name: read.fingerprint for name, read in reads.items()},
        audits=audits,
    )
    logger.info("inputs read: %s", inputs.row_counts())
    return inputs


@dataclass(frozen=True)
class CustomerTables:
    """Users, revenue and events checked as a run checks them, without stats.

    ``first_bad`` gives, per table with rows that broke a rule, the sentence
    naming the first of them: source, column, line or row, value and reason.
    """

    users: pd.DataFrame
    revenue: pd.DataFrame
    events: pd.DataFrame | None
    currency: str
    audits: dict[str, TableAudit] = field(default_factory=dict)
    first_bad: dict[str, str] = field(default_factory=dict)


def load_customer_tables(
    data: DataSettings,
    *,
    currency: str | None = None,
    now: pd.Timestamp | None = None,
    run_label: str | None = None,
    share_setting: str = "data.quarantine.max_share",
) -> CustomerTables:
    """Read and cross-check users, revenue and events as :func:`load_inputs` does.

    For commands that need no campaign stats (the model's): every rule of a
    run applies, rows that break one are quarantined to
    ``data.quarantine.directory`` (nothing is written when it is unset), and
    ``data.quarantine.max_share`` is enforced. ``data.campaign_stats`` is
    not read.

    Parameters
    ----------
    data
        The sources and the rules: FX, largest amount, quarantine.
    currency
        The currency revenue is converted into; ``None`` takes the most
        frequent one of the revenue rows that keep their contract.
    now
        Timestamps after this are future and quarantined; default the clock.
    run_label
        Names the quarantine folder; default the current UTC time.
    share_setting
        How messages name the largest share of bad rows allowed.

    Returns
    -------
    CustomerTables
        The checked tables, the currency of their amounts, and the audit and
        first bad row of each table.

    Raises
    ------
    InputError
        A source is missing, empty or unreadable, a SQL read fails.
    ContractError
        A table lacks a column, or its bad rows exceed the share allowed.
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    reads = {
        name: _read_configured(name, source, data, now, None)
        for name, source in data.sources().items()
        if name != "campaign_stats"
    }
    if currency is None:
        codes = reads["revenue"].kept["currency"].value_counts(sort=True)
        currency = str(codes.index[0]) if len(codes) else "XXX"
    _cross_check(reads, data, currency, now)

    audits = _judge_all(
        reads, data, None, run_label, share_setting=share_setting, warn=False
    )
    first_bad = {}
    for name, read in reads.items():
        bad = read.rejected[read.rejected["quarantine_kind"].ne(DUPLICATE)]
        if len(bad):
            first_bad[name] = refusal(bad)
    return CustomerTables(
        users=strip_provenance(reads["users"].kept),
        revenue=strip_provenance(reads["revenue"].kept),
        events=strip_provenance(reads["events"].kept) if "events" in reads else None,
        currency=currency,
        audits=audits,
        first_bad=first_bad,
    )


def _cross_check(
    reads: dict[str, TableRead], data: DataSettings, currency: str, now: pd.Timestamp
) -> None:
    """Quarantine the rows a rule across tables, amounts or currencies refuses."""
    _reject_activation_before_signup(reads["users"])
    revenue = reads["revenue"]
    _convert_currency(revenue, currency, _fx_rates(data, now))
    revenue.reject(
        revenue.kept["amount"].abs().gt(data.max_amount),
        "amount",
        f"is above data.max_amount ({data.max_amount:,.0f} {currency}, refunds "
        "by their size) once converted; check it is not in cents or a test "
        "order",
    )
    known = reads["users"].kept["user_id"]
    for name in ("revenue", "events"):
        if name in reads:
            rows = reads[name]
            ids = rows.kept["user_id"]
            unknown = ~member_of(ids, known)
            rows.reject(
                pd.Series(unknown, index=ids.index),
                "user_id",
                _unknown_user_reasons(ids[unknown], name, reads["users"]),
            )
    _reject_revenue_before_signup(revenue, reads["users"])
    _reject_overdrawn_refunds(revenue, currency)


def _unknown_user_reasons(ids: pd.Series, table: str, users: TableRead) -> np.ndarray:
    """Why each row of a user not kept is quarantined, one reason per row.

    A user whose own row was quarantined is named with where that row is and
    why, so the fix is made there rather than by looking for a missing user.
    """
    reasons = np.full(
        len(ids), f"has {table} but is not in the users table", dtype=object
    )
    rejected = users.rejected
    if ids.empty or rejected.empty or "user_id" not in rejected:
        return reasons
    first = rejected.dropna(subset=["user_id"]).drop_duplicates("user_id")
    places = placer(users.origins)(first["quarantine_source"], first["quarantine_row"])
    why = pd.Series(
        [
            f"has {table} but its user's row was quarantined ({place}: "
            f"{column} {reason})"
            for place, column, reason in zip(
                places,
                first["quarantine_column"],
                first["quarantine_reason"],
                strict=True,
            )
        ],
        index=first["user_id"].astype(str).to_numpy(),
        dtype=object,
    )
    found = why.reindex(ids.astype(str).to_numpy()).to_numpy()
    return np.where(pd.isna(found), reasons, found)


#: How long before its sign-up a user's activation may be stamped and still be
#: believed: the two often come from different systems (a sign-up form, a
#: product event stamped by the browser's clock), whose clocks differ by
#: seconds, at times minutes.
ACTIVATION_SKEW = pd.Timedelta(minutes=5)


def _reject_activation_before_signup(users: TableRead) -> None:
    """Quarantine users activated before they signed up, beyond clock skew.

    Activation is the conversion time sent to Google Ads and the day a user is
    counted as acquired: an activation years before its sign-up would be
    dropped from the feed as too old and counted in another month's CAC.
    """
    kept = users.kept
    early = kept["activated_at"] < kept["signup_at"] - ACTIVATION_SKEW
    if not bool(early.any()):
        return
    signup = kept.loc[early, "signup_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    minutes = int(ACTIVATION_SKEW.total_seconds() // 60)
    users.reject(
        early,
        "activated_at",
        "is before the user's sign-up, signup_at '"
        + signup.to_numpy(dtype=object)
        + f"' (UTC); an activation may precede its sign-up by {minutes} minutes "
        "at most (clock skew)",
    )


def _reject_revenue_before_signup(revenue: TableRead, users_read: TableRead) -> None:
    """Quarantine revenue from a calendar day (UTC) before its user's sign-up.

    Revenue stamped earlier on the sign-up day is common (a payment inside
    the sign-up flow, a source that keeps dates only) and is kept; an earlier
    day means the two tables disagree, and the model cannot place the row.
    The reason names the user's sign-up and where it is written, since either
    table may be the wrong one.
    """
    kept = revenue.kept
    users = users_read.kept
    position = index_of(kept["user_id"], users["user_id"])
    found = position >= 0
    signup_day = np.full(len(kept), np.datetime64("NaT"), dtype="datetime64[ns]")
    days = users["signup_at"].dt.tz_convert("UTC").dt.floor("D").dt.tz_localize(None)
    signup_day[found] = days.to_numpy(dtype="datetime64[ns]")[position[found]]
    occurred = kept["occurred_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    early = occurred.to_numpy(dtype="datetime64[ns]") < signup_day
    if not early.any():
        return
    rows = users.iloc[position[early]]
    places = placer(users_read.origins)(rows[SOURCE_COLUMN], rows[ROW_COLUMN])
    reasons = np.array(
        [
            f"is on a day before its user's sign-up day ({day:%Y-%m-%d} UTC, "
            f"signup_at at {place})"
            for day, place in zip(
                pd.to_datetime(signup_day[early]), places, strict=True
            )
        ],
        dtype=object,
    )
    revenue.reject(pd.Series(early, kept.index), "occurred_at", reasons)


def _reject_overdrawn_refunds(revenue: TableRead, currency: str) -> None:
    """Quarantine refunds of more than their user had paid by then.

    Runs after every other revenue rule, so that a refund is measured against
    the payments kept; see :mod:`connectors.refunds` for the rule and the
    rounding slack. Refunds within the slack are kept, reduced to the net.
    """
    kept = revenue.kept
    settled = settle_refunds(kept)
    if settled.reduced.any():
        revenue.kept = kept = kept.assign(amount=settled.amount)
        logger.info(
            "%d refund(s) reduced to what their user had paid (rounding or "
            "exchange rates)",
            int(settled.reduced.sum()),
        )
    over = settled.overdrawn
    if not over.any():
        return
    users = kept["user_id"].to_numpy(dtype=object)[over]
    sizes = -kept["amount"].to_numpy(dtype="float64")[over]
    reasons = np.array(
        [
            f"is a refund of {size:,.2f} {currency}, more than user {user!r} had "
            f"paid by then ({net:,.2f} {currency} net before it); a refund is "
            "kept only up to what its user paid before it"
            for user, size, net in zip(
                users, sizes, settled.net_before[over], strict=True
            )
        ],
        dtype=object,
    )
    revenue.reject(pd.Series(over, index=kept.index), "amount", reasons)


def _read_configured(
    name: str,
    source: FileSource | SqlSource,
    data: DataSettings,
    now: pd.Timestamp,
    state_dir: Path | None,
) -> TableRead:
    contract = CONTRACTS[name]
    zone = data.naive_time_zone
    if isinstance(source, FileSource):
        read = read_source(
            file_chunks(source, name),
            contract,
            naive_time_zone=zone,
            now=now,
            hash_rows=False,
        )
        # Read first: a missing or unreadable file gets read_source's error.
        read.fingerprint = file_fingerprint(source_paths(source, name))
        return read

    cache = cached = since = None
    if source.incremental_column is not None and state_dir is not None:
        cache = IncrementalCache(state_dir / "warehouse", name, source)
        cached, since = cache.load()
    reader = SqlReader(source, data.url_of(source), name, since)
    read = read_source(
        reader.chunks(),
        contract,
        naive_time_zone=zone,
        now=now,
        allow_empty=cached is not None,
    )
    read.cache, read.watermark = cache, reader.watermark
    if cached is not None:
        read.kept, read.restated = merge_cached(cached, read.kept, contract)
        read.cached = len(cached) - read.restated
        read.rows_in += read.cached
        logger.info(
            "%s: %d new row(s) past %s, %d earlier row(s) restated by them",
            name,
            read.rows_in - read.cached,
            since,
            read.restated,
        )
    read.carry = read.kept
    return read


def _fx_rates(data: DataSettings, now: pd.Timestamp) -> pd.DataFrame:
    """The configured rates: currency, the UTC time each applies from, rate."""
    rates = pd.DataFrame(
        {
            "currency": pd.Series(list(data.fx.rates), dtype="string"),
            "date": pd.Series(pd.NaT, index=range(len(data.fx.rates))),
            "rate": pd.Series(list(data.fx.rates.values()), dtype="float64"),
        }
    )
    if data.fx.source is not None:
        rates = pd.concat([rates, _fx_table(data.fx.source, data, now)])
    since = pd.to_datetime(rates["date"]).dt.tz_localize("UTC")
    rates["date"] = since.fillna(_BEFORE_ANY_RATE).astype("datetime64[ns, UTC]")
    return rates.reset_index(drop=True)


def _fx_table(
    source: FileSource | SqlSource, data: DataSettings, now: pd.Timestamp
) -> pd.DataFrame:
    chunks = (
        file_chunks(source, "fx")
        if isinstance(source, FileSource)
        else SqlReader(source, data.url_of(source), "fx").chunks()
    )
    table = pd.concat([chunk.frame for chunk in chunks], ignore_index=True)
    name = source.describe()
    checked = enforce(table, FX_RATES, name, now=now)
    for column, bad, problem in (
        ("rate", checked["rate"].le(0), "is not a positive exchange rate"),
        (
            "currency",
            checked.duplicated(["currency", "date"]),
            "has two rates for the same date",
        ),
    ):
        if bool(bad.any()):
            row = int(bad.to_numpy().argmax())
            raise ContractError(
                f"{name}: column {column!r}, row {row + 1}: value "
                f"{checked[column].iloc[row]!r} {problem}"
            )
    return checked[["currency", "date", "rate"]]


#: Rates without a date apply to revenue of any date.
_BEFORE_ANY_RATE = pd.Timestamp("1900-01-01", tz="UTC")


def _convert_currency(revenue: TableRead, currency: str, rates: pd.DataFrame) -> None:
    """Convert amounts at the latest rate in force on each row's date."""
    kept = revenue.kept
    own = pd.DataFrame(
        {"currency": [currency], "date": [_BEFORE_ANY_RATE], "rate": [1.0]}
    ).astype(rates.dtypes.to_dict())
    table = pd.concat([rates, own], ignore_index=True).sort_values("date")
    rows = pd.DataFrame(
        {
            "currency": kept["currency"].astype("string"),
            "date": kept["occurred_at"],
            "position": range(len(kept)),
        }
    ).sort_values("date")
    joined = pd.merge_asof(rows, table, on="date", by="currency")
    rate = joined.set_index("position")["rate"].sort_index()
    rate.index = kept.index
    missing = rate.isna()
    if rates.empty:
        problem: str | np.ndarray = np.array(
            [
                f"has no exchange rate into {currency}: no rates are configured; "
                f"set data.fx.rates ({code}: the {currency} value of one {code}) "
                "or data.fx.source (a table of currency, rate[, date])"
                for code in kept.loc[missing, "currency"].astype(str)
            ],
            dtype=object,
        )
    else:
        known = ", ".join(sorted(set(table["currency"])))
        problem = (
            f"has no exchange rate into {currency} on the row's date (rates for "
            f"{known}); add it to data.fx"
        )
    revenue.reject(missing, "currency", problem)
    kept, rate = revenue.kept, rate[rate.notna()].reset_index(drop=True)
    converted = kept["currency"].ne(currency)
    if bool(converted.any()):
        revenue.kept = kept.assign(
            amount_original=kept["amount"],
            currency_original=kept["currency"],
            amount=kept["amount"] * rate.to_numpy(),
            currency=currency,
        )
        logger.info(
            "%d revenue row(s) converted into %s", int(converted.sum()), currency
        )


def _judge_all(
    reads: dict[str, TableRead],
    data: DataSettings,
    state_dir: Path | None,
    run_label: str | None,
    *,
    share_setting: str = "data.quarantine.max_share",
    warn: bool = True,
) -> dict[str, TableAudit]:
    label = run_label or pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    folder = data.quarantine.directory or (
        state_dir / "quarantine" if state_dir is not None else None
    )
    audits: dict[str, TableAudit] = {}
    for name, read in reads.items():
        read.rejected = as_read(read.rejected, read.origins)
        table_audit = _audit(read)
        if len(read.rejected) and folder is not None:
            path = write_quarantine(read.rejected, folder / label, name)
            table_audit = TableAudit(**{**table_audit.__dict__, "file": str(path)})
        elif folder is not None:
            # A rerun of the day on fixed input must not leave the earlier
            # run's rejected rows looking current.
            (folder / label / f"{name}.csv").unlink(missing_ok=True)
        audits[name] = table_audit
    for name, read in reads.items():
        judge(
            audits[name],
            read.rejected,
            data.quarantine.max_share,
            setting=share_setting,
            warn=warn,
        )
    return audits


def _audit(read: TableRead) -> TableAudit:
    return audit(
        read.table,
        read.rows_in,
        read.kept,
        read.rejected,
        cached=read.cached,
        restated=read.restated,
    )


__all__ = [
    "ContractError",
    "CustomerTables",
    "Inputs",
    "TableRead",
    "file_chunks",
    "load_customer_tables",
    "load_inputs",
    "read_source",
    "read_table",
]
