"""Each kind of bad input is refused with the file, column, line and value named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from connectors.contracts import EVENTS, REVENUE, USERS
from connectors.exceptions import ContractError, InputError
from connectors.files import file_fingerprint, load_inputs, read_table
from connectors.sources import DataSettings, FileSource, QuarantineSettings
from tests.connectors.conftest import REVENUE_CSV, USERS_CSV, Loader, write
from tests.support.datasets import Dataset, write_dataset


def _strict(data: Dataset, max_share: float = 0) -> DataSettings:
    """The dataset's files; no bad row allowed unless ``max_share`` says so."""
    return DataSettings(
        users=FileSource(path=data.users),
        revenue=FileSource(path=data.revenue),
        campaign_stats=FileSource(path=data.campaign_stats),
        quarantine=QuarantineSettings(max_share=max_share),
    )


def _load(data: Dataset) -> None:
    load_inputs(_strict(data), currency="USD")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test set-up: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_valid_inputs_get_canonical_types(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    inputs = load_inputs(_strict(data), currency="USD")
    users = inputs.users
    assert str(users["signup_at"].dtype) == "datetime64[ns, UTC]"
    assert users.loc[1, "signup_at"] == pd.Timestamp("2026-10-02T08:00:00Z")
    assert users["activated_at"].isna().tolist() == [False, True, False]
    assert inputs.revenue["amount"].sum() == pytest.approx(218.5)
    assert inputs.row_counts() == {"users": 3, "revenue": 3, "campaign_stats": 2}
    assert set(inputs.fingerprints) == {"users", "revenue", "campaign_stats"}


def test_a_fingerprint_changes_with_its_file_and_only_then(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    first = load_inputs(_strict(data), currency="USD").fingerprints
    assert load_inputs(_strict(data), currency="USD").fingerprints == first

    _replace(data.revenue, "120.50", "120.51")
    second = load_inputs(_strict(data), currency="USD").fingerprints

    changed = {name for name in first if first[name] != second[name]}
    assert changed == {"revenue"}
    assert second["revenue"] == file_fingerprint([data.revenue])


BAD_INPUTS: list[tuple[str, Callable[[Dataset], Path], list[str]]] = [
    (
        "missing column",
        lambda d: (_replace(d.users, "signup_at,", "signed_up,"), d.users)[1],
        ["lacks required column(s) signup_at"],
    ),
    (
        "non-numeric amount",
        lambda d: (_replace(d.revenue, "120.50", "12O.5O"), d.revenue)[1],
        ["'amount'", "line 4", "'12O.5O'", "not a number"],
    ),
    (
        "wrong type of cost",
        lambda d: (_replace(d.campaign_stats, "120.5", "cheap"), d.campaign_stats)[1],
        ["'cost'", "line 2", "'cheap'", "not a number"],
    ),
    (
        "unparsable date",
        lambda d: (
            _replace(d.users, "2026-10-03T10:00:00Z", "03/10/2026 10h"),
            d.users,
        )[1],
        ["'signup_at'", "line 4", "'03/10/2026 10h'", "not a timestamp"],
    ),
    (
        "timestamp without a zone",
        lambda d: (
            _replace(d.revenue, "2026-11-01T12:00:00Z", "2026-11-01 12:00:00"),
            d.revenue,
        )[1],
        ["'occurred_at'", "line 3", "no time zone"],
    ),
    (
        "refund of more than was paid",
        lambda d: (_replace(d.revenue, "49.00,USD,o2", "-60.00,USD,o2"), d.revenue)[1],
        ["'amount'", "line 3", "'-60.00'", "more than user 'u1' had paid by then"],
    ),
    (
        "unknown currency",
        lambda d: (_replace(d.revenue, "120.50,USD", "120.50,XYZ"), d.revenue)[1],
        ["'currency'", "line 4", "'XYZ'", "has no exchange rate into USD"],
    ),
    (
        "duplicate user id",
        lambda d: (_replace(d.users, "u3,", "u1,"), d.users)[1],
        ["'user_id'", "line 4", "'u1'", "more than once"],
    ),
    (
        "revenue for an unknown user",
        lambda d: (_replace(d.revenue, "u3,", "u9,"), d.revenue)[1],
        ["'user_id'", "line 4", "'u9'", "not in the users table"],
    ),
    (
        "bad country code",
        lambda d: (_replace(d.users, ",US,freelancer", ",usa,freelancer"), d.users)[1],
        ["'country'", "line 3", "'usa'", "ISO 3166"],
    ),
    (
        "empty file",
        lambda d: (d.revenue.write_text("", encoding="utf-8"), d.revenue)[1],
        ["revenue file is empty"],
    ),
    (
        "header only",
        lambda d: (
            d.users.write_text(
                d.users.read_text(encoding="utf-8").splitlines()[0] + "\n",
                encoding="utf-8",
            ),
            d.users,
        )[1],
        ["users file has no rows"],
    ),
    (
        "missing file",
        lambda d: (d.campaign_stats.unlink(), d.campaign_stats)[1],
        ["campaign_stats file does not exist"],
    ),
    (
        "not UTF-8",
        lambda d: (d.users.write_bytes(b"user_id\n\xff\xfe\n"), d.users)[1],
        ["not UTF-8"],
    ),
]


@pytest.mark.parametrize(
    ("label", "breaker", "expected"),
    BAD_INPUTS,
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_refused_with_its_location(
    tmp_path: Path,
    label: str,
    breaker: Callable[[Dataset], Path],
    expected: list[str],
) -> None:
    data = write_dataset(tmp_path)
    broken = breaker(data)
    with pytest.raises(InputError) as caught:
        _load(data)
    message = str(caught.value)
    assert str(broken) in message, label
    for fragment in expected:
        assert fragment in message, f"{label}: {fragment!r} not in {message!r}"


def test_naive_timestamps_accepted_when_zone_configured(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    _replace(data.revenue, "2026-11-01T12:00:00Z", "2026-11-01 12:00:00")
    table = read_table(data.revenue, REVENUE, naive_time_zone="Europe/Paris")
    assert table.loc[1, "occurred_at"] == pd.Timestamp("2026-11-01T11:00:00Z")


def test_parquet_round_trip_keeps_types(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    users = read_table(data.users, USERS)
    parquet = tmp_path / "users.parquet"
    users.to_parquet(parquet)
    again = read_table(parquet, USERS)
    pd.testing.assert_frame_equal(again, users)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown format '\.xlsx'"):
        read_table(path, USERS)


def test_every_bad_value_is_counted(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    _replace(data.revenue, "49.00,USD,o1", "x,USD,o1")
    _replace(data.revenue, "49.00,USD,o2", "y,USD,o2")
    with pytest.raises(ContractError, match="1 more row"):
        _load(data)


def test_optional_numeric_column_may_be_absent(tmp_path: Path) -> None:
    """An events file without the optional value column reads as empty values."""
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,occurred_at,event\nu1,2026-10-01T10:05:00Z,created_project\n",
        encoding="utf-8",
    )
    events = read_table(path, EVENTS)
    assert events["value"].isna().all()
    assert str(events["value"].dtype) == "float64"


def test_a_fixed_rerun_clears_the_days_quarantine_file(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    lenient = _strict(data, max_share=0.5)
    state = tmp_path / "state"
    _replace(data.revenue, "49.00,USD,o2", "-60.00,USD,o2")
    first = load_inputs(lenient, currency="USD", state_dir=state, run_label="day")
    quarantined = state / "quarantine" / "day" / "revenue.csv"
    assert first.audits["revenue"].quarantined == 1
    assert "-60.00" in quarantined.read_text(encoding="utf-8")

    _replace(data.revenue, "-60.00,USD,o2", "49.00,USD,o2")
    second = load_inputs(lenient, currency="USD", state_dir=state, run_label="day")
    assert second.audits["revenue"].quarantined == 0
    assert not quarantined.exists()


@pytest.mark.parametrize(
    "fx",
    [
        {"rates": {"usd": 0.9}},
        {"source": {"path": "fx.csv"}},
    ],
    ids=["config rates", "fx file"],
)
def test_lower_case_currency_codes_are_read_upper_case(
    load: Loader, tmp_path: Path, fx: dict[str, Any]
) -> None:
    # Stripe's exports write currencies in lower case.
    revenue = REVENUE_CSV.replace(",EUR,o1", ",eur,o1").replace(",EUR,o2", ",Usd,o2")
    rates = write(tmp_path, "fx.csv", "currency,rate\nusd,0.9\n")
    if "source" in fx:
        fx = {"source": {"path": str(rates)}}

    inputs = load(tables={"revenue": revenue}, fx=fx, max_share=0)

    assert inputs.revenue["currency"].tolist() == ["EUR"] * 4
    assert inputs.revenue["amount"].tolist() == pytest.approx([10.5, 18.0, 30, 40])


@pytest.mark.parametrize("code", ["us", "usdx", "u5d", "€"])
def test_a_currency_that_is_not_three_letters_is_still_refused(
    load: Loader, code: str
) -> None:
    revenue = REVENUE_CSV.replace(",EUR,o2", f",{code},o2")

    inputs = load(tables={"revenue": revenue})

    (bad,) = pd.read_csv(inputs.audits["revenue"].file, dtype="string").itertuples()
    assert (bad.quarantine_column, bad.quarantine_value) == ("currency", code)
    assert "is not an ISO 4217 code" in bad.quarantine_reason


def test_lower_case_country_codes_are_read_upper_case(load: Loader) -> None:
    users = USERS_CSV.replace(",FR,smb,c1\n", ", fr ,smb,c1\n", 1)
    users = users.replace(",DE,50+,", ",De,50+,")

    inputs = load(tables={"users": users}, max_share=0)

    assert inputs.users["country"].tolist() == ["FR", "DE", "FR", "DE"]


@pytest.mark.parametrize("country", ["fra", "france", "f1", "ü"])
def test_a_country_that_is_not_two_letters_is_still_refused(
    load: Loader, country: str
) -> None:
    users = USERS_CSV.replace(",DE,50+,", f",{country},50+,")

    inputs = load(tables={"users": users})

    (bad,) = pd.read_csv(inputs.audits["users"].file, dtype="string").itertuples()
    assert (bad.quarantine_column, bad.quarantine_value) == ("country", country)
    assert "is not an ISO 3166 alpha-2 code such as 'FR'" in bad.quarantine_reason


def test_a_parquet_column_without_a_zone_is_told_to_get_a_zoned_type(
    tmp_path: Path,
) -> None:
    users = read_table(write_dataset(tmp_path).users, USERS)
    parquet = tmp_path / "users.parquet"
    users.assign(signup_at=users["signup_at"].dt.tz_localize(None)).to_parquet(parquet)

    with pytest.raises(ContractError) as refused:
        read_table(parquet, USERS)

    message = str(refused.value)
    assert "column 'signup_at', row 1" in message
    assert (
        "has no time zone; store the column as timestamps with a time zone (UTC) "
        "or set data.naive_time_zone in the config"
    ) in message


@pytest.mark.parametrize("zone", ["UTC", None])
def test_a_parquet_time_past_2262_is_refused_not_a_crash(
    tmp_path: Path, zone: str | None
) -> None:
    users = read_table(write_dataset(tmp_path).users, USERS)
    far = pd.Series(
        pd.to_datetime(["2300-01-01T00:00:00"] * len(users)).as_unit("us"),
        index=users.index,
    )
    column = far if zone is None else far.dt.tz_localize(zone)
    parquet = tmp_path / "users.parquet"
    users.assign(activated_at=column).to_parquet(parquet)

    with pytest.raises(ContractError) as refused:
        read_table(parquet, USERS, naive_time_zone="UTC")

    message = str(refused.value)
    assert "column 'activated_at', row 1" in message
    assert "is outside the years 1678 to 2261" in message


def test_revenue_of_a_quarantined_user_points_at_the_users_row(
    tmp_path: Path,
) -> None:
    data = write_dataset(tmp_path)
    lenient = _strict(data, max_share=0.9)
    state = tmp_path / "state"
    _replace(data.users, "u3,2026-10-03T10:00:00Z", "u3,03/10/2026 10h")
    _replace(data.revenue, "u1,2026-11-01T12:00:00Z", "u9,2026-11-01T12:00:00Z")

    inputs = load_inputs(lenient, currency="USD", state_dir=state, run_label="day")

    assert inputs.audits["revenue"].quarantined == 2
    rows = pd.read_csv(state / "quarantine" / "day" / "revenue.csv", dtype=str)
    reasons = dict(zip(rows["user_id"], rows["quarantine_reason"], strict=True))
    assert reasons["u9"] == "has revenue but is not in the users table"
    assert "its user's row was quarantined" in reasons["u3"]
    assert f"{data.users} line 4" in reasons["u3"]
    assert "signup_at" in reasons["u3"]
    assert "not a timestamp" in reasons["u3"]


def test_revenue_before_sign_up_names_the_sign_up_and_its_line(tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    _replace(data.revenue, "u3,2026-10-04T08:00:00Z", "u3,2026-10-01T08:00:00Z")

    with pytest.raises(ContractError) as caught:
        _load(data)

    assert (
        "'2026-10-01T08:00:00Z' is on a day before its user's sign-up day "
        f"(2026-10-03 UTC, signup_at at {data.users} line 4)"
    ) in str(caught.value)
