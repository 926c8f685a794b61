"""Refunds: revenue rows with a negative amount, netted into their user's revenue.

Billing exports (Stripe and the like) list a refund as a row of its own, with
its own id and a negative amount. Such a row is kept and lowers its user's
revenue from its own timestamp on, as long as the user had paid at least that
much by then. The rule is a running net per user, in the reporting currency,
over the rows in time order (at one instant, payments before refunds, then
refunds in source order):

- a refund that keeps the net at or above zero is kept as it is;
- a refund that takes the net below zero by at most :data:`ROUNDING_SLACK`
  (a cent lost to rounding, say) is kept, and reduced to what the net held, so
  a user's net revenue is never negative;
- a refund in another currency than the reporting one is also measured in its
  own currency, against what the user paid in that currency: when it fits
  there, exchange rates that moved between payment and refund do not make it
  an overdraft, and it is reduced to what the net held in the reporting
  currency;
- any other refund is an overdraft (money the user never paid by then) and is
  set aside: see :func:`connectors.files.load_inputs`, which quarantines it.

A refund set aside does not count for later refunds: they are measured
against what the user kept paying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from connectors.contracts import member_of

#: How far a refund may take its user's net below zero and still be kept (then
#: reduced to the net): one cent of the currency it is measured in, enough for
#: split amounts rounded one way (three refunds of 33.34 against 100.00) or a
#: conversion rounded up. Anything more is money the user never paid.
ROUNDING_SLACK = 0.01

#: A net at or below this is nothing kept: a payment refunded in full, up to
#: the noise of summing converted amounts.
NET_ZERO = 0.005

# Float sums of amounts with cents are off by far less than this.
_FLOAT_NOISE = 1e-9

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Settlement:
    """Each revenue row once the refunds are checked against what was paid.

    Attributes
    ----------
    amount : numpy.ndarray
        Each row's amount as kept: a refund within the slack is reduced to
        what its user's net held; every other row is unchanged.
    overdrawn : numpy.ndarray
        Refunds of more than their user had paid by then (bool per row).
    net_before : numpy.ndarray
        The user's net revenue just before each overdrawn refund, in the
        reporting currency; NaN on every other row.
    reduced : numpy.ndarray
        Refunds kept but reduced to what their user's net held (bool per row).
    """

    amount: FloatArray
    overdrawn: BoolArray
    net_before: FloatArray
    reduced: BoolArray


def settle_refunds(revenue: pd.DataFrame) -> Settlement:
    """Check every refund against what its user had paid before it.

    Parameters
    ----------
    revenue : pandas.DataFrame
        Rows with ``user_id``, ``occurred_at`` (time-zone aware) and
        ``amount`` in the reporting currency. When the amounts were converted,
        ``amount_original`` and ``currency_original`` (the row as written) and
        ``currency`` (the reporting one) let a foreign refund be measured in
        its own currency.

    Returns
    -------
    Settlement
        One entry per row, in the order of ``revenue``.
    """
    amount = revenue["amount"].to_numpy(dtype="float64", na_value=np.nan).copy()
    overdrawn = np.zeros(len(amount), dtype=bool)
    reduced = np.zeros(len(amount), dtype=bool)
    net_before = np.full(len(amount), np.nan)
    settlement = Settlement(amount, overdrawn, net_before, reduced)
    refund = amount < 0
    if not refund.any():
        return settlement

    # Only users with a refund can overdraw; the rest are not looked at, so a
    # table without refunds costs one comparison.
    ids = revenue["user_id"]
    touched = np.flatnonzero(member_of(ids, ids[refund]))
    codes, _ = pd.factorize(ids.iloc[touched])
    when = pd.to_datetime(revenue["occurred_at"].iloc[touched], utc=True)
    order = np.lexsort(
        (touched, refund[touched], when.astype("int64").to_numpy(), codes)
    )
    rows = touched[order]
    users = codes[order]
    running = pd.Series(amount[rows]).groupby(users).cumsum().to_numpy()
    short = pd.Series(running < -_FLOAT_NOISE).groupby(users).any()
    if not short.any():
        return settlement

    foreign = _foreign(revenue)
    needy = np.isin(users, short.index[short.to_numpy()].to_numpy())
    starts = np.flatnonzero(np.diff(users[needy], prepend=-1) != 0)
    for user_rows in np.split(rows[needy], starts[1:]):
        _settle_user(user_rows, settlement, foreign)
    return settlement


@dataclass(frozen=True)
class _Foreign:
    """Amounts and currencies as written, for rows converted from another one."""

    amount: FloatArray
    currency: npt.NDArray[np.object_]
    converted: BoolArray


def _foreign(revenue: pd.DataFrame) -> _Foreign | None:
    columns = {"amount_original", "currency_original", "currency"}
    if not columns <= set(revenue.columns):
        return None
    written = revenue["currency_original"].astype("string")
    converted = (written.ne(revenue["currency"].astype("string"))).fillna(False)
    return _Foreign(
        revenue["amount_original"].to_numpy(dtype="float64", na_value=np.nan),
        written.fillna("").to_numpy(dtype=object),
        converted.to_numpy(dtype=bool),
    )


def _settle_user(
    rows: npt.NDArray[np.intp],
    settlement: Settlement,
    foreign: _Foreign | None,
) -> None:
    """Walk one user's rows in time order, keeping the refunds that fit."""
    amount = settlement.amount
    net = 0.0
    paid_in: dict[object, float] = {}
    for row in rows:
        value = float(amount[row])
        own = foreign is not None and bool(foreign.converted[row])
        written = float(foreign.amount[row]) if foreign is not None and own else 0.0
        currency = foreign.currency[row] if foreign is not None and own else None
        if value >= 0:
            net += value
            if own:
                paid_in[currency] = paid_in.get(currency, 0.0) + written
            continue
        slack = -(ROUNDING_SLACK + _FLOAT_NOISE)
        fits = net + value >= slack or (
            own and paid_in.get(currency, 0.0) + written >= slack
        )
        if not fits:
            settlement.overdrawn[row] = True
            settlement.net_before[row] = net
            continue
        kept = max(value, -net)
        if kept != value:
            amount[row] = kept
            settlement.reduced[row] = True
        net += kept
        if own:
            paid_in[currency] = paid_in.get(currency, 0.0) + written


def paying_users(revenue: pd.DataFrame) -> pd.Series:
    """The ids of the rows of users whose net revenue in ``revenue`` is positive.

    A user with a payment counts unless refunds took back all of it; ids may
    repeat (one per payment), as a membership test wants them.

    Parameters
    ----------
    revenue : pandas.DataFrame
        Rows with ``user_id`` and ``amount``.

    Returns
    -------
    pandas.Series
        ``user_id`` of the payments of users whose net is above
        :data:`NET_ZERO`.
    """
    ids, amount = revenue["user_id"], revenue["amount"]
    paid = ids[amount.gt(0).to_numpy()]
    refund = amount.lt(0).to_numpy()
    if not refund.any():
        return paid
    touched = member_of(ids, ids[refund])
    nets = amount[touched].groupby(ids[touched].to_numpy()).sum()
    settled = pd.Series(nets.index[nets.to_numpy() <= NET_ZERO], dtype=ids.dtype)
    return paid[~member_of(paid, settled)]
