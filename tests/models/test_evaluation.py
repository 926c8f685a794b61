import json

import numpy as np
import pandas as pd
import pytest

from models.evaluation import BASELINES, AgeResult, HoldoutReport
from models.metrics import score_all


def _scores(gini: float, wape: float) -> dict[str, float]:
    return {
        "normalized_gini": gini,
        "spearman": gini / 2,
        "top10_capture": 0.3,
        "decile_mape": wape * 1.5,
        "total_error": 0.0,
        "payer_spearman": gini / 2,
        "decile_wape": wape,
    }


def _report(
    model_gini: float, model_wape: float, constant: list[str] | None = None
) -> HoldoutReport:
    scores = {
        "model": _scores(model_gini, model_wape),
        "observed_x_factor": _scores(0.50, 0.12),
        "bgnbd_gamma_gamma": _scores(0.51, 0.80),
    }
    result = AgeResult(30, 50, scores, constant=constant or [])
    return HoldoutReport("time", 100, 50, [result])


def test_a_ranking_tie_within_noise_passes_the_gate_but_not_the_goal() -> None:
    report = _report(0.505, 0.08)
    assert report.gate([30]) == []
    assert any("bgnbd_gamma_gamma" in r for r in report.beats_baselines([30]))


def test_worse_calibration_or_clearly_worse_ranking_fails_the_gate() -> None:
    assert any("decile_wape" in r for r in _report(0.60, 0.20).gate([30]))
    # The baseline's decile WAPE is 0.12: a hundredth more is a tie.
    assert _report(0.60, 0.129).gate([30]) == []
    assert any("decile_wape" in r for r in _report(0.60, 0.131).gate([30]))
    assert any("normalized_gini" in r for r in _report(0.45, 0.05).gate([30]))


def test_a_constant_baseline_is_no_yardstick_for_calibration() -> None:
    # Calibrated by construction: one value for everyone is right on average.
    assert _report(0.60, 0.20, constant=["observed_x_factor"]).gate([30]) == []
    # It still counts for ranking.
    failures = _report(0.45, 0.05, constant=["observed_x_factor"]).gate([30])
    assert any("observed_x_factor" in r for r in failures)


def test_holdout_json_carries_decile_means_of_every_participant(fitted) -> None:
    assert fitted.holdout is not None
    ages = json.loads(fitted.holdout.to_json())["ages"]
    for result in ages:
        assert set(result["deciles"]) == {"model", *BASELINES}
        model = result["deciles"]["model"]
        assert len(model) == 10
        assert sum(d["n"] for d in model) == result["n_test"]
        means = [d["predicted_mean"] for d in model]
        assert means == sorted(means, reverse=True)
    assert fitted.metadata["holdout"]["ages"] == ages


def test_holdout_predictions_carry_every_participant(fitted) -> None:
    holdout = fitted.holdout
    assert holdout is not None and holdout.predictions is not None
    rows = holdout.predictions
    assert set(rows.columns) == {"user_id", "age_days", "actual", "predicted"} | set(
        BASELINES
    )
    for result in holdout.ages:
        at_age = rows.loc[rows["age_days"] == result.age_days]
        for who in BASELINES:
            # The stored column is what the age's scores were computed from.
            again = score_all(at_age["actual"].to_numpy(), at_age[who].to_numpy())
            assert again == pytest.approx(result.scores[who], nan_ok=True)


def _ranked_report(predicted_from_actual: bool) -> HoldoutReport:
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(400)]
    report = HoldoutReport("time", 1000, len(users))
    frames = []
    for age in (7, 30):
        actual = rng.gamma(0.3, 100.0, len(users))
        noise = rng.gamma(0.3, 100.0, len(users))
        predicted = actual + 0.5 * noise if predicted_from_actual else noise
        frames.append(
            pd.DataFrame(
                {
                    "user_id": users,
                    "age_days": age,
                    "actual": actual,
                    "predicted": predicted,
                    **{who: noise for who in BASELINES},
                }
            )
        )
        scores = {"model": score_all(actual, predicted)}
        scores |= {who: score_all(actual, noise) for who in BASELINES}
        report.ages.append(AgeResult(age, len(users), scores))
    report.predictions = pd.concat(frames, ignore_index=True)
    return report


def test_a_model_that_ranks_no_better_than_chance_fails_the_gate() -> None:
    # Baselines that rank nothing are tied by a model that ranks nothing.
    failures = _ranked_report(predicted_from_actual=False).gate([7, 30])
    assert [r for r in failures if "not above chance" in r]
    assert not [r for r in failures if "below" in r]
    assert _ranked_report(predicted_from_actual=True).gate([7, 30]) == []


def test_pure_noise_revenue_trains_a_model_that_fails_its_gate() -> None:
    from models.pltv import PLTVModel
    from tests.models.conftest import START, noise_tables

    users, revenue = noise_tables()
    model = PLTVModel(ages=(0, 7, 30, 90)).fit(
        users, revenue, START + pd.Timedelta(days=600)
    )
    assert [r for r in model.gate_failures if "not above chance" in r]
