"""File sources: structural problems are errors, globs and compression work."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from connectors.contracts import REVENUE
from connectors.exceptions import ContractError, InputError
from connectors.files import file_chunks, read_source, read_table
from connectors.sources import FileSource
from tests.connectors.conftest import REVENUE_CSV, Loader, write


def test_missing_column_names_the_file_and_the_column(
    load: Loader, tmp_path: Path
) -> None:
    no_currency = "\n".join(
        line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1]
        for line in REVENUE_CSV.splitlines()
    )

    with pytest.raises(ContractError) as refused:
        load(tables={"revenue": no_currency})

    message = str(refused.value)
    assert str(tmp_path / "in" / "revenue.csv") in message
    assert "lacks required column(s) currency" in message


def test_missing_file_is_an_error(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"revenue file does not exist"):
        load(tables={"revenue": {"path": tmp_path / "nowhere.csv"}})


def test_empty_file_is_an_error(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(InputError) as refused:
        load(tables={"revenue": ""})

    assert f"{tmp_path / 'in' / 'revenue.csv'}: the revenue file is empty" in str(
        refused.value
    )


def test_header_without_rows_is_an_error(load: Loader) -> None:
    with pytest.raises(InputError, match=r"the users file has no rows"):
        load(tables={"users": "user_id,signup_at,activated_at,country,segment\n"})


def test_bytes_outside_the_encoding_are_an_error(load: Loader, tmp_path: Path) -> None:
    latin = REVENUE_CSV.replace("u3,", "Zoë,").encode("latin-1")

    with pytest.raises(InputError) as refused:
        load(tables={"revenue": latin})

    message = str(refused.value)
    assert str(tmp_path / "in" / "revenue.csv") in message
    assert "is not UTF-8 text" in message
    line = 1 + REVENUE_CSV.splitlines().index(
        next(row for row in REVENUE_CSV.splitlines() if row.startswith("u3,"))
    )
    assert f"(byte 0xeb on line {line}, counting the header as line 1)" in message
    assert "data.revenue: {path: ..., encoding: cp1252}" in message


def test_a_row_with_an_extra_field_names_its_line(load: Loader) -> None:
    lines = REVENUE_CSV.splitlines()
    lines[2] += ",surplus"

    with pytest.raises(InputError) as refused:
        load(tables={"revenue": "\n".join(lines) + "\n"})

    message = str(refused.value)
    assert "cannot read the revenue file: " in message
    assert "in line 3" in message and "count the header as line 1" in message
    assert "after data row" not in message


def test_a_configured_encoding_reads_the_same_bytes(
    load: Loader, tmp_path: Path
) -> None:
    latin = REVENUE_CSV.replace("u3,", "Zoë,").encode("latin-1")
    path = write(tmp_path / "other", "revenue.csv", latin)

    inputs = load(tables={"revenue": {"path": path, "encoding": "latin-1"}})

    assert inputs.audits["revenue"].quarantined == 1
    assert inputs.audits["revenue"].rows_in == 4


def test_truncated_gzip_is_an_error(load: Loader, tmp_path: Path) -> None:
    whole = gzip.compress((REVENUE_CSV * 200).encode())
    path = tmp_path / "cut" / "revenue.csv.gz"
    path.parent.mkdir()
    path.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(InputError) as refused:
        load(tables={"revenue": {"path": path}})

    assert f"{path}: cannot read the revenue file" in str(refused.value)


def test_truncated_parquet_is_an_error(load: Loader, tmp_path: Path) -> None:
    path = tmp_path / "cut" / "revenue.parquet"
    path.parent.mkdir()
    pd.read_csv(pd.io.common.StringIO(REVENUE_CSV)).to_parquet(path)
    path.write_bytes(path.read_bytes()[:-30])

    with pytest.raises(InputError) as refused:
        load(tables={"revenue": {"path": path}})

    assert f"{path}: cannot read the revenue file" in str(refused.value)


def test_unknown_format_is_an_error(load: Loader, tmp_path: Path) -> None:
    path = write(tmp_path, "revenue.xlsx", REVENUE_CSV)

    with pytest.raises(InputError, match=r"unknown format '.xlsx'"):
        load(tables={"revenue": {"path": path}})


def test_glob_without_match_is_an_error(load: Loader, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no revenue file matches"):
        load(tables={"revenue": {"path": tmp_path / "exports" / "rev-*.csv"}})


def test_a_glob_of_compressed_files_names_the_file_and_row(
    load: Loader, tmp_path: Path
) -> None:
    header, *rows = REVENUE_CSV.splitlines()
    write(tmp_path / "exports", "rev-01.csv.gz", "\n".join([header, *rows[:2]]))
    second = "\n".join([header, rows[2], rows[3].replace(",40,", ",-40,")])
    write(tmp_path / "exports", "rev-02.csv.gz", second)

    inputs = load(tables={"revenue": {"path": tmp_path / "exports" / "rev-*.csv.gz"}})

    audit = inputs.audits["revenue"]
    assert (audit.rows_in, audit.kept, audit.quarantined) == (4, 3, 1)
    assert audit.file is not None
    bad = pd.read_csv(audit.file, dtype="string").iloc[0]
    assert bad["quarantine_source"] == str(tmp_path / "exports" / "rev-02.csv.gz")
    assert (bad["quarantine_row"], bad["quarantine_value"]) == ("2", "-40")


def test_parquet_with_typed_columns_is_read(tmp_path: Path) -> None:
    frame = pd.read_csv(pd.io.common.StringIO(REVENUE_CSV))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    path = tmp_path / "revenue.parquet"
    frame.to_parquet(path)

    table = read_table(path, REVENUE)

    assert str(table["occurred_at"].dtype) == "datetime64[ns, UTC]"
    assert table["amount"].sum() == pytest.approx(100.5)


def test_chunks_number_rows_across_the_whole_file(tmp_path: Path) -> None:
    header, *rows = REVENUE_CSV.splitlines()
    rows[3] = rows[3].replace(",40,", ",forty,")
    path = write(tmp_path, "revenue.csv", "\n".join([header, *rows]) + "\n")

    read = read_source(
        file_chunks(FileSource(path=path), "revenue", chunk_rows=1),
        REVENUE,
        now=pd.Timestamp("2026-03-01T00:00Z"),
    )

    assert read.rows_in == len(read.kept) + len(read.rejected) == 4
    assert read.rejected["quarantine_row"].tolist() == [4]
