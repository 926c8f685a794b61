"""Real fits on the full CDNOW histories (Fader and Hardie 2001 data set)."""

import pandas as pd
import pytest

from models.pltv import PLTVModel
from tests.models.conftest import CDNOW_AS_OF, CDNOW_FILE, load_cdnow

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cdnow_model() -> PLTVModel:
    assert CDNOW_FILE.exists(), f"bundled CDNOW copy missing: {CDNOW_FILE}"
    users, revenue = load_cdnow()
    return PLTVModel().fit(users, revenue, CDNOW_AS_OF)


def test_holdout_ranks_far_better_than_chance(cdnow_model: PLTVModel) -> None:
    model = cdnow_model
    # Orientation from the data set README: about 0.53 at 30 days, 0.64 at 90.
    assert model.metrics["model@30.normalized_gini"] > 0.45
    assert model.metrics["model@90.normalized_gini"] > 0.55
    assert abs(model.metrics["model@90.total_error"]) < 0.15


def test_scores_every_customer_with_extrapolated_horizons(
    cdnow_model: PLTVModel,
) -> None:
    model = cdnow_model
    users, revenue = load_cdnow()
    when = pd.Timestamp("1997-04-30", tz="UTC")
    scores = model.predict(users, revenue, when)
    assert len(scores) == len(users)
    three = model.curves.horizon_ratio("all", 1095)
    assert not three.realized and three.ratio > 1.0
    assert (scores["pltv_1095"] >= scores["pltv_365"]).all()
