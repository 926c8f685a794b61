"""Malformed inputs: each is refused with an error or quarantined, never lost.

Every case names what it breaks, the table and the text it reads; a
quarantine case then checks the message names source, column, line and value,
that the quarantine file holds the row with its reason, that the counts add
up (rows in = kept + quarantined), and that strict mode (``max_share: 0``)
refuses the same input with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from connectors.exceptions import ContractError
from connectors.quarantine import percent
from tests.connectors.conftest import (
    BASE,
    REVENUE_CSV,
    STATS_CSV,
    USERS_CSV,
    Loader,
    replace_row,
)


@dataclass(frozen=True)
class Bad:
    """A table with one or more bad rows, and what the first one must say."""

    table: str
    text: str
    column: str
    row: int
    value: str
    reason: str
    count: int = 1


def _rev(row: int, line: str) -> str:
    return replace_row(REVENUE_CSV, row, line)


def _users(row: int, line: str) -> str:
    return replace_row(USERS_CSV, row, line)


def _stats(row: int, line: str) -> str:
    return replace_row(STATS_CSV, row, line)


QUARANTINED = {
    "amount is text": Bad(
        "revenue",
        _rev(2, "u2,2026-02-02T00:00:00Z,twenty,EUR,o2"),
        "amount",
        2,
        "twenty",
        "is not a number",
    ),
    "timestamp is text": Bad(
        "revenue",
        _rev(3, "u3,last tuesday,30,EUR,o3"),
        "occurred_at",
        3,
        "last tuesday",
        "is not a timestamp",
    ),
    "timestamp an export's placeholder far back": Bad(
        "revenue",
        _rev(3, "u3,0001-01-01T00:00:00Z,30,EUR,o3"),
        "occurred_at",
        3,
        "0001-01-01T00:00:00Z",
        "is outside the years 1678 to 2261",
    ),
    "zone-less timestamp past 2262": Bad(
        "revenue",
        _rev(3, "u3,2300-01-01 00:00:00,30,EUR,o3"),
        "occurred_at",
        3,
        "2300-01-01 00:00:00",
        "is outside the years 1678 to 2261",
    ),
    "date an export's placeholder far ahead": Bad(
        "campaign_stats",
        _stats(1, "9999-12-31,c1,Search FR,100,5,200,TARGET_CPA,20,"),
        "date",
        1,
        "9999-12-31",
        "is outside the years 1678 to 2261",
    ),
    "conversions is a date": Bad(
        "campaign_stats",
        _stats(1, "2026-02-01,c1,Search FR,100,2026-02-01,200,TARGET_CPA,20,"),
        "conversions",
        1,
        "2026-02-01",
        "is not a number",
    ),
    "date is not a date": Bad(
        "campaign_stats",
        _stats(2, "01/02/2026x,c2,Search DE,80,4,100,TARGET_ROAS,,1.5"),
        "date",
        2,
        "01/02/2026x",
        "is not a date",
    ),
    "naive timestamp among zoned ones": Bad(
        "users",
        _users(2, "u2,2026-01-03 10:00:00,2026-01-03T12:00:00Z,DE,freelancer,c2"),
        "signup_at",
        2,
        "2026-01-03 10:00:00",
        "has no time zone",
    ),
    "activation in the future": Bad(
        "users",
        _users(4, "u4,2026-01-05T10:00:00Z,2027-01-06T10:00:00Z,DE,50+,c2"),
        "activated_at",
        4,
        "2027-01-06T10:00:00Z",
        "is in the future",
    ),
    "activation years before sign-up": Bad(
        "users",
        _users(3, "u3,2026-01-04T10:00:00+01:00,2020-05-01T08:00:00Z,FR,smb,c1"),
        "activated_at",
        3,
        "2020-05-01T08:00:00Z",
        "is before the user's sign-up, signup_at '2026-01-04T09:00:00Z' (UTC); "
        "an activation may precede its sign-up by 5 minutes at most",
    ),
    "revenue in the future": Bad(
        "revenue",
        _rev(1, "u1,2031-02-01T00:00:00Z,10.5,EUR,o1"),
        "occurred_at",
        1,
        "2031-02-01T00:00:00Z",
        "is in the future",
    ),
    "campaign day in the future": Bad(
        "campaign_stats",
        _stats(2, "2026-03-02,c2,Search DE,80,4,100,TARGET_ROAS,,1.5"),
        "date",
        2,
        "2026-03-02",
        "is in the future (after 2026-03-01, today in UTC)",
    ),
    "order id twice with different amounts": Bad(
        "revenue",
        REVENUE_CSV + "u2,2026-02-02T00:00:00Z,25,EUR,o2\n",
        "order_id",
        5,
        "o2",
        "appears more than once with different values (first at",
    ),
    "user id twice": Bad(
        "users",
        USERS_CSV + "u1,2026-01-07T10:00:00Z,,FR,smb,c1\n",
        "user_id",
        5,
        "u1",
        "appears more than once",
    ),
    "refund of a user who paid nothing": Bad(
        "revenue",
        _rev(4, "u4,2026-02-04T00:00:00Z,-40,EUR,o4"),
        "amount",
        4,
        "-40",
        "is a refund of 40.00 EUR, more than user 'u4' had paid by then "
        "(0.00 EUR net before it)",
    ),
    "refund a cent and more above the payment": Bad(
        "revenue",
        REVENUE_CSV + "u4,2026-02-05T00:00:00Z,-40.02,EUR,r4\n",
        "amount",
        5,
        "-40.02",
        "is a refund of 40.02 EUR, more than user 'u4' had paid by then "
        "(40.00 EUR net before it)",
    ),
    "negative cost": Bad(
        "campaign_stats",
        _stats(2, "2026-02-01,c2,Search DE,-80,4,100,TARGET_ROAS,,1.5"),
        "cost",
        2,
        "-80",
        "is negative",
    ),
    "huge amount": Bad(
        "revenue",
        _rev(2, "u2,2026-02-02T00:00:00Z,400000000000,EUR,o2"),
        "amount",
        2,
        "400000000000",
        "is above data.max_amount",
    ),
    "amount beyond a float": Bad(
        "revenue",
        _rev(2, "u2,2026-02-02T00:00:00Z,1e999,EUR,o2"),
        "amount",
        2,
        "1e999",
        "is not a finite number",
    ),
    "unknown currency": Bad(
        "revenue",
        _rev(3, "u3,2026-02-03T00:00:00Z,30,XYZ,o3"),
        "currency",
        3,
        "XYZ",
        "has no exchange rate into EUR",
    ),
    "currency symbol instead of code": Bad(
        "revenue",
        _rev(1, "u1,2026-02-01T00:00:00Z,10.5,€,o1"),
        "currency",
        1,
        "€",
        "is not an ISO 4217 code",
    ),
    "country name instead of code": Bad(
        "users",
        _users(1, "u1,2026-01-01T10:00:00Z,2026-01-02T10:00:00Z,France,smb,c1"),
        "country",
        1,
        "France",
        "is not an ISO 3166 alpha-2 code",
    ),
    "unknown bidding strategy": Bad(
        "campaign_stats",
        _stats(1, "2026-02-01,c1,Search FR,100,5,200,TARGET_CPX,20,"),
        "bidding_strategy_type",
        1,
        "TARGET_CPX",
        "is not a Google Ads bidding strategy type",
    ),
    "empty required id": Bad(
        "revenue",
        _rev(2, ",2026-02-02T00:00:00Z,20,EUR,o2"),
        "user_id",
        2,
        "(empty)",
        "is empty, but a value is required",
    ),
    "revenue of an unknown user": Bad(
        "revenue",
        _rev(4, "u9,2026-02-04T00:00:00Z,40,EUR,o4"),
        "user_id",
        4,
        "u9",
        "has revenue but is not in the users table",
    ),
    "revenue from before its user's sign-up day": Bad(
        "revenue",
        _rev(1, "u1,2025-12-31T23:59:00Z,10.5,EUR,o1"),
        "occurred_at",
        1,
        "2025-12-31T23:59:00Z",
        "is on a day before its user's sign-up day (2026-01-01 UTC, signup_at at ",
    ),
    "truncated last line": Bad(
        "revenue",
        REVENUE_CSV + "u1,2026-02-09T00:00:00Z,1",
        "currency",
        5,
        "(empty)",
        "is empty, but a value is required",
    ),
    "two bad rows": Bad(
        "revenue",
        _rev(4, "u4,2026-02-04T00:00:00Z,-4,EUR,o4").replace(",20,", ",x,"),
        "amount",
        2,
        "x",
        "is not a number",
        count=2,
    ),
}


@pytest.mark.parametrize("case", QUARANTINED.values(), ids=QUARANTINED.keys())
def test_bad_rows_are_quarantined_with_their_reason(
    load: Loader, tmp_path: Path, case: Bad
) -> None:
    inputs = load(tables={case.table: case.text})

    audit = inputs.audits[case.table]
    source = str(tmp_path / "in" / f"{case.table}.csv")
    rows_in = case.text.count("\n") - 1 + (not case.text.endswith("\n"))
    assert audit.rows_in == rows_in
    assert audit.rows_in == audit.kept + audit.quarantined
    assert audit.quarantined == case.count
    assert audit.file is not None

    quarantine = pd.read_csv(audit.file, dtype="string", keep_default_na=False)
    first = quarantine.iloc[0]
    assert first["quarantine_source"] == source
    assert first["quarantine_column"] == case.column
    assert int(first["quarantine_row"]) == case.row
    # The header is line 1 and no case has a blank line or a quoted break.
    assert int(first["quarantine_line"]) == case.row + 1
    assert first["quarantine_value"] == ("" if case.value == "(empty)" else case.value)
    assert case.reason in first["quarantine_reason"]

    value = case.value if case.value == "(empty)" else repr(case.value)
    with pytest.raises(ContractError) as refused:
        load(tables={case.table: case.text}, max_share=0)
    message = str(refused.value)
    line = case.row + 1
    assert f"{source}: column {case.column!r}, line {line}: value {value}" in message
    assert case.reason in message
    assert "data.quarantine.max_share is 0: no bad row is accepted" in message


@pytest.mark.parametrize(
    ("zone", "kept"), [("UTC", True), ("Asia/Tokyo", True), ("America/New_York", False)]
)
def test_a_campaign_day_is_future_after_today_in_the_account_time_zone(
    load: Loader, zone: str, kept: bool
) -> None:
    """At 2026-03-01T00:00Z it is already 1 March in Tokyo, still 28 February
    in New York: a row of 1 March is kept in the first, set aside there."""
    stats = _stats(2, "2026-03-01,c2,Search DE,80,4,100,TARGET_ROAS,,1.5")

    inputs = load(tables={"campaign_stats": stats}, time_zone=zone)

    assert inputs.audits["campaign_stats"].quarantined == (0 if kept else 1)
    days = inputs.campaign_stats["date"].dt.strftime("%Y-%m-%d").tolist()
    assert ("2026-03-01" in days) is kept


def test_identical_repeated_rows_are_set_aside_without_failing(load: Loader) -> None:
    repeated = REVENUE_CSV + "u2,2026-02-02T00:00:00Z,20,EUR,o2\n"

    inputs = load(tables={"revenue": repeated}, max_share=0)

    audit = inputs.audits["revenue"]
    assert (audit.rows_in, audit.kept, audit.quarantined) == (5, 4, 1)
    assert (audit.duplicates, audit.bad) == (1, 0)
    assert inputs.revenue["order_id"].tolist() == ["o1", "o2", "o3", "o4"]
    assert audit.file is not None
    kept_aside = pd.read_csv(audit.file, dtype="string")
    assert kept_aside["quarantine_kind"].tolist() == ["duplicate"]
    assert "first at" in kept_aside["quarantine_reason"].iloc[0]


def test_revenue_earlier_on_the_sign_up_day_is_kept(load: Loader) -> None:
    # u1 signs up at 10:00 UTC; a payment stamped 00:00 that day, as a source
    # keeping dates only writes it, stays.
    revenue = _rev(1, "u1,2026-01-01T00:00:00Z,10.5,EUR,o1")

    inputs = load(tables={"revenue": revenue}, max_share=0)

    assert inputs.audits["revenue"].quarantined == 0
    assert inputs.revenue["order_id"].tolist() == ["o1", "o2", "o3", "o4"]


def test_extra_columns_are_kept_as_features(load: Loader) -> None:
    users = USERS_CSV.replace("campaign_id\n", "campaign_id,plan\n", 1)
    users = users.replace(",c1\n", ",c1,pro\n").replace(",c2\n", ",c2,free\n")

    inputs = load(tables={"users": users}, max_share=0)

    assert inputs.users["plan"].tolist() == ["pro", "free", "pro", "free"]
    assert inputs.audits["users"].quarantined == 0


def test_mixed_offsets_are_all_converted_to_utc(load: Loader) -> None:
    revenue = _rev(1, "u1,2026-02-01T02:00:00+02:00,10.5,EUR,o1")
    revenue = replace_row(revenue, 2, "u2,2026-02-01T19:00:00-05:00,20,EUR,o2")

    inputs = load(tables={"revenue": revenue}, max_share=0)

    assert inputs.revenue["occurred_at"].iloc[:2].tolist() == [
        pd.Timestamp("2026-02-01T00:00:00Z"),
        pd.Timestamp("2026-02-02T00:00:00Z"),
    ]


def test_naive_timestamps_take_the_configured_zone(load: Loader) -> None:
    revenue = _rev(1, "u1,2026-02-01 10:00:00,10.5,EUR,o1")

    inputs = load(
        tables={"revenue": revenue}, max_share=0, naive_time_zone="Europe/Paris"
    )

    assert inputs.revenue["occurred_at"].iloc[0] == pd.Timestamp("2026-02-01T09:00Z")


def test_foreign_currency_is_converted_at_the_configured_rate(load: Loader) -> None:
    revenue = _rev(2, "u2,2026-02-02T00:00:00Z,20,USD,o2")

    inputs = load(tables={"revenue": revenue}, max_share=0, fx={"rates": {"USD": 0.9}})

    row = inputs.revenue.iloc[1]
    assert (row["amount"], row["currency"]) == (pytest.approx(18.0), "EUR")
    assert (row["amount_original"], row["currency_original"]) == (20.0, "USD")


def test_rates_can_come_from_an_fx_table(load: Loader, tmp_path: Path) -> None:
    fx = tmp_path / "fx.csv"
    fx.write_text("currency,rate\nUSD,0.5\nGBP,1.2\n", encoding="utf-8")
    revenue = _rev(2, "u2,2026-02-02T00:00:00Z,20,GBP,o2")

    inputs = load(tables={"revenue": revenue}, max_share=0, fx={"source": fx})

    assert inputs.revenue["amount"].iloc[1] == pytest.approx(24.0)


def test_too_many_bad_rows_fail_the_run_and_keep_the_quarantine(
    load: Loader, tmp_path: Path
) -> None:
    revenue = _rev(1, "u1,2026-02-01T00:00:00Z,-1,EUR,o1")
    revenue = replace_row(revenue, 3, "u3,2026-02-03T00:00:00Z,-3,EUR,o3")

    with pytest.raises(ContractError) as refused:
        load(tables={"revenue": revenue}, max_share=0.25)

    message = str(refused.value)
    assert (
        "column 'amount', line 2: value '-1' is a refund of 1.00 EUR, more than "
        "user 'u1' had paid by then" in message
    )
    assert "2 bad row(s) of 4 (50.00%), above data.quarantine.max_share 25.00%" in (
        message
    )
    quarantine = tmp_path / "state" / "quarantine" / "test" / "revenue.csv"
    assert str(quarantine) in message
    assert len(pd.read_csv(quarantine)) == 2


def test_bad_rows_under_the_limit_only_warn(
    load: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    revenue = _rev(1, "u1,2026-02-01T00:00:00Z,-1,EUR,o1")

    inputs = load(tables={"revenue": revenue}, max_share=0.5)

    assert inputs.revenue["order_id"].tolist() == ["o2", "o3", "o4"]
    assert (
        "revenue: 1 bad of 4 row(s) quarantined (25.00%, limit 50.00%)" in caplog.text
    )


def test_base_tables_load_cleanly(load: Loader) -> None:
    inputs = load(max_share=0)

    assert inputs.row_counts() == {"users": 4, "revenue": 4, "campaign_stats": 2}
    assert set(inputs.fingerprints) == set(BASE)
    assert all(audit.quarantined == 0 for audit in inputs.audits.values())


def test_dated_rates_apply_from_their_date(load: Loader, tmp_path: Path) -> None:
    fx = tmp_path / "fx.csv"
    fx.write_text(
        "currency,date,rate\nUSD,2026-01-01,0.5\nUSD,2026-02-02,0.8\n", encoding="utf-8"
    )
    revenue = _rev(1, "u1,2026-02-01T00:00:00Z,10,USD,o1")
    revenue = replace_row(revenue, 2, "u2,2026-02-02T00:00:00Z,20,USD,o2")
    revenue = replace_row(revenue, 3, "u3,2025-12-01T00:00:00Z,30,USD,o3")

    inputs = load(tables={"revenue": revenue}, fx={"source": fx})

    assert inputs.revenue["amount"].tolist() == pytest.approx([5.0, 16.0, 40.0])
    audit = inputs.audits["revenue"]
    assert (audit.rows_in, audit.kept, audit.quarantined) == (4, 3, 1)
    assert audit.file is not None
    bad = pd.read_csv(audit.file, dtype="string").iloc[0]
    assert (bad["quarantine_row"], bad["quarantine_value"]) == ("3", "USD")
    assert "no exchange rate into EUR on the row's date" in bad["quarantine_reason"]


def test_an_fx_table_with_two_rates_a_day_is_refused(
    load: Loader, tmp_path: Path
) -> None:
    fx = tmp_path / "fx.csv"
    fx.write_text("currency,rate\nUSD,0.5\nUSD,0.8\n", encoding="utf-8")

    with pytest.raises(ContractError) as refused:
        load(fx={"source": fx})

    assert f"{fx}: column 'currency', row 2: value 'USD' has two rates" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("share", "shown"),
    [(0.0, "0.00%"), (0.5, "50.00%"), (0.0001, "0.01%"), (2e-6, "0.0002%")],
)
def test_a_share_of_bad_rows_is_never_shown_as_zero(share: float, shown: str) -> None:
    assert percent(share) == shown


def test_local_times_in_a_clock_change_are_kept_with_the_earlier_offset(
    load: Loader, caplog: pytest.LogCaptureFixture
) -> None:
    # Paris clocks show 02:30 twice on 2025-10-26 (CEST, then CET) and never
    # on 2025-03-30 (02:00 CET becomes 03:00 CEST).
    users = _users(1, "u1,2025-10-26 02:30:00,2026-01-02T10:00:00Z,FR,smb,c1")
    users = replace_row(
        users, 2, "u2,2025-03-30 02:30:00,2026-01-03T12:00:00Z,DE,freelancer,c2"
    )

    with caplog.at_level("INFO", logger="connectors.contracts"):
        inputs = load(
            tables={"users": users}, max_share=0, naive_time_zone="Europe/Paris"
        )

    assert inputs.audits["users"].quarantined == 0
    assert inputs.users["signup_at"].iloc[:2].tolist() == [
        pd.Timestamp("2025-10-26T00:30:00Z"),
        pd.Timestamp("2025-03-30T01:30:00Z"),
    ]
    assert (
        "column 'signup_at': 2 local time(s) fall in a clock change of "
        "Europe/Paris (repeated or skipped) and were read with the offset before it"
    ) in caplog.text


def test_only_an_activation_beyond_clock_skew_before_sign_up_is_set_aside(
    load: Loader,
) -> None:
    # u1 signs up at 10:00:00 UTC and the product stamped its activation a few
    # seconds earlier on another clock; u2's activation is six minutes early.
    users = _users(1, "u1,2026-01-01T10:00:00Z,2026-01-01T09:59:57Z,FR,smb,c1")
    users = replace_row(
        users, 2, "u2,2026-01-03T10:00:00Z,2026-01-03T09:54:00Z,DE,freelancer,c2"
    )

    inputs = load(tables={"users": users})

    assert inputs.users["user_id"].tolist() == ["u1", "u3", "u4"]
    assert inputs.users["activated_at"].iloc[0] == pd.Timestamp("2026-01-01T09:59:57Z")
    audit = inputs.audits["users"]
    assert audit.file is not None
    (bad,) = pd.read_csv(audit.file, dtype="string").itertuples()
    assert (bad.quarantine_column, bad.quarantine_value) == (
        "activated_at",
        "2026-01-03T09:54:00Z",
    )


def test_a_foreign_currency_without_any_rate_configured_names_the_setting(
    load: Loader,
) -> None:
    revenue = _rev(2, "u2,2026-02-02T00:00:00Z,20,usd,o2")

    with pytest.raises(ContractError) as refused:
        load(tables={"revenue": revenue}, max_share=0)

    message = str(refused.value)
    assert (
        "value 'usd' has no exchange rate into EUR: no rates are configured; set "
        "data.fx.rates (USD: the EUR value of one USD) or data.fx.source"
    ) in message
    assert "rates for" not in message
