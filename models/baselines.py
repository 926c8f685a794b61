"""Baselines every pLTV model is measured against, fitted per snapshot age.

Both predict the value still to come between a snapshot and day 365 from the
same feature rows the model sees (see :mod:`models.features`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from models.bgnbd import (
    BGNBDParams,
    GammaGammaParams,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    rfm_from_features,
)
from models.features import HORIZON_DAYS
from models.metrics import FloatArray

logger = logging.getLogger(__name__)


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
        self.fallback = max(float(np.mean(future)), 0.0) if future.size else 0.0
        if observed.sum() > 0:
            self.factor = float((observed.sum() + future.sum()) / observed.sum())
        return self

    def predict(self, features: pd.DataFrame) -> FloatArray:
        """Predicted value still to come until day 365."""
        observed = features["revenue_to_date"].to_numpy(dtype="float64")
        if self.factor == 1.0 and self.fallback:
            return np.full(observed.size, self.fallback)
        # Refunds after the snapshot can make the pooled factor fall below 1;
        # value still to come is never negative, as for the model itself.
        return np.clip((self.factor - 1.0) * observed, 0.0, None)


class BGNBDGammaGammaBaseline:
    """BG/NBD purchase counts times Gamma-Gamma spend, first purchase included.

    Fitted by maximum likelihood on the training rows of one age (see
    :mod:`models.bgnbd`). When too few training users have repeated or a fit
    fails, every user gets the training mean future value and a warning is
    logged.
    """

    def __init__(self) -> None:
        self.bgnbd: BGNBDParams | None = None
        self.gamma_gamma: GammaGammaParams | None = None
        self.fallback = 0.0

    def fit(
        self, features: pd.DataFrame, future: FloatArray
    ) -> BGNBDGammaGammaBaseline:
        """Fit both sub-models on one age's training rows."""
        self.fallback = max(float(np.mean(future)), 0.0) if future.size else 0.0
        rfm = rfm_from_features(features, HORIZON_DAYS)
        self.bgnbd = fit_bgnbd(rfm)
        self.gamma_gamma = fit_gamma_gamma(rfm)
        if self.bgnbd is None or self.gamma_gamma is None:
            logger.warning(
                "BG/NBD baseline: no usable fit at age %s; mean fallback",
                features["age_days"].iloc[0] if len(features) else "?",
            )
        return self

    def predict(self, features: pd.DataFrame) -> FloatArray:
        """Predicted value still to come until day 365."""
        if self.bgnbd is None or self.gamma_gamma is None:
            return np.full(len(features), self.fallback)
        rfm = rfm_from_features(features, HORIZON_DAYS)
        value = expected_purchases(self.bgnbd, rfm) * expected_spend(
            self.gamma_gamma, rfm
        )
        return np.asarray(np.nan_to_num(value, nan=self.fallback), dtype="float64")
