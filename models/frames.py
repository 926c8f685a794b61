"""Checks and normalises the canonical tables the models read."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from connectors.contracts import index_of, member_of
from connectors.refunds import settle_refunds
from models.exceptions import InputDataError

logger = logging.getLogger(__name__)

USER_COLUMNS = ("user_id", "signup_at", "country", "segment", "campaign_id")
OPTIONAL_USER_COLUMNS = ("activated_at", "gclid")
REVENUE_COLUMNS = ("user_id", "occurred_at", "amount")
EVENT_COLUMNS = ("user_id", "occurred_at", "event")

_SECONDS_PER_DAY = 86400.0


def elapsed_days(delta: pd.Series) -> pd.Series:
    """Timedeltas as float days."""
    days: pd.Series = delta.dt.total_seconds() / _SECONDS_PER_DAY
    return days


def require_columns(frame: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    """Raise InputDataError naming the table and every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"{table}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(map(str, frame.columns))}"
        )


def to_utc(values: pd.Series, table: str, column: str) -> pd.Series:
    """Parse a timestamp column to tz-aware UTC, naming the first bad value."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = values.dt.tz_convert("UTC")
        return converted
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna() & values.notna() & (values.astype("string") != "")
    if bad.any():
        first = values[bad].iloc[0]
        raise InputDataError(
            f"{table}.{column}: {int(bad.sum())} value(s) are not timestamps, "
            f"first {first!r} at row {values[bad].index[0]!r}"
        )
    return parsed


def _as_string(values: pd.Series) -> pd.Series:
    return values.astype("string").fillna("unknown")


def prepare_users(users: pd.DataFrame) -> pd.DataFrame:
    """Validate the users table and return a normalised copy.

    Parameters
    ----------
    users : pandas.DataFrame
        Canonical users table.

    Returns
    -------
    pandas.DataFrame
        One row per user_id, timestamps in UTC, text columns as strings.

    Raises
    ------
    InputDataError
        A column is missing, a timestamp does not parse, a sign-up is missing or
        a user_id is repeated.
    """
    require_columns(users, "users", USER_COLUMNS)
    out = users.copy()
    out["user_id"] = out["user_id"].astype("string")
    out["signup_at"] = to_utc(out["signup_at"], "users", "signup_at")
    if out["signup_at"].isna().any():
        row = out.index[out["signup_at"].isna()][0]
        raise InputDataError(f"users.signup_at: missing at row {row!r}")
    if "activated_at" in out.columns:
        out["activated_at"] = to_utc(out["activated_at"], "users", "activated_at")
    else:
        out["activated_at"] = pd.Series(
            pd.NaT, index=out.index, dtype=out["signup_at"].dtype
        )
    for column in ("country", "segment", "campaign_id"):
        out[column] = _as_string(out[column])
    duplicated = out["user_id"].duplicated()
    if duplicated.any():
        raise InputDataError(
            f"users.user_id: {int(duplicated.sum())} repeated id(s), "
            f"first {out.loc[duplicated, 'user_id'].iloc[0]!r}"
        )
    return out.reset_index(drop=True)


def prepare_revenue(revenue: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Validate the revenue table against prepared users.

    Rows of users absent from ``users`` are ignored (scoring a subset of users
    is normal). Revenue dated on a calendar day before the user's sign-up is
    refused: it means the user table and the revenue source disagree.

    A negative amount is a refund: it stays, and lowers its user's net revenue
    from its own time on. A refund of more than the user had paid by then is
    refused, and one within the rounding slack is reduced to what was paid,
    as :func:`connectors.refunds.settle_refunds` rules (the checked read of
    :func:`connectors.files.load_inputs` has already quarantined the former).

    Parameters
    ----------
    revenue : pandas.DataFrame
        Canonical revenue table.
    users : pandas.DataFrame
        Output of :func:`prepare_users`.

    Returns
    -------
    pandas.DataFrame
        Columns user_id, occurred_at, amount, days (days since sign-up, float).

    Raises
    ------
    InputDataError
        A column is missing, a timestamp or an amount is unreadable, revenue
        predates the sign-up day, or a refund exceeds what its user had paid.
    """
    require_columns(revenue, "revenue", REVENUE_COLUMNS)
    out = revenue.loc[:, list(REVENUE_COLUMNS)].copy()
    out["user_id"] = out["user_id"].astype("string")
    out["occurred_at"] = to_utc(out["occurred_at"], "revenue", "occurred_at")
    amount = pd.to_numeric(out["amount"], errors="coerce")
    bad = amount.isna() | out["occurred_at"].isna()
    if bad.any():
        row = out.index[bad][0]
        raise InputDataError(
            f"revenue: {int(bad.sum())} row(s) without a numeric amount or a "
            f"timestamp, first at row {row!r} (amount={revenue.loc[row, 'amount']!r})"
        )
    out["amount"] = amount.astype("float64")

    signup = users.set_index("user_id")["signup_at"]
    known = pd.Series(member_of(out["user_id"], signup.index), index=out.index)
    if not known.all():
        logger.debug(
            "revenue: %d row(s) of users not in the users table ignored",
            int((~known).sum()),
        )
    out = out.loc[known].reset_index(drop=True)
    start = signup_of(out["user_id"], signup)
    # Revenue stamped on the sign-up day but before the sign-up instant is
    # common (payment inside the sign-up flow, sources that store dates only);
    # only rows from an earlier calendar day are refused.
    early = out["occurred_at"] < start.dt.floor("D")
    if early.any():
        row = early.to_numpy().nonzero()[0][0]
        raise InputDataError(
            f"revenue: {int(early.sum())} row(s) predate their user's sign-up day, "
            f"first user_id={out.loc[row, 'user_id']!r} "
            f"occurred_at={out.loc[row, 'occurred_at']} signup_at={start.iloc[row]}"
        )
    out["amount"] = _settled(out)
    out["days"] = elapsed_days(out["occurred_at"] - start).clip(lower=0.0)
    return out


