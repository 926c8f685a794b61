"""Baselines every pLTV model is measured against, fitted per snapshot age.

Both predict the value still to come between a snapshot and day 365 from the
same feature rows the model sees (see :mod:`models.features`).

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005a). "Counting Your
Customers" the Easy Way: An Alternative to the Pareto/NBD Model. Marketing
Science 24(2), 275-284.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005b). RFM and CLV: Using
Iso-Value Curves for Customer Base Analysis. Journal of Marketing Research
42(4), 415-430 (the Gamma-Gamma spend model, appendix).

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

from models.features import HORIZON_DAYS
from models.metrics import FloatArray

logger = logging.getLogger(__name__)

# Weeks keep the BG/NBD scale parameter near 1-100 on daily data, which the
# optimiser handles better than day units.
_DAYS_PER_UNIT = 7.0
# Below this share of repeat buyers the BG/NBD likelihood is flat in its
# dropout parameters and the fit means nothing.
_MIN_REPEAT_SHARE = 0.01


class ObservedFactorBaseline:
    """Future value = (k - 1) x revenue so far, with k fitted on training rows.

    k is the ratio of the 365-day total to the observed total, pooled over the
    training users at the same age.
    """

    def __init__(self) -> None:
        self.factor = 1.0
        self.fallback = 0.0

    def fit(self, features: pd.DataFrame, future: FloatArray) -> ObservedFactorBaseline:
        """Fit k on one age's training rows."""
        observed = features["revenue_to_date"].to_numpy()
        self.fallback = float(np.mean(future)) if future.size else 0.0
        if observed.sum() > 0:
            self.factor = float((observed.sum() + future.sum()) / observed.sum())
        return self

    def predict(self, features: pd.DataFrame) -> FloatArray:
        """Predicted value still to come until day 365."""
        observed = features["revenue_to_date"].to_numpy(dtype="float64")
        if self.factor == 1.0 and self.fallback:
            return np.full(observed.size, self.fallback)
        return np.asarray((self.factor - 1.0) * observed, dtype="float64")


@dataclass(frozen=True)
class _Rfm:
    x: FloatArray  # repeat purchase days
    t_x: FloatArray  # time of the last purchase since the first
    big_t: FloatArray  # time observed since the first purchase
    horizon: FloatArray  # time left until day 365
    spend: FloatArray  # mean spend per purchase day, first purchase included
    buyer: npt.NDArray[np.bool_]  # at least one purchase by the snapshot


def _rfm(features: pd.DataFrame) -> _Rfm:
    first = features["first_purchase_day"].to_numpy(dtype="float64")
    last = features["last_purchase_day"].to_numpy(dtype="float64")
    cutoff = features["age_days"].to_numpy(dtype="float64")
    days = features["purchase_days_to_date"].to_numpy(dtype="float64")
    buyer = days > 0
    first = np.where(buyer, first, 0.0)
    last = np.where(buyer, last, 0.0)
    revenue = features["revenue_to_date"].to_numpy(dtype="float64")
    return _Rfm(
        x=np.maximum(days - 1.0, 0.0),
        t_x=(last - first) / _DAYS_PER_UNIT,
        big_t=(cutoff - first) / _DAYS_PER_UNIT,
        horizon=np.maximum(HORIZON_DAYS - 1 - cutoff, 0.0) / _DAYS_PER_UNIT,
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


class BGNBDGammaGammaBaseline:
    """BG/NBD purchase counts times Gamma-Gamma spend, first purchase included.

    Fitted by maximum likelihood on the training rows of one age. When too few
    training users have repeated (see ``_MIN_REPEAT_SHARE``) or a fit fails,
    every user gets the training mean future value and a warning is logged.
    """

    def __init__(self) -> None:
        self.bgnbd: tuple[float, float, float, float] | None = None
        self.gamma_gamma: tuple[float, float, float] | None = None
        self.fallback = 0.0

    def fit(
        self, features: pd.DataFrame, future: FloatArray
    ) -> BGNBDGammaGammaBaseline:
        """Fit both sub-models on one age's training rows."""
        self.fallback = float(np.mean(future)) if future.size else 0.0
        rfm = _rfm(features)
        buyers = rfm.buyer
        if buyers.sum() == 0 or (rfm.x[buyers] > 0).mean() < _MIN_REPEAT_SHARE:
            logger.warning(
                "BG/NBD: too few repeat buyers at age %s; mean fallback",
                features["age_days"].iloc[0] if len(features) else "?",
            )
            return self
        self.bgnbd = self._fit_bgnbd(rfm)
        self.gamma_gamma = self._fit_gamma_gamma(rfm)
        return self

    @staticmethod
    def _fit_bgnbd(rfm: _Rfm) -> tuple[float, float, float, float] | None:
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
            logger.warning("BG/NBD: fit unusable (%s); mean fallback", params)
            return None
        r, alpha, a, b = (float(v) for v in params)
        return r, alpha, a, b

    @staticmethod
    def _fit_gamma_gamma(rfm: _Rfm) -> tuple[float, float, float] | None:
        keep = rfm.buyer & (rfm.spend > 0)
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
            logger.warning("Gamma-Gamma: fit unusable (q=%s); mean fallback", q)
            return None
        return p, q, gamma

    def predict(self, features: pd.DataFrame) -> FloatArray:
        """Predicted value still to come until day 365."""
        if self.bgnbd is None or self.gamma_gamma is None:
            return np.full(len(features), self.fallback)
        rfm = _rfm(features)
        r, alpha, a, b = self.bgnbd
        x, t_x, big_t, t = rfm.x, rfm.t_x, rfm.big_t, rfm.horizon
        z = t / (alpha + big_t + t)
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        head = (a + b + x - 1.0) / (a - 1.0)
        body = 1.0 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp
        alive = 1.0 + (x > 0) * (a / (b + x - 1.0)) * (
            (alpha + big_t) / (alpha + t_x)
        ) ** (r + x)
        purchases = head * body / alive

        p, q, gamma = self.gamma_gamma
        n = x + 1.0
        spend = (p * (gamma + n * rfm.spend)) / (p * n + q - 1.0)
        value = np.where(rfm.buyer, purchases * spend, 0.0)
        return np.asarray(np.nan_to_num(value, nan=self.fallback), dtype="float64")
