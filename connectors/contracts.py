"""The canonical tables and the contract each one keeps.

Each table's columns are declared once here. :func:`check` splits a raw
frame into the rows kept, with canonical types (strings, UTC timestamps,
floats), and the rows rejected, each with the column, the value and the rule
it broke; :func:`split_duplicates` then sets aside repeated ids and keys once
a table is whole. :func:`enforce` is the strict form: the first break is
raised as a :class:`~connectors.exceptions.ContractError` naming the source,
the column, the row and the value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from connectors.exceptions import ContractError

logger = logging.getLogger(__name__)

Kind = Literal["string", "timestamp", "date", "number"]

_ZONE_SUFFIX = re.compile(
    r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)


#: The Google Ads bidding strategy types (BiddingStrategyTypeEnum of API v26).
BIDDING_STRATEGY_TYPES = (
    "UNSPECIFIED",
    "UNKNOWN",
    "COMMISSION",
    "ENHANCED_CPC",
    "FIXED_CPM",
    "FIXED_SHARE_OF_VOICE",
    "INVALID",
    "MANUAL_CPA",
    "MANUAL_CPC",
    "MANUAL_CPM",
    "MANUAL_CPV",
    "MAXIMIZE_CONVERSIONS",
    "MAXIMIZE_CONVERSION_VALUE",
    "PAGE_ONE_PROMOTED",
    "PERCENT_CPC",
    "TARGET_CPA",
    "TARGET_CPC",
    "TARGET_CPM",
    "TARGET_CPV",
    "TARGET_IMPRESSION_SHARE",
    "TARGET_OUTRANK_SHARE",
    "TARGET_ROAS",
    "TARGET_SPEND",
)


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    ``fold_upper`` upper-cases a string before its ``pattern`` is checked and
    keeps it so: for codes that some exports write in lower case (Stripe
    writes currencies as ``usd``, many sign-up forms countries as ``fr``).
    """

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    non_negative: bool = False
    unique: bool = False
    pattern: str | None = None
    fold_upper: bool = False
    allowed: tuple[str, ...] = ()
    not_future: bool = False
    hint: str = ""


