import pandas as pd
import pytest

from models.exceptions import InputDataError
from models.frames import prepare_revenue, prepare_users


def _users() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["a", "b"],
            "signup_at": ["2024-01-10T12:00:00Z", "2024-01-11"],
            "country": ["FR", "DE"],
            "segment": ["smb", "smb"],
            "campaign_id": ["c1", "c2"],
        }
    )


def test_users_get_utc_timestamps_and_missing_activation() -> None:
    users = prepare_users(_users())
    assert str(users["signup_at"].dt.tz) == "UTC"
    assert users["activated_at"].isna().all()


def test_bad_timestamp_names_column_and_value() -> None:
    users = _users().assign(signup_at=["2024-01-10", "yesterday"])
    with pytest.raises(InputDataError, match=r"users.signup_at.*'yesterday'"):
        prepare_users(users)


def test_missing_column_is_named() -> None:
    with pytest.raises(InputDataError, match="segment"):
        prepare_users(_users().drop(columns="segment"))


def test_revenue_before_signup_day_is_refused() -> None:
    users = prepare_users(_users())
    revenue = pd.DataFrame(
        {"user_id": ["a"], "occurred_at": ["2024-01-09"], "amount": [5.0]}
    )
    with pytest.raises(InputDataError, match=r"predate.*user_id='a'"):
        prepare_revenue(revenue, users)


def test_revenue_earlier_on_the_signup_day_counts_as_day_zero() -> None:
    users = prepare_users(_users())
    revenue = pd.DataFrame(
        {
            "user_id": ["a", "zz"],
            "occurred_at": ["2024-01-10T08:00Z"] * 2,
            "amount": [5.0, 1.0],
        }
    )
    out = prepare_revenue(revenue, users)
    assert out["days"].tolist() == [0.0]
