import json
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.exceptions import ModelLoadError, ScoringError, TrainingError
from models.pltv import OUTPUT_COLUMNS, PLTVModel


def test_fit_reports_model_and_baseline_metrics(fitted) -> None:
    for who in ("", "observed_x_factor.", "bgnbd_gamma_gamma."):
        assert np.isfinite(fitted.metrics[f"{who}normalized_gini"])
    assert fitted.metrics["model@30.spearman"] == fitted.metrics["model@30.spearman"]
    assert fitted.version


def test_predictions_are_ordered_and_include_observed_value(
    fitted, tables, as_of
) -> None:
    users, revenue, events = tables
    when = as_of - pd.Timedelta(days=300)
    scores = fitted.predict(users, revenue, when, events)
    assert tuple(scores.columns) == OUTPUT_COLUMNS
    assert len(scores) == int((users["signup_at"] <= when).sum())
    assert (scores["pltv_365"] <= scores["pltv_1095"]).all()
    assert (scores["pltv_1095"] <= scores["pltv_1825"]).all()
    observed = (
        revenue.loc[revenue["occurred_at"] <= when].groupby("user_id")["amount"].sum()
    )
    floor = scores["user_id"].map(observed).fillna(0.0)
    assert (scores["pltv_365"] >= floor - 1e-9).all()


def test_later_revenue_does_not_change_scores(fitted, tables, as_of) -> None:
    users, revenue, events = tables
    when = as_of - pd.Timedelta(days=300)
    full = fitted.predict(users, revenue, when, events)
    cut = fitted.predict(
        users, revenue.loc[revenue["occurred_at"] <= when], when, events
    )
    pd.testing.assert_frame_equal(full, cut)


def test_user_without_revenue_is_scored(fitted, tables, as_of) -> None:
    users, revenue, events = tables
    newcomer = users.iloc[:1].assign(user_id="new", signup_at=as_of)
    scores = fitted.predict(newcomer, revenue, as_of, events)
    assert scores["age_days"].tolist() == [0]
    assert scores["pltv_365"].iloc[0] >= 0


def test_as_of_before_any_signup_is_refused(fitted, tables) -> None:
    users, revenue, events = tables
    before = users["signup_at"].min() - pd.Timedelta(days=1)
    with pytest.raises(ScoringError, match="no user signed up"):
        fitted.predict(users, revenue, before, events)


def test_a_model_trained_with_events_refuses_to_score_without_them(
    fitted, tables, as_of
) -> None:
    users, revenue, events = tables
    with pytest.raises(
        ScoringError, match=r"uses the features count:invite, first_day:invite, but"
    ):
        fitted.predict(users, revenue, as_of)

    # An events table in which nobody did anything is data, not a gap.
    scores = fitted.predict(users, revenue, as_of, events.iloc[:0])
    assert len(scores) == len(users)


def test_too_few_labelled_users(tables) -> None:
    users, revenue, _ = tables
    with pytest.raises(TrainingError, match="at least 200"):
        PLTVModel().fit(
            users, revenue, users["signup_at"].min() + pd.Timedelta(days=370)
        )


def test_a_large_account_trains_on_a_random_sample(tables, as_of) -> None:
    users, revenue, events = tables
    model = PLTVModel(ages=(0, 7, 30, 90), max_train_users=300).fit(
        users, revenue, as_of, events
    )
    assert model.metadata["n_labelled"] == len(users)
    assert model.metadata["n_trained"] == 300
    assert model.holdout is not None
    assert model.holdout.n_train + model.holdout.n_test == 300
    # The sample spans the whole sign-up range, so the time holdout still
    # holds out later cohorts than it trains on.
    assert model.holdout.n_test == pytest.approx(90, abs=15)
    again = PLTVModel(ages=(0, 7, 30, 90), max_train_users=300).fit(
        users, revenue, as_of, events
    )
    assert again.version == model.version
    assert again.metrics == model.metrics


def test_sample_size_below_the_training_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 200"):
        PLTVModel(max_train_users=50)


