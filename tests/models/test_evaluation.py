import json

from models.evaluation import BASELINES, AgeResult, HoldoutReport


def _scores(gini: float, mape: float) -> dict[str, float]:
    return {
        "normalized_gini": gini,
        "spearman": gini / 2,
        "top10_capture": 0.3,
        "decile_mape": mape,
        "total_error": 0.0,
    }


def _report(model_gini: float, model_mape: float) -> HoldoutReport:
    scores = {
        "model": _scores(model_gini, model_mape),
        "observed_x_factor": _scores(0.50, 0.12),
        "bgnbd_gamma_gamma": _scores(0.51, 0.80),
    }
    return HoldoutReport("time", 100, 50, [AgeResult(30, 50, scores)])


def test_a_ranking_tie_within_noise_passes_the_gate_but_not_the_goal() -> None:
    report = _report(0.505, 0.08)
    assert report.gate([30]) == []
    assert any("bgnbd_gamma_gamma" in r for r in report.beats_baselines([30]))


def test_worse_calibration_or_clearly_worse_ranking_fails_the_gate() -> None:
    assert any("decile_mape" in r for r in _report(0.60, 0.20).gate([30]))
    assert any("normalized_gini" in r for r in _report(0.45, 0.05).gate([30]))


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