def _settled(revenue: pd.DataFrame) -> pd.Series:
    """The amounts with refunds checked against what their user had paid."""
    settled = settle_refunds(revenue)
    over = settled.overdrawn
    if over.any():
        first = revenue.iloc[int(over.nonzero()[0][0])]
        raise InputDataError(
            f"revenue: {int(over.sum())} refund(s) exceed what their user had paid "
            f"by then, first user_id={first['user_id']!r} "
            f"occurred_at={first['occurred_at']!s} "
            f"amount={first['amount']!r} after a net of "
            f"{settled.net_before[over][0]:.2f}"
        )
    return pd.Series(settled.amount, index=revenue.index, dtype="float64")


def prepare_events(events: pd.DataFrame | None, users: pd.DataFrame) -> pd.DataFrame:
    """Validate the optional events table; an absent table yields an empty one."""
    columns = ["user_id", "event", "days", "value"]
    if events is None:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    require_columns(events, "events", EVENT_COLUMNS)
    out = pd.DataFrame(
        {
            "user_id": events["user_id"].astype("string"),
            "event": events["event"].astype("string"),
            "occurred_at": to_utc(events["occurred_at"], "events", "occurred_at"),
        }
    )
    if "value" in events.columns:
        out["value"] = pd.to_numeric(events["value"], errors="coerce").fillna(0.0)
    else:
        out["value"] = 0.0
    signup = users.set_index("user_id")["signup_at"]
    known = member_of(out["user_id"], signup.index)
    out = out.loc[known & out["occurred_at"].notna().to_numpy()]
    start = signup_of(out["user_id"], signup)
    out["days"] = elapsed_days(out["occurred_at"] - start).clip(lower=0.0)
    return out.loc[:, columns].reset_index(drop=True)


def signup_of(user_ids: pd.Series, signup: pd.Series) -> pd.Series:
    """Each row's user's sign-up time (NaT for an id not in ``signup``)."""
    rows = index_of(user_ids, signup.index)
    return pd.Series(signup.array.take(rows, allow_fill=True), index=user_ids.index)