def test_save_and_load_round_trip(fitted, tables, as_of, tmp_path) -> None:
    users, revenue, events = tables
    loaded = PLTVModel.load(fitted.save(tmp_path / "m"))
    assert loaded.version == fitted.version
    assert loaded.metrics == fitted.metrics
    assert loaded.max_train_users == fitted.max_train_users
    pd.testing.assert_frame_equal(
        loaded.predict(users, revenue, as_of, events),
        fitted.predict(users, revenue, as_of, events),
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("schema_version", 999, "schema version 999"),
        ("format", "other", "not a pLTV model"),
        ("libraries", {"scikit-learn": "0.1"}, "scikit-learn 0.1"),
    ],
)
def test_load_refuses_other_artefacts(fitted, tmp_path, key, value, message) -> None:
    path = fitted.save(tmp_path / "m")
    meta = json.loads((path / "metadata.json").read_text())
    meta[key] = value
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match=message):
        PLTVModel.load(path)


def test_load_of_an_empty_directory(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="not a model directory"):
        PLTVModel.load(tmp_path)


def test_load_of_a_file_says_it_is_not_a_directory(tmp_path) -> None:
    (tmp_path / "users.csv").write_text("user_id\n")
    with pytest.raises(ModelLoadError, match=r"users\.csv: a file, not a model dir"):
        PLTVModel.load(tmp_path / "users.csv")


def test_load_of_unreadable_metadata(tmp_path) -> None:
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="unreadable model metadata"):
        PLTVModel.load(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"garbage\n", r"unreadable model.pkl \(ValueError\)"),
        (b"", r"unreadable model.pkl \(EOFError\)"),
        (pickle.dumps([1, 2]), "model.pkl holds no pLTV model"),
        (pickle.dumps({"schema": None}), "model.pkl holds no pLTV model"),
    ],
    ids=["text", "empty", "a list", "no regressor"],
)
def test_load_of_a_damaged_pickle(fitted, tmp_path, content, message) -> None:
    path = fitted.save(tmp_path / "m")
    (path / "model.pkl").write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        PLTVModel.load(path)


def test_gate_against_a_much_better_current_model(fitted) -> None:
    better = PLTVModel()
    better.version = "best"
    better.metrics = {"normalized_gini": 2.0, "spearman": 2.0}
    failures_before = list(fitted.gate_failures)
    assert not fitted.passes_gate(better)
    assert any("current model best" in r for r in fitted.gate_failures)
    fitted.gate_failures = failures_before


class _Constant:
    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.ones(len(features))


@pytest.fixture
def current(fitted, tmp_path) -> PLTVModel:
    """The fitted model as the registry would load it."""
    return PLTVModel.load(fitted.save(tmp_path / "current"))


@pytest.fixture
def gate_state(fitted):
    """Restores the fitted model's gate state after a test."""
    failures = list(fitted.gate_failures)
    predictions = fitted.holdout.predictions.copy()
    yield fitted
    fitted.gate_failures = failures
    fitted.holdout.predictions = predictions


def test_the_current_model_is_scored_on_the_same_held_out_users(
    gate_state, current
) -> None:
    fitted = gate_state
    paired = fitted._paired_scores(current)
    assert paired is not None
    n_users, scores = paired
    assert n_users == fitted.holdout.n_test
    for ours, theirs in scores.values():
        assert ours == pytest.approx(theirs)
    fitted.passes_gate(current)
    assert not any("current model" in r for r in fitted.gate_failures)


def test_a_model_worse_on_the_same_users_is_refused(gate_state, current) -> None:
    fitted = gate_state
    fitted.holdout.predictions["predicted"] = 1.0
    assert not fitted.passes_gate(current)
    assert any("on the same" in r for r in fitted.gate_failures)


def test_a_model_better_on_the_same_users_passes_that_check(
    gate_state, current
) -> None:
    fitted = gate_state
    current.holdout.regressor = _Constant()
    current.metrics = {"normalized_gini": 2.0, "spearman": 2.0}
    fitted.passes_gate(current)
    assert not any("current model" in r for r in fitted.gate_failures)


