"""Per-segment LTV curves: how value at 365 days grows to 3 and 5 years.

For each month m since sign-up, the mean revenue per user in that month is
measured on the users old enough to have lived it, net of the refunds made in
that month (so a month's increment can be negative). Months no cohort has
reached yet are extrapolated with a power-law decay of the monthly increments,
``inc(m) = c * m ** -beta`` fitted on the realised months after the first
(the first month holds the sign-up purchase and follows its own law) whose
increment is positive. The band comes from a bootstrap over users.

References
----------
Fader, P. S., Hardie, B. G. S. and Shang, J. (2010). Customer-Base Analysis in
a Discrete-Time Noncontractual Setting. Marketing Science 29(6) (decaying
repeat-purchase curves of a cohort).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.exceptions import ScoringError
from models.frames import elapsed_days, prepare_revenue, prepare_users
from models.metrics import FloatArray

logger = logging.getLogger(__name__)

ALL_SEGMENTS = "__all__"
MONTH_DAYS = 365.0 / 12.0
MAX_MONTHS = 60
# Fewer users than this make a segment's curve too noisy to beat the pooled one.
MIN_SEGMENT_USERS = 200
# A month counts as realised once this many users have lived through it.
MIN_MONTH_SUPPORT = 50
_BOOTSTRAP = 100
_BAND = (10.0, 90.0)


@dataclass(frozen=True)
class HorizonRatio:
    """Value at a horizon over value at 365 days, with a bootstrap band.

    Attributes
    ----------
    segment : str
        Segment the curve was fitted on (``"__all__"`` for the pooled curve).
    days : float
        Horizon since sign-up.
    ratio, low, high : float
        Point estimate and 10th-90th percentile band.
    realized : bool
        True when cohorts have lived the whole horizon; False when extrapolated.
    """

    segment: str
    days: float
    ratio: float
    low: float
    high: float
    realized: bool


@dataclass(frozen=True)
class SegmentCurve:
    """Cumulative mean value per user at each month end, point and bootstrap."""

    segment: str
    n_users: int
    realized_months: int
    cumulative: tuple[float, ...]
    samples: tuple[tuple[float, ...], ...]

    def value_at(self, days: float) -> tuple[float, FloatArray]:
        """Point and bootstrap cumulative value at ``days`` since sign-up."""
        months = np.arange(0, MAX_MONTHS + 1) * MONTH_DAYS
        point = np.concatenate(([0.0], self.cumulative))
        draws = np.column_stack((np.zeros(len(self.samples)), np.array(self.samples)))
        at = min(max(days, 0.0), months[-1])
        sampled = np.array([np.interp(at, months, row) for row in draws])
        return float(np.interp(at, months, point)), sampled


@dataclass(frozen=True)
class LTVCurves:
    """LTV curves per segment, with the pooled curve as fallback.

    Attributes
    ----------
    as_of : pandas.Timestamp
        Last date of the revenue the curves saw.
    curves : dict of str to SegmentCurve
        One per segment with enough users, plus ``"__all__"``.
    """

    as_of: pd.Timestamp
    curves: dict[str, SegmentCurve]

    def curve(self, segment: str) -> SegmentCurve:
        """The segment's curve, or the pooled one for small or unseen segments."""
        return self.curves.get(segment, self.curves[ALL_SEGMENTS])

    def horizon_ratio(self, segment: str, days: float) -> HorizonRatio:
        """Value at ``days`` over value at 365 days for ``segment``.

        Parameters
        ----------
        segment : str
            Segment name; unknown segments use the pooled curve.
        days : float
            Horizon since sign-up (1095 and 1825 for 3 and 5 years).

        Returns
        -------
        HorizonRatio
        """
        curve = self.curve(segment)
        year, year_draws = curve.value_at(365.0)
        value, draws = curve.value_at(days)
        ratio = value / year if year > 0 else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            sampled = np.where(year_draws > 0, draws / year_draws, 1.0)
        low, high = np.percentile(sampled, _BAND)
        return HorizonRatio(
            segment=curve.segment,
            days=float(days),
            ratio=float(ratio),
            low=float(min(low, ratio)),
            high=float(max(high, ratio)),
            realized=days <= curve.realized_months * MONTH_DAYS + 1e-9,
        )

    def share_by_month(self, segment: str, months: float) -> float:
        """Share of the 365-day value earned in the first ``months`` months."""
        return self.horizon_ratio(segment, months * MONTH_DAYS).ratio


