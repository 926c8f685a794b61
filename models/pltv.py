"""Predicted lifetime value per user at 365, 1095 and 1825 days."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from models.exceptions import ModelLoadError, ScoringError, TrainingError

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FEATURES = (
    "age_days",
    "revenue_so_far",
    "purchases_so_far",
    "first_day_revenue",
    "days_since_last",
)
TRAINING_AGES = (0, 7, 30, 90)
MIN_TRAINING_USERS = 200


def snapshot_features(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Series
) -> pd.DataFrame:
    """Features of each user as known at its own ``as_of`` time (no later data)."""
    signup = users.set_index("user_id")["signup_at"]
    cutoff = as_of.reindex(signup.index)
    rev = revenue[["user_id", "occurred_at", "amount"]].copy()
    rev["signup_at"] = rev["user_id"].map(signup)
    rev["cutoff"] = rev["user_id"].map(cutoff)
    known = rev[rev["occurred_at"] <= rev["cutoff"]]
    first_day = known[known["occurred_at"] < known["signup_at"] + pd.Timedelta(days=1)]
    grouped = known.groupby("user_id")
    out = pd.DataFrame(index=signup.index)
    out["age_days"] = (cutoff - signup).dt.total_seconds() / 86400.0
    out["revenue_so_far"] = grouped["amount"].sum().reindex(out.index, fill_value=0.0)
    out["purchases_so_far"] = (
        grouped["amount"].size().reindex(out.index, fill_value=0).astype(float)
    )
    out["first_day_revenue"] = (
        first_day.groupby("user_id")["amount"].sum().reindex(out.index, fill_value=0.0)
    )
    last = grouped["occurred_at"].max().reindex(out.index)
    out["days_since_last"] = ((cutoff - last).dt.total_seconds() / 86400.0).fillna(
        out["age_days"]
    )
    return out.astype(float)


def _value_by(users: pd.DataFrame, revenue: pd.DataFrame, days: int) -> pd.Series:
    signup = users.set_index("user_id")["signup_at"]
    rev = revenue[["user_id", "occurred_at", "amount"]]
    limit = rev["user_id"].map(signup) + pd.Timedelta(days=days)
    inside = rev[rev["occurred_at"] < limit]
    return inside.groupby("user_id")["amount"].sum().reindex(signup.index, fill_value=0)


class PLTVModel:
    """Gradient-boosted Poisson model of revenue within 365 days of sign-up.

    Trained on snapshots of each labelled user at several ages, so one model
    scores users of any age. Longer horizons scale the 1-year value by a
    year-over-year retention of value measured on the training cohorts.
    """

    def __init__(self) -> None:
        self.version = ""
        self.metrics: dict[str, float] = {}
        self.retention = 0.0
        self._estimator: HistGradientBoostingRegressor | None = None

    def fit(
        self,
        users: pd.DataFrame,
        revenue: pd.DataFrame,
        as_of: pd.Timestamp,
        events: pd.DataFrame | None = None,
    ) -> PLTVModel:
        """Fit on the users whose first 365 days are complete by ``as_of``."""
        labelled = users[users["signup_at"] <= as_of - pd.Timedelta(days=365)]
        if len(labelled) < MIN_TRAINING_USERS:
            raise TrainingError(
                f"only {len(labelled)} users signed up at least 365 days before "
                f"{as_of.date()}; at least {MIN_TRAINING_USERS} are needed to train"
            )
        label = _value_by(labelled, revenue, 365)
        frames, targets = [], []
        for age in TRAINING_AGES:
            cut = labelled.set_index("user_id")["signup_at"] + pd.Timedelta(days=age)
            feats = snapshot_features(labelled, revenue, cut)
            frames.append(feats)
            targets.append(label.reindex(feats.index))
        x = pd.concat(frames)[list(FEATURES)].to_numpy()
        y = pd.concat(targets).to_numpy(dtype=float)
        self._estimator = HistGradientBoostingRegressor(
            loss="poisson", max_iter=200, learning_rate=0.05, random_state=0
        ).fit(x, y)
        self.retention = _year_over_year(labelled, revenue, as_of)
        digest = hashlib.sha256(
            pd.util.hash_pandas_object(label).to_numpy().tobytes()
        ).hexdigest()
        self.version = f"pltv-{as_of:%Y%m%d}-{digest[:10]}"
        logger.info(
            "model %s trained on %d users, retention %.3f",
            self.version,
            len(labelled),
            self.retention,
        )
        return self

    def predict(
        self,
        users: pd.DataFrame,
        revenue: pd.DataFrame,
        as_of: pd.Timestamp,
        events: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Value at 365, 1095 and 1825 days of every user signed up by ``as_of``."""
        if self._estimator is None:
            raise ScoringError("the model is not trained")
        scored = users[users["signup_at"] <= as_of]
        if scored.empty:
            raise ScoringError(f"no user signed up on or before {as_of}")
        cut = pd.Series(as_of, index=scored["user_id"].to_numpy())
        feats = snapshot_features(scored, revenue, cut)
        capped = feats.assign(age_days=feats["age_days"].clip(upper=365))
        future = self._estimator.predict(capped[list(FEATURES)].to_numpy())
        observed_365 = _value_by(scored, revenue, 365).reindex(feats.index)
        observed = np.minimum(feats["revenue_so_far"], observed_365)
        pltv_365 = np.where(
            feats["age_days"] >= 365, observed, np.maximum(future, observed)
        )
        r = self.retention
        return pd.DataFrame(
            {
                "user_id": feats.index.astype("string"),
                "age_days": feats["age_days"].to_numpy(),
                "pltv_365": pltv_365,
                "pltv_1095": pltv_365 * (1 + r + r**2),
                "pltv_1825": pltv_365 * (1 + r + r**2 + r**3 + r**4),
            }
        ).reset_index(drop=True)

    def passes_gate(self, current: PLTVModel | None) -> bool:
        """Whether this model may replace ``current``."""
        return self._estimator is not None

    def save(self, directory: Path) -> Path:
        """Write the artefact and its metadata under ``directory/version``."""
        target = directory / self.version
        target.mkdir(parents=True, exist_ok=True)
        with (target / "model.pkl").open("wb") as handle:
            pickle.dump(self, handle)
        meta: dict[str, Any] = {
            "version": self.version,
            "schema": SCHEMA_VERSION,
            "features": list(FEATURES),
            "sklearn": sklearn.__version__,
            "metrics": self.metrics,
        }
        (target / "metadata.json").write_text(json.dumps(meta, indent=2))
        return target

    @classmethod
    def load(cls, directory: Path) -> PLTVModel:
        """Read an artefact written by :meth:`save`."""
        try:
            meta = json.loads((directory / "metadata.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{directory}: no readable model metadata") from exc
        if (
            meta.get("schema") != SCHEMA_VERSION
            or meta.get("sklearn") != sklearn.__version__
        ):
            raise ModelLoadError(
                f"{directory}: model written for schema {meta.get('schema')} with "
                f"scikit-learn {meta.get('sklearn')}; this is schema "
                f"{SCHEMA_VERSION} with {sklearn.__version__}. Retrain it."
            )
        with (directory / "model.pkl").open("rb") as handle:
            model = pickle.load(handle)
        if not isinstance(model, cls):
            raise ModelLoadError(f"{directory}: the artefact is not a pLTV model")
        return model


def _year_over_year(
    users: pd.DataFrame, revenue: pd.DataFrame, as_of: pd.Timestamp
) -> float:
    """Value in the second half-year over the first, excluding day one; in [0, 1]."""
    signup = revenue["user_id"].map(users.set_index("user_id")["signup_at"])
    days = (revenue["occurred_at"] - signup).dt.days
    first_half = revenue["amount"][(days >= 1) & (days < 182)].sum()
    second_half = revenue["amount"][(days >= 182) & (days < 365)].sum()
    if first_half <= 0:
        return 0.0
    return float(np.clip(second_half / first_half, 0.0, 1.0))