def test_holdout_figures_are_compared_when_the_current_model_cannot_score(
    gate_state, current
) -> None:
    fitted = gate_state
    current.holdout.schema = replace(current.holdout.schema, numeric_extras=["gone"])
    current.metrics = {"normalized_gini": 2.0, "spearman": 2.0}
    assert fitted._paired_scores(current) is None
    assert not fitted.passes_gate(current)
    assert any("own holdout" in r for r in fitted.gate_failures)


def test_too_few_unseen_users_fall_back_to_holdout_figures(gate_state, current) -> None:
    fitted = gate_state
    current.metadata["holdout_start"] = "2100-01-01T00:00:00+00:00"
    assert fitted._paired_scores(current) is None


def test_a_users_table_without_a_learnt_extra_column_is_refused(
    fitted, tables, as_of
) -> None:
    users, revenue, events = tables
    assert fitted.extra_user_columns == ["seats"]

    with pytest.raises(ScoringError) as refused:
        fitted.predict(users.drop(columns="seats"), revenue, as_of, events)

    assert str(refused.value) == (
        f"users: model {fitted.version} was trained with the users column(s) "
        "seats, which this users table lacks; restore them, or retrain the "
        "model on users without them"
    )


def test_values_of_a_numeric_extra_that_are_not_numbers_score_as_missing_with_a_warning(
    fitted, tables, as_of, caplog
) -> None:
    users, revenue, events = tables
    spoilt = users.assign(seats=users["seats"].astype(object))
    spoilt.loc[[2, 9, 40], "seats"] = ["gold", "n/a", "gold"]
    missing = users.assign(seats=users["seats"].astype("float64"))
    missing.loc[[2, 9, 40], "seats"] = np.nan

    with caplog.at_level("WARNING", logger="models.pltv"):
        scores = fitted.predict(spoilt, revenue, as_of, events)

    pd.testing.assert_frame_equal(
        scores, fitted.predict(missing, revenue, as_of, events)
    )
    assert [r.getMessage() for r in caplog.records] == [
        "users column 'seats': 3 value(s) are not numbers (first: 'gold'); the "
        "model reads numbers there, so they are scored as missing"
    ]
    told: list[str] = []
    fitted.predict(spoilt, revenue, as_of, events, warn=told.append)
    assert len(told) == 1 and told[0].startswith("users column 'seats': 3 value(s)")


def test_models_trained_on_other_tables_or_columns_get_other_versions(as_of) -> None:
    """Extra columns and events are training data: they change the version."""
    from tests.models.conftest import synthetic_tables

    users, revenue, events = synthetic_tables(n_users=260, seed=3)
    plain = users.drop(columns="seats")
    options = {"ages": (0, 30), "loss": "relative", "gate_ages": (0, 30)}

    bare = PLTVModel(**options).fit(plain, revenue, as_of)
    richer = PLTVModel(**options).fit(users, revenue, as_of, events)
    again = PLTVModel(**options).fit(plain, revenue, as_of)

    assert bare.metadata["feature_columns"] != richer.metadata["feature_columns"]
    assert richer.version != bare.version
    assert richer.metadata["data_fingerprint"] != bare.metadata["data_fingerprint"]
    # The same data the same way: the same model, the same version.
    assert again.version == bare.version
    assert again.metadata["data_fingerprint"] == bare.metadata["data_fingerprint"]


def test_the_data_fingerprint_covers_every_table_and_column(tables, as_of) -> None:
    from models.pltv import _fingerprint

    users, revenue, events = tables
    base = {"users": users, "revenue": revenue}

    def of(**changed):
        return _fingerprint(base | changed, as_of)

    assert of() == _fingerprint(dict(base), as_of)
    assert of(users=users.loc[:, users.columns[::-1]]) == of()
    assert of(events=events) != of()
    assert of(users=users.assign(plan_tier="pro")) != of()
    moved = users.assign(seats=users["seats"].where(users.index != 5, 99))
    assert of(users=moved) != of()
    assert of(revenue=revenue.assign(currency="USD")) != of()
