"""Quarantine: rows set aside with their reason, counted, never silently lost.

Every table read is audited: the rows that came in equal the rows kept plus
the rows quarantined. Quarantined rows are written to a CSV file with the
source, row, line, column, value and reason of each, followed by the row as
its source holds it (:func:`as_read`), so that it can be fixed and fed again.
A table whose bad rows exceed the configured share fails the run; below it
the run goes on with a warning. Exact repeats of a row (the same export read
twice) are quarantined as duplicates but do not count toward that share.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.contracts import (
    DUPLICATE,
    QUARANTINE_COLUMNS,
    Placer,
    place_by_row,
    refusal,
)
from connectors.exceptions import ContractError, InputError
from connectors.origins import RowOrigin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableAudit:
    """How one table's rows were accounted for in a run.

    ``rows_in`` counts every row handed to the checks, including rows carried
    over from earlier incremental reads (``cached``); it always equals
    ``kept + quarantined``. ``restated`` counts cached rows that a newer row
    with the same id replaced; they are not in ``rows_in``, their newer
    version is.
    """

    table: str
    rows_in: int
    kept: int
    quarantined: int
    duplicates: int
    cached: int = 0
    restated: int = 0
    file: str | None = None

    @property
    def bad(self) -> int:
        """Quarantined rows that broke a rule (plain repeats excluded)."""
        return self.quarantined - self.duplicates

    @property
    def bad_share(self) -> float:
        """Share of the rows in that broke a rule."""
        return self.bad / self.rows_in if self.rows_in else 0.0

    def as_record(self) -> dict[str, Any]:
        """The audit as the run record stores it."""
        return {key: value for key, value in asdict(self).items() if key != "table"}


def percent(share: float) -> str:
    """A share as a percentage that never rounds a bad row away to 0.00 %."""
    if share == 0 or share >= 0.0001:
        return f"{share:.2%}"
    return f"{share * 100:.1g}%"


def audit(
    table: str,
    rows_in: int,
    kept: pd.DataFrame,
    rejected: pd.DataFrame,
    *,
    cached: int = 0,
    restated: int = 0,
) -> TableAudit:
    """Count a table's rows, and refuse a count where a row went missing."""
    duplicates = int(rejected["quarantine_kind"].eq(DUPLICATE).sum())
    if rows_in != len(kept) + len(rejected):
        raise InputError(
            f"the {table} table lost rows while being checked: {rows_in} in, "
            f"{len(kept)} kept, {len(rejected)} quarantined; nothing was written"
        )
    return TableAudit(
        table, rows_in, len(kept), len(rejected), duplicates, cached, restated
    )


#: Columns the checks add to revenue rows they convert into the account
#: currency; the row as read has the original amount and currency instead.
_CONVERTED = {"amount": "amount_original", "currency": "currency_original"}


def placer(origins: Mapping[str, RowOrigin]) -> Placer:
    """Say where rows are: ``<file> line <n>`` in a CSV file, else ``row <n>``."""

    def place(sources: pd.Series, rows: pd.Series) -> list[str]:
        texts = place_by_row(sources, rows)
        names = sources.astype(str).to_numpy()
        numbers = rows.to_numpy(dtype="int64")
        for name in dict.fromkeys(names):
            origin = origins.get(name)
            if origin is None:
                continue
            at = (names == name).nonzero()[0]
            lines = origin.lines(numbers[at].tolist())
            if lines is None:
                continue
            for position, line in zip(at, lines, strict=True):
                texts[position] = f"{name} line {line}"
        return texts

    return place


