"""SQL sources on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import sqlalchemy as sa

from connectors.contracts import REVENUE
from connectors.exceptions import InputError
from connectors.files import read_source
from connectors.sources import SqlSource
from connectors.warehouse import SqlReader
from tests.connectors.conftest import REVENUE_CSV, Loader

NOW = pd.Timestamp("2026-03-01T00:00Z")


def _put(url: str, name: str, text: str) -> None:
    engine = sa.create_engine(url)
    frame = pd.read_csv(pd.io.common.StringIO(text), dtype="string")
    with engine.begin() as connection:
        frame.to_sql(name, connection, index=False)
    engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def test_a_table_with_bad_rows_is_quarantined_naming_the_table(
    load: Loader, db_url: str
) -> None:
    _put(db_url, "revenue", REVENUE_CSV.replace(",30,", ",-30,"))

    inputs = load(tables={"revenue": {"table": "revenue"}}, url=db_url)

    audit = inputs.audits["revenue"]
    assert (audit.rows_in, audit.kept, audit.quarantined) == (4, 3, 1)
    assert audit.file is not None
    bad = pd.read_csv(audit.file, dtype="string").iloc[0]
    assert bad["quarantine_source"] == f"{_shown(db_url)} table revenue"
    assert (bad["quarantine_column"], bad["quarantine_row"]) == ("amount", "3")
    # A SQL row shows its checked values: the amount as a number.
    assert float(bad["quarantine_value"]) == -30
    assert "more than user 'u3' had paid" in bad["quarantine_reason"]


def test_a_query_is_read_in_chunks(load: Loader, db_url: str) -> None:
    _put(db_url, "sales", REVENUE_CSV.replace("order_id", "invoice"))
    query = (
        "select user_id, occurred_at, amount, currency, invoice as order_id "
        "from sales order by invoice"
    )

    inputs = load(
        tables={"revenue": {"query": query, "chunk_rows": 3}}, url=db_url, max_share=0
    )

    assert inputs.revenue["order_id"].tolist() == ["o1", "o2", "o3", "o4"]
    assert inputs.audits["revenue"].rows_in == 4


def test_lower_case_currency_codes_are_read_upper_case(
    load: Loader, db_url: str
) -> None:
    # A warehouse loaded from Stripe keeps its lower-case currencies.
    _put(db_url, "revenue", REVENUE_CSV.replace(",EUR,", ",eur,"))
    _put(db_url, "fx", "currency,rate\nusd,0.9\n")
    _execute(db_url, "update revenue set currency = 'usd' where order_id = 'o2'")

    inputs = load(
        tables={"revenue": {"table": "revenue"}},
        url=db_url,
        fx={"source": {"table": "fx"}},
        max_share=0,
    )

    revenue = inputs.revenue.sort_values("order_id")
    assert revenue["currency"].tolist() == ["EUR"] * 4
    assert revenue["amount"].tolist() == pytest.approx([10.5, 18.0, 30, 40])


def test_a_missing_table_is_an_error_naming_it(load: Loader, db_url: str) -> None:
    with pytest.raises(InputError) as refused:
        load(tables={"revenue": {"table": "no_such_table"}}, url=db_url)

    message = str(refused.value)
    assert f"{_shown(db_url)} table no_such_table" in message
    assert "the database refused the revenue read after 0 row(s)" in message
    assert "no_such_table" in message.split("row(s):")[1]


def test_a_broken_query_is_an_error(load: Loader, db_url: str) -> None:
    _put(db_url, "revenue", REVENUE_CSV)

    with pytest.raises(InputError, match=r"the database refused the revenue read"):
        load(tables={"revenue": {"query": "select amount frm revenue"}}, url=db_url)


def test_a_query_naming_a_missing_column_is_an_error(load: Loader, db_url: str) -> None:
    _put(db_url, "revenue", REVENUE_CSV)

    with pytest.raises(InputError) as refused:
        load(
            tables={"revenue": {"query": "select amount, refund from revenue"}},
            url=db_url,
        )

    assert "refund" in str(refused.value)


def test_an_unreachable_server_is_an_error_without_the_password(
    load: Loader,
) -> None:
    url = "postgresql+psycopg://reader:s3cret@127.0.0.1:1/dwh"

    with pytest.raises(InputError) as refused:
        load(tables={"revenue": {"table": "revenue", "url": url}})

    message = str(refused.value)
    assert "127.0.0.1:1/dwh table revenue" in message
    assert "s3cret" not in message


@pytest.mark.postgres
def test_a_connection_dropped_mid_read_is_an_error(postgres_url: str) -> None:
    _execute(
        postgres_url,
        "create table revenue as select 'u' || (i % 4 + 1) as user_id, "
        "timestamptz '2026-02-01 00:00Z' + i * interval '1 second' as occurred_at, "
        "1.5 as amount, 'EUR' as currency, 'o' || i as order_id "
        "from generate_series(1, 20000) as i",
    )
    reader = SqlReader(
        SqlSource(table="revenue", chunk_rows=1000), postgres_url, "revenue"
    )
    chunks = reader.chunks()
    first = next(chunks)

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            sa.text(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = current_database() and pid <> pg_backend_pid()"
            )
        ).scalars()
        assert list(killed) == [True]
    admin.dispose()

    with pytest.raises(InputError) as refused:
        read_source(itertools.chain([first], chunks), REVENUE, now=NOW)

    message = str(refused.value)
    assert f"{_shown(postgres_url)} table revenue" in message
    assert "connection to the database dropped" in message
    assert "after 1000 row(s)" in message


@pytest.mark.postgres
def test_typed_postgres_columns_keep_their_zone(
    load: Loader, postgres_url: str
) -> None:
    _execute(
        postgres_url,
        "create table revenue (user_id text, occurred_at timestamptz, "
        "amount numeric(12, 2), currency char(3), order_id text)",
        "insert into revenue values "
        "('u1', '2026-02-01 01:00+01', 10.50, 'EUR', 'o1'), "
        "('u2', '2026-02-02 00:00Z', 20.00, 'EUR', 'o2')",
        "create table local_revenue as select user_id, "
        "occurred_at at time zone 'UTC' as occurred_at, amount, currency, order_id "
        "from revenue",
    )

    inputs = load(tables={"revenue": {"table": "revenue"}}, url=postgres_url)
    naive = load(tables={"revenue": {"table": "local_revenue"}}, url=postgres_url)

    assert inputs.revenue["occurred_at"].tolist() == [
        pd.Timestamp("2026-02-01T00:00Z"),
        pd.Timestamp("2026-02-02T00:00Z"),
    ]
    assert inputs.revenue["amount"].tolist() == [10.5, 20.0]
    audit = naive.audits["revenue"]
    assert (audit.rows_in, audit.quarantined) == (2, 2)
    assert audit.file is not None
    reasons = pd.read_csv(audit.file)["quarantine_reason"]
    assert reasons.str.startswith("has no time zone").all()
