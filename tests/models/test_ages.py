"""Users are scored at every age, not only at the ages the model trained on."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from models.evaluation import evaluate_holdout, labelled_users, split_users
from models.features import DEFAULT_AGES
from models.frames import prepare_events, prepare_revenue, prepare_users
from optimizer.scenarios import plg

RUN_DATE = dt.date(2026, 12, 1)
# Ages between training ages, where the first invoices of the synthetic
# account fall, and later ones between monthly renewals.
BETWEEN_AGES = (20, 52, 135)


@pytest.mark.slow
def test_users_between_training_ages_are_valued_in_total() -> None:
    world = plg.generate(RUN_DATE, scale=0.5)
    users = prepare_users(world.users)
    revenue = prepare_revenue(world.revenue, users)
    events = prepare_events(world.events, users)
    labelled = labelled_users(users, pd.Timestamp(RUN_DATE, tz="UTC"))
    train, test = split_users(labelled, "time", 0.3)

    report = evaluate_holdout(
        train,
        test,
        revenue,
        events,
        split="time",
        ages=DEFAULT_AGES,
        eval_ages=BETWEEN_AGES,
        loss="relative",
    )

    assert not set(BETWEEN_AGES) & set(DEFAULT_AGES)
    # Sampling noise on this small holdout is worth about 15 %; with the
    # training ages 0, 1, 3, 7, 14, 30, 60, 90, 180 and 270 the error at
    # age 20 here was +62 %.
    for result in report.ages:
        error = result.scores["model"]["total_error"]
        assert abs(error) < 0.3, (result.age_days, error)