def as_read(rejected: pd.DataFrame, origins: Mapping[str, RowOrigin]) -> pd.DataFrame:
    """The quarantined rows as their sources hold them, with their CSV lines.

    A row from a file is read again: its columns and text as in the file
    (timestamps, amounts and currency untouched by the checks), its
    ``quarantine_value`` as written there and, in a CSV file, its
    ``quarantine_line``. A row from a SQL source, or from a file that can no
    longer be read, keeps its checked values, with the original amount and
    currency of a converted revenue row.

    Parameters
    ----------
    rejected
        A table's quarantined rows (quarantine columns, then the row).
    origins
        The sources that can be read again, by source name.

    Returns
    -------
    pandas.DataFrame
        The same rows in the same order, quarantine columns first.
    """
    if rejected.empty:
        return rejected
    parts = []
    for source, group in rejected.groupby(
        "quarantine_source", sort=False, observed=True
    ):
        origin = origins.get(str(source))
        located = (
            origin.locate(group["quarantine_row"].astype("int64").tolist())
            if origin is not None
            else None
        )
        if located is None:
            parts.append(_restored(group))
            continue
        head = group[list(QUARANTINE_COLUMNS)].copy()
        raw = located.raw.set_axis(group.index)
        if located.lines is not None:
            head["quarantine_line"] = pd.array(located.lines, dtype="Int64")
        head["quarantine_value"] = [
            _text(raw.at[index, column]) if column in raw.columns else value
            for index, column, value in zip(
                group.index,
                group["quarantine_column"],
                group["quarantine_value"],
                strict=True,
            )
        ]
        parts.append(pd.concat([head, raw], axis=1))
    return pd.concat(parts).reindex(rejected.index)


def _restored(group: pd.DataFrame) -> pd.DataFrame:
    """Checked rows with the amount and currency they had before conversion."""
    if not set(_CONVERTED.values()) <= set(group.columns):
        return group
    out = group.copy()
    converted = out["amount_original"].notna()
    for column, original in _CONVERTED.items():
        out.loc[converted, column] = out.loc[converted, original]
        shown = converted & out["quarantine_column"].eq(column)
        out.loc[shown, "quarantine_value"] = out.loc[shown, original]
    return out.drop(columns=list(_CONVERTED.values()))


def _text(value: object) -> str | None:
    """A value of a row as read (text, or missing)."""
    return value if isinstance(value, str) else None


def write_quarantine(rejected: pd.DataFrame, directory: Path, table: str) -> Path:
    """Write a table's quarantined rows to ``directory/<table>.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{table}.csv"
    ordered = rejected.sort_values(
        ["quarantine_source", "quarantine_row"], kind="stable"
    )
    ordered.to_csv(path, index=False)
    return path


def judge(
    table_audit: TableAudit,
    rejected: pd.DataFrame,
    max_share: float,
    *,
    setting: str = "data.quarantine.max_share",
    warn: bool = True,
) -> None:
    """Fail when the bad rows exceed ``max_share``; warn when there are any.

    ``setting`` is how the message names ``max_share``; ``warn`` false leaves
    the warning to the caller, which reports the quarantine itself.

    Raises
    ------
    ContractError
        More than ``max_share`` of the rows broke a rule (any, when it is 0).
        The message names the first bad row: source, column, line (for a
        row located in a CSV file) or row, and value.
    """
    if table_audit.bad == 0:
        return
    bad = rejected[rejected["quarantine_kind"].ne(DUPLICATE)]
    where = f" Quarantined rows: {table_audit.file}." if table_audit.file else ""
    if table_audit.bad_share > max_share or max_share == 0:
        limit = (
            f"and {setting} is 0: no bad row is accepted"
            if max_share == 0
            else f"above {setting} {percent(max_share)}"
        )
        raise ContractError(
            f"{refusal(bad)} The {table_audit.table} table has {table_audit.bad} "
            f"bad row(s) of {table_audit.rows_in} "
            f"({percent(table_audit.bad_share)}), {limit}.{where}"
        )
    if not warn:
        return
    logger.warning(
        "%s: %s bad of %s row(s) quarantined (%s, limit %s); first: %s%s",
        table_audit.table,
        f"{table_audit.bad:,}",
        f"{table_audit.rows_in:,}",
        percent(table_audit.bad_share),
        percent(max_share),
        refusal(bad),
        where,
    )
