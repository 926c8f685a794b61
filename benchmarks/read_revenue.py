"""Peak memory of reading a large revenue table: chunked and checked, or in one go.

Builds a revenue table of ``--rows`` rows (5 million by default) in a SQLite
file, and on PostgreSQL too when ``--postgres-url`` is given, then measures
each way of reading it in a fresh child process, so that one measurement's
heap never inflates the next one's peak:

- ``baseline``: ``pandas.read_sql`` of the whole table, unchecked.
- ``checked``: the connector's chunked read with every contract check, ending
  with the whole checked table in memory (what a run holds).
- ``streamed``: the same chunks checked and dropped one by one, measured on a
  fifth of the table and on all of it; equal peaks mean flat memory.

Peak memory is the child's maximum resident set size (``ru_maxrss``).

Usage::

    python benchmarks/read_revenue.py [--rows 5000000] [--dir /tmp/bench]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from connectors.contracts import REVENUE
from connectors.files import read_source
from connectors.sources import SqlSource
from connectors.warehouse import SqlReader

NOW = pd.Timestamp("2027-01-01T00:00Z")
CHUNK_ROWS = 100_000

SQLITE_BUILD = """
create table revenue as
with recursive n(i) as (select 1 union all select i + 1 from n where i < :rows)
select 'u' || (i % 400000) as user_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', 1735689600 + i * 5, 'unixepoch')
           as occurred_at,
       round((i % 997) * 0.37, 2) as amount,
       'EUR' as currency,
       'o' || i as order_id
from n
"""

POSTGRES_BUILD = """
create table revenue as
select 'u' || (i % 400000) as user_id,
       timestamptz '2025-01-01 00:00Z' + i * interval '5 seconds' as occurred_at,
       round((i % 997) * 0.37, 2) as amount,
       'EUR' as currency,
       'o' || i as order_id
from generate_series(1, :rows) as i
"""


def build(url: str, rows: int) -> None:
    """Create the revenue table of ``rows`` rows at ``url``, unless it is there."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        if sa.inspect(connection).has_table("revenue"):
            count = connection.execute(sa.text("select count(*) from revenue"))
            if count.scalar_one() == rows:
                return
            connection.execute(sa.text("drop table revenue"))
        build_sql = SQLITE_BUILD if url.startswith("sqlite") else POSTGRES_BUILD
        connection.execute(sa.text(build_sql), {"rows": rows})
    engine.dispose()


def measure(mode: str, url: str, rows: int) -> dict[str, float]:
    """Read the table one way in this process; return peak RSS and rows held."""
    started = time.perf_counter()
    query = f"select * from revenue limit {rows}"
    source = SqlSource(query=query, chunk_rows=CHUNK_ROWS)
    held = 0
    if mode == "baseline":
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            held = len(pd.read_sql(sa.text(query), connection))
        engine.dispose()
    elif mode == "checked":
        read = read_source(SqlReader(source, url, "revenue").chunks(), REVENUE, now=NOW)
        held = len(read.kept)
    else:
        for chunk in SqlReader(source, url, "revenue").chunks():
            read = read_source([chunk], REVENUE, now=NOW)
            held = max(held, len(read.kept))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_mib": peak_kib / 1024,
        "rows_held": held,
        "seconds": time.perf_counter() - started,
    }


def in_child(mode: str, url: str, rows: int) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter and return what it reports."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            mode,
            "--url",
            url,
            "--rows",
            str(rows),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(url: str, rows: int) -> None:
    """Measure every mode on one database and print a small table."""
    shown = sa.make_url(url).render_as_string(hide_password=True)
    print(f"\n{shown}: {rows:,} revenue rows, chunks of {CHUNK_ROWS:,}")
    runs = [
        ("baseline: pandas.read_sql, whole table", "baseline", rows),
        ("checked: chunked read + contract, whole table", "checked", rows),
        (
            f"streamed: chunks checked and dropped, {rows // 5:,} rows",
            "streamed",
            rows // 5,
        ),
        (f"streamed: chunks checked and dropped, {rows:,} rows", "streamed", rows),
    ]
    results = []
    for label, mode, count in runs:
        result = in_child(mode, url, count)
        results.append(result)
        print(
            f"  {label:<52} peak {result['peak_mib']:8.0f} MiB"
            f"  {result['seconds']:6.1f} s  ({int(result['rows_held']):,} rows held)"
        )
    baseline, checked, small, large = (r["peak_mib"] for r in results)
    print(
        f"  checked read peaks at {checked / baseline:.0%} of the baseline; "
        f"streaming 5x the rows changes its peak by {large / small - 1:+.0%}"
    )


def main() -> None:
    """Build the tables and report, or measure one mode when asked by a parent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument(
        "--no-sqlite", action="store_true", help="Measure PostgreSQL only."
    )
    parser.add_argument("--measure", choices=["baseline", "checked", "streamed"])
    parser.add_argument("--url")
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.url, args.rows)))
        return

    urls = (
        []
        if args.no_sqlite
        else [f"sqlite:///{args.dir / 'valuebid-bench-revenue.db'}"]
    )
    if args.postgres_url:
        urls.append(args.postgres_url)
    for url in urls:
        started = time.perf_counter()
        build(url, args.rows)
        print(f"table ready in {time.perf_counter() - started:.0f} s")
        report(url, args.rows)


if __name__ == "__main__":
    main()
