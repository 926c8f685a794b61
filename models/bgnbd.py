"""BG/NBD and Gamma-Gamma: purchase counts and spend of non-contractual customers.

Used both as a baseline (:mod:`models.baselines`) and, with parameters fitted
on the training users, as smooth features of the pLTV model.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005a). "Counting Your
Customers" the Easy Way: An Alternative to the Pareto/NBD Model. Marketing
Science 24(2), 275-284.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005b). RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis. Journal of Marketing Research
42(4), 415-430.

Fader, P. S. and Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary
Value. http://www.brucehardie.com/notes/025/
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special

from models.metrics import FloatArray

logger = logging.getLogger(__name__)

# Weeks keep the BG/NBD scale parameter near 1-100 on daily data, which the
# optimiser handles better than day units.
_DAYS_PER_UNIT = 7.0
# Below this share of repeat buyers the BG/NBD likelihood is flat in its
# dropout parameters and the fit means nothing.
MIN_REPEAT_SHARE = 0.01

# Share of buyers whose expectation a usable fit must compute.
MIN_FINITE_SHARE = 0.99

BGNBDParams = tuple[float, float, float, float]
GammaGammaParams = tuple[float, float, float]


@dataclass(frozen=True)
class Rfm:
    x: FloatArray  # repeat purchase days (payments; a refund is no purchase)
    t_x: FloatArray  # time of the last purchase since the first
    big_t: FloatArray  # time observed since the first purchase
    horizon: FloatArray  # time left until day 365
    spend: FloatArray  # mean net spend per purchase day, first purchase included
    buyer: npt.NDArray[np.bool_]  # at least one purchase by the snapshot


def rfm_from_features(features: pd.DataFrame, horizon_days: float) -> Rfm:
    """Recency, frequency, spend and time left until ``horizon_days``."""
    first = features["first_purchase_day"].to_numpy(dtype="float64")
    last = features["last_purchase_day"].to_numpy(dtype="float64")
    cutoff = features["age_days"].to_numpy(dtype="float64")
    days = features["purchase_days_to_date"].to_numpy(dtype="float64")
    buyer = days > 0
    first = np.where(buyer, first, 0.0)
    last = np.where(buyer, last, 0.0)
    # Net of refunds, so never below zero but for the noise of float sums.
    revenue = np.maximum(features["revenue_to_date"].to_numpy(dtype="float64"), 0.0)
    return Rfm(
        x=np.maximum(days - 1.0, 0.0),
        t_x=(last - first) / _DAYS_PER_UNIT,
        big_t=(cutoff - first) / _DAYS_PER_UNIT,
        horizon=np.maximum(horizon_days - 1.0 - cutoff, 0.0) / _DAYS_PER_UNIT,
        spend=np.where(buyer, revenue / np.maximum(days, 1.0), 0.0),
        buyer=buyer,
    )


def _bgnbd_loglik(
    params: FloatArray,
    x: FloatArray,
    t_x: FloatArray,
    big_t: FloatArray,
    weight: FloatArray,
) -> float:
    r, alpha, a, b = np.exp(params)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    a4 = np.full_like(x, -np.inf)
    a4[repeat] = (
        np.log(a)
        - np.log(b + x[repeat] - 1.0)
        - (r + x[repeat]) * np.log(alpha + t_x[repeat])
    )
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return float(-(weight * ll).sum() / weight.sum())


def _gg_loglik(params: FloatArray, n: FloatArray, m: FloatArray) -> float:
    p, q, gamma = np.exp(params)
    ll = (
        special.gammaln(p * n + q)
        - special.gammaln(p * n)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (p * n - 1.0) * np.log(m)
        + p * n * np.log(n)
        - (p * n + q) * np.log(gamma + n * m)
    )
    return float(-ll.mean())


def fit_bgnbd(rfm: Rfm) -> BGNBDParams | None:
    """Maximum-likelihood (r, alpha, a, b) on buyers; None if unusable."""
    if rfm.buyer.sum() == 0 or (rfm.x[rfm.buyer] > 0).mean() < MIN_REPEAT_SHARE:
        return None
    keys = pd.DataFrame({"x": rfm.x, "t_x": rfm.t_x, "T": rfm.big_t})[rfm.buyer]
    grouped = keys.value_counts().reset_index()
    x, t_x, big_t, weight = (
        grouped[c].to_numpy(dtype="float64") for c in ("x", "t_x", "T", "count")
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = optimize.minimize(
            _bgnbd_loglik,
            np.log([0.5, 5.0, 0.8, 2.5]),
            args=(x, t_x, big_t, weight),
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9},
        )
    params = np.exp(result.x)
    if not np.all(np.isfinite(params)):
        logger.warning("BG/NBD: fit unusable (%s)", params)
        return None
    r, alpha, a, b = (float(v) for v in params)
    fitted = (r, alpha, a, b)
    # Without heterogeneity (every buyer alike) the likelihood runs off to
    # r, alpha -> infinity, where the expectation's hypergeometric term
    # overflows for most buyers: such a fit predicts nothing. A few buyers
    # out of range score as missing, which the boosters handle.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = np.isfinite(expected_purchases(fitted, rfm)[rfm.buyer])
    if finite.mean() < MIN_FINITE_SHARE:
        # Routine at the earliest ages, where few buyers have repeated: the
        # features and baselines fall back to means there.
        logger.info(
            "BG/NBD: fit unusable, its expected purchases overflow (%s)", params
        )
        return None
    return fitted


def fit_gamma_gamma(rfm: Rfm) -> GammaGammaParams | None:
    """Maximum-likelihood (p, q, gamma), first purchase included; None if unusable."""
    keep = rfm.buyer & (rfm.spend > 0)
    if keep.sum() < 2:
        return None
    n = rfm.x[keep] + 1.0
    m = rfm.spend[keep]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = optimize.minimize(
            _gg_loglik,
            np.log([2.0, 3.0, float(np.mean(m))]),
            args=(n, m),
            method="Nelder-Mead",
            options={"maxiter": 4000},
        )
    p, q, gamma = (float(v) for v in np.exp(result.x))
    if not np.isfinite([p, q, gamma]).all() or q <= 1.0:
        logger.warning("Gamma-Gamma: fit unusable (q=%s)", q)
        return None
    return p, q, gamma


def expected_purchases(params: BGNBDParams, rfm: Rfm) -> FloatArray:
    """Expected purchase days in the horizon, given each user's history."""
    r, alpha, a, b = params
    x, big_t, t = rfm.x, rfm.big_t, rfm.horizon
    with np.errstate(all="ignore"):
        z = t / (alpha + big_t + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        head = (a + b + x - 1.0) / (a - 1.0)
        body = 1.0 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp
        purchases = head * body / _alive_odds(params, rfm)
    return np.asarray(np.where(rfm.buyer, purchases, 0.0), dtype="float64")


def _alive_odds(params: BGNBDParams, rfm: Rfm) -> FloatArray:
    r, alpha, a, b = params
    ratio = (alpha + rfm.big_t) / (alpha + rfm.t_x)
    odds = 1.0 + (rfm.x > 0) * (a / (b + rfm.x - 1.0)) * ratio ** (r + rfm.x)
    return np.asarray(odds, dtype="float64")


def probability_alive(params: BGNBDParams, rfm: Rfm) -> FloatArray:
    """Probability that each buyer has not dropped out by the snapshot."""
    with np.errstate(all="ignore"):
        alive = 1.0 / _alive_odds(params, rfm)
    return np.asarray(np.where(rfm.buyer, alive, 0.0), dtype="float64")


def expected_spend(params: GammaGammaParams, rfm: Rfm) -> FloatArray:
    """Expected spend per purchase day, shrunk toward the population mean."""
    p, q, gamma = params
    n = rfm.x + 1.0
    spend = (p * (gamma + n * rfm.spend)) / (p * n + q - 1.0)
    return np.asarray(np.where(rfm.buyer, spend, 0.0), dtype="float64")
