"""What each CDNOW sign-up week showed by a given age, and what it spent after.

For each week of first purchases, prints the customers, their spend per head
before the age and from the age to day 365, the share who bought again after
their first day, the share who bought again in the 30 days before the age,
and the later spend per head without the week's 20 largest later spenders. A
week whose later spend stands out while its early figures do not has shifted
in a way nothing known at that age foresees.

Run: ``python benchmarks/cdnow_cohorts.py [--age 90]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from pltv_benchmark import DEFAULT_DATA, load_cdnow

from models.frames import prepare_revenue, prepare_users

HORIZON_DAYS = 365
TOP_SPENDERS = 20


def cohort_table(users: pd.DataFrame, revenue: pd.DataFrame, age: int) -> pd.DataFrame:
    """One row per sign-up week: early and later spend, and early activity."""
    week = users["signup_at"].dt.tz_convert(None).dt.to_period("W").astype(str)
    week_of = pd.Series(week.to_numpy(), index=users["user_id"].to_numpy())
    rows = revenue.loc[revenue["days"] < HORIZON_DAYS].copy()
    rows["week"] = week_of.reindex(rows["user_id"].to_numpy()).to_numpy()
    heads = week_of.value_counts().sort_index()
    early = rows.loc[rows["days"] < age]
    later = rows.loc[rows["days"] >= age]
    repeat = early.loc[early["days"] >= 1.0]
    recent = repeat.loc[repeat["days"] >= age - 30]

    later_by_user = later.groupby(["week", "user_id"])["amount"].sum()
    without_top = later_by_user.groupby(level="week").apply(
        lambda s: s.sort_values(ascending=False).iloc[TOP_SPENDERS:].sum()
    )
    table = pd.DataFrame(
        {
            "customers": heads,
            "spend before": early.groupby("week")["amount"].sum() / heads,
            "spend after": later.groupby("week")["amount"].sum() / heads,
            "bought again": repeat.groupby("week")["user_id"].nunique() / heads,
            "bought in last 30 d": recent.groupby("week")["user_id"].nunique() / heads,
            f"after, without top {TOP_SPENDERS}": without_top / heads,
        }
    )
    table.index.name = "week of sign-up"
    return table.fillna(0.0)


def main(argv: list[str] | None = None) -> int:
    """Print the table for one age."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--age", type=int, default=90, help="days since sign-up")
    args = parser.parse_args(argv)
    users, revenue = load_cdnow(args.data)
    prepared = prepare_users(users)
    money = prepare_revenue(revenue, prepared)
    table = cohort_table(prepared, money, args.age)
    formats = {c: "{:.3f}" if "bought" in c else "{:.1f}" for c in table.columns}
    formats["customers"] = "{:.0f}"
    shown = table.apply(lambda col: col.map(formats[str(col.name)].format))
    sys.stdout.write(f"age {args.age} days; spend in dollars per customer\n")
    sys.stdout.write(shown.to_string() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
