"""What a quarantine file holds: where each row is, and the row as it was read.

A CSV row is placed by the line an editor shows (the header is line 1, blank
lines and line breaks inside quoted values count); every row, whichever rule
set it aside and when, is written with the text its file had, so that it can
be fixed and fed again. Parquet and SQL sources have rows, not lines.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.exceptions import ContractError
from connectors.origins import CsvOrigin
from tests.connectors.conftest import REVENUE_CSV, Loader, write

#: Revenue as an export might write it: local offsets, two decimals, a
#: foreign currency, a blank line, and a quoted note spanning two lines.
REVENUE_EXPORT = """user_id,occurred_at,amount,currency,order_id,note
u1,2026-02-01 09:30:00+01:00,10.50,EUR,o1,
u2,2026-02-02 10:00:00-05:00,20.00,USD,o2,"gift
card"

u9,2026-02-03 08:15:00+01:00,30.00,USD,o3,unknown user
u4,2026-02-04 00:00:00+00:00,-4.00,EUR,o4,refund
u3,2026-02-05 12:00:00+02:00,7.25,EUR,o2,same order id
"""
#: The line each data row starts on, as an editor numbers them.
LINES = {"o1": 2, "o2": 3, "o3": 6, "o4": 7}


def _quarantine(load: Loader, **tables: object) -> pd.DataFrame:
    inputs = load(tables=tables, fx={"rates": {"USD": 0.9}})
    audit = inputs.audits["revenue"]
    assert audit.file is not None
    return pd.read_csv(audit.file, dtype="string", keep_default_na=False)


def test_csv_rows_are_placed_by_their_line_in_the_file(load: Loader) -> None:
    quarantine = _quarantine(load, revenue=REVENUE_EXPORT)

    placed = {
        row["quarantine_reason"].split(" ")[0]: (
            int(row["quarantine_row"]),
            int(row["quarantine_line"]),
        )
        for _, row in quarantine.iterrows()
    }
    assert placed == {"has": (3, 6), "is": (4, 7), "appears": (5, 8)}
    repeat = quarantine[quarantine["quarantine_column"].eq("order_id")].iloc[0]
    assert repeat["quarantine_reason"].endswith(
        f"(first at {repeat['quarantine_source']} line {LINES['o2']})"
    )


def test_quarantined_rows_keep_the_text_they_were_read_with(load: Loader) -> None:
    source = pd.read_csv(
        pd.io.common.StringIO(REVENUE_EXPORT), dtype="string", keep_default_na=False
    )

    quarantine = _quarantine(load, revenue=REVENUE_EXPORT)

    assert list(quarantine.columns[7:]) == list(source.columns)
    for _, row in quarantine.iterrows():
        as_read = source[source["note"].eq(row["note"])].iloc[0]
        assert row[source.columns].tolist() == as_read.tolist()
        assert row["quarantine_value"] == as_read[row["quarantine_column"]]
    unknown = quarantine[quarantine["quarantine_column"].eq("user_id")].iloc[0]
    assert (unknown["occurred_at"], unknown["amount"], unknown["currency"]) == (
        "2026-02-03 08:15:00+01:00",
        "30.00",
        "USD",
    )


def test_the_refusal_names_the_line_too(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(ContractError) as refused:
        load(
            tables={"revenue": REVENUE_EXPORT}, fx={"rates": {"USD": 0.9}}, max_share=0
        )

    assert (
        f"{tmp_path / 'in' / 'revenue.csv'}: column 'user_id', line 6: value 'u9' "
        "has revenue but is not in the users table; 2 more row(s) have problems."
    ) in str(refused.value)


def test_a_compressed_csv_is_placed_by_its_lines(load: Loader, tmp_path: Path) -> None:
    path = write(tmp_path / "exports", "revenue.csv.gz", REVENUE_EXPORT)
    assert gzip.decompress(path.read_bytes()).decode() == REVENUE_EXPORT

    quarantine = _quarantine(load, revenue={"path": path})

    assert quarantine["quarantine_line"].astype(int).tolist() == [6, 7, 8]
    assert quarantine["amount"].tolist() == ["30.00", "-4.00", "7.25"]


def test_parquet_rows_have_row_numbers_and_their_stored_values(
    load: Loader, tmp_path: Path
) -> None:
    frame = pd.read_csv(pd.io.common.StringIO(REVENUE_CSV), dtype="string")
    frame.loc[1, "user_id"] = "u9"
    frame.loc[3, "amount"] = "-40"
    frame["amount"] = frame["amount"].astype(float)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).dt.tz_convert(
        "Europe/Paris"
    )
    path = tmp_path / "revenue.parquet"
    frame.to_parquet(path, row_group_size=2)

    quarantine = _quarantine(load, revenue={"path": path})

    assert quarantine["quarantine_row"].tolist() == ["2", "4"]
    assert quarantine["quarantine_line"].tolist() == ["", ""]
    # The row set aside late (unknown user) reads as the one the first checks
    # set aside: the stored time zone, not the UTC the checks convert to.
    assert quarantine["occurred_at"].tolist() == [
        "2026-02-02 01:00:00+01:00",
        "2026-02-04 01:00:00+01:00",
    ]
    assert quarantine["amount"].tolist() == ["20.0", "-40.0"]


def test_a_sql_row_shows_its_amount_before_conversion(
    load: Loader, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    frame = pd.read_csv(pd.io.common.StringIO(REVENUE_CSV), dtype="string")
    frame.loc[2, ["user_id", "currency"]] = ["u9", "USD"]
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        frame.to_sql("revenue", connection, index=False)
    engine.dispose()

    inputs = load(
        tables={"revenue": {"table": "revenue"}}, url=url, fx={"rates": {"USD": 0.9}}
    )

    audit = inputs.audits["revenue"]
    assert audit.file is not None
    bad = pd.read_csv(audit.file, dtype="string", keep_default_na=False).iloc[0]
    assert (bad["quarantine_row"], bad["quarantine_line"]) == ("3", "")
    assert (bad["amount"], bad["currency"]) == ("30.0", "USD")
    assert "amount_original" not in bad.index and "currency_original" not in bad.index


#: Texts whose lines and records differ, and the line of each data row.
LAYOUTS = {
    "crlf and blank lines": ("a,b\r\n\r\n1,2\r\n  \r\n3,4\r\n", ",", [3, 5]),
    "old mac line ends": ("a,b\r1,2\r\r3,4\r", ",", [2, 4]),
    "blank lines before the header": ("\n\na,b\n1,2\n", ",", [4]),
    "byte order mark": ("\ufeffa,b\n1,2\n3,4", ",", [2, 3]),
    "quoted empty value": ('a,b\n""\n3,4\n', ",", [2, 3]),
    "tab line in a tsv": ("a\tb\n1\t2\n\t\n  \n3\t4\n", "\t", [2, 3, 5]),
    "quoted breaks": ('a,b\n"x\r\ny\nz",2\n3,"4\n"\n5,6\n', ",", [2, 5, 7]),
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_rows_are_found_where_pandas_reads_them(
    tmp_path: Path, layout: tuple[str, str, list[int]]
) -> None:
    text, sep, lines = layout
    path = tmp_path / ("table.tsv" if sep == "\t" else "table.csv")
    path.write_bytes(text.encode("utf-8"))
    read = pd.read_csv(
        path, sep=sep, dtype="string", keep_default_na=False, na_values=[""]
    )
    origin = CsvOrigin(path, "utf-8", sep, tuple(read.columns))
    rows = list(range(len(read), 0, -1))

    located = origin.locate(rows)

    assert located is not None and located.lines is not None
    assert located.lines.tolist() == lines[::-1]
    pd.testing.assert_frame_equal(
        located.raw, read.iloc[::-1].reset_index(drop=True), check_dtype=False
    )
