"""Ranking and calibration metrics for predicted customer value.

Tied predictions are scored as if their order were random: within a group of
equal predictions every user counts with the group's mean actual value. A
constant prediction therefore gets a Gini of zero instead of whatever order
the rows happened to arrive in.

Two metrics suit value that is zero for most users better than their usual
forms:

- ``payer_spearman`` ranks only the users with value to come. Over all users,
  Spearman rewards tying every zero: a rule that predicts exactly zero for
  everyone who has not paid yet scores 0.93 on a subscription holdout where
  77 % of users never pay, and a model that ranks those users by their
  chance to convert scores 0.7 with a better Gini and top-decile capture.
- ``decile_wape`` weighs each decile's error by its dollars. Decile MAPE
  counts a decile whose users are expected to bring $0.70 each like one
  whose users bring $1,600, so errors of cents on the unpaid deciles outweigh
  the deciles that hold the money. The quality gate uses it
  (:mod:`models.evaluation`).

References
----------
Wang, X., Liu, T. and Miao, J. (2019). A Deep Probabilistic Model for Customer
Lifetime Value Prediction. arXiv:1912.07753 (normalized Gini, decile charts).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

METRIC_NAMES: tuple[str, ...] = (
    "normalized_gini",
    "spearman",
    "top10_capture",
    "decile_mape",
    "total_error",
    "payer_spearman",
    "decile_wape",
)
HIGHER_IS_BETTER: dict[str, bool] = {
    "normalized_gini": True,
    "spearman": True,
    "top10_capture": True,
    "decile_mape": False,
    "total_error": False,
    "payer_spearman": True,
    "decile_wape": False,
}

FloatArray = npt.NDArray[np.float64]


def _ordered(
    actual: FloatArray, predicted: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Actual and predicted sorted by prediction, descending, ties averaged."""
    order = np.argsort(-predicted, kind="stable")
    pred = predicted[order]
    act = actual[order]
    groups = np.concatenate(([0], np.cumsum(pred[1:] != pred[:-1])))
    sums = np.bincount(groups, weights=act)
    sizes = np.bincount(groups)
    return (sums / sizes)[groups], pred


def _gini(sorted_actual: FloatArray) -> float:
    n = sorted_actual.size
    total = sorted_actual.sum()
    if n == 0 or total == 0:
        return 0.0
    gain = np.cumsum(sorted_actual) / total
    return float(gain.mean() - (n + 1) / (2 * n))


def normalized_gini(actual: FloatArray, predicted: FloatArray) -> float:
    """Gini of the gain curve ordered by prediction over that of the truth."""
    ordered, _ = _ordered(actual, predicted)
    best = _gini(np.sort(actual)[::-1])
    return _gini(ordered) / best if best > 0 else 0.0


def spearman(actual: FloatArray, predicted: FloatArray) -> float:
    """Spearman rank correlation with average ranks for ties; 0 if undefined."""
    if np.ptp(actual) == 0 or np.ptp(predicted) == 0:
        return 0.0
    ranks_a = pd.Series(actual).rank().to_numpy()
    ranks_p = pd.Series(predicted).rank().to_numpy()
    return float(np.corrcoef(ranks_a, ranks_p)[0, 1])


def top_capture(actual: FloatArray, predicted: FloatArray, share: float = 0.1) -> float:
    """Share of the actual total held by the top ``share`` of users by prediction."""
    ordered, _ = _ordered(actual, predicted)
    total = actual.sum()
    if total <= 0:
        return 0.0
    k = max(1, int(np.ceil(share * actual.size)))
    return float(ordered[:k].sum() / total)


def decile_mape(actual: FloatArray, predicted: FloatArray) -> float:
    """Mean absolute percentage error of predicted vs actual sums per decile.

    Deciles are cut on the prediction; deciles whose actual sum is zero are
    left out (their percentage error is undefined).
    """
    ordered, pred = _ordered(actual, predicted)
    errors = []
    for act, prd in zip(
        np.array_split(ordered, 10), np.array_split(pred, 10), strict=True
    ):
        if act.size and act.sum() > 0:
            errors.append(abs(prd.sum() - act.sum()) / act.sum())
    return float(np.mean(errors)) if errors else float("nan")


def payer_spearman(actual: FloatArray, predicted: FloatArray) -> float:
    """Spearman rank correlation over the users whose actual value is positive.

    How well the prediction orders the value among those who bring any; how
    well it separates them from those who bring none is what the Gini and
    top-decile capture measure. 0 when fewer than two users have value.
    """
    paying = actual > 0
    if paying.sum() < 2:
        return 0.0
    return spearman(actual[paying], predicted[paying])


def decile_wape(actual: FloatArray, predicted: FloatArray) -> float:
    """Absolute errors of the decile sums over the actual total.

    Deciles are cut as in :func:`decile_mape`; each counts with its dollars
    (weighted absolute percentage error). 0 is perfect; a prediction that is
    right in total but puts every dollar in the wrong decile scores up to 2.
    """
    ordered, pred = _ordered(actual, predicted)
    total = actual.sum()
    if total <= 0:
        return float("nan")
    errors = sum(
        abs(prd.sum() - act.sum())
        for act, prd in zip(
            np.array_split(ordered, 10), np.array_split(pred, 10), strict=True
        )
    )
    return float(errors / total)


def decile_means(actual: FloatArray, predicted: FloatArray) -> list[dict[str, float]]:
    """Mean predicted and actual value per decile of the prediction.

    Deciles are cut as in :func:`decile_mape`, highest predictions first; the
    figures behind a calibration chart.
    """
    ordered, pred = _ordered(
        np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    )
    return [
        {
            "decile": index + 1,
            "n": int(act.size),
            "predicted_mean": float(prd.mean()) if prd.size else float("nan"),
            "actual_mean": float(act.mean()) if act.size else float("nan"),
        }
        for index, (act, prd) in enumerate(
            zip(np.array_split(ordered, 10), np.array_split(pred, 10), strict=True)
        )
    ]


def total_error(actual: FloatArray, predicted: FloatArray) -> float:
    """Relative error of the predicted total (0.05 means 5 % too high)."""
    total = actual.sum()
    return float(predicted.sum() / total - 1.0) if total != 0 else float("nan")


def score_all(actual: FloatArray, predicted: FloatArray) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` for one set of predictions."""
    actual = np.asarray(actual, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    return {
        "normalized_gini": normalized_gini(actual, predicted),
        "spearman": spearman(actual, predicted),
        "top10_capture": top_capture(actual, predicted),
        "decile_mape": decile_mape(actual, predicted),
        "total_error": total_error(actual, predicted),
        "payer_spearman": payer_spearman(actual, predicted),
        "decile_wape": decile_wape(actual, predicted),
    }