@dataclass(frozen=True)
class Contract:
    """A canonical table: its name, its columns and what identifies a row.

    ``key`` names the columns that together identify one row of the table
    (one campaign on one day); empty when no combination must be unique.
    """

    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns every source must have."""
        return tuple(c.name for c in self.columns if c.required)


USERS = Contract(
    "users",
    (
        Column("user_id", "string", unique=True),
        Column("signup_at", "timestamp", not_future=True),
        Column("activated_at", "timestamp", nullable=True, not_future=True),
        Column(
            "country",
            "string",
            pattern=r"[A-Z]{2}",
            fold_upper=True,
            hint="an ISO 3166 alpha-2 code such as 'FR'",
        ),
        Column("segment", "string", nullable=True),
        Column("campaign_id", "string", nullable=True),
        Column("gclid", "string", required=False, nullable=True),
    ),
)

REVENUE = Contract(
    "revenue",
    (
        Column("user_id", "string"),
        Column("occurred_at", "timestamp", not_future=True),
        # Negative: a refund, kept while its user had paid at least as much
        # (connectors.refunds); it needs its own order id like any row.
        Column("amount", "number"),
        Column(
            "currency",
            "string",
            pattern=r"[A-Z]{3}",
            fold_upper=True,
            hint="an ISO 4217 code such as 'EUR'",
        ),
        Column("order_id", "string", required=False, nullable=True, unique=True),
    ),
)

EVENTS = Contract(
    "events",
    (
        Column("user_id", "string"),
        Column("occurred_at", "timestamp", not_future=True),
        Column("event", "string"),
        Column("value", "number", required=False, nullable=True),
    ),
)

CAMPAIGN_STATS = Contract(
    "campaign_stats",
    (
        Column("date", "date", not_future=True),
        Column("campaign_id", "string"),
        Column("campaign_name", "string"),
        Column("cost", "number", non_negative=True),
        Column("conversions", "number", non_negative=True),
        Column("conversion_value", "number", non_negative=True),
        Column(
            "bidding_strategy_type",
            "string",
            allowed=BIDDING_STRATEGY_TYPES,
            hint="a Google Ads bidding strategy type such as 'TARGET_CPA'",
        ),
        Column("target_cpa", "number", nullable=True, non_negative=True),
        Column("target_roas", "number", nullable=True, non_negative=True),
        Column("bidding_strategy_status", "string", required=False, nullable=True),
        Column("customer_id", "string", required=False, nullable=True),
    ),
    # No column splits a campaign-day (no network or device segment), and a
    # campaign id is unique across Google Ads accounts, so a campaign has one
    # row per day; every figure downstream sums these rows.
    key=("campaign_id", "date"),
)


FX_RATES = Contract(
    "fx",
    (
        Column(
            "currency",
            "string",
            pattern=r"[A-Z]{3}",
            fold_upper=True,
            hint="an ISO 4217 code such as 'USD'",
        ),
        Column("rate", "number", non_negative=True),
        Column("date", "date", required=False, nullable=True),
    ),
)

#: Where each kept row came from: the source and its 1-based data row there.
SOURCE_COLUMN = "__source"
ROW_COLUMN = "__row"

#: The columns a quarantine file adds in front of the raw row. ``quarantine_row``
#: is the row's number among the source's data rows (1 the first);
#: ``quarantine_line`` the line it starts on in a CSV file, the header being
#: line 1, and empty for other sources.
QUARANTINE_COLUMNS = (
    "quarantine_kind",
    "quarantine_source",
    "quarantine_row",
    "quarantine_line",
    "quarantine_column",
    "quarantine_value",
    "quarantine_reason",
)
BAD = "bad"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Violation:
    """One row breaking one rule, located in its source.

    ``line`` is the line the row starts on in a CSV file; messages name it
    rather than ``row`` when it is known.
    """

    source: str
    row: int
    column: str
    value: object
    problem: str
    line: int | None = None

    def message(self) -> str:
        """The sentence users see: source, column, line or row, value, problem."""
        where = f"line {self.line}" if self.line is not None else f"row {self.row}"
        return (
            f"{self.source}: column {self.column!r}, {where}: value "
            f"{show(self.value)} {self.problem}"
        )


#: Says where rows are, e.g. ``revenue.csv line 12``: given their sources and
#: data row numbers, one text per row.
Placer = Callable[[pd.Series, pd.Series], list[str]]


def place_by_row(sources: pd.Series, rows: pd.Series) -> list[str]:
    """``<source> row <n>``: where a row is when its source has no lines."""
    return [f"{source} row {row}" for source, row in zip(sources, rows, strict=True)]


@dataclass(frozen=True)
class Checked:
    """A table split into the rows kept and the rows quarantined.

    ``kept`` has canonical column types plus :data:`SOURCE_COLUMN` and
    :data:`ROW_COLUMN`; ``rejected`` has the raw values as text after the
    :data:`QUARANTINE_COLUMNS`.
    """

    kept: pd.DataFrame
    rejected: pd.DataFrame

    def violations(self) -> list[Violation]:
        """The quarantined rows as violations, in source order."""
        return [_violation(row) for _, row in self.rejected.iterrows()]


def check(
    frame: pd.DataFrame,
    contract: Contract,
    source: str,
    *,
    naive_time_zone: str | None = None,
    now: pd.Timestamp | None = None,
    first_row: int = 1,
) -> Checked:
    """Check each row of ``frame`` and split it into kept and rejected rows.

    Uniqueness is not checked here, because a table read in chunks is only
    whole once every chunk is in: see :func:`split_duplicates`.

    Parameters
    ----------
    frame
        Rows as read, any column types; may be one chunk of a source.
    contract
        The canonical table the rows must satisfy.
    source
        Where they came from (a file path or a query), for messages.
    naive_time_zone
        Zone assumed for timestamps written without one; ``None`` rejects them.
        A local time that a clock change repeats is read as its first
        occurrence; one that it skips is shifted forward by the gap.
    now
        Timestamps later than this are rejected as future, and dates after
        the day it falls on in its own time zone; ``None`` skips both.
    first_row
        The source row number of ``frame``'s first row (1 is the first data row).

    Returns
    -------
    Checked
        Every row exactly once, either kept or rejected with its reason.

    Raises
    ------
    ContractError
        A required column is missing: a structural problem, not a bad row.
    """
    missing = [name for name in contract.required if name not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: the {contract.table} table lacks required column(s) "
            f"{', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
        )
    frame = frame.reset_index(drop=True)
    out = frame.copy()
    bad = np.zeros(len(frame), dtype=bool)
    where = np.full(len(frame), "", dtype=object)
    why = np.full(len(frame), "", dtype=object)
    for column in contract.columns:
        if column.name not in out.columns:
            out[column.name] = pd.Series(None, index=out.index, dtype=_dtype(column))
            continue
        values, issues = _coerce(
            out[column.name], column, naive_time_zone, now, source=source
        )
        out[column.name] = values
        for mask, problem in issues:
            new = mask & ~bad
            where[new] = column.name
            why[new] = problem
            bad |= mask

    # One category instead of a copy of the source name on each of millions
    # of rows.
    out[SOURCE_COLUMN] = pd.Categorical.from_codes(
        np.zeros(len(frame), dtype="int8"), categories=pd.Index([source])
    )
    out[ROW_COLUMN] = np.arange(first_row, first_row + len(frame), dtype="int64")
    rejected = _rejected_rows(frame[bad], source, out[ROW_COLUMN][bad], where, why)
    return Checked(out[~bad].reset_index(drop=True), rejected)


def reject_where(
    kept: pd.DataFrame,
    mask: pd.Series,
    column: str,
    problem: str | np.ndarray,
    *,
    kind: str | np.ndarray = BAD,
) -> Checked:
    """Move the kept rows where ``mask`` holds to the rejected side.

    For rules that need more than one row or more than one table (unknown
    users, currencies, amounts after conversion, repeated ids), checked
    after reading. ``problem`` and ``kind`` are one value or one per moved row.
    """
    flags = _flags(mask.to_numpy())
    moved = kept[flags]
    count = len(moved)
    rejected = _rejected_rows(
        moved.drop(columns=[SOURCE_COLUMN, ROW_COLUMN]),
        moved[SOURCE_COLUMN],
        moved[ROW_COLUMN],
        np.full(count, column, dtype=object),
        np.broadcast_to(np.asarray(problem, dtype=object), (count,)),
        values=moved[column],
    )
    rejected["quarantine_kind"] = np.broadcast_to(
        np.asarray(kind, dtype=object), (count,)
    )
    return Checked(kept[~flags].reset_index(drop=True), rejected)


def split_duplicates(
    kept: pd.DataFrame, contract: Contract, place: Placer = place_by_row
) -> Checked:
    """Set aside later rows that repeat a unique column's value or the key.

    A row identical to the first one with its id is a plain repeat (an export
    read twice): it is set aside as a duplicate. A row that shares the id but
    differs elsewhere is a bad row, since there is no telling which is right.
    The reason names where the first one is, as ``place`` says it.

    Rows repeating the contract's key (one campaign on one day) are treated
    the same way when identical; when they differ the table is refused, see
    :func:`split_key_repeats`.

    Raises
    ------
    ContractError
        Rows share the contract's key but differ elsewhere.
    """
    rejected: list[pd.DataFrame] = []
    named = [c.name for c in contract.columns if c.name in kept.columns]
    for column in contract.columns:
        if not column.unique or column.name not in kept.columns:
            continue
        ids = kept[column.name]
        if _all_distinct(ids):
            continue
        repeated = ids.duplicated(keep="first") & ids.notna()
        prints = pd.util.hash_pandas_object(kept[named], index=False)
        firsts = (ids.notna() & ~ids.duplicated(keep="first")).to_numpy()
        first = pd.DataFrame(
            {
                "print": prints[firsts].to_numpy(),
                "position": np.flatnonzero(firsts),
            },
        ).set_axis(ids[firsts].to_numpy())
        same = (prints.to_numpy() == ids.map(first["print"]).to_numpy()) & repeated
        later = repeated.to_numpy()
        # Only the first rows that something repeats are placed: placing a
        # row in a CSV file reads the file again.
        referenced = ids[later].map(first["position"]).to_numpy(dtype="int64")
        unique_refs, back = np.unique(referenced, return_inverse=True)
        places = np.asarray(
            place(
                kept[SOURCE_COLUMN].iloc[unique_refs].astype(str),
                kept[ROW_COLUMN].iloc[unique_refs],
            ),
            dtype=object,
        )
        at = places[back] if len(unique_refs) else np.array([], dtype=object)
        problem = np.where(
            same[later],
            "repeats an identical earlier row (first at " + at + ")",
            "appears more than once with different values (first at " + at + ")",
        )
        split = reject_where(
            kept,
            repeated,
            column.name,
            problem,
            kind=np.where(same, DUPLICATE, BAD)[later],
        )
        rejected.append(split.rejected)
        kept = split.kept
    keyed = split_key_repeats(kept, contract, place)
    return Checked(keyed.kept, concat_rejected([*rejected, keyed.rejected]))


#: How many conflicting keys a refusal spells out; the rest are counted.
SHOWN_CONFLICTS = 5


def split_key_repeats(
    kept: pd.DataFrame, contract: Contract, place: Placer = place_by_row
) -> Checked:
    """Set aside identical repeats of the contract's key; refuse differing ones.

    A row identical to the first one with its key (the same export read
    twice, or overlapping exports that agree) is set aside as a duplicate.
    Rows that share the key but differ in any column of the contract are a
    conflict, and the table is refused rather than quarantined: both rows
    claim to be the whole of that key (a campaign's spend on one day), so
    keeping either one, or both, would put a guess into the money figures.

    Raises
    ------
    ContractError
        Rows share the key but differ; the message counts the conflicting
        keys and, for the first few, names the key and both rows' places.
    """
    key = list(contract.key)
    if not key or not set(key) <= set(kept.columns):
        return Checked(kept, concat_rejected([]))
    repeated = kept.duplicated(key, keep="first").to_numpy()
    if not repeated.any():
        return Checked(kept, concat_rejected([]))

    named = [c.name for c in contract.columns if c.name in kept.columns]
    prints = pd.util.hash_pandas_object(kept[named], index=False).to_numpy()
    # Groups numbered in order of appearance: group g's first row is the g-th
    # row that repeats nothing.
    group = kept.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    first_of = np.flatnonzero(~repeated)[group]
    conflict = repeated & (prints != prints[first_of])
    if conflict.any():
        raise ContractError(
            _conflicts(kept, contract, named, first_of, conflict, place)
        )

    unique_refs, back = np.unique(first_of[repeated], return_inverse=True)
    places = np.asarray(
        place(
            kept[SOURCE_COLUMN].iloc[unique_refs].astype(str),
            kept[ROW_COLUMN].iloc[unique_refs],
        ),
        dtype=object,
    )
    return reject_where(
        kept,
        pd.Series(repeated, index=kept.index),
        key[0],
        "repeats an identical earlier row of its "
        + " and ".join(key)
        + " (first at "
        + places[back]
        + ")",
        kind=DUPLICATE,
    )


def _conflicts(
    kept: pd.DataFrame,
    contract: Contract,
    named: list[str],
    first_of: np.ndarray,
    conflict: np.ndarray,
    place: Placer,
) -> str:
    """The refusal of rows that share a key but differ: count, then the first few."""
    later = np.flatnonzero(conflict)
    keys = first_of[later]
    _, at_first = np.unique(keys, return_index=True)
    pairs = sorted(zip(keys[at_first], later[at_first], strict=True))
    shown = pairs[:SHOWN_CONFLICTS]
    rows = [position for pair in shown for position in pair]
    places = place(
        kept[SOURCE_COLUMN].iloc[rows].astype(str), kept[ROW_COLUMN].iloc[rows]
    )
    lines = []
    for number, (first, other) in enumerate(shown):
        one, two = kept.iloc[first], kept.iloc[other]
        differ = [
            f"{column} {show(_shown(one[column]))} vs {show(_shown(two[column]))}"
            for column in named
            if not _same(one[column], two[column])
        ]
        what = ", ".join(
            f"{column} {show(_shown(one[column]))}" for column in contract.key
        )
        lines.append(
            f"{what}: {places[2 * number]} and {places[2 * number + 1]} differ "
            f"in {'; '.join(differ)}"
        )
    more = len(pairs) - len(shown)
    tail = f"\n  ... and {more} more" if more else ""
    key = " and ".join(contract.key)
    return (
        f"the {contract.table} table has {len(pairs)} conflict(s): rows with "
        f"the same {key} but different values, e.g. overlapping exports of "
        f"which one was revised. Each {key} must be on one row; there is no "
        f"telling which is right, so keep one export of each (the latest, if "
        f"Google revised it) and run again. Nothing was written.\n  "
        + "\n  ".join(lines)
        + tail
    )


def _shown(value: object) -> object:
    """A value as a conflict names it: dates as ``YYYY-MM-DD``."""
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()
    return value


def _same(one: object, two: object) -> bool:
    if _empty(one) or _empty(two):
        return _empty(one) and _empty(two)
    return bool(one == two)


def enforce(
    frame: pd.DataFrame,
    contract: Contract,
    source: str,
    *,
    naive_time_zone: str | None = None,
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``contract`` strictly and return canonical types.

    Parameters
    ----------
    frame
        The table as read, any column types.
    contract
        The canonical table it must satisfy.
    source
        Where it came from (a file path or a query), for messages.
    naive_time_zone
        Zone assumed for timestamps written without one; ``None`` refuses them.
    now
        Timestamps later than this are refused as future, and dates after
        the day it falls on in its own time zone; ``None`` skips both.

    Returns
    -------
    pandas.DataFrame
        The same rows, in order, with canonical column types. Columns the
        contract does not name are kept as they are (extra features).

    Raises
    ------
    ContractError
        The first broken rule, naming source, column, row and value.
    """
    if frame.empty:
        raise ContractError(f"{source}: the {contract.table} table has no rows")
    checked = check(frame, contract, source, naive_time_zone=naive_time_zone, now=now)
    unique = split_duplicates(checked.kept, contract)
    rejected = concat_rejected([checked.rejected, unique.rejected])
    if len(rejected):
        raise ContractError(
            f"{refusal(rejected)} Nothing was written; fix the source and run again."
        )
    return strip_provenance(unique.kept)


def refusal(rejected: pd.DataFrame) -> str:
    """The message refusing a table: its first bad row, and how many more."""
    first = rejected.sort_values(
        ["quarantine_source", "quarantine_row"], kind="stable"
    ).iloc[0]
    violation = _violation(first)
    more = len(rejected) - 1
    tail = f"; {more} more row(s) have problems" if more else ""
    return f"{violation.message()}{tail}."


def _violation(row: pd.Series) -> Violation:
    line = row.get("quarantine_line")
    return Violation(
        str(row["quarantine_source"]),
        int(row["quarantine_row"]),
        str(row["quarantine_column"]),
        row["quarantine_value"],
        str(row["quarantine_reason"]),
        None if line is None or pd.isna(line) else int(line),
    )


def strip_provenance(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without the columns recording where each row came from."""
    return frame.drop(columns=[SOURCE_COLUMN, ROW_COLUMN], errors="ignore")


def concat_rejected(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack rejected rows of one table, keeping the quarantine columns first."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(
            {name: pd.Series(dtype="string") for name in QUARANTINE_COLUMNS}
        )
    return pd.concat(parts, ignore_index=True)


def show(value: object) -> str:
    """A value as messages quote it; empty values read ``(empty)``."""
    if value is None or (isinstance(value, float) and value != value):
        return "(empty)"
    if value is pd.NA or value is pd.NaT:
        return "(empty)"
    return repr(str(value))


def _rejected_rows(
    raw: pd.DataFrame,
    source: str | pd.Series,
    rows: pd.Series,
    where: np.ndarray,
    why: np.ndarray,
    *,
    values: pd.Series | None = None,
) -> pd.DataFrame:
    raw = raw.reset_index(drop=True)
    if values is None:
        picked = [
            raw.at[i, column] if column in raw.columns else None
            for i, column in enumerate(where[where != ""])
        ]
        columns = where[where != ""]
        reasons = why[where != ""]
    else:
        picked = list(values)
        columns = where
        reasons = why
    head = pd.DataFrame(
        {
            "quarantine_kind": BAD,
            "quarantine_source": (
                source.to_numpy() if isinstance(source, pd.Series) else source
            ),
            "quarantine_row": rows.to_numpy(),
            "quarantine_line": pd.array([pd.NA] * len(raw), dtype="Int64"),
            "quarantine_column": columns,
            "quarantine_value": [None if _empty(v) else str(v) for v in picked],
            "quarantine_reason": reasons,
        },
        index=raw.index,
    )
    body = raw.astype("string")
    return pd.concat([head, body], axis=1)


def _empty(value: object) -> bool:
    return show(value) == "(empty)"


def _dtype(column: Column) -> str:
    return {
        "string": "string",
        "number": "float64",
        "timestamp": "datetime64[ns, UTC]",
        "date": "datetime64[ns]",
    }[column.kind]


Issues = list[tuple[np.ndarray, str]]


def _coerce(
    raw: pd.Series,
    column: Column,
    naive_zone: str | None,
    now: pd.Timestamp | None,
    *,
    source: str = "",
) -> tuple[pd.Series, Issues]:
    present = raw.notna()
    stripped = None
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        stripped = raw.astype("string").str.strip()
        present &= stripped.ne("").fillna(False)
    issues: Issues = []
    if not column.nullable:
        issues.append((~present.to_numpy(), "is empty, but a value is required"))

    values: pd.Series
    if column.kind == "string":
        text = stripped if stripped is not None else raw.astype("string")
        values = (text.str.upper() if column.fold_upper else text).where(present)
    elif column.kind == "number":
        values = _numbers(raw.where(present), column, issues)
    elif column.kind == "timestamp":
        where = f"{source}: column {column.name!r}"
        values = _timestamps(raw.where(present), naive_zone, issues, where)
        if column.not_future and now is not None:
            future = values.gt(now).fillna(False).to_numpy()
            issues.append((future, f"is in the future (after {now.isoformat()})"))
    else:
        values = _dates(raw.where(present), issues)
        if column.not_future and now is not None:
            # A day is future once it is after the day ``now`` falls on in
            # its own time zone (the account's, for campaign stats).
            today = pd.Timestamp(now.date())
            future = values.gt(today).fillna(False).to_numpy()
            issues.append(
                (future, f"is in the future (after {today.date()}, today in {now.tz})")
            )

    if column.pattern is not None:
        ok = values.astype("string").str.fullmatch(column.pattern).fillna(True)
        issues.append((~ok.to_numpy(dtype=bool), f"is not {column.hint}"))
    if column.allowed:
        known = values.isin(column.allowed) | values.isna()
        issues.append((~known.to_numpy(dtype=bool), f"is not {column.hint}"))
    return values, [(_flags(mask), problem) for mask, problem in issues]


def _flags(mask: np.ndarray | pd.Series) -> np.ndarray:
    return np.asarray(pd.Series(mask).fillna(False), dtype=bool)


def _numbers(raw: pd.Series, column: Column, issues: Issues) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    issues.append(((raw.notna() & numbers.isna()).to_numpy(), "is not a number"))
    infinite = numbers.isin([float("inf"), float("-inf")])
    issues.append((infinite.to_numpy(), "is not a finite number"))
    if column.non_negative:
        issues.append((numbers.lt(0).to_numpy(), "is negative"))
    return numbers


# Times are held in nanoseconds since 1970, which reach from 1677-09-21 to
# 2262-04-11; a time outside whole years of that span (a placeholder such as
# 0001-01-01 or 9999-12-31 from an export) is refused, not stored wrapped.
_STORABLE_FROM = pd.Timestamp("1678-01-01")
_STORABLE_UNTIL = pd.Timestamp("2262-01-01")
_UNSTORABLE = "is outside the years 1678 to 2261 that a time can be kept in"


def _storable(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """``values`` with times that cannot be kept set missing, and which those were."""
    naive = (
        values.dt.tz_convert(None)
        if isinstance(values.dtype, pd.DatetimeTZDtype)
        else values
    )
    outside = ((naive < _STORABLE_FROM) | (naive >= _STORABLE_UNTIL)).fillna(False)
    flags = outside.to_numpy(dtype=bool)
    return (values.where(~outside) if flags.any() else values), flags


def _timestamps(
    raw: pd.Series, naive_zone: str | None, issues: Issues, where: str
) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        converted, far = _storable(raw.dt.tz_convert("UTC"))
        issues.append((far, _UNSTORABLE))
        return converted.astype("datetime64[ns, UTC]")
    typed = pd.api.types.is_datetime64_dtype(raw.dtype)
    if typed:
        naive = raw.notna()
        text = raw.astype("string")
    else:
        text = raw.astype("string").str.strip()
        naive = text.notna() & ~text.str.contains(_ZONE_SUFFIX).fillna(False)
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    far = np.zeros(len(raw), dtype=bool)
    aware = text.notna() & ~naive
    if aware.any():
        values, far[aware.to_numpy()] = _storable(
            pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        )
        parsed[aware] = values
    unzoned = pd.Series(False, index=raw.index)
    if naive.any():
        local, far[naive.to_numpy()] = _storable(
            pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        )
        if naive_zone is None:
            unzoned = naive & local.reindex(raw.index).notna()
        else:
            parsed[naive] = _localize(local, naive_zone, where)
    issues.append((far, _UNSTORABLE))
    issues.append(
        (
            (text.notna() & parsed.isna() & ~unzoned).to_numpy(dtype=bool) & ~far,
            "is not a timestamp (expected ISO 8601, e.g. 2026-11-02T09:30:00Z)",
        )
    )
    # A typed column (Parquet, SQL) has no text to add a zone to: its type
    # lacks one.
    fix = (
        "store the column as timestamps with a time zone (UTC)"
        if typed
        else "write it with one (e.g. 2026-11-02T09:30:00Z)"
    )
    issues.append(
        (
            unzoned.to_numpy(dtype=bool),
            f"has no time zone; {fix} or set data.naive_time_zone in the config",
        )
    )
    return parsed.astype("datetime64[ns, UTC]")


def _localize(local: pd.Series, zone: str, where: str) -> pd.Series:
    """Wall-clock times in ``zone`` as UTC, with the offset before any clock change.

    A time that a clock change repeats (02:30 on the last Sunday of October in
    Europe/Paris) is read as its first occurrence, and one it skips (02:30 on
    the last Sunday of March) as a clock not yet put forward shows it, i.e.
    shifted forward by the gap (03:30 CEST). Both are the offset in force just
    before the change: what Python's ``zoneinfo`` gives with ``fold=0`` (PEP
    495). Such rows are real events, so they are kept, and counted in the log.
    """
    utc: pd.Series = local.dt.tz_localize(
        zone, ambiguous="NaT", nonexistent="NaT"
    ).dt.tz_convert("UTC")
    changed = (utc.isna() & local.notna()).to_numpy()
    if not changed.any():
        return utc
    tz = ZoneInfo(zone)
    walls = local[changed]
    offsets = [
        wall.to_pydatetime(warn=False).replace(tzinfo=tz, fold=0).utcoffset()
        for wall in walls
    ]
    utc[changed] = (walls - pd.to_timedelta(offsets).to_numpy()).dt.tz_localize("UTC")
    logger.info(
        "%s: %d local time(s) fall in a clock change of %s (repeated or skipped) "
        "and were read with the offset before it, e.g. %s as %s",
        where,
        int(changed.sum()),
        zone,
        walls.iloc[0],
        utc[changed].iloc[0].isoformat(),
    )
    return utc


def _dates(raw: pd.Series, issues: Issues) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.to_datetime(raw)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        parsed, far = _storable(parsed)
        issues.append((far, _UNSTORABLE))
        return parsed.dt.normalize().astype("datetime64[ns]")
    text = raw.astype("string").str.strip()
    parsed, far = _storable(pd.to_datetime(text, format="ISO8601", errors="coerce"))
    issues.append((far, _UNSTORABLE))
    issues.append(
        (
            (text.notna() & parsed.isna()).to_numpy(dtype=bool) & ~far,
            "is not a date (expected YYYY-MM-DD)",
        )
    )
    return parsed.astype("datetime64[ns]")


def member_of(values: pd.Series, allowed: pd.Series | pd.Index) -> np.ndarray:
    """Which ``values`` are among ``allowed``: ``Series.isin`` made fast for ids.

    ``isin`` on Arrow-backed strings turns every allowed value into a Python
    object first, which dominated reading a million users' revenue; here
    both sides stay in Arrow and one hash lookup runs in C++. Other dtypes go
    through ``isin``. Missing values are never members.

    Parameters
    ----------
    values
        The column to test.
    allowed
        The values that count as members.

    Returns
    -------
    numpy.ndarray
        One bool per row of ``values``.
    """
    if _arrow_strings(values) and _arrow_strings(allowed):
        found = pc.is_in(
            pa.array(values.array),
            value_set=pa.array(allowed.array).unique(),
            skip_nulls=True,
        )
        return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False))
    return np.asarray(values.isin(allowed) & values.notna(), dtype=bool)


def index_of(values: pd.Series, keys: pd.Index | pd.Series) -> np.ndarray:
    """Position of each of ``values`` among distinct ``keys``; -1 where absent.

    The lookup behind ``Series.map`` of an id column, without turning Arrow
    strings into Python objects. ``keys`` must not repeat.

    Parameters
    ----------
    values
        The ids to look up.
    keys
        Distinct ids, e.g. the index of a table keyed by id.

    Returns
    -------
    numpy.ndarray
        ``int64`` positions into ``keys``.
    """
    if _arrow_strings(values) and _arrow_strings(keys):
        found = pc.index_in(pa.array(values.array), value_set=pa.array(keys.array))
        return np.asarray(found.fill_null(-1).to_numpy(), dtype="int64")
    return np.asarray(pd.Index(keys).get_indexer(values), dtype="int64")


def _all_distinct(ids: pd.Series) -> bool:
    """No present value repeats; the usual case, answered with one hash pass
    instead of marking repeats row by row."""
    return bool(ids.dropna().is_unique)


def _arrow_strings(column: pd.Series | pd.Index) -> bool:
    dtype = column.dtype
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
