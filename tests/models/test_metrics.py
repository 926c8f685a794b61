import numpy as np
import pytest

from models.metrics import (
    METRIC_NAMES,
    decile_mape,
    decile_means,
    decile_wape,
    normalized_gini,
    payer_spearman,
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
    assert set(score_all(ACTUAL, ACTUAL)) == set(METRIC_NAMES)


def test_decile_means_follow_the_prediction_order() -> None:
    predicted = np.arange(ACTUAL.size, dtype="float64")
    deciles = decile_means(ACTUAL, predicted)
    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert [d["predicted_mean"] for d in deciles] == list(predicted[::-1])
    assert [d["actual_mean"] for d in deciles] == list(ACTUAL[::-1])
    assert sum(d["n"] for d in deciles) == ACTUAL.size


def test_payer_spearman_ignores_the_order_among_users_who_bring_nothing() -> None:
    rng = np.random.default_rng(3)
    actual = np.where(rng.random(400) < 0.7, 0.0, rng.gamma(2.0, 50.0, 400))
    paying = actual > 0
    # Same order among payers, below them: zeros tied, or spread at random.
    tied = np.where(paying, 1.0 + actual, 0.0)
    spread = np.where(paying, 1.0 + actual, rng.random(400))
    assert payer_spearman(actual, tied) == pytest.approx(1.0)
    assert payer_spearman(actual, spread) == pytest.approx(1.0)
    # Over every user the spread costs rank correlation it did not earn or lose.
    assert spearman(actual, spread) < spearman(actual, tied) - 0.1
    assert payer_spearman(actual, -actual) == pytest.approx(-1.0)
    assert payer_spearman(np.zeros(5), np.arange(5.0)) == 0.0


def test_decile_wape_weighs_deciles_by_their_dollars() -> None:
    actual = np.concatenate([np.full(10, 1000.0), np.full(90, 0.1)])
    predicted = np.concatenate([np.full(10, 1000.0), np.full(90, 1.0)])
    # Nine deciles of cents ten times too high: MAPE 8.1, dollars 0.8 % off.
    assert decile_mape(actual, predicted) == pytest.approx(8.1)
    assert decile_wape(actual, predicted) == pytest.approx(81 / 10009)
    assert decile_wape(actual, actual) == pytest.approx(0.0, abs=1e-12)
    # All the money in the wrong decile: errors in two deciles of the total each.
    swapped = np.concatenate([np.full(10, 0.1), np.full(90, 1000.0 / 9)])
    assert decile_wape(actual, swapped) > 1.0
    assert np.isnan(decile_wape(np.zeros(20), np.ones(20)))