def _monthly_matrix(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Timestamp
) -> tuple[FloatArray, FloatArray]:
    """Revenue per user and month, and which user-months are fully observed."""
    position = pd.Series(np.arange(len(users)), index=users["user_id"].to_numpy())
    month = np.floor(revenue["days"].to_numpy() / MONTH_DAYS).astype("int64")
    keep = month < MAX_MONTHS
    amounts = np.zeros((len(users), MAX_MONTHS))
    rows = position.loc[revenue["user_id"].to_numpy()[keep]].to_numpy()
    np.add.at(amounts, (rows, month[keep]), revenue["amount"].to_numpy()[keep])
    age = elapsed_days(as_of - users["signup_at"]).to_numpy()
    ends = (np.arange(MAX_MONTHS) + 1) * MONTH_DAYS
    observed = (age[:, None] >= ends[None, :]).astype("float64")
    return amounts * observed, observed


def _extrapolate(
    increments: FloatArray, support: FloatArray, realized: int
) -> FloatArray:
    """Fill unrealised months with a power-law decay fitted on months 2..realized."""
    out = increments.copy()
    if realized >= MAX_MONTHS:
        return out
    months = np.arange(1, MAX_MONTHS + 1, dtype="float64")
    fit = np.arange(1, realized)
    fit = fit[increments[fit] > 0]
    if fit.size < 3:
        out[realized:] = 0.0
        return out
    slope, intercept = np.polyfit(
        np.log(months[fit]), np.log(increments[fit]), 1, w=np.sqrt(support[fit])
    )
    # Increments that grow with age (expansion revenue) are held flat rather
    # than extrapolated upward: five years of compounding on a year of data
    # would promise value no cohort has shown.
    slope = min(slope, 0.0)
    out[realized:] = np.exp(intercept) * months[realized:] ** slope
    return out


def _segment_curve(
    name: str, amounts: FloatArray, observed: FloatArray, seed: int
) -> SegmentCurve:
    support = observed.sum(axis=0)
    realized = int((support >= MIN_MONTH_SUPPORT).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        increments = np.where(support > 0, amounts.sum(axis=0) / support, 0.0)
    cumulative = np.cumsum(_extrapolate(increments, support, realized))

    # TODO: the band only covers sampling noise; on extrapolated months the
    # choice of decay law (power vs exponential) moves the 5-year ratio more
    # than resampling does, so the band understates the real uncertainty there.
    rng = np.random.default_rng(seed)
    n = amounts.shape[0]
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=_BOOTSTRAP).astype("float64")
    boot_amounts = weights @ amounts
    boot_support = weights @ observed
    samples = []
    for total, count in zip(boot_amounts, boot_support, strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = np.where(count > 0, total / count, 0.0)
        samples.append(tuple(np.cumsum(_extrapolate(inc, count, realized)).tolist()))
    return SegmentCurve(
        segment=name,
        n_users=n,
        realized_months=realized,
        cumulative=tuple(cumulative.tolist()),
        samples=tuple(samples),
    )


def ltv_curve(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Timestamp, seed: int = 0
) -> LTVCurves:
    """Fit LTV curves per segment on everything known by ``as_of``.

    Parameters
    ----------
    users, revenue : pandas.DataFrame
        Canonical users and revenue tables.
    as_of : pandas.Timestamp
        Tz-aware cut-off; later sign-ups and revenue are ignored.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    LTVCurves

    Raises
    ------
    ScoringError
        No user signed up by ``as_of``.
    """
    prepared = prepare_users(users)
    prepared = prepared.loc[prepared["signup_at"] <= as_of].reset_index(drop=True)
    if prepared.empty:
        raise ScoringError(f"no user signed up by {as_of}: no LTV curve to fit")
    money = prepare_revenue(revenue, prepared)
    money = money.loc[money["occurred_at"] <= as_of]
    return curves_from_prepared(prepared, money, as_of, seed)


def curves_from_prepared(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Timestamp, seed: int = 0
) -> LTVCurves:
    """:func:`ltv_curve` on tables already checked by :mod:`models.frames`."""
    amounts, observed = _monthly_matrix(users, revenue, as_of)
    curves = {ALL_SEGMENTS: _segment_curve(ALL_SEGMENTS, amounts, observed, seed)}
    for segment, index in users.groupby("segment").indices.items():
        if len(index) >= MIN_SEGMENT_USERS:
            curves[str(segment)] = _segment_curve(
                str(segment), amounts[index], observed[index], seed
            )
    pooled = curves[ALL_SEGMENTS]
    if pooled.realized_months < 12:
        logger.warning(
            "LTV curves: only %d month(s) realised; the 365-day value is extrapolated",
            pooled.realized_months,
        )
    return LTVCurves(as_of=as_of, curves=curves)
