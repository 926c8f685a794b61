"""Quarantine: rows set aside with their reason, counted, never silently lost.

Every table read is audited: the rows that came in equal the rows kept plus
the rows quarantined. Quarantined rows are written to a CSV file with the
source, row, column, value and reason of each. A table whose bad rows exceed
the configured share fails the run; below it the run goes on with a warning.
Exact repeats of a row (the same export read twice) are quarantined as
duplicates but do not count toward that share.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.contracts import DUPLICATE, refusal
from connectors.exceptions import ContractError, InputError

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


def write_quarantine(rejected: pd.DataFrame, directory: Path, table: str) -> Path:
    """Write a table's quarantined rows to ``directory/<table>.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{table}.csv"
    ordered = rejected.sort_values(
        ["quarantine_source", "quarantine_row"], kind="stable"
    )
    ordered.to_csv(path, index=False)
    return path


def judge(table_audit: TableAudit, rejected: pd.DataFrame, max_share: float) -> None:
    """Fail when the bad rows exceed ``max_share``; warn when there are any.

    Raises
    ------
    ContractError
        More than ``max_share`` of the rows broke a rule (any, when it is 0).
        The message names the first bad row: source, column, row and value.
    """
    if table_audit.bad == 0:
        return
    bad = rejected[rejected["quarantine_kind"].ne(DUPLICATE)]
    where = f" Quarantined rows: {table_audit.file}." if table_audit.file else ""
    if table_audit.bad_share > max_share or max_share == 0:
        limit = (
            "and data.quarantine.max_share is 0: no bad row is accepted"
            if max_share == 0
            else f"above data.quarantine.max_share {percent(max_share)}"
        )
        raise ContractError(
            f"{refusal(bad)} The {table_audit.table} table has {table_audit.bad} "
            f"bad row(s) of {table_audit.rows_in} "
            f"({percent(table_audit.bad_share)}), {limit}.{where}"
        )
    logger.warning(
        "%s: %d of %d row(s) quarantined (%s, limit %s); first: %s%s",
        table_audit.table,
        table_audit.bad,
        table_audit.rows_in,
        percent(table_audit.bad_share),
        percent(max_share),
        refusal(bad),
        where,
    )
