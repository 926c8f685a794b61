"""The scikit-learn regressor behind the pLTV model.

It predicts the value still to come between a snapshot and day 365, a target
that is zero for most users and heavy-tailed for the rest. Two shapes suit
it: a single gradient-boosted model with a Poisson loss (log link, so the
fitted total matches the training total), and a hurdle model (probability of
any further revenue times a Gamma-loss amount for those who pay).

A third shape, ``"relative"``, keeps the Poisson loss but makes the revenue
observed so far an exposure: the trees learn the multiplier of
``revenue_to_date + prior`` (a Poisson model with a log offset is the same as
one fitted on ``future / exposure`` with ``exposure`` as sample weight). Trees
alone give piecewise-constant predictions; the exposure keeps the ranking
continuous in observed spend, which dominates early value (Fader, Hardie and
Lee 2005b, the monetary part of RFM).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from models.metrics import FloatArray

logger = logging.getLogger(__name__)

Loss = Literal["poisson", "hurdle", "relative"]
LOSSES: tuple[Loss, ...] = ("poisson", "hurdle", "relative")
#: ``"auto"`` picks one of :data:`AUTO_LOSSES` on an inner time split (see
#: :func:`models.evaluation.choose_loss`).
LossOption = Literal["auto", "poisson", "hurdle", "relative"]
LOSS_OPTIONS: tuple[LossOption, ...] = ("auto", *LOSSES)
AUTO_LOSSES: tuple[Loss, ...] = ("relative", "poisson")


def _booster_args(random_state: int, categorical_mask: list[bool]) -> dict[str, object]:
    # Conservative settings: many small leaves overfit the few big spenders
    # that dominate revenue. Compared on an inner time split of the CDNOW
    # training cohorts only (never its holdout), seven leaves ranked best at
    # ages 7 to 90; 15 or 31 leaves, 100 or 400 users a leaf, 150 or 500
    # rounds and a stronger L2 did not do better.
    return {
        "learning_rate": 0.05,
        "max_iter": 250,
        "max_leaf_nodes": 7,
        "min_samples_leaf": 200,
        "l2_regularization": 1.0,
        "categorical_features": categorical_mask,
        "early_stopping": False,
        "random_state": random_state,
    }


def _fill_empty_columns(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` with every all-missing column set to zero.

    The boosters cannot bin a column without one value (an event only later
    users have, an empty extra column of the users table). As a constant it
    is never split on, so any value it takes when scoring is ignored.
    """
    empty = [c for c in features.columns if features[c].isna().all()]
    if not empty:
        return features
    logger.info("no training value in %s: not used", ", ".join(map(str, empty)))
    return features.assign(**{str(c): 0.0 for c in empty})


class FutureValueRegressor:
    """Predicts non-negative future value from snapshot features.

    Parameters
    ----------
    loss : {"poisson", "hurdle", "relative"}
        Shape of the model (see the module docstring).
    random_state : int
        Seed of the boosters.
    """

    def __init__(self, loss: Loss = "poisson", random_state: int = 0) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.loss: Loss = loss
        self.random_state = random_state
        self._amount: HistGradientBoostingRegressor | None = None
        self._payer: HistGradientBoostingClassifier | None = None
        self.prior = 0.0

    def fit(
        self, features: pd.DataFrame, future: FloatArray, categorical_mask: list[bool]
    ) -> FutureValueRegressor:
        """Fit on snapshot features and the value that followed each snapshot."""
        target = np.clip(np.asarray(future, dtype="float64"), 0.0, None)
        features = _fill_empty_columns(features)
        args = _booster_args(self.random_state, categorical_mask)
        if self.loss == "poisson":
            self._amount = HistGradientBoostingRegressor(loss="poisson", **args)
            self._amount.fit(features, target)
            return self
        if self.loss == "relative":
            observed = features["revenue_to_date"].to_numpy(dtype="float64")
            paid = observed[observed > 0]
            self.prior = float(np.median(paid)) if paid.size else 1.0
            exposure = self._exposure(features)
            self._amount = HistGradientBoostingRegressor(loss="poisson", **args)
            self._amount.fit(features, target / exposure, sample_weight=exposure)
            return self

        paying = target > 0
        self._payer = HistGradientBoostingClassifier(**args)
        self._payer.fit(features, paying)
        self._amount = HistGradientBoostingRegressor(loss="gamma", **args)
        self._amount.fit(_fill_empty_columns(features.loc[paying]), target[paying])
        return self

    def _exposure(self, features: pd.DataFrame) -> FloatArray:
        observed = features["revenue_to_date"].to_numpy(dtype="float64")
        exposure: FloatArray = np.clip(observed, 0.0, None) + self.prior
        return exposure

    def predict(self, features: pd.DataFrame) -> FloatArray:
        """Expected value still to come (never negative)."""
        if self._amount is None:
            raise RuntimeError("FutureValueRegressor is not fitted")
        amount = np.asarray(self._amount.predict(features), dtype="float64")
        if self.loss == "relative":
            amount = amount * self._exposure(features)
        if self._payer is not None:
            amount = amount * self._payer.predict_proba(features)[:, 1]
        clipped: FloatArray = np.clip(amount, 0.0, None)
        return clipped
