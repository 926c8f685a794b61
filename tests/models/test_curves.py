import pandas as pd
import pytest

from models.curves import ALL_SEGMENTS, ltv_curve


def test_ratios_grow_with_the_horizon_and_flag_extrapolation(tables, as_of) -> None:
    users, revenue, _ = tables
    curves = ltv_curve(users, revenue, as_of)
    assert set(curves.curves) == {ALL_SEGMENTS, "smb", "freelancer"}
    year = curves.horizon_ratio("smb", 365)
    three = curves.horizon_ratio("smb", 1095)
    five = curves.horizon_ratio("smb", 1825)
    assert year.ratio == pytest.approx(1.0) and year.realized
    assert 1.0 <= three.ratio <= five.ratio
    assert not three.realized and three.low <= three.ratio <= three.high
    assert curves.share_by_month("smb", 12) == pytest.approx(1.0)
    assert 0 < curves.share_by_month("smb", 3) < 1


def test_unknown_segment_uses_the_pooled_curve(tables, as_of) -> None:
    users, revenue, _ = tables
    curves = ltv_curve(users, revenue, as_of)
    assert curves.horizon_ratio("enterprise", 1095).segment == ALL_SEGMENTS


def test_as_of_before_any_signup(tables) -> None:
    from models.exceptions import ScoringError

    users, revenue, _ = tables
    with pytest.raises(ScoringError):
        ltv_curve(users, revenue, users["signup_at"].min() - pd.Timedelta(days=1))
