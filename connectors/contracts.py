"""The canonical tables and the contract each one keeps.

Each table's columns are declared once here; :func:`enforce` checks a raw
frame against them and returns it with canonical types (strings, UTC
timestamps, floats). The first break found is raised as a
:class:`~connectors.exceptions.ContractError` naming the source, the column,
the row and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from connectors.exceptions import ContractError

Kind = Literal["string", "timestamp", "date", "number"]

_ZONE_SUFFIX = re.compile(
    r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    kind: Kind
    required: bool = True
    nullable: bool = False
    non_negative: bool = False
    unique: bool = False
    pattern: str | None = None
    hint: str = ""


@dataclass(frozen=True)
class Contract:
    """A canonical table: its name and its columns."""

    table: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the columns every source must have."""
        return tuple(c.name for c in self.columns if c.required)


USERS = Contract(
    "users",
    (
        Column("user_id", "string", unique=True),
        Column("signup_at", "timestamp"),
        Column("activated_at", "timestamp", nullable=True),
        Column(
            "country",
            "string",
            pattern=r"[A-Z]{2}",
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
        Column("occurred_at", "timestamp"),
        Column("amount", "number", non_negative=True),
        Column(
            "currency",
            "string",
            pattern=r"[A-Z]{3}",
            hint="an ISO 4217 code such as 'EUR'",
        ),
        Column("order_id", "string", required=False, nullable=True, unique=True),
    ),
)

EVENTS = Contract(
    "events",
    (
        Column("user_id", "string"),
        Column("occurred_at", "timestamp"),
        Column("event", "string"),
        Column("value", "number", required=False, nullable=True),
    ),
)

CAMPAIGN_STATS = Contract(
    "campaign_stats",
    (
        Column("date", "date"),
        Column("campaign_id", "string"),
        Column("campaign_name", "string"),
        Column("cost", "number", non_negative=True),
        Column("conversions", "number", non_negative=True),
        Column("conversion_value", "number", non_negative=True),
        Column(
            "bidding_strategy_type",
            "string",
            pattern=r"[A-Z_]+",
            hint="a Google Ads strategy type such as 'TARGET_CPA'",
        ),
        Column("target_cpa", "number", nullable=True, non_negative=True),
        Column("target_roas", "number", nullable=True, non_negative=True),
        Column("bidding_strategy_status", "string", required=False, nullable=True),
        Column("customer_id", "string", required=False, nullable=True),
    ),
)


def enforce(
    frame: pd.DataFrame,
    contract: Contract,
    source: str,
    *,
    naive_time_zone: str | None = None,
) -> pd.DataFrame:
    """Check ``frame`` against ``contract`` and return it with canonical types.

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
    missing = [name for name in contract.required if name not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: the {contract.table} table lacks required column(s) "
            f"{', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
        )
    out = frame.copy()
    for column in contract.columns:
        if column.name not in out.columns:
            out[column.name] = pd.Series(
                pd.NA, index=out.index, dtype=_empty_dtype(column.kind)
            )
            continue
        out[column.name] = _coerce(out[column.name], column, source, naive_time_zone)
    return out


def _empty_dtype(kind: Kind) -> str:
    return {
        "string": "string",
        "number": "float64",
        "timestamp": "datetime64[ns, UTC]",
        "date": "datetime64[ns]",
    }[kind]


def _coerce(
    raw: pd.Series, column: Column, source: str, naive_zone: str | None
) -> pd.Series:
    present = raw.notna()
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        present &= raw.astype("string").str.strip().ne("").fillna(False)
    if not column.nullable and not bool(present.all()):
        _fail(source, column, raw, ~present, "is empty, but a value is required")

    values: pd.Series
    if column.kind == "string":
        values = raw.astype("string").str.strip().where(present)
    elif column.kind == "number":
        values = _numbers(raw.where(present), column, source)
    elif column.kind == "timestamp":
        values = _timestamps(raw.where(present), column, source, naive_zone)
    else:
        values = _dates(raw.where(present), column, source)

    if column.pattern is not None:
        ok = values.astype("string").str.fullmatch(column.pattern).fillna(True)
        _fail_where(source, column, raw, ~ok, f"is not {column.hint}")
    if column.unique:
        dup = values.duplicated(keep="first") & values.notna()
        _fail_where(source, column, raw, dup, "appears more than once")
    return values


def _numbers(raw: pd.Series, column: Column, source: str) -> pd.Series:
    numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
    _fail_where(source, column, raw, raw.notna() & numbers.isna(), "is not a number")
    bad = numbers.isin([float("inf"), float("-inf")])
    _fail_where(source, column, raw, bad, "is not a finite number")
    if column.non_negative:
        _fail_where(source, column, raw, numbers.lt(0), "is negative")
    return numbers


def _timestamps(
    raw: pd.Series, column: Column, source: str, naive_zone: str | None
) -> pd.Series:
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = raw.dt.tz_convert("UTC")
        return converted.astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        naive = raw.notna()
        text = raw.astype("string")
    else:
        text = raw.astype("string").str.strip()
        naive = text.notna() & ~text.str.contains(_ZONE_SUFFIX).fillna(False)
    readable = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    _fail_where(
        source,
        column,
        raw,
        text.notna() & readable.isna(),
        "is not a timestamp (expected ISO 8601, e.g. 2026-11-02T09:30:00Z)",
    )
    if naive.any() and naive_zone is None:
        _fail(
            source,
            column,
            raw,
            naive,
            "has no time zone; write it with one (e.g. 2026-11-02T09:30:00Z) "
            "or set data.naive_time_zone in the config",
        )
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
    aware = text.notna() & ~naive
    if aware.any():
        parsed[aware] = pd.to_datetime(
            text[aware], format="ISO8601", utc=True, errors="coerce"
        )
    if naive.any() and naive_zone is not None:
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        parsed[naive] = local.dt.tz_localize(
            naive_zone, ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")
    _fail_where(
        source,
        column,
        raw,
        text.notna() & parsed.isna(),
        "is not a timestamp (expected ISO 8601, e.g. 2026-11-02T09:30:00Z)",
    )
    return parsed.astype("datetime64[ns, UTC]")


def _dates(raw: pd.Series, column: Column, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.to_datetime(raw)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_localize(None)
        return parsed.dt.normalize().astype("datetime64[ns]")
    text = raw.astype("string").str.strip()
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    _fail_where(
        source,
        column,
        raw,
        text.notna() & parsed.isna(),
        "is not a date (expected YYYY-MM-DD)",
    )
    return parsed.astype("datetime64[ns]")


def _fail_where(
    source: str, column: Column, raw: pd.Series, bad: pd.Series, problem: str
) -> None:
    bad = bad.fillna(False).astype(bool)
    if bool(bad.any()):
        _fail(source, column, raw, bad, problem)


def _fail(
    source: str, column: Column, raw: pd.Series, bad: pd.Series, problem: str
) -> None:
    bad = bad.fillna(False).astype(bool)
    positions = [i for i, flag in enumerate(bad.to_numpy()) if flag]
    first = positions[0]
    value = raw.iloc[first]
    more = len(positions) - 1
    tail = f"; {more} more row(s) in this column have the same problem" if more else ""
    raise ContractError(
        f"{source}: column {column.name!r}, row {first + 1}: value "
        f"{_show(value)} {problem}{tail}. Nothing was written; fix the "
        "source and run again."
    )


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "(empty)"
    if value is pd.NA or value is pd.NaT:
        return "(empty)"
    return repr(str(value))
