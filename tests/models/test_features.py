import numpy as np
import pandas as pd
import pytest

from models.features import (
    PURCHASE_MODEL_FEATURES,
    FeatureSchema,
    build_features,
    learn_schema,
    scoring_snapshots,
    training_snapshots,
)
from models.frames import prepare_events, prepare_revenue, prepare_users
from tests.models.conftest import noise_tables


def _prepared(tables):
    users, revenue, events = tables
    prepared = prepare_users(users)
    return (
        prepared,
        prepare_revenue(revenue, prepared),
        prepare_events(events, prepared),
    )


def test_no_revenue_after_the_cutoff_leaks_in(tables) -> None:
    users, money, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    snaps = training_snapshots(users, [30])
    full = build_features(snaps, users, money, acts, schema)
    early = money.loc[money["days"] <= 30]
    cut = build_features(snaps, users, early, acts, schema)
    pd.testing.assert_frame_equal(full, cut)


def test_schema_picks_up_extras_and_events(tables) -> None:
    users, _, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    assert schema.numeric_extras == ["seats"]
    assert schema.events == ["invite"]
    assert set(schema.categories) == {"country", "segment", "campaign_id"}
    assert FeatureSchema.from_dict(schema.to_dict()) == schema


def test_user_without_revenue_gets_zeros(tables) -> None:
    users, money, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    snaps = training_snapshots(users.iloc[:1], [7])
    row = build_features(snaps, users, money.iloc[:0], acts, schema).iloc[0]
    assert row["revenue_to_date"] == 0.0
    assert pd.isna(row["days_since_last_purchase"])


def test_scoring_snapshots_skip_later_signups(tables) -> None:
    users, _, _ = _prepared(tables)
    first = users["signup_at"].min()
    snaps = scoring_snapshots(users, first + pd.Timedelta(days=1))
    assert len(snaps) == int((users["signup_at"] <= first + pd.Timedelta(days=1)).sum())
    assert snaps["age_days"].min() == 0


def test_age_baselines_are_features_with_their_bracket(tables) -> None:
    users, money, acts = _prepared(tables)
    schema = learn_schema(users, money, acts, [0, 7, 30])
    assert [b.age_days for b in schema.age_baselines] == [0, 7, 30]
    assert FeatureSchema.from_dict(schema.to_dict()) == schema
    snaps = training_snapshots(users, [7, 20])
    features = build_features(snaps, users, money, acts, schema)
    factor = schema.age_baselines[1].factor
    expected = (factor - 1.0) * features["revenue_to_date"]
    pd.testing.assert_series_equal(
        features["observed_x_factor"], expected, check_names=False
    )
    assert (features["bgnbd_age_value"] >= 0).all()


def test_purchase_model_features_are_finite_or_absent_when_buyers_are_alike() -> None:
    # Every buyer alike drives the BG/NBD fit to parameters whose expectation
    # overflows; such a fit is dropped rather than turned into empty columns.
    users, revenue = noise_tables(seed=6)
    prepared = prepare_users(users)
    money = prepare_revenue(revenue, prepared)
    acts = prepare_events(None, prepared)
    ages = (0, 7, 30, 90)
    schema = learn_schema(prepared, money, acts, ages)
    features = build_features(
        training_snapshots(prepared, ages), prepared, money, acts, schema
    )
    for column in PURCHASE_MODEL_FEATURES:
        if column in features:
            assert features[column].notna().all(), column


def test_an_event_only_later_users_have_does_not_stop_training(tables) -> None:
    from models.estimator import FutureValueRegressor

    users, money, _ = _prepared(tables)
    late = users.sort_values("signup_at").tail(30)
    extra = pd.DataFrame(
        {
            "user_id": late["user_id"].to_numpy(),
            "occurred_at": late["signup_at"].to_numpy(),
            "event": "late_feature",
            "value": 1.0,
        }
    )
    events = prepare_events(pd.concat([tables[2], extra]), users)
    schema = FeatureSchema.learn(users, events)
    assert "late_feature" in schema.events
    early = users.loc[~users["user_id"].isin(late["user_id"])]
    snaps = training_snapshots(early, [7, 30])
    features = build_features(snaps, early, money, events, schema)
    assert features["count:late_feature"].isna().all()
    future = np.ones(len(features))
    regressor = FutureValueRegressor("relative").fit(
        features, future, schema.categorical_mask
    )
    later = build_features(training_snapshots(late, [7]), late, money, events, schema)
    assert np.isfinite(regressor.predict(later)).all()


def test_each_snapshot_gets_its_own_users_money_events_and_levels(tables) -> None:
    users, money, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    # A shuffled subset at three ages: the money and events of every other
    # user must stay out, and each row must find its own user's.
    some = users.sample(40, random_state=1)
    snaps = training_snapshots(some, [0, 7, 30])
    features = build_features(snaps, some, money, acts, schema)
    segments = {level: float(i) for i, level in enumerate(schema.categories["segment"])}

    assert len(features) == 120
    for row, snap in snaps.iterrows():
        mine = money.loc[
            (money["user_id"] == snap["user_id"])
            & (money["days"] <= snap["cutoff_days"])
        ]
        invites = acts.loc[
            (acts["user_id"] == snap["user_id"])
            & (acts["event"] == "invite")
            & (acts["days"] <= snap["cutoff_days"])
        ]
        user = some.loc[some["user_id"] == snap["user_id"]].iloc[0]
        got = features.loc[row]
        assert got["revenue_to_date"] == pytest.approx(mine["amount"].sum())
        assert got["orders_to_date"] == len(mine)
        if invites.empty:
            assert pd.isna(got["count:invite"])
        else:
            assert got["count:invite"] == len(invites)
            assert got["first_day:invite"] == invites["days"].min()
        assert got["segment"] == segments[user["segment"]]
        assert got["seats"] == pytest.approx(float(user["seats"]))


def test_a_numeric_extra_read_from_csv_as_text_stays_a_number(tables, tmp_path) -> None:
    """The checked CSV read keeps extra columns as text; seats are still numbers."""
    from connectors.contracts import USERS
    from connectors.files import read_table

    users, money, acts = _prepared(tables)
    path = tmp_path / "users.csv"
    tables[0].to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    read = prepare_users(read_table(path, USERS))
    assert not pd.api.types.is_numeric_dtype(read["seats"])

    schema = FeatureSchema.learn(read, acts)

    assert schema.numeric_extras == ["seats"]
    assert "seats" not in schema.categories
    snaps = training_snapshots(users, [7])
    pd.testing.assert_series_equal(
        build_features(snaps, read, money, acts, schema)["seats"],
        build_features(snaps, users, money, acts, schema)["seats"],
    )


def test_a_users_table_without_a_column_of_the_schema_names_it(tables) -> None:
    from models.exceptions import InputDataError

    users, money, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    snaps = training_snapshots(users, [7])

    with pytest.raises(InputDataError, match=r"users: no column seats, which"):
        build_features(snaps, users.drop(columns="seats"), money, acts, schema)


def test_values_of_a_numeric_extra_that_are_not_numbers_are_found(tables) -> None:
    from models.features import NonNumericValues, non_numeric_values

    users, _, acts = _prepared(tables)
    schema = FeatureSchema.learn(users, acts)
    text = users.assign(seats=users["seats"].astype("string"))
    text.loc[[3, 5], "seats"] = "gold"
    text.loc[4, "seats"] = " "
    text.loc[6, "seats"] = None

    assert non_numeric_values(users, schema) == []
    assert non_numeric_values(text, schema) == [NonNumericValues("seats", 2, "gold")]
