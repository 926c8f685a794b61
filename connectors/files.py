"""Read the canonical tables from CSV or Parquet files."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from connectors.contracts import (
    CAMPAIGN_STATS,
    EVENTS,
    REVENUE,
    USERS,
    Contract,
    enforce,
)
from connectors.exceptions import ContractError, InputError

logger = logging.getLogger(__name__)

_CSV_SUFFIXES = {".csv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class Inputs:
    """The canonical tables of one run, with what was read to make them."""

    users: pd.DataFrame
    revenue: pd.DataFrame
    campaign_stats: pd.DataFrame
    events: pd.DataFrame | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)

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


def read_table(
    path: Path, contract: Contract, *, naive_time_zone: str | None = None
) -> pd.DataFrame:
    """Read one canonical table from a CSV or Parquet file and check its contract.

    Parameters
    ----------
    path
        A ``.csv``, ``.csv.gz`` or ``.parquet`` file.
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
        A column or value breaks the contract.
    """
    frame = _read_raw(path, contract.table)
    return enforce(frame, contract, str(path), naive_time_zone=naive_time_zone)


def _read_raw(path: Path, table: str) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"{path}: the {table} file does not exist")
    if path.is_dir():
        raise InputError(f"{path}: the {table} source is a folder, not a file")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz"}
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes or [""])[-1]
    try:
        if kind in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if kind in _CSV_SUFFIXES:
            return pd.read_csv(
                path, dtype="string", keep_default_na=False, na_values=[""]
            )
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the {table} file is empty") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the {table} file is not UTF-8 text (byte {exc.start}): "
            "save it as UTF-8 and run again"
        ) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read the {table} file: {exc}") from exc
    raise InputError(
        f"{path}: unknown format {kind or '(no suffix)'!r} for the {table} file; "
        "use .csv, .csv.gz or .parquet"
    )


def load_inputs(
    users: Path,
    revenue: Path,
    campaign_stats: Path,
    *,
    events: Path | None = None,
    currency: str,
    naive_time_zone: str | None = None,
) -> Inputs:
    """Read and cross-check the canonical tables of one run.

    Parameters
    ----------
    users, revenue, campaign_stats, events
        The files of each table; ``events`` is optional.
    currency
        The account currency; revenue in any other currency is refused.
    naive_time_zone
        Zone assumed for timestamps written without one; ``None`` refuses them.

    Returns
    -------
    Inputs
        The checked tables and a SHA-256 fingerprint of each file.

    Raises
    ------
    InputError
        A file is missing or unreadable, or a row breaks its contract, or
        revenue names an unknown user or currency.
    """
    zone = naive_time_zone
    user_table = read_table(users, USERS, naive_time_zone=zone)
    revenue_table = read_table(revenue, REVENUE, naive_time_zone=zone)
    stats_table = read_table(campaign_stats, CAMPAIGN_STATS, naive_time_zone=zone)
    event_table = (
        read_table(events, EVENTS, naive_time_zone=zone) if events is not None else None
    )

    _check_currency(revenue_table, revenue, currency)
    _check_known_users(revenue_table, user_table, revenue, "revenue")
    if event_table is not None and events is not None:
        _check_known_users(event_table, user_table, events, "events")

    paths = {"users": users, "revenue": revenue, "campaign_stats": campaign_stats}
    if events is not None:
        paths["events"] = events
    inputs = Inputs(
        users=user_table,
        revenue=revenue_table,
        campaign_stats=stats_table,
        events=event_table,
        fingerprints={name: _sha256(path) for name, path in paths.items()},
    )
    logger.info("inputs read: %s", inputs.row_counts())
    return inputs


def _check_currency(revenue: pd.DataFrame, path: Path, currency: str) -> None:
    other = revenue["currency"].ne(currency).fillna(False).to_numpy()
    if other.any():
        row = int(other.argmax())
        raise ContractError(
            f"{path}: column 'currency', row {row + 1}: value "
            f"{revenue['currency'].iloc[row]!r} is not the account currency "
            f"{currency!r}, and no exchange rate is configured for it. Nothing "
            "was written; convert the amounts or remove the rows, and run again."
        )


def _check_known_users(
    table: pd.DataFrame, users: pd.DataFrame, path: Path, name: str
) -> None:
    unknown = (~table["user_id"].isin(users["user_id"])).to_numpy()
    if unknown.any():
        row = int(unknown.argmax())
        raise ContractError(
            f"{path}: column 'user_id', row {row + 1}: value "
            f"{table['user_id'].iloc[row]!r} has {name} but is not in the users "
            f"table ({int(unknown.sum())} such row(s)). Nothing was written; add "
            "the users or remove the rows, and run again."
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
