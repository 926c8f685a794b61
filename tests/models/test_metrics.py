import numpy as np
import pytest

from models.metrics import (
    decile_mape,
    decile_means,
    normalized_gini,
    score_all,
    spearman,
    top_capture,
    total_error,
)

ACTUAL = np.array([0.0, 0.0, 1.0, 2.0, 0.0, 10.0, 3.0, 0.0, 0.0, 5.0])


def test_perfect_ranking_has_gini_one() -> None:
    assert normalized_gini(ACTUAL, ACTUAL) == pytest.approx(1.0)


def test_constant_prediction_scores_zero_whatever_the_row_order() -> None:
    flat = np.ones_like(ACTUAL)
    assert normalized_gini(ACTUAL, flat) == pytest.approx(0.0)
    assert normalized_gini(ACTUAL[::-1], flat) == pytest.approx(0.0)
    assert spearman(ACTUAL, flat) == 0.0


def test_reversed_ranking_is_negative() -> None:
    assert normalized_gini(ACTUAL, -ACTUAL) < 0


def test_top_capture_of_the_best_user() -> None:
    assert top_capture(ACTUAL, ACTUAL) == pytest.approx(10.0 / ACTUAL.sum())


def test_calibration_metrics() -> None:
    assert total_error(ACTUAL, ACTUAL * 1.1) == pytest.approx(0.1)
    assert decile_mape(ACTUAL, ACTUAL) == pytest.approx(0.0)
    assert set(score_all(ACTUAL, ACTUAL)) == {
        "normalized_gini",
        "spearman",
        "top10_capture",
        "decile_mape",
        "total_error",
    }


def test_decile_means_follow_the_prediction_order() -> None:
    predicted = np.arange(ACTUAL.size, dtype="float64")
    deciles = decile_means(ACTUAL, predicted)
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert [d["predicted_mean"] for d in deciles] == list(predicted[::-1])
    assert [d["actual_mean"] for d in deciles] == list(ACTUAL[::-1])
    assert sum(d["n"] for d in deciles) == ACTUAL.size
