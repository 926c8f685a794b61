import numpy as np
import pandas as pd
import pytest

from models.baselines import BGNBDGammaGammaBaseline, ObservedFactorBaseline


def _rows(n: int, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    days = 1 + rng.poisson(rng.gamma(0.5, 2.0, n))
    last = np.where(days > 1, rng.integers(1, 31, n), 0)
    revenue = days * rng.gamma(4.0, 10.0, n)
    features = pd.DataFrame(
        {
            "age_days": 30.0,
            "purchase_days_to_date": days.astype(float),
            "first_purchase_day": 0.0,
            "last_purchase_day": last.astype(float),
            "revenue_to_date": revenue,
        }
    )
    future = revenue * rng.gamma(1.0, 1.0, n)
    return features, future


def test_observed_factor_matches_the_training_total() -> None:
    features, future = _rows(500)
    baseline = ObservedFactorBaseline().fit(features, future)
    assert baseline.predict(features).sum() == pytest.approx(future.sum())


def test_bgnbd_ranks_frequent_buyers_higher() -> None:
    features, future = _rows(2000)
    baseline = BGNBDGammaGammaBaseline().fit(features, future)
    assert baseline.bgnbd is not None
    predicted = baseline.predict(features)
    assert np.isfinite(predicted).all() and (predicted >= 0).all()
    frequent = features["purchase_days_to_date"] >= 3
    assert predicted[frequent].mean() > predicted[~frequent].mean()


def test_bgnbd_without_repeat_buyers_falls_back_to_the_mean() -> None:
    features, future = _rows(200)
    features["purchase_days_to_date"] = 1.0
    baseline = BGNBDGammaGammaBaseline().fit(features, future)
    assert np.allclose(baseline.predict(features), future.mean())
